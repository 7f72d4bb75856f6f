"""Duplicate customers: candidates (same e-mail, same phone however typed, similar name in
the same postcode), the reviewed merge that moves every row, its undo within the window,
who may merge, concurrency, and the back-office pages (both databases)."""

from __future__ import annotations

import asyncio
import html
import random
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.analytics.models import AnalyticsEvent
from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import Variant
from saumaton.checkout.models import Cart
from saumaton.checkout.services import AddressIn, CheckoutIn, place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError, Forbidden
from saumaton.customers import addresses
from saumaton.customers.card import QuickCustomerIn, customer_card, quick_create
from saumaton.customers.consents import set_consent
from saumaton.customers.duplicates import (
    UNDO_WINDOW,
    Candidate,
    customer_columns,
    duplicate_candidates,
    fold,
    merge_customers,
    merge_preview,
    resolve_customer_id,
    similar_names,
    undo_merge,
    within_one_edit,
)
from saumaton.customers.gdpr import erase_customer
from saumaton.customers.models import (
    AccountToken,
    Customer,
    CustomerAccount,
    CustomerMerge,
    CustomerTag,
)
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.services import CustomerIn, CustomerOut, create_customer, get_customer
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.followups.models import Followup
from saumaton.giftcards.models import GiftCard
from saumaton.loyalty.ledger import balance, reverse_for_order
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from saumaton.returns.models import Return
from saumaton.service.models import Conversation, NpsSurvey
from saumaton.service.nps import send_survey
from saumaton.tryon.models import TryReservation
from tests.support import Shop, make_variants, pay_web_order

MANAGER = Actor(label="staff:test manager", name="Maija Manageri",
                grants=(RoleGrant("manager", None),))
OWNER = Actor(label="staff:test owner", name="Olli Omistaja", grants=(RoleGrant("owner", None),))
CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
LOCAL_MANAGER = Actor(label="staff:test local", name="Lasse",
                      grants=(RoleGrant("manager", 1),))
# Tables that say which customer a row belongs to. A new one must be added here AND be
# seeded in test_merge_moves_everything_and_undo_restores_it: the merge moves it
# generically, this makes sure someone looked at what that means.
CUSTOMER_TABLES = {
    "account_tokens", "analytics_events", "carts", "customer_accounts", "customer_addresses",
    "customer_consents", "customer_identities", "customer_notes", "customer_preferences",
    "customer_tags", "orders", "loyalty_entries", "conversations", "nps_surveys",
    "gift_cards", "returns", "try_reservations", "outgoing_mail", "followups",
}


def new_phone() -> tuple[str, str]:
    """A fresh Finnish mobile number: (as typed at the till, E.164)."""
    digits = f"{random.randrange(10**7):07d}"
    return f"040 {digits[:3]} {digits[3:]}", f"+35840{digits}"


def letters(n: int = 8) -> str:
    return "".join(random.choice("bcdfghjklmnpqrstvwxz") for _ in range(n))


def new_email() -> str:
    return f"dup.{uuid.uuid4().hex[:10]}@example.fi"


async def till_customer(db: Database, first: str, last: str, phone: str,
                        email: str = "") -> CustomerOut:
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=phone, first_name=first, last_name=last, email=email))
        await uow.commit()
    return out


async def plain_customer(db: Database, first: str, last: str, **ids: str) -> CustomerOut:
    async with db.uow() as uow:
        out = await create_customer(uow, SYSTEM, CustomerIn(first_name=first, last_name=last,
                                                            **ids))
        await uow.commit()
    return out


async def web_order(db: Database, settings: Settings, shop: Shop, *, email: str, phone: str,
                    first: str, last: str, postcode: str = "00100",
                    customer_id: int | None = None, price: int = 3000,
                    paid: bool = True) -> OrderOut:
    """A home-delivery webshop order, paid unless told otherwise."""
    [v] = await make_variants(db, [price], stock={shop.warehouse: 5})
    cmd = CheckoutIn(email=email, phone=phone, first_name=first, last_name=last,
                     delivery="home",
                     address=AddressIn(name=f"{first} {last}", street="Katu 1",
                                       postcode=postcode, city="Helsinki"),
                     lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)])
    order, _ = await place_web_order(db, settings, cmd, customer_id=customer_id,
                                     key=f"w-{uuid.uuid4().hex}")
    if paid:
        await pay_web_order(db, settings, order)
    return order


async def store_order(db: Database, shop: Shop, customer_id: int, price: int) -> OrderOut:
    [v] = await make_variants(db, [price], stock={shop.store1: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"s-{uuid.uuid4().hex}")
    return order


async def candidates_for(db: Database, *ids: int) -> list[Candidate]:
    async with db.reader() as s:
        found = await duplicate_candidates(s, MANAGER, limit=500, customer_ids=ids)
    return [c for c in found if {c.a.id, c.b.id} & set(ids)]


def pair(c: Candidate) -> tuple[int, int]:
    return (c.a.id, c.b.id)


async def merge(db: Database, kept: int, merged: int, actor: Actor = MANAGER) -> int:
    async with db.uow() as uow:
        result = await merge_customers(uow, actor, kept, merged)
        await uow.commit()
    return result.merge_id


async def undo(db: Database, merge_id: int, actor: Actor = MANAGER) -> None:
    async with db.uow() as uow:
        await undo_merge(uow, actor, merge_id)
        await uow.commit()


# --- names ----------------------------------------------------------------------------------

def test_similar_names() -> None:
    assert fold(" Äijälä ") == "aijala" and fold("VÍRTANEN") == "virtanen"
    assert within_one_edit("anna", "ana") and within_one_edit("anna", "anni")
    assert within_one_edit("anna", "annab") and not within_one_edit("anna", "anne-mari")
    assert similar_names("Anna", "Virtanen", "anna", "VIRTANEN")
    assert similar_names("Anna", "Virtanen", "Anna-Maija", "Virtanen")  # a prefix
    assert similar_names("Anna", "Äijälä", "Ana", "Aijala")  # a typo, accents
    assert not similar_names("Anna", "Virtanen", "Anna", "Virtala")
    assert not similar_names("Anna", "Virtanen", "Pekka", "Virtanen")
    assert not similar_names("", "Virtanen", "Anna", "Virtanen")


# --- candidates -----------------------------------------------------------------------------

async def test_candidates_by_email(db: Database, settings: Settings, shop: Shop) -> None:
    email = new_email()
    a = await plain_customer(db, "Eeva", f"Email{letters()}", email=email)
    b = await plain_customer(db, "Eeva", f"Other{letters()}", phone=new_phone()[1])
    # b, signed in, typed a's e-mail (in capitals) on a web order
    await web_order(db, settings, shop, email=email.upper(), phone="", first="Eeva",
                    last="X", customer_id=b.id, postcode="99999")
    [c] = await candidates_for(db, a.id, b.id)
    assert pair(c) == (a.id, b.id)
    assert [(r.kind, r.value) for r in c.reasons] == [("email", email)]
    assert c.reasons[0].text == f"same e-mail {email}"
    assert c.score >= 90
    assert c.b.order_count == 1 and c.a.order_count == 0
    assert c.suggested_kept_id == b.id  # more orders


async def test_candidates_by_phone_in_different_formats(db: Database, settings: Settings,
                                                        shop: Shop) -> None:
    typed, e164 = new_phone()
    tag = letters()
    till = await till_customer(db, "Anna", f"Virtanen{tag}", typed)
    # the web customer typed the phone in the international format
    web = await web_order(db, settings, shop, email=new_email(),
                          phone="+358 " + e164[4:6] + " " + e164[6:], first="Anna",
                          last=f"Lindroos{tag}", postcode="33100")
    assert web.customer_id != till.id
    [c] = await candidates_for(db, till.id)
    assert pair(c) == (till.id, web.customer_id)
    assert [(r.kind, r.value) for r in c.reasons] == [("phone", e164)]
    assert c.reasons[0].text == f"same phone {e164}"
    # an order's phone stored as typed (not E.164) is normalised for the comparison
    typed2, e164_2 = new_phone()
    third = await plain_customer(db, "Kalle", f"Kolmas{letters()}", phone=e164_2)
    other = await plain_customer(db, "Ville", f"Neljas{letters()}", email=new_email())
    order = await store_order(db, shop, other.id, 1000)
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order.id)
                                  .values(phone=typed2.replace(" ", "-")))
        await uow.commit()
    [c2] = await candidates_for(db, third.id)
    assert set(pair(c2)) == {third.id, other.id}
    assert [(r.kind, r.value) for r in c2.reasons] == [("phone", e164_2)]


async def test_candidates_by_similar_name_and_postcode(db: Database, settings: Settings,
                                                       shop: Shop) -> None:
    tag = letters()
    postcode = f"{random.randrange(10**5):05d}"
    a = await till_customer(db, "Anna", f"Äijälä{tag}", new_phone()[0])
    async with db.uow() as uow:
        await addresses.add_address(uow, a.id, addresses.AddressIn(
            name="Anna", street="Katu 2", postcode=postcode, city="Espoo"))
        await uow.commit()
    b = await web_order(db, settings, shop, email=new_email(), phone="", first="ANA",
                        last=f"aijala{tag}", postcode=postcode)
    # the same name elsewhere is another person
    elsewhere = await web_order(db, settings, shop, email=new_email(), phone="", first="Anna",
                                last=f"Äijälä{tag}", postcode="96100" if postcode != "96100"
                                else "96200")
    # a different first name at the same postcode too
    pekka = await web_order(db, settings, shop, email=new_email(), phone="", first="Pekka",
                            last=f"Äijälä{tag}", postcode=postcode)
    found = await candidates_for(db, a.id, b.customer_id or 0, elsewhere.customer_id or 0,
                                 pekka.customer_id or 0)
    assert [pair(c) for c in found] == [(a.id, b.customer_id)]
    [c] = found
    assert [(r.kind, r.value) for r in c.reasons] == [("name_postcode", postcode)]
    assert c.reasons[0].text == f"similar name + postcode {postcode}"
    assert c.a.postcode == postcode and c.a.phone == a.phone and c.a.card == a.card
    assert 50 <= c.score < 85


async def test_candidates_skip_merged_and_erased(db: Database, shop: Shop) -> None:
    _, phone = new_phone()
    a = await plain_customer(db, "Iida", f"Skip{letters()}", phone=phone)
    b = await plain_customer(db, "Iida", f"Skip{letters()}", email=new_email())
    order = await store_order(db, shop, b.id, 1000)
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order.id).values(phone=phone))
        await uow.commit()
    assert len(await candidates_for(db, a.id)) == 1
    async with db.uow() as uow:
        await uow.session.execute(update(Customer).where(Customer.id == b.id)
                                  .values(erased_at=utcnow()))
        await uow.commit()
    assert await candidates_for(db, a.id) == []
    async with db.reader() as s:
        with pytest.raises(Forbidden):
            await duplicate_candidates(s, Actor(label="nobody"))


# --- merging --------------------------------------------------------------------------------

async def snapshot(db: Database, ids: tuple[int, ...]) -> dict[str, list[str]]:
    """Every row of every customer table that belongs to these customers, as text."""
    out: dict[str, list[str]] = {}
    async with db.reader() as s:
        for cc in customer_columns():
            rows = (await s.execute(select(cc.table).where(cc.column.in_(ids)))).all()
            out[f"{cc.table.name}.{cc.column.name}"] = sorted(repr(tuple(r)) for r in rows)
        rows = (await s.execute(select(Customer.id, Customer.first_name, Customer.last_name,
                                       Customer.merged_into_id)
                                .where(Customer.id.in_(ids)))).all()
        out["customers"] = sorted(repr(tuple(r)) for r in rows)
    return out


async def belongs_to(db: Database, customer_id: int) -> dict[str, int]:
    out: dict[str, int] = {}
    async with db.reader() as s:
        for cc in customer_columns():
            n = int(await s.scalar(select(func.count()).select_from(cc.table)
                                   .where(cc.column == customer_id)) or 0)
            if n:
                out[cc.table.name] = out.get(cc.table.name, 0) + n
    return out


def test_no_customer_table_is_forgotten() -> None:
    found = {cc.table.name for cc in customer_columns()}
    assert found == CUSTOMER_TABLES, (
        "a table refers to customers: decide what a merge means for it, seed it in "
        f"test_merge_moves_everything_and_undo_restores_it: {found ^ CUSTOMER_TABLES}")
    # a table's customer column is part of its key (moved unless the kept customer has
    # the same key: tags, preferences, the account) or the table has its own id
    for cc in customer_columns():
        assert cc.keyed_by_customer or len(list(cc.table.primary_key.columns)) == 1, \
            cc.table.name


async def test_merge_moves_everything_and_undo_restores_it(
        db: Database, settings: Settings, shop: Shop) -> None:
    tag = letters()
    typed, e164 = new_phone()
    kept = await till_customer(db, "Anna", f"Virtanen{tag}", typed)
    kept_store = await store_order(db, shop, kept.id, 1250)
    web_email = new_email()
    web = await web_order(db, settings, shop, email=web_email, phone=e164, first="Anna",
                          last=f"Virtanen{tag}", price=4000)
    merged_id = web.customer_id
    assert merged_id is not None and merged_id != kept.id
    merged_store = await store_order(db, shop, merged_id, 990)  # the till, later
    async with db.uow() as uow:
        s = uow.session
        await set_preference(uow, CASHIER, kept.id, "shade", "2N")
        await set_preference(uow, CASHIER, merged_id, "shade", "3W")  # kept's wins
        await set_preference(uow, CASHIER, merged_id, "skin_type", "sensitive")
        await add_note(uow, CASHIER, kept.id, "Till note", "pos")
        await add_note(uow, CASHIER, merged_id, "Prefers shade 2N, sensitive skin", "service")
        await set_consent(uow, merged_id, "marketing_email", True, "web")
        await addresses.add_address(uow, merged_id, addresses.AddressIn(
            name="Anna", street="Katu 3", postcode="00100", city="Helsinki"))
        s.add(CustomerTag(customer_id=kept.id, tag="vip"))
        s.add(CustomerTag(customer_id=merged_id, tag="vip"))
        s.add(CustomerTag(customer_id=merged_id, tag="newsletter"))
        s.add(Cart(token=uuid.uuid4().hex, customer_id=merged_id))
        s.add(AnalyticsEvent(kind="visit", customer_id=merged_id, data={}))
        s.add(CustomerAccount(customer_id=merged_id, email=web_email, password_hash="x"))
        s.add(AccountToken(customer_id=merged_id, purpose="verify",
                           token_hash=uuid.uuid4().hex * 2, expires_at=utcnow()))
        s.add(LoyaltyEntry(customer_id=merged_id, kind="earn", points=9,
                           order_id=merged_store.id, key=f"test:{uuid.uuid4().hex}"))
        s.add(Conversation(visitor_token_hash=uuid.uuid4().hex * 2, customer_id=merged_id))
        s.add(NpsSurvey(customer_id=merged_id, order_id=merged_store.id,
                        token_hash=uuid.uuid4().hex * 2))
        s.add(GiftCard(code=uuid.uuid4().hex[:16], kind="store_credit", customer_id=merged_id,
                       initial_cents=500, balance_cents=500))
        s.add(Return(order_id=merged_store.id, customer_id=merged_id,
                     code=uuid.uuid4().hex[:16], status="completed", kind="in_store",
                     channel="pos-1", refund_method="cash"))
        any_variant = await s.scalar(select(Variant.id).limit(1))
        assert any_variant is not None
        s.add(TryReservation(code=uuid.uuid4().hex[:16], variant_id=any_variant,
                             location_id=shop.store1, stock_reservation_id=0,
                             customer_id=merged_id, name="Maija", status="released",
                             expires_at=utcnow()))
        s.add(Followup(dedupe_key=f"test:{uuid.uuid4().hex}", kind="step",
                       customer_id=merged_id, order_id=merged_store.id, due_at=utcnow(),
                       status="sent", closed_at=utcnow(), subject="Käyttövinkit"))
        # a marketing mail already sent (a queued one would be any sender's to take)
        s.add(OutgoingMail(kind="test_offer", to_addr=web_email, subject="Tarjous",
                           body_text="t", status="sent", customer_id=merged_id))
        await uow.commit()
    seeded = await belongs_to(db, merged_id)
    assert set(seeded) == CUSTOMER_TABLES, "seed every customer table for the merged one"
    async with db.reader() as s:
        before_kept = await customer_card(s, MANAGER, kept.id)
        before_merged = await customer_card(s, MANAGER, merged_id)
        preview = await merge_preview(s, MANAGER, kept.id, merged_id)
    assert preview.blocked is None
    assert preview.counts["orders"] == 2 and preview.counts["customer_notes"] == 1
    assert preview.kept_wins == {"customer_preferences": 1, "customer_tags": 1}
    before = await snapshot(db, (kept.id, merged_id))

    async with db.uow() as uow:
        result = await merge_customers(uow, MANAGER, kept.id, merged_id)
        await uow.commit()
    assert result.counts["orders"] == 2
    assert result.undo_until - result.merged_at == UNDO_WINDOW
    assert await belongs_to(db, merged_id) == {}  # nothing left behind, in any table
    async with db.reader() as s:
        card = await customer_card(s, MANAGER, kept.id)
        m = await s.get(Customer, merged_id)
        assert m is not None and m.merged_into_id == kept.id and m.first_name == ""
        assert await resolve_customer_id(s, merged_id) == kept.id
        audit = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "customer.merge", AuditEntry.subject_id == kept.id))).all()
        topics = (await s.execute(select(OutboxEvent.topic, OutboxEvent.payload)
                                  .order_by(OutboxEvent.id.desc()).limit(20))).all()
    assert card.purchase_count == before_kept.purchase_count + before_merged.purchase_count == 3
    assert card.lifetime_value_cents == (before_kept.lifetime_value_cents
                                         + before_merged.lifetime_value_cents)
    assert card.lifetime_value_cents == (kept_store.total_cents + web.total_cents
                                         + merged_store.total_cents)
    assert {p.number for p in card.recent} == {kept_store.number, web.number,
                                               merged_store.number}
    assert card.preferences == {"shade": "2N", "skin_type": "sensitive"}
    assert {n.body for n in card.notes} == {"Till note", "Prefers shade 2N, sensitive skin"}
    assert card.has_account and card.consents["marketing_email"] is True
    assert card.phone == e164
    [entry] = audit
    assert entry.data["merged_id"] == merged_id and entry.data["counts"]["orders"] == 2
    assert "Anna" not in repr(entry.data)  # ids and counts only
    assert any(t == "customer.merged" and isinstance(p, dict)
               and p.get("merged_id") == merged_id for t, p in topics)

    # undone: exactly as before
    async with db.uow() as uow:
        await undo_merge(uow, MANAGER, result.merge_id)
        await uow.commit()
    assert await snapshot(db, (kept.id, merged_id)) == before
    async with db.reader() as s:
        assert (await customer_card(s, MANAGER, kept.id)).purchase_count == 1
        row = await s.get(CustomerMerge, result.merge_id)
        assert row is not None and row.undone_at is not None
        assert row.undone_by == MANAGER.label
        assert await s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "customer.unmerge", AuditEntry.subject_id == kept.id)) == 1
    # undo twice: refused
    with pytest.raises(Conflict) as e:
        await undo(db, result.merge_id)
    assert e.value.code == "merge_already_undone"


async def test_undo_window(db: Database, shop: Shop) -> None:
    _, phone = new_phone()
    a = await plain_customer(db, "Olga", f"Window{letters()}", phone=phone)
    b = await plain_customer(db, "Olga", f"Window{letters()}", email=new_email())
    merge_id = await merge(db, a.id, b.id)
    async with db.uow() as uow:
        await uow.session.execute(update(CustomerMerge).where(CustomerMerge.id == merge_id)
                                  .values(merged_at=utcnow() - UNDO_WINDOW
                                          - timedelta(minutes=1)))
        await uow.commit()
    with pytest.raises(Conflict) as e:
        await undo(db, merge_id)
    assert e.value.code == "undo_window_over"
    async with db.reader() as s:
        m = await s.get(Customer, b.id)
        assert m is not None and m.merged_into_id == a.id


async def points(db: Database, customer_id: int) -> int:
    async with db.reader() as s:
        return await balance(s, customer_id)


async def test_undo_gives_back_what_was_written_since_about_a_moved_order(
        db: Database, settings: Settings, shop: Shop) -> None:
    """A return of a moved order after the merge takes its points from the kept customer's
    ledger; a web order placed before the merge and paid after it earns them there, and
    gets its survey and funnel event there. Undo splits all of it along the orders: the
    two balances add up and each order's points are with its own customer."""
    tag = letters()
    _, phone = new_phone()
    kept = await plain_customer(db, "Anna", f"Split{tag}", phone=phone)
    email = new_email()
    merged = await plain_customer(db, "Anna", f"Split{tag}", email=email)
    kept_store = await store_order(db, shop, kept.id, 1250)
    merged_store = await store_order(db, shop, merged.id, 4000)
    pending = await web_order(db, settings, shop, email=email, phone=phone, first="Anna",
                              last=f"Split{tag}", customer_id=merged.id, price=2500,
                              paid=False)
    assert pending.customer_id == merged.id
    kept_points, merged_points = await points(db, kept.id), await points(db, merged.id)
    assert kept_points > 0 and merged_points > 0
    merge_id = await merge(db, kept.id, merged.id)
    assert await points(db, kept.id) == kept_points + merged_points

    # after the merge, about the merged customer's orders:
    async with db.uow() as uow:  # half of the store purchase comes back
        taken = await reverse_for_order(uow, merged_store.id, 2000, "return")
        await uow.commit()
    assert taken > 0
    await pay_web_order(db, settings, pending)  # earns, and the funnel's order_placed
    async with db.uow() as uow:
        assert await send_survey(uow, settings, merged_store.id)
        await uow.commit()
    async with db.reader() as s:
        earned_web = int(await s.scalar(select(LoyaltyEntry.points).where(
            LoyaltyEntry.order_id == pending.id, LoyaltyEntry.kind == "earn")) or 0)
        survey_owner = await s.scalar(select(NpsSurvey.customer_id).where(
            NpsSurvey.order_id == merged_store.id))
    assert earned_web > 0
    assert survey_owner == kept.id  # written on the kept customer, as it should be now
    together = await points(db, kept.id)
    assert together == kept_points + merged_points - taken + earned_web

    await undo(db, merge_id)
    assert await points(db, kept.id) == kept_points
    assert await points(db, merged.id) == merged_points - taken + earned_web
    assert await points(db, kept.id) + await points(db, merged.id) == together
    theirs = (merged_store.id, pending.id)
    async with db.reader() as s:
        owners = dict((await s.execute(select(LoyaltyEntry.id, LoyaltyEntry.customer_id)
                                       .where(LoyaltyEntry.order_id.in_(theirs)))).all())
        assert len(owners) == 3 and set(owners.values()) == {merged.id}  # earn x2, reverse
        assert await s.scalar(select(LoyaltyEntry.customer_id).where(
            LoyaltyEntry.order_id == kept_store.id)) == kept.id
        assert await s.scalar(select(NpsSurvey.customer_id).where(
            NpsSurvey.order_id == merged_store.id)) == merged.id
        assert set((await s.scalars(select(AnalyticsEvent.customer_id).where(
            AnalyticsEvent.order_id == pending.id))).all()) == {merged.id}
        entry = await s.scalar(select(AuditEntry).where(
            AuditEntry.action == "customer.unmerge", AuditEntry.subject_id == kept.id))
    assert entry is not None
    # earn + reverse on the ledger, the survey, the order_placed event
    assert entry.data["followed_orders"] == {"loyalty_entries": 2, "nps_surveys": 1,
                                             "analytics_events": 1}


async def test_refused_merges(db: Database, shop: Shop) -> None:
    a = await plain_customer(db, "Aino", f"Refuse{letters()}", phone=new_phone()[1])
    b = await plain_customer(db, "Aino", f"Refuse{letters()}", email=new_email())
    c = await plain_customer(db, "Aino", f"Refuse{letters()}", email=new_email())
    for actor in (CASHIER, LOCAL_MANAGER, Actor(label="nobody"),
                  Actor(label="f", grants=(RoleGrant("finance", None),)),
                  Actor(label="s", grants=(RoleGrant("service", None),))):
        with pytest.raises(Forbidden):
            await merge(db, a.id, b.id, actor)
    codes = []
    for kept, merged in ((a.id, a.id), (a.id, 2**60)):
        with pytest.raises(DomainError) as e:
            await merge(db, kept, merged)
        codes.append((e.value.status, e.value.code))
    assert codes == [(409, "merge_same_customer"), (404, "customer_not_found")]
    # both have an account: refused, nothing moved
    async with db.uow() as uow:
        uow.session.add(CustomerAccount(customer_id=a.id, email=new_email(), password_hash="x"))
        uow.session.add(CustomerAccount(customer_id=b.id, email=new_email(), password_hash="x"))
        await uow.commit()
    with pytest.raises(Conflict) as e:
        await merge(db, a.id, b.id)
    assert e.value.code == "both_have_accounts"
    assert await belongs_to(db, b.id) == {"customer_accounts": 1, "customer_identities": 1}
    async with db.reader() as s:
        assert (await merge_preview(s, MANAGER, a.id, b.id)).blocked == "both_have_accounts"
    # the owner may merge; an already merged one cannot be merged again, either way
    merge_id = await merge(db, a.id, c.id, OWNER)
    for kept, merged in ((a.id, c.id), (c.id, b.id), (b.id, c.id)):
        with pytest.raises(Conflict) as e:
            await merge(db, kept, merged)
        assert e.value.code == "customer_already_merged"
    # erased
    async with db.uow() as uow:
        await uow.session.execute(update(Customer).where(Customer.id == b.id)
                                  .values(erased_at=utcnow()))
        await uow.commit()
    with pytest.raises(Conflict) as e:
        await merge(db, a.id, b.id)
    assert e.value.code == "customer_erased"
    # undo: managers and owners only
    with pytest.raises(Forbidden):
        await undo(db, merge_id, CASHIER)
    await undo(db, merge_id, OWNER)


async def test_concurrent_merges_of_one_pair(db: Database, shop: Shop) -> None:
    """Two managers merge the same pair at once (one each way): one merge, one 409."""
    for reverse in (False, True):
        a = await plain_customer(db, "Sari", f"Race{letters()}", phone=new_phone()[1])
        b = await plain_customer(db, "Sari", f"Race{letters()}", email=new_email())
        await store_order(db, shop, b.id, 500)

        async def attempt(kept: int, merged: int) -> str:
            try:
                await merge(db, kept, merged)
            except Conflict as exc:
                return exc.code
            return "merged"

        second = (b.id, a.id) if reverse else (a.id, b.id)
        results = await asyncio.gather(attempt(a.id, b.id), attempt(*second))
        assert sorted(results) == ["customer_already_merged", "merged"], results
        async with db.reader() as s:
            merges = (await s.scalars(select(CustomerMerge).where(
                CustomerMerge.merged_id.in_((a.id, b.id))))).all()
            assert len(merges) == 1
            orders = await s.scalar(select(func.count()).select_from(Order).where(
                Order.customer_id == merges[0].kept_id))
            assert orders == 1


# --- pages ----------------------------------------------------------------------------------

async def login(client: httpx.AsyncClient, shop: Shop, who: str) -> None:
    page = await client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    email, pw = shop.logins[who]
    r = await client.post("/staff/login", data={"email": email, "password": pw,
                                                "csrf_token": token.group(1), "next": "/pos/"})
    assert r.status_code == 303, r.text


def csrf(text: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert m
    return m.group(1)


async def test_pages(client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    tag = letters()
    typed, e164 = new_phone()
    a = await till_customer(db, "Anna", f"Page{tag}", typed)
    b = await plain_customer(db, "Anna", f"Page{tag}", email=new_email())
    order = await store_order(db, shop, b.id, 700)
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order.id).values(phone=e164))
        await uow.commit()
    client.cookies.clear()
    r = await client.get("/backoffice/customers/duplicates")
    assert r.status_code in (302, 303) and "/staff/login" in r.headers["location"]

    await login(client, shop, "cashier1")
    r = await client.get(f"/backoffice/customers/duplicates?lang=en&q=Page{tag}")
    assert r.status_code == 200 and f"Page{tag}" in r.text
    assert "data-testid=\"merge-" not in r.text  # a cashier sees, cannot merge
    r = await client.get(f"/backoffice/customers/merge?kept={a.id}&merged={b.id}")
    assert r.status_code == 403

    client.cookies.clear()
    await login(client, shop, "manager")
    r = await client.get(f"/backoffice/customers/duplicates?lang=fi&q=Page{tag}")
    assert r.status_code == 200
    assert f"Sama puhelinnumero {e164}" in html.unescape(r.text)
    assert f'data-testid="merge-{a.id}-{b.id}"' in r.text
    r = await client.get("/backoffice/customers/duplicates?q=x")  # can be nothing
    assert r.status_code == 422 and 'data-testid="error-q"' in r.text
    r = await client.get(f"/backoffice/customers/merge?kept={b.id}&merged={a.id}&lang=en")
    assert r.status_code == 200 and "phone numbers and loyalty cards" in r.text
    token = csrf(r.text)
    # a bad choice: the error next to the field, nothing merged
    r = await client.post("/backoffice/customers/merge", data={
        "csrf_token": token, "kept": str(a.id), "merged": str(a.id)})
    assert r.status_code == 409 and 'aria-invalid="true"' in r.text
    r = await client.post("/backoffice/customers/merge", data={
        "kept": str(b.id), "merged": str(a.id)})
    assert r.status_code == 403  # no CSRF token
    r = await client.post("/backoffice/customers/merge", data={
        "csrf_token": token, "kept": str(b.id), "merged": str(a.id)})
    assert r.status_code == 303
    location = r.headers["location"]
    assert re.fullmatch(r"/backoffice/customers/merges/\d+", location)
    r = await client.get(location + "?lang=en")
    assert r.status_code == 200 and 'data-testid="undo"' in r.text
    async with db.reader() as s:
        m = await s.get(Customer, a.id)
        assert m is not None and m.merged_into_id == b.id
    r = await client.post(location + "/undo", data={"csrf_token": csrf(r.text)})
    assert r.status_code == 303
    r = await client.get(location + "?lang=en")
    assert 'data-testid="undo"' not in r.text and 'data-testid="undone"' in r.text
    r = await client.post(location + "/undo", data={"csrf_token": csrf(r.text)})
    assert r.status_code == 409
    async with db.reader() as s:
        m = await s.get(Customer, a.id)
        assert m is not None and m.merged_into_id is None
    client.cookies.clear()



async def test_a_merged_id_leads_to_the_kept_customer(db: Database, settings: Settings,
                                                      shop: Shop) -> None:
    """Old references (a bookmarked card, a shopper signed in before the merge) reach the
    kept customer: the register's lookups, the card and the next web order."""
    _, phone = new_phone()
    kept = await plain_customer(db, "Aino", f"Kept{letters()}", phone=phone)
    old = await plain_customer(db, "Aino", f"Kept{letters()}", email=new_email())
    await merge(db, kept.id, old.id)
    async with db.reader() as s:
        assert (await get_customer(s, SYSTEM, old.id)).id == kept.id
        assert (await customer_card(s, SYSTEM, old.id)).id == kept.id
    order = await web_order(db, settings, shop, email=new_email(), phone=phone, first="Aino",
                            last="Kept", customer_id=old.id)
    assert order.customer_id == kept.id


async def test_an_erased_signed_in_shopper_buys_as_a_guest(db: Database, settings: Settings,
                                                          shop: Shop) -> None:
    gone = await plain_customer(db, "Eero", f"Gone{letters()}", email=new_email())
    async with db.uow() as uow:
        await erase_customer(uow, SYSTEM, gone.id, "asked to be forgotten")
        await uow.commit()
    email = new_email()
    order = await web_order(db, settings, shop, email=email, phone=new_phone()[1],
                            first="Eero", last="Uusi", customer_id=gone.id)
    assert order.customer_id is not None and order.customer_id != gone.id


def test_the_merge_page_names_every_kind_of_record_in_words() -> None:
    """Every table a merge moves has a label on the confirm page (a raw table name
    such as "loyalty_entries" means a new table was added without one)."""
    from saumaton.customers.duplicates import customer_columns
    from saumaton.web.backoffice.customers import KINDS

    assert {cc.table.name for cc in customer_columns()} <= set(KINDS)
