"""What every returns page shares (the till, the shopper's account, the service desk,
the back office): the order as a return form shows it, reading the form, and the
messages for the core's error codes in the page's language.

The rules (windows, amounts, stock, refunds) are `saumaton.returns`; this module only
turns a form into the core's commands and the core's views into what a page shows.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from saumaton.checkout.pickup import customer_contact
from saumaton.config import Settings
from saumaton.core.actor import Actor
from saumaton.core.errors import DomainError
from saumaton.db.uow import Database, UnitOfWork
from saumaton.locations.models import Channel, Location
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.orders.services import get_order
from saumaton.returns import postal
from saumaton.returns.listing import search_filter
from saumaton.returns.models import Return
from saumaton.returns.schemas import (
    BankAccountIn,
    PostReturnIn,
    ReceiveIn,
    ReceiveLineIn,
    ReturnableOrder,
    ReturnIn,
    ReturnLineIn,
    ReturnOut,
)
from saumaton.returns.services import (
    create_return,
    get_return,
    receive_post_return,
    returnable_lines,
)
from saumaton.web.i18n import N_
from saumaton.web.pages import error_message, gettext

# The reasons a cashier or a shopper picks from (stored in the page's language).
REASONS = (N_("Wrong shade or size"), N_("Does not suit me"), N_("Faulty or damaged"),
           N_("Arrived too late"), N_("Changed my mind"), N_("Other"))
REFUND_CHOICES = ("original", "store_credit", "cash", "card")
MAX_TEXT = 200

# The core's refusals in words a cashier or shopper can act on.
MESSAGES: dict[str, str] = {
    "return_exceeds_sold": N_("That is more than is left to return on this line "
                              "(someone may have just returned it). Reload the order."),
    "return_window_closed": N_("The return window has closed. A manager can accept the "
                               "return with a reason."),
    "refund_exceeds_paid": N_("The refund would be more than was paid for the order."),
    "order_not_returnable": N_("This order cannot be returned (it is not paid, or it "
                               "was cancelled or already returned)."),
    "store_credit_needs_customer": N_("Store credit needs a customer on the order."),
    "customer_required": N_("Store credit needs a customer on the order."),
    "card_not_confirmed": N_("Confirm that the card terminal approved the refund."),
    "terminal_not_confirmed": N_("Confirm that the card terminal approved the refund."),
    "drawer_closed": N_("Open the cash drawer first: cash and card refunds go on its "
                        "Z report."),
    "idempotency_key_reused": N_("This return was already sent with other contents. "
                                 "Reload the order."),
    "override_forbidden": N_("Only a manager can accept a return after the window."),
    "forbidden": N_("You do not have permission for this."),
    "return_not_found": N_("There is no such return."),
    "return_already_received": N_("This return was already received."),
    "return_cancelled": N_("This return was cancelled."),
    "gift_card_not_returnable": N_("A gift card cannot be returned."),
    "no_paytrail_payment": N_("This order has no Paytrail payment to refund to."),
    "order_not_found": N_("There is no such order."),
}


def messages(request: Request, exc: DomainError) -> str:
    return error_message(request, exc, MESSAGES)


@dataclass(frozen=True)
class OrderForReturn:
    """The order as a return form shows it: what was bought, where and when, and per
    line what is still returnable (the core's view)."""

    order: OrderOut
    returnable: ReturnableOrder
    channel_name: str
    location_name: str
    customer_name: str
    customer_email: str

    @property
    def lines(self) -> list[Any]:
        return list(self.returnable.lines)

    @property
    def web(self) -> bool:
        return self.returnable.channel_kind == "webshop"

    @property
    def any_returnable(self) -> bool:
        return self.returnable.returnable and any(
            ln.returnable_quantity > 0 for ln in self.returnable.lines)

    def needs_bank_account(self, settings: Settings) -> bool:
        """A postal return of a store sale paid in cash or by card is refunded by bank
        transfer when that is the merchant's rule: the form asks for the account."""
        paid = set(self.returnable.payment_methods) - {"points"}
        return (not self.web and settings.post_return_cash_refund == "bank_transfer"
                and bool(paid) and paid <= {"cash", "card"})

    @property
    def original_method(self) -> str:
        """What "the original payment" means for this order: paytrail, card, cash,
        gift_card, or several."""
        methods = [m for m in self.returnable.payment_methods if m != "points"]
        if not methods:
            return ""
        return methods[0] if len(set(methods)) == 1 else "mixed"


async def returnable_order(s: AsyncSession, settings: Settings,
                           order_id: int) -> OrderForReturn:
    order = await get_order(s, order_id)
    view = await returnable_lines(s, order_id, settings=settings)
    row = (await s.execute(
        select(Channel.name, Location.name)
        .select_from(Order).join(Channel, Channel.id == Order.channel_id)
        .outerjoin(Location, Location.id == Order.location_id)
        .where(Order.id == order_id))).one()
    name, email = await customer_contact(s, order.customer_id)
    return OrderForReturn(order, view, str(row[0]), str(row[1] or ""), name,
                          order.email or email)


@dataclass
class ReturnForm:
    """What was typed into a return form (kept when the form comes back with errors)."""

    quantities: dict[int, int] = field(default_factory=dict)  # line_no -> units
    damaged: set[int] = field(default_factory=set)  # line_no written off
    reason: str = ""
    reason_other: str = ""
    note: str = ""
    override_reason: str = ""
    refund_method: str = "original"
    terminal_confirmed: bool = False
    key: str = ""
    fields: tuple[str, ...] = ("lines", "reason", "reason_other", "override_reason",
                               "refund_method", "terminal_confirmed", "note", "general")

    @classmethod
    def blank(cls, view: OrderForReturn) -> ReturnForm:
        return cls()

    @property
    def reason_text(self) -> str:
        return self.reason_other if self.reason == "Other" else self.reason

    def quantity(self, line_no: int) -> int:
        return self.quantities.get(line_no, 0)


def _text(posted: FormData, name: str) -> str:
    value = posted.get(name)
    return value.strip() if isinstance(value, str) else ""


def read_return_form(request: Request, posted: FormData, view: OrderForReturn, *,
                     refund_choices: tuple[str, ...] = REFUND_CHOICES,
                     ) -> tuple[ReturnForm, dict[str, str]]:
    """The form's values and every error at once, keyed by field (`lines`, `qty-<n>`,
    `reason`, …). Quantities are checked against what is still returnable here only to
    say so next to the line; the core checks again in the transaction."""
    form = ReturnForm(key=_text(posted, "key")[:100])
    errors: dict[str, str] = {}
    for ln in view.lines:
        raw = _text(posted, f"qty-{ln.line_no}")
        if raw in ("", "0"):
            continue
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
            errors[f"qty-{ln.line_no}"] = gettext(request, N_(
                "Enter a whole number from 0 to %(n)s."), n=str(ln.returnable_quantity))
            continue
        qty = int(raw)
        form.quantities[ln.line_no] = qty
        if qty > ln.returnable_quantity:
            errors[f"qty-{ln.line_no}"] = gettext(request, N_(
                "At most %(n)s can be returned on this line."), n=str(ln.returnable_quantity))
        if _text(posted, f"condition-{ln.line_no}") == "damaged":
            form.damaged.add(ln.line_no)
    if not form.quantities and not any(k.startswith("qty-") for k in errors):
        errors["lines"] = gettext(request, N_("Choose at least one item to return."))
    form.reason = _text(posted, "reason")[:MAX_TEXT]
    form.reason_other = _text(posted, "reason_other")
    if form.reason not in REASONS:
        errors["reason"] = gettext(request, N_("Choose the reason for the return."))
        form.reason = ""
    elif form.reason == "Other" and not form.reason_other:
        errors["reason_other"] = gettext(request, N_("Tell us the reason in a few words."))
    if len(form.reason_other) > MAX_TEXT:
        errors["reason_other"] = gettext(request, N_(
            "At most %(n)s characters."), n=str(MAX_TEXT))
    form.note = _text(posted, "note")
    if len(form.note) > 500:
        errors["note"] = gettext(request, N_("At most %(n)s characters."), n="500")
    form.override_reason = _text(posted, "override_reason")
    if len(form.override_reason) > MAX_TEXT:
        errors["override_reason"] = gettext(request, N_(
            "At most %(n)s characters."), n=str(MAX_TEXT))
    form.refund_method = _text(posted, "refund_method") or "original"
    if form.refund_method not in refund_choices:
        errors["refund_method"] = gettext(request, N_("Choose how the money is refunded."))
        form.refund_method = "original"
    elif form.refund_method == "store_credit" and view.order.customer_id is None:
        errors["refund_method"] = gettext(request, N_(
            "Store credit needs a customer on the order: choose another refund."))
    form.terminal_confirmed = _text(posted, "terminal_confirmed") in ("1", "on", "true")
    return form, errors


def return_lines(request: Request, form: ReturnForm, *, staff: bool) -> list[ReturnLineIn]:
    return [ReturnLineIn(line_no=no, quantity=qty, restock=no not in form.damaged,
                         reason="") for no, qty in sorted(form.quantities.items())]


def reason_text(request: Request, form: ReturnForm) -> str:
    """The reason as the person chose it, in the page's language (what staff read)."""
    if form.reason == "Other":
        return form.reason_other[:MAX_TEXT]
    return gettext(request, form.reason)[:MAX_TEXT]


def return_command(request: Request, form: ReturnForm, *, location_id: int,
                   drawer_session_id: int | None) -> ReturnIn:
    return ReturnIn(location_id=location_id, lines=return_lines(request, form, staff=True),
                    refund_method=form.refund_method,
                    reason=reason_text(request, form), override_reason=form.override_reason,
                    drawer_session_id=drawer_session_id,
                    terminal_confirmed=form.terminal_confirmed, note=form.note)


async def take_at_till(uow: UnitOfWork, actor: Actor, settings: Settings, request: Request,
                       view: OrderForReturn, form: ReturnForm, *, location_id: int,
                       drawer_session_id: int | None, channel: str) -> ReturnOut:
    """A return taken at a store's till (or the back office's desk): refunded now."""
    cmd = return_command(request, form, location_id=location_id,
                         drawer_session_id=drawer_session_id)
    return await create_return(uow, actor, view.order.id, cmd, channel=channel,
                               idempotency_key=f"pos-return:{form.key}" if form.key else None,
                               settings=settings)


# Which field a core refusal belongs next to (the rest go above the form).
_ERROR_FIELDS = {
    "return_exceeds_sold": "lines", "return_window_closed": "override_reason",
    "override_forbidden": "override_reason", "store_credit_needs_customer": "refund_method",
    "customer_required": "refund_method", "card_not_confirmed": "terminal_confirmed",
    "terminal_not_confirmed": "terminal_confirmed", "drawer_closed": "refund_method",
    "refund_exceeds_paid": "refund_method", "no_paytrail_payment": "refund_method",
}


def error_fields(request: Request, exc: DomainError, form: ReturnForm) -> dict[str, str]:
    where = _ERROR_FIELDS.get(exc.code, "general")
    if exc.code == "forbidden" and form.override_reason:
        where = "override_reason"
    return {where: messages(request, exc)}


def read_bank_account(request: Request, posted: FormData
                      ) -> tuple[BankAccountIn | None, dict[str, str]]:
    """The account a bank-transfer refund is paid to (IBAN checked by its check digits)."""
    holder, iban = _text(posted, "bank_holder"), _text(posted, "bank_iban")
    errors: dict[str, str] = {}
    if not holder or len(holder) > 60:
        errors["bank_holder"] = gettext(request, N_("Enter the account holder's name."))
    compact = iban.replace(" ", "").upper()
    if not _iban_ok(compact):
        errors["bank_iban"] = gettext(request, N_(
            "Check the account number: an IBAN such as FI21 1234 5600 0007 85."))
    if errors:
        return None, errors
    return BankAccountIn(holder=holder, iban=compact), {}


def read_post_return_form(request: Request, posted: FormData, view: OrderForReturn,
                          settings: Settings
                          ) -> tuple[ReturnForm, BankAccountIn | None, dict[str, str]]:
    """A postal return's form (the shopper's and the service desk's alike): the lines,
    the refund (the original payment or store credit) and, when the original payment
    cannot be refunded to it, the bank account; every error at once."""
    form, errors = read_return_form(request, posted, view,
                                    refund_choices=("original", "store_credit"))
    bank = None
    if view.needs_bank_account(settings) and form.refund_method == "original":
        bank, bank_errors = read_bank_account(request, posted)
        errors.update(bank_errors)
    return form, bank, errors


def post_return_form_context(view: OrderForReturn, settings: Settings,
                             form: ReturnForm | None, errors: dict[str, str] | None
                             ) -> dict[str, Any]:
    """What a postal return's form page shows, wherever it is filled in."""
    return {"v": view, "form": form or ReturnForm.blank(view), "errors": errors or {},
            "reasons": REASONS, "key": secrets.token_urlsafe(18),
            "bank_needed": view.needs_bank_account(settings)}


def _iban_ok(iban: str) -> bool:
    if not (15 <= len(iban) <= 34 and iban.isascii() and iban.isalnum()
            and iban[:2].isalpha() and iban[2:4].isdigit()):
        return False
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


async def start_post_return(db: Database, actor: Actor, settings: Settings,
                            request: Request, view: OrderForReturn, form: ReturnForm, *,
                            channel: str, customer_id: int | None,
                            bank: BankAccountIn | None, lang: str, page_url: str) -> str:
    """Start a postal return and e-mail its code and instructions; commits; the code."""
    cmd = PostReturnIn(lines=return_lines(request, form, staff=False),
                       reason=reason_text(request, form),
                       refund_method=form.refund_method,
                       bank_account=bank, note=form.note)
    async with db.uow() as uow:
        ret, _ = await postal.start_post_return(
            uow, actor, view.order.id, cmd, channel=channel, customer_id=customer_id,
            idempotency_key=f"post-return:{form.key}" if form.key else None,
            settings=settings, email=view.customer_email, lang=lang, page_url=page_url)
        await uow.commit()
    return ret.code


# --- receiving postal returns ----------------------------------------------------------

POST_RETURNS_LIMIT = 50


async def post_returns(s: AsyncSession, q: str = "", *, status: str = "requested",
                       secret: str | None = None,
                       limit: int = POST_RETURNS_LIMIT) -> list[ReturnOut]:
    """Postal returns waiting for their parcel (or in another state), newest first;
    `q` narrows by the return code, the order number or the customer's e-mail, phone,
    card or name."""
    query = select(Return.id).where(Return.kind == "post", Return.status == status)
    if q.strip():
        query = query.where(search_filter(q, secret))
    ids = (await s.scalars(query.order_by(Return.id.desc()).limit(limit))).all()
    return [await get_return(s, int(i)) for i in ids]


def damaged_lines(posted: FormData, ret: ReturnOut) -> list[ReceiveLineIn]:
    """Each line as inspected: back on the shelf unless marked damaged."""
    return [ReceiveLineIn(line_no=ln.line_no,
                          restock=_text(posted, f"condition-{ln.line_no}") != "damaged")
            for ln in ret.lines]


async def receive(uow: UnitOfWork, actor: Actor, settings: Settings, ret: ReturnOut,
                  posted: FormData, *, location_id: int,
                  drawer_session_id: int | None) -> ReturnOut:
    cmd = ReceiveIn(location_id=location_id, lines=damaged_lines(posted, ret),
                    drawer_session_id=drawer_session_id,
                    terminal_confirmed=_text(posted, "terminal_confirmed") in ("1", "on"))
    return await receive_post_return(uow, actor, ret.code, cmd, settings=settings)
