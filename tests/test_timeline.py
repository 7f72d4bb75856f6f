"""The customer timeline (both databases): every source appears, newest first; a merged
id shows the kept customer's timeline; limit and paging by cursor (ties included); who
may see it; the fragment and the back office page; a chat says what was asked and opens
read-only for a cashier; no 0-point bookkeeping lines; every change the timeline shows
is announced with the customer's id (the live stream's filter)."""

from __future__ import annotations

import html
import random
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.checkout.services import (
    cancel_unpaid_orders,
    place_web_order,
    record_payment_status,
    start_payment,
)
from saumaton.config import TEST_MERCHANT, Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Forbidden, NotFound, ValidationFailed
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.consents import set_consent
from saumaton.customers.duplicates import merge_customers
from saumaton.customers.models import CustomerNote
from saumaton.customers.notes import add_note
from saumaton.customers.services import CustomerOut
from saumaton.customers.timeline import (
    PREVIEW,
    SOURCES,
    TimelineEvent,
    chat_transcript,
    timeline,
)
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.followups.models import Followup
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.mail.models import MailEvent
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.payments.models import PaytrailPayment, Refund
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.payments.paytrail.simulator import create_simulator
from saumaton.payments.paytrail_refunds import send_due_refunds
from saumaton.payments.services import PaymentIn
from saumaton.service.models import ChatMessage, Conversation
from saumaton.service.nps import answer_survey, send_survey
from saumaton.staff.services import actor_for_token
from saumaton.tryon.services import TryIn
from saumaton.tryon.services import reserve as reserve_to_try
from saumaton.web.timeline import TOPICS
from tests.support import Shop, make_variants
from tests.support import staff_login as login
from tests.test_checkout import cmd

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))
MANAGER = Actor(label="staff:test manager", name="Maija Manageri",
                grants=(RoleGrant("manager", None),))
NOBODY = Actor(label="staff:test nobody", name="Ei Ketään", grants=())


def new_phone() -> str:
    return f"040 {random.randrange(10**7):07d}"


async def new_customer(db: Database, first: str = "Anna", *, consent: bool = True
                       ) -> CustomerOut:
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=new_phone(), first_name=first, last_name="Virtanen",
            email=f"tl.{uuid.uuid4().hex[:10]}@example.fi", marketing_email=consent))
        await uow.commit()
    return out


async def store_sale(db: Database, shop: Shop, customer_id: int, price: int = 2500
                     ) -> OrderOut:
    [v] = await make_variants(db, [price], stock={shop.store1: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"tl-{uuid.uuid4().hex}")
    return order


async def note(db: Database, customer_id: int, body: str, channel: str = "pos") -> None:
    async with db.uow() as uow:
        await add_note(uow, CASHIER, customer_id, body, channel)
        await uow.commit()


async def events_of(db: Database, customer_id: int, **kw: object) -> list[TimelineEvent]:
    async with db.reader() as s:
        return await timeline(s, CASHIER, customer_id, **kw)  # type: ignore[arg-type]


def assert_newest_first(events: list[TimelineEvent]) -> None:
    keys = [e.sort_key for e in events]
    assert keys == sorted(keys, reverse=True)
    assert len({(e.kind, e.row_id) for e in events}) == len(events)


async def test_every_source_appears_newest_first(db: Database, shop: Shop,
                                                 settings: Settings) -> None:
    c = await new_customer(db)
    sale = await store_sale(db, shop, c.id, 2500)
    pickup = await store_sale(db, shop, c.id, 1200)
    now = utcnow()
    async with db.uow() as uow:
        s = uow.session
        # a click & collect handover, a refund, a chat (started and closed), points
        await s.execute(update(Order).where(Order.id == pickup.id).values(
            status="collected", collected_at=now, collected_by="staff:1 Kaisa"))
        s.add(Refund(order_id=sale.id, method="card", status="due", amount_cents=500,
                     created_at=now, updated_at=now))
        s.add(Conversation(visitor_token_hash=uuid.uuid4().hex, customer_id=c.id,
                           status="closed", page="/shop/p/foundation", created_at=now,
                           last_message_at=now, closed_at=now + timedelta(milliseconds=1)))
        s.add(LoyaltyEntry(customer_id=c.id, kind="adjust", points=37, order_id=sale.id,
                           channel="pos-1", reason="test bonus",
                           key=f"adjust:test:{uuid.uuid4().hex}", created_at=now))
        # an after-purchase follow-up sent (docs/follow-ups.md)
        s.add(Followup(dedupe_key=f"test:{uuid.uuid4().hex}", kind="step", customer_id=c.id,
                       order_id=sale.id, due_at=now, status="sent", closed_at=now,
                       subject="Näin käytät seerumia"))
        # the mail provider's report on a mail to her address (docs/mail.md)
        s.add(MailEvent(event_id=f"test-{uuid.uuid4().hex}", kind="soft_bounce",
                        email=str(c.email).lower(), occurred_at=now, received_at=now,
                        consents_withdrawn=0))
        await uow.commit()
    await note(db, c.id, "Suosii sävyä 2N, herkkä iho.", "service")
    [tried] = await make_variants(db, [1990], stock={shop.store1: 1})
    async with db.uow() as uow:  # reserved to try in a store (docs/reserve-to-try.md)
        await reserve_to_try(uow, SYSTEM, TryIn(int(str(tried["id"])), shop.store1,
                                                customer_id=c.id), settings=settings)
        await uow.commit()
    async with db.uow() as uow:
        token = await send_survey(uow, settings, sale.id)
        await uow.commit()
    assert token
    async with db.uow() as uow:
        await answer_survey(uow, token, 9, "Hyvää palvelua")
        await uow.commit()
    async with db.uow() as uow:
        await set_consent(uow, c.id, "marketing_sms", True, "pos")
        await uow.commit()
    other = await new_customer(db, "Anni", consent=False)
    await note(db, other.id, "Toisen asiakkaan muistiinpano", "pos")
    async with db.uow() as uow:
        await merge_customers(uow, MANAGER, c.id, other.id)
        await uow.commit()

    events = await events_of(db, c.id)
    assert_newest_first(events)
    assert set(SOURCES) <= {e.kind for e in events}
    assert events[0].kind == "merge" and events[0].ref_id == other.id
    orders = {e.number: e for e in events if e.kind == "order"}
    assert orders[sale.number].place == "Store Helsinki" and not orders[sale.number].web
    assert orders[sale.number].amount_cents == sale.total_cents
    assert orders[pickup.number].status == "collected"
    [refund] = [e for e in events if e.kind == "refund"]
    assert (refund.amount_cents, refund.status, refund.number) == (500, "refund_due",
                                                                   sale.number)
    [followup] = [e for e in events if e.kind == "followup"]
    assert (followup.status, followup.text, followup.number) == (
        "sent", "Näin käytät seerumia", sale.number)
    [nps] = [e for e in events if e.kind == "nps"]
    assert (nps.score, nps.text, nps.number) == (9, "Hyvää palvelua", sale.number)
    notes = [e.text for e in events if e.kind == "note"]
    # the merged customer's note moved with the merge: both histories are there
    assert notes == ["Toisen asiakkaan muistiinpano", "Suosii sävyä 2N, herkkä iho."]
    consents = [(e.status, e.granted) for e in events if e.kind == "consent"]
    assert ("marketing_sms", True) in consents and ("marketing_email", True) in consents
    # (points earned by the sales themselves may be there too, if loyalty earns them)
    [points] = [e for e in events if e.kind == "loyalty" and e.text == "test bonus"]
    assert (points.status, points.points, points.number) == ("adjust", 37, sale.number)
    closed = next(i for i, e in enumerate(events) if e.kind == "chat_closed")
    started = next(i for i, e in enumerate(events) if e.kind == "chat_started")
    assert closed < started

    # the merged customer's old id opens the kept customer's timeline
    assert await events_of(db, other.id) == events


async def test_limit_and_paging_by_cursor_with_ties(db: Database, shop: Shop) -> None:
    c = await new_customer(db, consent=False)
    same = utcnow() - timedelta(hours=1)
    async with db.uow() as uow:
        for i in range(12):  # notes and points at one instant: the cursor must split ties
            uow.session.add(CustomerNote(customer_id=c.id, body=f"note {i}", author="t",
                                         channel="pos", created_at=same))
            uow.session.add(LoyaltyEntry(customer_id=c.id, kind="adjust", points=i + 1,
                                         key=f"adj:{uuid.uuid4().hex}", created_at=same))
        await uow.commit()
    for i in range(5):
        await note(db, c.id, f"later {i}")
    full = await events_of(db, c.id, limit=500)
    assert len(full) == 12 + 12 + 5 + 2  # + the two consents asked at creation
    assert_newest_first(full)
    assert [e.text for e in full[:5]] == [f"later {i}" for i in reversed(range(5))]
    assert len(await events_of(db, c.id, limit=3)) == 3

    pages: list[TimelineEvent] = []
    before: str | None = None
    while True:
        page = await events_of(db, c.id, limit=7, before=before)
        pages += page
        if len(page) < 7:
            break
        before = page[-1].cursor
    assert pages == full

    for bad in (0, 501):
        with pytest.raises(ValidationFailed) as exc:
            await events_of(db, c.id, limit=bad)
        assert exc.value.field == "limit"
    with pytest.raises(ValidationFailed) as exc:
        await events_of(db, c.id, before="yesterday")
    assert (exc.value.code, exc.value.field) == ("invalid_cursor", "before")


async def test_who_may_see_a_timeline(db: Database) -> None:
    c = await new_customer(db, consent=False)
    async with db.reader() as s:
        with pytest.raises(Forbidden):
            await timeline(s, NOBODY, c.id)
        finance = Actor(label="f", name="F", grants=(RoleGrant("finance", None),))
        assert [e.kind for e in await timeline(s, finance, c.id)] == ["consent", "consent"]
        with pytest.raises(NotFound):
            await timeline(s, CASHIER, 2**61)


# --- pages ------------------------------------------------------------------------------



async def test_fragment_and_back_office_page(web: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    c = await new_customer(db, consent=False)
    for i in range(55):
        await note(db, c.id, f"muistiinpano {i}")
    r = await web.get(f"/timeline/{c.id}")
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")

    await login(web, shop, "cashier1")
    r = await web.get(f"/timeline/{c.id}", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'data-testid="timeline"' in r.text and "muistiinpano 54" in r.text
    assert r.text.count('data-testid="timeline-event"') == 50
    more = re.search(r'hx-get="(/timeline/\d+\?before=[^"]+)"', r.text)
    assert more
    older = await web.get(html.unescape(more[1]), headers={"HX-Request": "true"})
    assert older.status_code == 200
    assert older.text.count('data-testid="timeline-event"') == 7  # 5 notes + 2 consents
    assert 'data-testid="timeline"' not in older.text and "muistiinpano 0" in older.text
    assert (await web.get(f"/timeline/{c.id}?before=nonsense")).status_code == 422
    assert (await web.get(f"/timeline/{2**61}")).status_code == 404
    # a cashier has no back office rights for merges, but may read customers
    page = await web.get(f"/backoffice/customers/{c.id}")
    assert page.status_code == 200
    assert "muistiinpano 54" in page.text and "Virtanen" in page.text

    # the till's customer card loads the timeline into its container
    card = await web.get(f"/pos/store-1/customers/{c.id}", headers={"HX-Request": "true"})
    assert card.status_code == 200
    assert f'hx-get="/timeline/{c.id}"' in card.text
    assert 'data-testid="timeline-container"' in card.text


# --- chats: what was asked, and the whole chat read-only ----------------------------------

QUESTION = ("Hei! Sopiiko Silk-meikkivoiteen sävy 2N herkälle iholle?\n"
            "Iholla on taipumusta punoitukseen ja kuivuuteen, ja aiempi voide kirveli "
            "poskia. Onko voiteessa hajusteita tai alkoholia? Kiitos!")


async def chat(db: Database, customer_id: int | None, lines: list[tuple[str, str]], *,
               page: str = "/shop/p/silk-foundation", offline: bool = False,
               staff_id: int | None = None) -> int:
    """A conversation with its messages (sender, body), oldest first."""
    now = utcnow() - timedelta(days=1)  # yesterday's chat
    async with db.uow() as uow:
        conv = Conversation(visitor_token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
                            customer_id=customer_id, status="closed", page=page,
                            name="Anna", offline_message=offline, created_at=now,
                            last_message_at=now, closed_at=now + timedelta(minutes=9))
        uow.session.add(conv)
        await uow.session.flush()
        for i, (sender, body) in enumerate(lines):
            uow.session.add(ChatMessage(
                conversation_id=conv.id, sender=sender, body=body,
                staff_id=staff_id if sender == "agent" else None,
                created_at=now + timedelta(minutes=i)))
        await uow.commit()
        return conv.id


async def test_a_chat_says_what_was_asked_and_how_many_messages(db: Database) -> None:
    c = await new_customer(db, consent=False)
    conv = await chat(db, c.id, [("system", "Keskustelu alkoi"), ("visitor", QUESTION),
                                 ("agent", "Sopii hyvin: 2N on hajusteeton."),
                                 ("visitor", "Kiitos, tulen huomenna kauppaan.")])
    offline = await chat(db, c.id, [("visitor", "Soittakaa minulle.")], page="",
                         offline=True)
    events = {e.ref_id: e for e in await events_of(db, c.id) if e.kind == "chat_started"}
    asked = events[conv]
    flat = " ".join(QUESTION.split())
    assert len(QUESTION) > PREVIEW
    assert asked.text == flat[:PREVIEW - 1].rstrip() + "…" and len(asked.text) <= PREVIEW
    assert asked.count == 3  # the system's line is not a message
    assert (asked.place, asked.channel) == ("/shop/p/silk-foundation", "chat")
    left = events[offline]
    assert (left.text, left.count, left.place, left.channel) == (
        "Soittakaa minulle.", 1, "", "offline")


async def test_a_cashier_opens_a_customers_chat_read_only(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    c = await new_customer(db, consent=False)
    async with db.reader() as s:
        agent = await actor_for_token(s, shop.tokens["service"])
    assert agent.staff_id is not None
    conv = await chat(db, c.id, [("visitor", QUESTION),
                                 ("agent", "Sopii hyvin: 2N on hajusteeton.")],
                      staff_id=agent.staff_id)
    other = await new_customer(db, "Anni", consent=False)
    others_chat = await chat(db, other.id, [("visitor", "Toisen asiakkaan kysymys")])
    url = f"/timeline/{c.id}/chats/{conv}"
    assert (await web.get(url)).status_code == 303  # log in first

    await login(web, shop, "cashier1")
    r = await web.get(f"/timeline/{c.id}", headers={"HX-Request": "true"})
    assert r.status_code == 200
    item = re.search(r'data-kind="chat_started".*?</li>', r.text, re.S)
    assert item, r.text
    assert "“Hei! Sopiiko Silk-meikkivoiteen sävy 2N herkälle iholle? Iholla" in item[0]
    assert "2 viestiä" in item[0] and "/shop/p/silk-foundation" in item[0]
    assert f'hx-get="{url}"' in item[0] and "Näytä viestit" in item[0]

    r = await web.get(url, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    bodies = [html.unescape(b) for b in re.findall(
        r'data-testid="timeline-message-body">(.*?)</p>', r.text, re.S)]
    assert bodies == [QUESTION, "Sopii hyvin: 2N on hajusteeton."]
    senders = re.findall(r'data-sender="(\w+)"', r.text)
    assert senders == ["visitor", "agent"]
    assert "Anna ·" in r.text and f"{agent.name} ·" in r.text
    assert "Toisen asiakkaan" not in r.text

    # another customer's chat, or none at all: 404, also when the ids are mixed up
    assert (await web.get(f"/timeline/{c.id}/chats/{others_chat}")).status_code == 404
    assert (await web.get(f"/timeline/{c.id}/chats/{2**61}")).status_code == 404
    assert (await web.get(f"/timeline/{c.id}/chats/0")).status_code == 404
    # after a merge the old id reads the kept customer's chats (both histories)
    async with db.uow() as uow:
        await merge_customers(uow, MANAGER, c.id, other.id)
        await uow.commit()
    r = await web.get(f"/timeline/{other.id}/chats/{others_chat}")
    assert r.status_code == 200 and "Toisen asiakkaan kysymys" in r.text
    assert (await web.get(f"/timeline/{other.id}/chats/{conv}")).status_code == 200

    async with db.reader() as s:
        with pytest.raises(Forbidden):
            await chat_transcript(s, NOBODY, c.id, conv)
        finance = Actor(label="f", name="F", grants=(RoleGrant("finance", None),))
        read = await chat_transcript(s, finance, c.id, conv)
    assert [(m.sender, m.author) for m in read.messages] == [("visitor", ""),
                                                             ("agent", agent.name)]
    assert (read.customer_id, read.earlier) == (c.id, False)


async def test_zero_point_bookkeeping_is_not_on_the_timeline(db: Database) -> None:
    c = await new_customer(db, consent=False)
    now = utcnow()
    async with db.uow() as uow:
        for points, key in ((0, "used-up"), (-5, "lapsed")):  # as expire_due writes them
            uow.session.add(LoyaltyEntry(customer_id=c.id, kind="expire", points=points,
                                         reason="expired", created_at=now,
                                         key=f"expire:{key}:{uuid.uuid4().hex}"))
        await uow.commit()
    shown = [(e.status, e.points) for e in await events_of(db, c.id) if e.kind == "loyalty"]
    assert shown == [("expire", -5)]


# --- every change the timeline shows is announced with the customer -----------------------

SIM = "http://paytrail.test"
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)  # no other test's order was due before this


@asynccontextmanager
async def paytrail_simulator() -> AsyncIterator[tuple[PaytrailClient, httpx.AsyncClient]]:
    """Paytrail's simulator, in-process: the client the shop uses, and the shopper's."""
    app = create_simulator({TEST_MERCHANT[0]: TEST_MERCHANT[1]}, SIM)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=SIM) as http:
        yield PaytrailClient(PaytrailConfig(*TEST_MERCHANT, SIM), http), http


@pytest.fixture
async def paytrail() -> AsyncIterator[tuple[PaytrailClient, httpx.AsyncClient]]:
    async with paytrail_simulator() as sim:
        yield sim


async def web_order(db: Database, shop: Shop, settings: Settings, customer_id: int
                    ) -> OrderOut:
    [v] = await make_variants(db, [3490], stock={shop.warehouse: 2})
    order, _ = await place_web_order(db, settings, cmd(int(str(v["id"]))),
                                     customer_id=customer_id, key=f"tl-{uuid.uuid4().hex}")
    return order


async def pay_at_paytrail(db: Database, settings: Settings,
                          paytrail: tuple[PaytrailClient, httpx.AsyncClient],
                          order: OrderOut) -> tuple[str, str]:
    """The shopper pays, but the shop hears of it only when told (stamp, transaction)."""
    client, http = paytrail
    href = await start_payment(db, client, settings, order)
    assert (await http.post(href.removeprefix(SIM) + "/success?callbacks=0")
            ).status_code == 303
    async with db.reader() as s:
        attempt = (await s.scalars(select(PaytrailPayment).where(
            PaytrailPayment.order_id == order.id))).one()
    return attempt.stamp, str(attempt.transaction_id)


async def cancel_unpaid(db: Database, order: OrderOut) -> None:
    """The unpaid-order sweep cancels this order (and only this one)."""
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order.id)
                                  .values(payment_due_at=LONG_AGO))
        assert await cancel_unpaid_orders(uow, now=LONG_AGO + timedelta(seconds=1)) == 1
        await uow.commit()


async def paid_too_late(db: Database, settings: Settings, order: OrderOut,
                        attempt: tuple[str, str]) -> None:
    out = await record_payment_status(db, settings, *attempt, "ok", order.total_cents)
    assert out.order_status == "cancelled" and out.refund_cents == order.total_cents


async def refund(db: Database, settings: Settings,
                 paytrail: tuple[PaytrailClient, httpx.AsyncClient]) -> None:
    # (other tests leave refunds Paytrail never heard of: all are tried)
    assert await send_due_refunds(db, paytrail[0], settings, limit=10_000) >= 1


async def last_event_id(db: Database) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(func.max(OutboxEvent.id))) or 0)


async def announced(db: Database, after: int, customer_id: int) -> list[tuple[str, Any]]:
    """(topic, payload) of the events since `after` that name the customer."""
    async with db.reader() as s:
        rows = (await s.execute(select(OutboxEvent.topic, OutboxEvent.payload)
                                .where(OutboxEvent.id > after)
                                .order_by(OutboxEvent.id))).all()
    return [(str(t), p) for t, p in rows if p.get("customer_id") == customer_id]


async def test_changes_on_the_timeline_are_announced_with_the_customer(
        db: Database, shop: Shop, settings: Settings,
        paytrail: tuple[PaytrailClient, httpx.AsyncClient]) -> None:
    c = await new_customer(db, consent=False)
    start = await last_event_id(db)
    async with db.uow() as uow:  # the account page in the webshop
        assert await set_consent(uow, c.id, "marketing_sms", True, "web")
        assert not await set_consent(uow, c.id, "marketing_sms", True, "web")  # unchanged
        await uow.commit()
    consent = await announced(db, start, c.id)
    assert consent == [("customer.updated", {"customer_id": c.id, "consent": "marketing_sms",
                                             "granted": True})]

    order = await web_order(db, shop, settings, c.id)
    attempt = await pay_at_paytrail(db, settings, paytrail, order)
    start = await last_event_id(db)
    await cancel_unpaid(db, order)
    await paid_too_late(db, settings, order, attempt)
    await refund(db, settings, paytrail)
    got = [(t, p) for t, p in await announced(db, start, c.id)
           if p.get("order_id") == order.id]
    assert [t for t, _ in got] == ["order.cancelled", "refund.created", "refund.ok"]
    assert {t for t, _ in got} <= TOPICS  # the timeline's stream takes them
    assert [p.get("amount_cents") for t, p in got if t.startswith("refund.")] == [
        order.total_cents, order.total_cents]
    # (the other writers the timeline shows — orders, handovers, notes, points, NPS,
    # merges — already name the customer; the browser test sees them arrive)

