"""Shopper accounts: registration, sign-in, e-mail verification, password reset and
change, the profile the checkout prefills from, and the customer's own orders.

An account belongs to a customer of the one register: registering with an e-mail a
cashier already recorded attaches the account to that customer. Until the e-mail is
verified the account shows no order history, so registering someone else's address
reveals none of their purchases. Link tokens are stored only as SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotAuthenticated, NotFound, ValidationFailed
from saumaton.customers import sessions as customer_sessions
from saumaton.customers.addresses import AddressOut, default_address
from saumaton.customers.consents import set_consent
from saumaton.customers.identities import normalise_email
from saumaton.customers.models import AccountToken, Customer, CustomerAccount, CustomerIdentity
from saumaton.db.uow import UnitOfWork
from saumaton.locations.models import Channel, Location
from saumaton.mail import messages
from saumaton.mail.queue import queue_mail
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.orders.services import _orders_out

# The staff hasher (one set of argon2 parameters for every password we keep) and its
# dummy hash, verified against when the e-mail is unknown so timing reveals nothing.
from saumaton.staff.services import _DUMMY_HASH, _hasher

MIN_PASSWORD = 10
MAX_PASSWORD = 1000  # argon2 takes any length; this bounds the work per attempt
MAX_NAME = 100  # first and last name, each
VERIFY_TTL = timedelta(hours=messages.VERIFY_LINK_HOURS)
RESET_TTL = timedelta(hours=messages.RESET_LINK_HOURS)
# A second link of the same kind within this time is not sent (no mail flooding).
RESEND_AFTER = timedelta(seconds=60)
_COMMON_PASSWORDS = frozenset({
    "0123456789", "1234567890", "12345678910", "123456789a", "1111111111", "0000000000",
    "qwertyuiop", "qwerty1234", "qwerty12345", "asdfghjkl1", "1q2w3e4r5t", "abcdefghij",
    "abc1234567", "password12", "password123", "password1234", "passw0rd123", "iloveyou12",
    "salasana12", "salasana123", "salasana1234", "salasana2024", "salasana2025",
    "salasana2026", "qwertyuiop1", "letmein123", "welcome123", "tervetuloa1", "tervetuloa",
    "kissa12345", "koira12345", "perkele123", "aaaaaaaaaa", "zxcvbnm123",
})


def check_password(password: str, email: str = "") -> None:
    """At least 10 characters, not a well-known one, not the e-mail address."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"a password is at least {MIN_PASSWORD} characters",
                               code="password_too_short", field="password",
                               extra={"min": MIN_PASSWORD})
    if len(password) > MAX_PASSWORD:
        raise ValidationFailed(f"a password is at most {MAX_PASSWORD} characters",
                               code="password_too_long", field="password",
                               extra={"max": MAX_PASSWORD})
    lowered = password.strip().lower()
    if lowered in _COMMON_PASSWORDS or len(set(lowered)) <= 2 \
            or (email and lowered in (email.lower(), email.split("@")[0].lower())):
        raise ValidationFailed("this password is too easy to guess",
                               code="password_too_common", field="password")


async def hash_password(password: str) -> str:
    # argon2 is deliberately slow (tens of ms): off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


async def _password_ok(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return bool(_hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False
    return await asyncio.to_thread(verify)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def name_problems(first_name: str, last_name: str) -> list[ValidationFailed]:
    """What is wrong with the names of a new account, every problem at once."""
    problems = []
    for field, raw in (("first_name", first_name), ("last_name", last_name)):
        value = " ".join(raw.split())
        if not value:
            problems.append(ValidationFailed(f"{field} is required", code="required",
                                             field=field))
        elif len(value) > MAX_NAME or "\x00" in value:
            problems.append(ValidationFailed(f"{field} is at most {MAX_NAME} characters",
                                             code="too_long", field=field,
                                             extra={"max": MAX_NAME}))
    return problems


def _names(first_name: str, last_name: str) -> tuple[str, str]:
    problems = name_problems(first_name, last_name)
    if problems:
        raise problems[0]
    return " ".join(first_name.split()), " ".join(last_name.split())


async def _issue_token(uow: UnitOfWork, customer_id: int, purpose: str,
                       ttl: timedelta) -> str | None:
    """A new one-time link token; None if one was sent moments ago."""
    now = utcnow()
    recent = await uow.session.scalar(select(AccountToken.id).where(
        AccountToken.customer_id == customer_id, AccountToken.purpose == purpose,
        AccountToken.created_at > now - RESEND_AFTER).limit(1))
    if recent is not None:
        return None
    token = secrets.token_urlsafe(32)
    uow.session.add(AccountToken(customer_id=customer_id, purpose=purpose,
                                 token_hash=_token_hash(token), expires_at=now + ttl,
                                 created_at=now))
    await uow.session.flush()
    return token


async def _token_customer(session: AsyncSession, token: str, purpose: str) -> int | None:
    if not token or len(token) > 200:
        return None
    row = await session.scalar(select(AccountToken).where(
        AccountToken.token_hash == _token_hash(token)))
    if row is None or row.purpose != purpose or row.used_at is not None \
            or row.expires_at <= utcnow():
        return None
    return row.customer_id


def _invalid_link() -> ValidationFailed:
    return ValidationFailed("the link is invalid, used or expired", code="invalid_link",
                            field="token")


async def _use_token(uow: UnitOfWork, token: str, purpose: str) -> int:
    """Consume a link token (once, even under concurrent use); the customer's id."""
    customer_id = await _token_customer(uow.session, token, purpose)
    if customer_id is None:
        raise _invalid_link()
    used = await uow.session.execute(
        update(AccountToken)
        .where(AccountToken.token_hash == _token_hash(token), AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    if getattr(used, "rowcount", 0) != 1:
        raise _invalid_link()
    return customer_id


async def token_is_valid(session: AsyncSession, token: str, purpose: str) -> bool:
    """For showing the new-password form only when its link still works."""
    return await _token_customer(session, token, purpose) is not None


async def _account(session: AsyncSession, customer_id: int) -> CustomerAccount:
    account = await session.get(CustomerAccount, customer_id)
    if account is None:
        raise NotFound(f"no account for customer {customer_id}", code="account_not_found")
    return account


async def _queue_verification(uow: UnitOfWork, account: CustomerAccount, first_name: str,
                              lang: str, base_url: str, settings: Settings) -> bool:
    token = await _issue_token(uow, account.customer_id, "verify", VERIFY_TTL)
    if token is None:
        return False
    mail = messages.verify_email(url=f"{base_url.rstrip('/')}/account/verify/{token}",
                                 lang=lang, settings=settings, first_name=first_name)
    await queue_mail(uow, kind="verify_email", to=account.email, subject=mail.subject,
                     text=mail.text, html=mail.html,
                     reference=f"customer:{account.customer_id}")
    return True


async def register(uow: UnitOfWork, *, email: str, password: str, first_name: str,
                   last_name: str, marketing_email: bool, lang: str, base_url: str,
                   settings: Settings) -> int:
    """Create an account (and the customer, unless one has this e-mail already);
    record the marketing consent and mail a verification link. Returns the
    customer id."""
    email = normalise_email(email)
    first, last = _names(first_name, last_name)
    check_password(password, email)
    password_hash = await hash_password(password)  # before the transaction begins
    s = uow.session
    taken = Conflict("an account with this e-mail exists", code="email_taken", field="email")
    if await s.scalar(select(CustomerAccount.customer_id)
                      .where(CustomerAccount.email == email)) is not None:
        raise taken
    customer_id = await s.scalar(select(CustomerIdentity.customer_id).where(
        CustomerIdentity.kind == "email", CustomerIdentity.value == email))
    if customer_id is None:
        customer = Customer(first_name=first, last_name=last)
        s.add(customer)
        await s.flush()
        customer_id = customer.id
        s.add(CustomerIdentity(customer_id=customer_id, kind="email", value=email))
        uow.emit("customer.created", {"customer_id": customer_id})
    else:
        existing = await s.get(Customer, customer_id)
        assert existing is not None
        if await s.get(CustomerAccount, customer_id) is not None:
            raise taken
        # Names the store recorded stay: this registration is not verified yet.
        if not (existing.first_name or existing.last_name):
            existing.first_name, existing.last_name = first, last
    account = CustomerAccount(customer_id=customer_id, email=email,
                              password_hash=password_hash)
    s.add(account)
    try:
        await s.flush()
    except IntegrityError as exc:  # registered concurrently
        raise taken from exc
    await set_consent(uow, customer_id, "marketing_email", marketing_email, "web",
                      record_unchanged=True)
    await _queue_verification(uow, account, first, lang, base_url, settings)
    return customer_id


async def resend_verification(uow: UnitOfWork, customer_id: int, *, lang: str,
                              base_url: str, settings: Settings) -> bool:
    """A new verification link, unless verified already or one was sent moments ago."""
    account = await _account(uow.session, customer_id)
    if account.email_verified_at is not None:
        return False
    customer = await uow.session.get(Customer, customer_id)
    return await _queue_verification(uow, account, customer.first_name if customer else "",
                                     lang, base_url, settings)


async def authenticate_customer(session: AsyncSession, email: str, password: str) -> int:
    """The customer id for a correct e-mail and password. Every failure is the same
    `invalid_credentials` and costs one argon2 check."""
    try:
        normal: str | None = normalise_email(email[:320])
    except ValidationFailed:
        normal = None
    account = None if normal is None else await session.scalar(
        select(CustomerAccount).where(CustomerAccount.email == normal))
    ok = await _password_ok(account.password_hash if account else _DUMMY_HASH,
                            password[:MAX_PASSWORD])
    if account is None or not ok:
        raise NotAuthenticated("wrong e-mail or password", code="invalid_credentials",
                               field="password")
    return account.customer_id


async def note_sign_in(uow: UnitOfWork, customer_id: int) -> None:
    await uow.session.execute(
        update(CustomerAccount).where(CustomerAccount.customer_id == customer_id)
        .values(last_login_at=utcnow()).execution_options(synchronize_session=False))


async def request_password_reset(uow: UnitOfWork, email: str, *, lang: str, base_url: str,
                                 settings: Settings) -> None:
    """Mail a one-hour, one-time link if an account has this e-mail. The caller learns
    nothing either way (a malformed address is still an error)."""
    normal = normalise_email(email)
    account = await uow.session.scalar(
        select(CustomerAccount).where(CustomerAccount.email == normal))
    if account is None:
        return
    token = await _issue_token(uow, account.customer_id, "reset", RESET_TTL)
    if token is None:
        return
    customer = await uow.session.get(Customer, account.customer_id)
    mail = messages.password_reset(url=f"{base_url.rstrip('/')}/account/reset/{token}",
                                   lang=lang, settings=settings,
                                   first_name=customer.first_name if customer else "")
    await queue_mail(uow, kind="password_reset", to=account.email, subject=mail.subject,
                     text=mail.text, html=mail.html,
                     reference=f"customer:{account.customer_id}")


async def _set_password(uow: UnitOfWork, account: CustomerAccount, new_password: str) -> None:
    check_password(new_password, account.email)
    account.password_hash = await hash_password(new_password)
    # Outstanding reset links die with the old password.
    await uow.session.execute(
        update(AccountToken)
        .where(AccountToken.customer_id == account.customer_id,
               AccountToken.purpose == "reset", AccountToken.used_at.is_(None))
        .values(used_at=utcnow()).execution_options(synchronize_session=False))
    await uow.session.flush()


async def reset_password(uow: UnitOfWork, token: str, new_password: str) -> int:
    """Set a new password with a reset link; returns the customer id. Following the
    link proves the e-mail is theirs, so it also verifies the address."""
    customer_id = await _token_customer(uow.session, token, "reset")
    if customer_id is None:
        raise _invalid_link()
    account = await _account(uow.session, customer_id)
    check_password(new_password, account.email)  # a weak password keeps the link usable
    await _use_token(uow, token, "reset")
    await _set_password(uow, account, new_password)
    # Whoever may have had the old password is signed out everywhere.
    await customer_sessions.revoke_all(uow, customer_id)
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
    await uow.session.flush()
    return customer_id


async def verify_email(uow: UnitOfWork, token: str) -> int:
    customer_id = await _use_token(uow, token, "verify")
    account = await _account(uow.session, customer_id)
    if account.email_verified_at is None:
        account.email_verified_at = utcnow()
        await uow.session.flush()
    return customer_id


async def change_password(uow: UnitOfWork, customer_id: int, current_password: str,
                          new_password: str, *, keep_session: str | None = None) -> None:
    """Set a new password; every other signed-in browser of the customer is signed out
    (`keep_session`: the token of the browser making the change, which stays)."""
    account = await _account(uow.session, customer_id)
    if not await _password_ok(account.password_hash, current_password[:MAX_PASSWORD]):
        raise ValidationFailed("the current password is wrong", code="wrong_password",
                               field="current_password")
    await _set_password(uow, account, new_password)
    await customer_sessions.revoke_all(uow, customer_id, keep=keep_session)


# --- what the account shows --------------------------------------------------------------

@dataclass(frozen=True)
class AccountProfile:
    customer_id: int
    email: str
    email_verified: bool
    first_name: str
    last_name: str
    phone: str | None  # only once verified: it may come from the store's records
    default_address: AddressOut | None


async def account_profile(session: AsyncSession, customer_id: int) -> AccountProfile:
    account = await _account(session, customer_id)
    customer = await session.get(Customer, customer_id)
    assert customer is not None  # the account's foreign key
    verified = account.email_verified_at is not None
    phone = await session.scalar(select(CustomerIdentity.value).where(
        CustomerIdentity.customer_id == customer_id, CustomerIdentity.kind == "phone")
        .limit(1)) if verified else None
    return AccountProfile(customer_id=customer_id, email=account.email,
                          email_verified=verified, first_name=customer.first_name,
                          last_name=customer.last_name, phone=phone,
                          default_address=await default_address(session, customer_id))


@dataclass(frozen=True)
class HistoryEntry:
    order: OrderOut
    web: bool  # bought in the webshop (else in a store, or by phone/API)
    place: str  # the store's name for store purchases
    channel_name: str


@dataclass(frozen=True)
class OrderHistory:
    verified: bool  # False: nothing is shown until the e-mail is confirmed
    entries: list[HistoryEntry]
    next_before_id: int | None  # for the next page, None when this is the last


async def _entries(session: AsyncSession, orders: list[OrderOut]) -> list[HistoryEntry]:
    channels = {code: (kind, name) for code, kind, name in (await session.execute(
        select(Channel.code, Channel.kind, Channel.name)
        .where(Channel.code.in_({o.channel for o in orders})))).all()}
    location_ids = {o.location_id for o in orders if o.location_id is not None}
    places = dict((await session.execute(
        select(Location.id, Location.name).where(Location.id.in_(location_ids)))).all()) \
        if location_ids else {}
    out = []
    for o in orders:
        kind, name = channels.get(o.channel, ("", o.channel))
        web = kind == "webshop"
        out.append(HistoryEntry(order=o, web=web, channel_name=name,
                                place="" if web else places.get(o.location_id or 0, name)))
    return out


async def _verified(session: AsyncSession, customer_id: int) -> bool:
    return (await _account(session, customer_id)).email_verified_at is not None


async def order_history(session: AsyncSession, customer_id: int, limit: int = 20,
                        before_id: int | None = None) -> OrderHistory:
    """This customer's orders from every channel, newest first."""
    if not await _verified(session, customer_id):
        return OrderHistory(verified=False, entries=[], next_before_id=None)
    q = (select(Order.id).where(Order.customer_id == customer_id)
         .order_by(Order.id.desc()).limit(limit + 1))
    if before_id is not None:
        q = q.where(Order.id < before_id)
    ids = list((await session.scalars(q)).all())
    more = len(ids) > limit
    ids = ids[:limit]
    entries = await _entries(session, await _orders_out(session, ids))
    return OrderHistory(verified=True, entries=entries,
                        next_before_id=ids[-1] if more else None)


async def customer_order(session: AsyncSession, customer_id: int, number: str) -> HistoryEntry:
    """One of this customer's own orders (a verified account), else not found."""
    missing = NotFound(f"no order {number}", code="order_not_found")
    if not (number.isascii() and number.isdigit() and len(number) <= 18):
        raise missing
    if not await _verified(session, customer_id):
        raise missing
    found = await _orders_out(session, [int(number)])
    if not found or found[0].customer_id != customer_id:
        raise missing
    return (await _entries(session, found))[0]
