"""GDPR for one customer, on both databases: the export holds every area, erasure leaves
no personal data in any table while the accounting records stay exactly as they were,
both are audited; permissions, 409s, the API and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import JSON, String, Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

import saumaton.db.models  # noqa: F401  (every table in the metadata)
from saumaton.analytics.models import AnalyticsEvent
from saumaton.api import gdpr as gdpr_api
from saumaton.audit.models import AuditEntry
from saumaton.checkout.models import Cart, CartLine
from saumaton.checkout.pickup import hand_over
from saumaton.checkout.services import AddressIn as ShippingIn
from saumaton.checkout.services import CheckoutIn, place_web_order, record_payment_status
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers.accounts import register
from saumaton.customers.addresses import AddressIn, add_address
from saumaton.customers.consents import set_consent
from saumaton.customers.gdpr import erase_customer, export_and_audit, export_customer
from saumaton.customers.models import (
    Customer,
    CustomerAccount,
    CustomerIdentity,
    CustomerMerge,
    CustomerNote,
    CustomerTag,
)
from saumaton.customers.notes import add_note, set_preference
from saumaton.customers.services import CustomerIn, create_customer, new_card_number
from saumaton.db.base import Base
from saumaton.db.uow import Database
from saumaton.inventory.services import verify_ledger
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.schemas import LineIn
from saumaton.payments.models import Payment, PaytrailPayment
from saumaton.service.chat import (
    identify_visitor,
    leave_offline_message,
    new_visitor_token,
    post_visitor_message,
)
from saumaton.service.models import ChatMessage, Conversation, NpsSurvey
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from saumaton.web.app import create_app
from tests.support import ROOT, Shop, make_variants, open_drawer, staff_actor

_SCRIPT = Path(sys.executable).parent / "saumaton"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [
    sys.executable, "-c", "from saumaton.cli import main; main()"]


# --- fixtures and helpers ---------------------------------------------------------------

@pytest.fixture(scope="module")
async def api(settings: Settings, shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the GDPR routes (included here until app.py includes them)."""
    app = create_app(settings)
    if not any(getattr(r, "path", "") == "/api/v1/customers/{customer_id}/erase"
               for r in app.routes):
        app.include_router(gdpr_api.router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def pay(db: Database, settings: Settings, order_id: int, total: int) -> None:
    """A Paytrail attempt and its 'ok' answer, as the callback records it."""
    stamp, txn = f"st-{order_id}-{uuid.uuid4().hex[:6]}", f"tx-{uuid.uuid4().hex}"
    async with db.uow() as uow:
        uow.session.add(PaytrailPayment(order_id=order_id, stamp=stamp, transaction_id=txn,
                                        amount_cents=total, status="new"))
        await uow.commit()
    out = await record_payment_status(db, settings, stamp, txn, "ok", total)
    assert out.order_status == "paid"


@dataclass
class Person:
    """A customer with data in every area, and the values that identify them."""

    id: int
    shell_id: int  # an older record merged into this one
    email: str
    phone: str  # E.164
    phone_national: str
    first: str
    last: str
    streets: tuple[str, str]
    card: str
    store_order: int
    web_order: int
    unlinked_chat: int  # they only typed their e-mail: linked to no customer
    offline_chat: int  # an offline message (no agent online), mailed to the shop

    @property
    def values(self) -> list[str]:
        return [self.email, self.phone, self.phone_national, self.first, self.last,
                *self.streets, self.card]


async def rich_customer(db: Database, settings: Settings, shop: Shop) -> Person:
    tag = uuid.uuid4().hex[:8]
    n = random.randrange(1_000_000, 10_000_000)
    first, last = f"Aino{tag}", f"Virta{tag}"
    email = f"aino.{tag}@example.fi"
    phone, national = f"+35840{n}", f"040{n}"
    streets = (f"Poistokatu {tag} A 1", f"Unohduskuja {tag} 7")
    card = new_card_number()
    # Before they had an account: a chat where they only typed their e-mail (so it is
    # linked to no customer).
    async with db.uow() as uow:
        visitor_token = new_visitor_token()
        first_message = await post_visitor_message(
            uow, visitor_token, f"Soittakaa numeroon {national}", None, page="/shop/")
        await identify_visitor(uow, visitor_token, "", email.upper())
        await uow.commit()
    async with db.uow() as uow:
        cid = await register(uow, email=email, password=f"kelpo-salasana-{tag}",
                             first_name=first, last_name=last, marketing_email=True,
                             lang="fi", base_url="http://test", settings=settings)
        s = uow.session
        s.add_all([CustomerIdentity(customer_id=cid, kind="phone", value=phone),
                   CustomerIdentity(customer_id=cid, kind="card", value=card)])
        await add_address(uow, cid, AddressIn(name=f"{first} {last}", street=streets[0],
                                              postcode="00100", city="Helsinki",
                                              phone=national))
        await add_address(uow, cid, AddressIn(name=f"{first} {last}", street=streets[1],
                                              postcode="33100", city="Tampere"))
        await set_consent(uow, cid, "marketing_sms", True, "pos")
        await set_consent(uow, cid, "marketing_email", False, "web")  # withdrawn
        await add_note(uow, SYSTEM, cid, f"prefers shade 2N; {first} has sensitive skin",
                       "service")
        await set_preference(uow, SYSTEM, cid, "shade", "2N")
        s.add(CustomerTag(customer_id=cid, tag="vip"))
        visitor = f"vis-{tag}"
        s.add_all([
            AnalyticsEvent(kind="visit", channel="web", visitor_id=visitor, customer_id=cid,
                           path="/shop/", data={}),
            AnalyticsEvent(kind="product_view", channel="web", visitor_id=visitor,
                           customer_id=None, path="/shop/p/x", data={}),
        ])
        cart = Cart(token=f"cart-{tag}", customer_id=cid)
        s.add(cart)
        # An older record of the same person, merged into this one.
        shell = Customer(first_name=first, last_name=last)
        s.add(shell)
        await s.flush()
        shell.merged_into_id = cid
        s.add(CustomerMerge(kept_id=cid, merged_id=shell.id, merged_by="staff:1 test",
                            moved={"customer": {"first_name": first, "last_name": last,
                                                "email": email},
                                   "customer_identities": [1, 2]}))
        shell_id = int(shell.id)
        cart_id = int(cart.id)
        await uow.commit()

    [v1, v2] = await make_variants(db, [1990, 495], stock={shop.store1: 20, shop.warehouse: 20})
    vid1, vid2 = int(str(v1["id"])), int(str(v2["id"]))
    async with db.uow() as uow:
        uow.session.add(CartLine(cart_id=cart_id, variant_id=vid2, quantity=1))
        await uow.commit()
    session_id = await open_drawer(db, shop.store1)
    sale, _ = await sell(db, SYSTEM, shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=session_id, customer_id=cid,
        lines=[TillLineIn(variant_id=vid1, quantity=2), TillLineIn(variant_id=vid2)],
        payments=[TillPaymentIn(method="cash", tendered_cents=5000)]))
    web, _ = await place_web_order(db, settings, CheckoutIn(
        email=email, phone=national, first_name=first, last_name=last, delivery="home",
        address=ShippingIn(name=f"{first} {last}", street=streets[0], postcode="00100",
                           city="Helsinki"),
        lines=[LineIn(variant_id=vid1, quantity=1)]), customer_id=cid, key=f"gdpr-{tag}")
    await pay(db, settings, web.id, web.total_cents)
    async with db.uow() as uow:  # a chat and an NPS answer that name the person
        conv = Conversation(visitor_token_hash=f"{tag}" * 8, customer_id=cid,
                            name=f"{first} {last}", email=email, page="/shop/")
        uow.session.add(conv)
        await uow.session.flush()
        uow.session.add_all([
            ChatMessage(conversation_id=conv.id, sender="visitor",
                        body=f"Hei, olen {first} {last}, puh. {national}"),
            ChatMessage(conversation_id=conv.id, sender="agent",
                        body=f"Kiitos {first}! Lähetän tiedot osoitteeseen {email}."),
            NpsSurvey(customer_id=cid, order_id=sale.id, token_hash=f"{tag}" * 8, score=9,
                      comment=f"Terveisin {first} {last}"),
            LoyaltyEntry(customer_id=cid, kind="earn", points=39, order_id=sale.id,
                         key=f"earn:test:{tag}"),
        ])
        await uow.commit()
    # No agent online: a message left for the queue and mailed to the shop, with their
    # name in the subject (linked to them or not: it is theirs by the e-mail).
    async with db.uow() as uow:
        offline = await leave_offline_message(
            uow, new_visitor_token(), name=f"{first} {last}", email=email,
            body=f"Osoitteeni on {streets[1]}", shop_address="palvelu@example.fi",
            page="/shop/")
        await uow.commit()
    return Person(cid, shell_id, email, phone, national, first, last, streets, card,
                  sale.id, web.id, first_message.conversation_id, offline.id)


async def hits(s: AsyncSession, values: list[str]) -> list[str]:
    """Every (table.column, value) where a value occurs in any text or JSON column of any
    table."""
    found = []
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            if not isinstance(col.type, String | JSON):
                continue
            for v in values:
                n = await s.scalar(select(func.count()).select_from(table).where(
                    func.lower(cast(col, Text)).contains(v.lower(), autoescape=True)))
                if n:
                    found.append(f"{table.name}.{col.name}: {v}")
    return found


async def accounting(s: AsyncSession, order_ids: list[int]) -> list[tuple[Any, ...]]:
    """What the bookkeeping keeps: orders, lines, payments with totals and VAT."""
    orders = (await s.execute(select(
        Order.id, Order.customer_id, Order.status, Order.subtotal_cents, Order.discount_cents,
        Order.total_cents, Order.vat_cents, Order.paid_cents, Order.delivery_fee_cents,
        Order.delivery_vat_cents, Order.created_at).where(Order.id.in_(order_ids))
        .order_by(Order.id))).all()
    lines = (await s.execute(select(
        OrderLine.order_id, OrderLine.line_no, OrderLine.variant_id, OrderLine.sku,
        OrderLine.quantity, OrderLine.unit_price_cents, OrderLine.discount_cents,
        OrderLine.total_cents, OrderLine.vat_rate_bp, OrderLine.vat_cents)
        .where(OrderLine.order_id.in_(order_ids))
        .order_by(OrderLine.order_id, OrderLine.line_no))).all()
    payments = (await s.execute(select(
        Payment.order_id, Payment.method, Payment.status, Payment.amount_cents,
        Payment.rounding_cents, Payment.tendered_cents, Payment.change_cents)
        .where(Payment.order_id.in_(order_ids)).order_by(Payment.id))).all()
    return [tuple(r) for r in (*orders, *lines, *payments)]


async def create_customer_in(db: Database, first: str) -> int:
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name=first))
        await uow.commit()
    return c.id


async def audit_entries(db: Database, customer_id: int, action: str) -> list[AuditEntry]:
    async with db.reader() as s:
        return list((await s.scalars(select(AuditEntry).where(
            AuditEntry.subject_type == "customer", AuditEntry.subject_id == customer_id,
            AuditEntry.action == action).order_by(AuditEntry.id))).all())


# --- export -----------------------------------------------------------------------------

async def test_export_holds_every_area_and_is_audited(db: Database, shop: Shop,
                                                      settings: Settings) -> None:
    p = await rich_customer(db, settings, shop)
    service = await staff_actor(db, shop, "service")
    async with db.uow() as uow:
        data = await export_and_audit(uow, service, p.id)
        await uow.commit()
    text = json.dumps(data)  # JSON-able as it is
    assert data["format"] == "saumaton.customer-export" and data["version"] == 1
    c = data["customer"]
    assert (c["id"], c["first_name"], c["last_name"]) == (p.id, p.first, p.last)
    assert c["merged_from_ids"] == [p.shell_id] and c["erased_at"] is None
    assert {(i["kind"], i["value"]) for i in data["identities"]} == {
        ("email", p.email), ("phone", p.phone), ("card", p.card)}
    account = data["account"]
    assert account["email"] == p.email and "password_hash" not in account
    assert "password hash is held" in account["password"]
    async with db.reader() as s:
        pw_hash = await s.scalar(select(CustomerAccount.password_hash)
                                 .where(CustomerAccount.customer_id == p.id))
    assert pw_hash and pw_hash not in text
    assert [t["purpose"] for t in data["account_tokens"]] == ["verify"]
    assert sorted(a["street"] for a in data["addresses"]) == sorted(p.streets)
    consents = [(r["kind"], r["granted"], r["channel"]) for r in data["consents"]]
    assert consents == [("marketing_email", True, "web"), ("marketing_sms", True, "pos"),
                        ("marketing_email", False, "web")]
    assert all(r["at"].startswith("20") and "T" in r["at"] for r in data["consents"])
    assert data["preferences"][0]["key"] == "shade" and data["preferences"][0]["value"] == "2N"
    assert "sensitive skin" in data["notes"][0]["body"]
    assert [t["tag"] for t in data["tags"]] == ["vip"]
    # the chat where they only gave their e-mail, the one linked to them, the offline
    # message
    convs = data["conversations"]
    assert [c["email"] for c in convs] == [p.email] * 3
    assert [[m["sender"] for m in c["messages"]] for c in convs] == [
        ["visitor"], ["visitor", "agent"], ["visitor"]]
    assert p.phone_national in convs[0]["messages"][0]["body"]
    assert convs[2]["name"] == f"{p.first} {p.last}"
    assert [(n["score"], n["comment"]) for n in data["nps"]] == [(9, f"Terveisin {p.first} "
                                                                     f"{p.last}")]
    loyalty = [(e["kind"], e["points"], e["order_id"]) for e in data["loyalty"]]
    assert ("earn", 39, p.store_order) in loyalty  # the one seeded
    assert {o for k, _, o in loyalty if k == "earn"} == {p.store_order, p.web_order}

    orders = {o["id"]: o for o in data["orders"]}
    assert set(orders) == {p.store_order, p.web_order}
    store, web = orders[p.store_order], orders[p.web_order]
    assert store["channel"] == "pos-1" and store["status"] == "completed"
    assert [ln["quantity"] for ln in store["lines"]] == [2, 1]
    assert store["total_cents"] == 2 * 1990 + 495 and isinstance(store["vat_cents"], int)
    assert store["payments"][0]["method"] == "cash"
    assert store["payments"][0]["tendered_cents"] == 5000
    assert web["channel"] == "web" and web["status"] == "paid"
    assert web["email"] == p.email and web["phone"] == p.phone
    assert web["delivery"]["method"] == "home"
    assert web["delivery"]["address"]["street"] == p.streets[0]
    assert web["online_payments"][0]["status"] == "ok"
    assert web["payments"][0]["amount_cents"] == web["total_cents"]
    assert [ln["quantity"] for ln in data["carts"][0]["lines"]] == [1]
    assert [e["kind"] for e in data["analytics_events"]] == ["visit", "order_placed"]
    kinds = {m["kind"] for m in data["mails"]}
    assert {"verify_email", "order_confirmation", "service_offline"} <= kinds
    assert all(set(m) == {"id", "kind", "to", "subject", "status", "created_at", "sent_at"}
               for m in data["mails"])
    assert data["merges"] == [{
        "id": data["merges"][0]["id"], "role": "kept", "kept_id": p.id,
        "merged_id": p.shell_id, "merged_by": "staff:1 test",
        "merged_at": data["merges"][0]["merged_at"], "undone_at": None, "undone_by": ""}]

    [entry] = await audit_entries(db, p.id, "customer.export")
    assert entry.actor == service.label
    assert entry.data["sections"]["orders"] == 2
    assert not any(v.lower() in json.dumps(entry.data).lower() for v in p.values)


async def test_export_needs_read_access_everywhere(db: Database, shop: Shop) -> None:
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name="Lue", last_name="Minut"))
        await uow.commit()
    cashier = await staff_actor(db, shop, "cashier1")
    async with db.reader() as s:
        with pytest.raises(Forbidden):
            await export_customer(s, cashier, c.id)
        with pytest.raises(NotFound) as e:
            await export_customer(s, SYSTEM, 2**40)
    assert e.value.code == "customer_not_found"
    assert await audit_entries(db, c.id, "customer.export") == []


# --- erasure ----------------------------------------------------------------------------

async def test_erasure_leaves_no_personal_data_and_keeps_the_books(
        db: Database, shop: Shop, settings: Settings) -> None:
    p = await rich_customer(db, settings, shop)
    other = await rich_customer(db, settings, shop)  # must stay as it is
    orders = [p.store_order, p.web_order]
    # A chat that staff linked to someone else, in which p's e-mail was typed: that
    # customer's history stays; only p's address goes.
    third = await create_customer_in(db, "Kolmas")
    async with db.uow() as uow:
        elsewhere = Conversation(visitor_token_hash=uuid.uuid4().hex * 2, customer_id=third,
                                 email=p.email, page="/shop/")
        uow.session.add(elsewhere)
        await uow.session.flush()
        uow.session.add(ChatMessage(conversation_id=elsewhere.id, sender="visitor",
                                    body="Kysyn ystäväni puolesta"))
        elsewhere_id = int(elsewhere.id)
        await uow.commit()
    async with db.reader() as s:
        found = {h.rsplit(": ", 1)[1] for h in await hits(s, p.values)}
        assert found >= set(p.values) - {p.phone_national}  # the search finds what is there
        books = await accounting(s, orders)
        other_books = await accounting(s, [other.store_order, other.web_order])
        other_found = await hits(s, other.values)
        visitor = f"vis-{p.first.removeprefix('Aino')}"
        assert await s.scalar(select(func.count()).select_from(AnalyticsEvent)
                              .where(AnalyticsEvent.visitor_id == visitor)) == 2
        events = await s.scalar(select(func.count()).select_from(AnalyticsEvent))
    async with db.uow() as uow:
        before = await export_customer(uow.session, SYSTEM, other.id)
    del before["exported_at"]

    manager = await staff_actor(db, shop, "manager")
    async with db.uow() as uow:
        report = await erase_customer(uow, manager, p.id, "the customer's request of 3 May")
        await uow.commit()
    assert report.customer_ids == [p.id, p.shell_id]
    assert report.deleted["customer_identities"] == 3
    assert report.deleted["customer_addresses"] == 2
    assert report.deleted["customer_consents"] == 3
    assert report.deleted["carts"] == 1
    assert report.anonymised["orders"] == 2
    assert report.anonymised["outgoing_mail"] >= 2
    assert report.kept == {"orders": 2, "order_lines": 3, "payments": 2}

    async with db.reader() as s:
        assert await hits(s, p.values) == []
        assert await accounting(s, orders) == books
        assert await verify_ledger(s) == []
        for cid in (p.id, p.shell_id):
            c = await s.get(Customer, cid)
            assert c is not None and (c.first_name, c.last_name) == ("", "")
            assert c.erased_at is not None
        assert await s.scalar(select(func.count()).select_from(CustomerNote)
                              .where(CustomerNote.customer_id == p.id)) == 0
        # the events stay, as anonymous counts
        assert await s.scalar(select(func.count()).select_from(AnalyticsEvent)
                              .where(AnalyticsEvent.visitor_id == visitor)) == 0
        assert await s.scalar(select(func.count()).select_from(AnalyticsEvent)
                              .where(AnalyticsEvent.customer_id == p.id)) == 0
        assert await s.scalar(select(func.count()).select_from(AnalyticsEvent)) == events
        mails = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == f"customer:{p.id}"))).all()
        assert mails and all(m.to_addr == "erased" and m.body_text == "" and
                             m.status != "queued" for m in mails)
        # the shop's copy of the offline message: keyed by its conversation
        [mail] = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == f"conversation:{p.offline_chat}"))).all()
        assert (mail.subject, mail.body_text, mail.to_addr) == ("[erased]", "", "erased")
        # both chats emptied, also the one linked to no one
        for chat_id in (p.unlinked_chat, p.offline_chat):
            chat = await s.get(Conversation, chat_id)
            assert chat is not None and (chat.name, chat.email, chat.page) == ("", "", "")
            assert set((await s.scalars(select(ChatMessage.body).where(
                ChatMessage.conversation_id == chat_id))).all()) == {""}
        unlinked = await s.get(Conversation, p.unlinked_chat)
        assert unlinked is not None and unlinked.customer_id is None
        kept_chat = await s.get(Conversation, elsewhere_id)
        assert kept_chat is not None and kept_chat.customer_id == third
        assert kept_chat.email == "" and kept_chat.page == "/shop/"
        assert await s.scalar(select(ChatMessage.body).where(
            ChatMessage.conversation_id == elsewhere_id)) == "Kysyn ystäväni puolesta"
        # the survey link is voided: no token opens it any more
        [survey] = (await s.scalars(select(NpsSurvey).where(
            NpsSurvey.order_id == p.store_order))).all()
        tag = p.first.removeprefix("Aino")
        assert survey.token_hash != tag * 8 and survey.token_hash.startswith("void:")
        assert (survey.score, survey.comment) == (9, "")
        merge = await s.scalar(select(CustomerMerge).where(CustomerMerge.kept_id == p.id))
        assert merge is not None and merge.moved["customer_identities"] == [1, 2]
        # the other customer: untouched
        assert await accounting(s, [other.store_order, other.web_order]) == other_books
        assert await hits(s, other.values) == other_found
    async with db.uow() as uow:
        after = await export_customer(uow.session, SYSTEM, other.id)
    del after["exported_at"]
    # The mail sender may have sent the other customer's mails meanwhile: compare the
    # mails without their delivery state.
    volatile = ("status", "attempts", "sent_at", "last_error", "next_attempt_at")
    for data in (before, after):
        data["mails"] = [{k: v for k, v in m.items() if k not in volatile}
                         for m in data["mails"]]
    assert after == before

    [entry] = await audit_entries(db, p.id, "customer.erase")
    assert entry.actor == manager.label
    assert entry.data["reason"] == "the customer's request of 3 May"
    assert entry.data["kept"]["orders"] == 2
    assert entry.data["deleted"]["customer_notes"] == 1

    # the anonymous remainder can still be exported: the orders, nothing personal
    async with db.reader() as s:
        rest = await export_customer(s, SYSTEM, p.id)
    assert rest["identities"] == [] and rest["account"] is None
    assert {o["id"] for o in rest["orders"]} == set(orders)
    assert all(o["email"] == "" and o["phone"] == "" for o in rest["orders"])

    async with db.uow() as uow:
        with pytest.raises(Conflict) as e:
            await erase_customer(uow, manager, p.id, "again")
    assert e.value.code == "already_erased"


async def test_reason_naming_the_person_is_redacted(db: Database, shop: Shop) -> None:
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(
            first_name=f"Eero{tag}", last_name="Poistettava", email=f"eero.{tag}@example.fi"))
        await uow.commit()
    async with db.uow() as uow:
        await erase_customer(uow, SYSTEM, c.id,
                             f"Eero{tag} asked by mail from EERO.{tag}@example.fi")
        await uow.commit()
    [entry] = await audit_entries(db, c.id, "customer.erase")
    assert entry.data["reason"] == "[erased] asked by mail from [erased]"
    assert entry.actor == "system"


async def test_only_owners_and_managers_erase(db: Database, shop: Shop) -> None:
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name="Pysyvä",
                                                          last_name="Asiakas"))
        await uow.commit()
    for who in ("cashier1", "service", "finance"):
        actor = await staff_actor(db, shop, who)
        async with db.uow() as uow:
            with pytest.raises(Forbidden):
                await erase_customer(uow, actor, c.id, "asked")
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as e:
            await erase_customer(uow, SYSTEM, c.id, "   ")
    assert e.value.code == "reason_required" and e.value.field == "reason"
    async with db.reader() as s:
        row = await s.get(Customer, c.id)
        assert row is not None and row.first_name == "Pysyvä" and row.erased_at is None
    owner = await staff_actor(db, shop, "owner")
    async with db.uow() as uow:
        await erase_customer(uow, owner, c.id, "asked")
        await uow.commit()


async def test_open_orders_must_be_finished_first(db: Database, shop: Shop,
                                                  settings: Settings) -> None:
    tag = uuid.uuid4().hex[:8]
    email = f"nouto.{tag}@example.fi"
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name=f"Noutaja{tag}",
                                                          email=email))
        await uow.commit()
    [v] = await make_variants(db, [1200], stock={shop.store1: 5})
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email=email, phone="040 765 4321", first_name=f"Noutaja{tag}", delivery="pickup",
        pickup_location_id=shop.store1, lines=[LineIn(variant_id=int(str(v["id"])))]),
        customer_id=c.id, key=f"gdpr-pickup-{tag}")
    manager = await staff_actor(db, shop, "manager")

    async def refused() -> None:
        async with db.uow() as uow:
            with pytest.raises(Conflict) as e:
                await erase_customer(uow, manager, c.id, "asked")
        assert e.value.code == "customer_has_open_orders"
        assert e.value.extra["orders"] == [order.number]
        async with db.reader() as s:
            row = await s.get(Customer, c.id)
            assert row is not None and row.first_name == f"Noutaja{tag}"
            assert await s.scalar(select(Order.email).where(Order.id == order.id)) == email

    await refused()  # pending payment
    await pay(db, settings, order.id, order.total_cents)
    await refused()  # paid, waiting at the store
    async with db.uow() as uow:
        await hand_over(uow, SYSTEM, order.id, shop.store1, id_checked=True)
        await uow.commit()
    async with db.uow() as uow:
        report = await erase_customer(uow, manager, c.id, "asked")
        await uow.commit()
    assert report.kept["orders"] == 1
    assert await audit_entries(db, c.id, "customer.erase")


# --- API --------------------------------------------------------------------------------

async def test_api_export_and_erase(api: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    tag = uuid.uuid4().hex[:8]
    r = await api.post("/api/v1/customers", headers=shop.auth("manager"), json={
        "first_name": f"Api{tag}", "email": f"api.{tag}@example.fi", "issue_card": True})
    assert r.status_code == 201
    cid = r.json()["id"]
    url = f"/api/v1/customers/{cid}"

    r = await api.get(f"{url}/export", headers=shop.auth("service"))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["content-disposition"] == f'attachment; filename="customer-{cid}.json"'
    assert r.json()["customer"]["first_name"] == f"Api{tag}"
    assert (await api.get(f"{url}/export", headers=shop.auth("cashier1"))).status_code == 403
    assert (await api.get(f"{url}/export")).status_code == 401
    r = await api.get("/api/v1/customers/999999999/export", headers=shop.auth("owner"))
    assert r.status_code == 404 and r.json()["code"] == "customer_not_found"
    assert len(await audit_entries(db, cid, "customer.export")) == 1

    r = await api.post(f"{url}/erase", headers=shop.auth("cashier1"), json={"reason": "x"})
    assert r.status_code == 403
    r = await api.post(f"{url}/erase", headers=shop.auth("manager"), json={"reason": " "})
    assert r.status_code == 422 and r.json()["code"] == "reason_required"
    assert r.json()["field"] == "reason"
    r = await api.post(f"{url}/erase", headers=shop.auth("manager"), json={})
    assert r.status_code == 422
    r = await api.post(f"{url}/erase", headers=shop.auth("manager"),
                       json={"reason": "request by phone"})
    assert r.status_code == 200
    body = r.json()
    assert body["customer_id"] == cid and body["customer_ids"] == [cid]
    assert body["deleted"]["customer_identities"] == 2
    r = await api.post(f"{url}/erase", headers=shop.auth("manager"),
                       json={"reason": "request by phone"})
    assert r.status_code == 409 and r.json()["code"] == "already_erased"
    r = await api.get(f"{url}", headers=shop.auth("manager"))
    assert r.json()["email"] is None and r.json()["first_name"] == ""


# --- CLI --------------------------------------------------------------------------------

async def run_cli(url: str, var_dir: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL,
        env={**os.environ, "SAUMATON_DATABASE_URL": url, "SAUMATON_VAR_DIR": str(var_dir),
             "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"})
    async with asyncio.timeout(120):
        out, _ = await proc.communicate()
    return await proc.wait(), out.decode()


async def test_cli_export_and_erase(db: Database, database_url: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(
            first_name=f"Cli{tag}", last_name="Asiakas",
            phone=f"+35850{random.randrange(1_000_000, 10_000_000)}"))
        await uow.commit()
    code, out = await run_cli(database_url, tmp_path, "customer", "export", str(c.id))
    assert code == 0, out
    assert json.loads(out)["customer"]["first_name"] == f"Cli{tag}"
    target = tmp_path / "export.json"
    code, out = await run_cli(database_url, tmp_path, "customer", "export", str(c.id),
                              "--out", str(target))
    assert code == 0, out
    assert json.loads(target.read_text())["identities"][0]["value"] == c.phone
    code, out = await run_cli(database_url, tmp_path, "customer", "export", "999999999")
    assert code == 1 and "customer_not_found" in out
    exports = await audit_entries(db, c.id, "customer.export")
    assert [e.actor for e in exports] == ["system", "system"]

    # without --yes (and nobody to answer): nothing happens
    code, out = await run_cli(database_url, tmp_path, "customer", "erase", str(c.id),
                              "--reason", "asked at the store")
    assert code == 1
    async with db.reader() as s:
        row = await s.get(Customer, c.id)
        assert row is not None and row.erased_at is None
    code, out = await run_cli(database_url, tmp_path, "customer", "erase", str(c.id),
                              "--reason", "asked at the store", "--yes")
    assert code == 0, out
    assert f"customer {c.id} erased" in out and "customer_identities 1" in out
    code, out = await run_cli(database_url, tmp_path, "customer", "erase", str(c.id),
                              "--reason", "asked at the store", "--yes")
    assert code == 1 and "already_erased" in out
    async with db.reader() as s:
        row = await s.get(Customer, c.id)
        assert row is not None and row.first_name == "" and row.erased_at is not None
        assert await hits(s, [f"Cli{tag}", str(c.phone)]) == []
    [entry] = await audit_entries(db, c.id, "customer.erase")
    assert entry.actor == "system" and entry.data["reason"] == "asked at the store"


async def test_audit_table_is_not_written_without_commit(db: Database, shop: Shop) -> None:
    """An erasure that fails half-way leaves neither changes nor an audit entry."""
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name="Kesken"))
        await uow.commit()
    async with db.uow() as uow:
        await erase_customer(uow, SYSTEM, c.id, "asked")
        # not committed
    async with db.reader() as s:
        row = await s.get(Customer, c.id)
        assert row is not None and row.first_name == "Kesken" and row.erased_at is None
    assert await audit_entries(db, c.id, "customer.erase") == []
