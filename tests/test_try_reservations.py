"""Reserve to try at service level: the hold, its end, the limit, selling it at the till,
releasing it, the no-show sweep with its note, and races on the last unit."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, OutOfStock
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.inventory.models import StockReservation
from saumaton.inventory.services import Move, apply_moves, availability, verify_ledger
from saumaton.mail.models import OutgoingMail
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from saumaton.tryon import services as tryon
from saumaton.tryon.services import TryIn, TryInputInvalid, TryStatus, hold_until
from tests.support import Shop, make_variants, open_drawer, staff_actor

SETTINGS = Settings(try_hold_days=1, try_close_hour=20, try_limit_per_customer=3)


def phone() -> str:
    return f"040{random.randrange(10**6, 10**7)}"


def email() -> str:
    return f"try-{uuid.uuid4().hex[:10]}@example.com"


async def reserve(db: Database, variant_id: int, location_id: int, *, name: str = "Maija",
                  ph: str = "", em: str = "", settings: Settings = SETTINGS,
                  now: datetime | None = None) -> tryon.TryOut:
    async with db.uow() as uow:
        out = await tryon.reserve(uow, SYSTEM, TryIn(variant_id, location_id, name=name,
                                                     phone=ph, email=em, language="en"),
                                  settings=settings, now=now)
        await uow.commit()
    return out


async def level(db: Database, variant_id: int, location_id: int) -> tuple[int, int]:
    async with db.reader() as s:
        a = (await availability(s, [variant_id]))[variant_id]
        assert await verify_ledger(s) == []
    loc = a.at(location_id)
    assert loc is not None
    return loc.on_hand, loc.reserved



def test_hold_ends_at_closing_time_of_the_next_day() -> None:
    # 15:00 Helsinki time on a Monday (UTC+2 in winter)
    now = datetime(2026, 12, 7, 13, 0, tzinfo=UTC)
    assert hold_until(now, SETTINGS) == datetime(2026, 12, 8, 18, 0, tzinfo=UTC)
    same_day = Settings(try_hold_days=0, try_close_hour=20)
    assert hold_until(now, same_day) == datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
    # reserved after closing with a same-day hold: until the next day's closing
    late = datetime(2026, 12, 7, 19, 0, tzinfo=UTC)
    assert hold_until(late, same_day) == datetime(2026, 12, 8, 18, 0, tzinfo=UTC)


async def test_reserve_holds_one_unit_counted_everywhere(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 2})
    vid = int(v["id"])  # type: ignore[call-overload]
    r = await reserve(db, vid, shop.store1, ph=phone())
    assert r.status == "active" and r.code.startswith("KT") and len(r.code) == 8
    assert await level(db, vid, shop.store1) == (2, 1)
    async with db.reader() as s:
        hold = await s.get(StockReservation, await _hold_id(db, r.id))
        assert hold is not None and hold.reference == f"try:{r.code}"
        assert hold.status == "active" and hold.expires_at == r.expires_at
        topics = (await s.scalars(select(OutboxEvent.topic).where(
            OutboxEvent.payload["code"].as_string() == r.code))).all()
        assert "try.reserved" in topics
        audit = (await s.scalars(select(AuditEntry.action).where(
            AuditEntry.subject_type == "try_reservation",
            AuditEntry.subject_id == r.id))).all()
        assert list(audit) == ["try.reserved"]


async def _hold_id(db: Database, try_id: int) -> int:
    from saumaton.tryon.models import TryReservation

    async with db.reader() as s:
        return int(await s.scalar(select(TryReservation.stock_reservation_id).where(
            TryReservation.id == try_id)) or 0)


async def _status(db: Database, try_id: int) -> str:
    from saumaton.tryon.models import TryReservation

    async with db.reader() as s:
        return str(await s.scalar(select(TryReservation.status).where(
            TryReservation.id == try_id)))


async def test_bad_input_reports_every_field_and_changes_nothing(db: Database,
                                                                  shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    with pytest.raises(TryInputInvalid) as err:
        await reserve(db, vid, shop.store1, name="", ph="12", em="not-an-address")
    assert {(e.field, e.code) for e in err.value.errors} == {
        ("name", "name_required"), ("phone", "invalid_phone"), ("email", "invalid_email")}
    with pytest.raises(TryInputInvalid) as err:
        await reserve(db, vid, shop.warehouse, ph=phone())
    assert err.value.errors[0].code == "invalid_store"
    assert await level(db, vid, shop.store1) == (1, 0)


async def test_limit_per_customer(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.store1: 10})
    vid = int(v["id"])  # type: ignore[call-overload]
    ph = phone()
    made = [await reserve(db, vid, shop.store1, ph=ph) for _ in range(3)]
    with pytest.raises(Conflict) as err:
        await reserve(db, vid, shop.store1, ph=ph.replace("040", "+35840"))
    assert err.value.code == "try_limit" and err.value.status == 409
    assert await level(db, vid, shop.store1) == (10, 3)
    async with db.uow() as uow:
        await tryon.release(uow, SYSTEM, made[0].id, location_id=shop.store1)
        await uow.commit()
    await reserve(db, vid, shop.store1, ph=ph)  # a free slot again


async def test_the_last_unit_sold_meanwhile_is_a_clear_conflict(db: Database,
                                                                shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    async with db.uow() as uow:
        await apply_moves(uow, SYSTEM, [Move(vid, shop.store1, -1, "sale")])
        await uow.commit()
    with pytest.raises(OutOfStock) as err:
        await reserve(db, vid, shop.store1, ph=phone())
    assert err.value.code == "try_unavailable" and err.value.status == 409
    assert await level(db, vid, shop.store1) == (0, 0)


async def test_two_shoppers_race_for_the_last_unit_one_wins(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    results = await asyncio.gather(
        *(reserve(db, vid, shop.store1, ph=phone()) for _ in range(4)),
        return_exceptions=True)
    won = [r for r in results if isinstance(r, tryon.TryOut)]
    lost = [r for r in results if isinstance(r, OutOfStock)]
    assert len(won) == 1 and len(lost) == 3, results
    assert all(e.code == "try_unavailable" for e in lost)
    assert await level(db, vid, shop.store1) == (1, 1)


async def test_till_sale_consumes_the_held_unit_once(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 2})
    vid = int(v["id"])  # type: ignore[call-overload]
    r = await reserve(db, vid, shop.store1, name="Maija Meikäläinen", ph=phone())
    async with db.reader() as s:
        assert [x.id for x in await tryon.find(s, shop.store1, r.code.lower())] == [r.id]
        assert r.id in [x.id for x in await tryon.find(s, shop.store1, "meikäl")]
        assert r.id in [x.id for x in await tryon.find(s, shop.store1, r.phone)]
        assert await tryon.find(s, shop.store2, r.code) == []  # another store's list
        assert r.id in [x.id for x in await tryon.store_list(s, shop.store1)]
    cashier = await staff_actor(db, shop, "cashier1")
    sid = await open_drawer(db, shop.store1)
    order, _ = await sell(db, cashier, shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, lines=[TillLineIn(variant_id=vid)],
        payments=[TillPaymentIn(method="cash", tendered_cents=2500)], try_ids=[r.id]))
    assert await _status(db, r.id) == "sold"
    assert await level(db, vid, shop.store1) == (1, 0)  # one unit gone, no hold left
    async with db.reader() as s:
        sold = await tryon.get_by_code(s, r.code)
        assert sold is not None and sold.order_id == order.id
    # a second sale of the same reservation is refused and changes nothing
    with pytest.raises(Conflict) as err:
        await sell(db, cashier, shop.store1, TillSaleIn(
            key=uuid.uuid4().hex, session_id=sid, lines=[TillLineIn(variant_id=vid)],
            payments=[TillPaymentIn(method="cash", tendered_cents=2500)], try_ids=[r.id]))
    assert err.value.code == "try_closed"
    assert await level(db, vid, shop.store1) == (1, 0)


async def test_release_gives_the_unit_back(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    r = await reserve(db, vid, shop.store1, em=email())
    cashier2 = await staff_actor(db, shop, "cashier2")
    async with db.uow() as uow:  # not her store's reservation
        with pytest.raises(Exception) as err:
            await tryon.release(uow, cashier2, r.id, location_id=shop.store1)
        assert getattr(err.value, "code", "") == "forbidden"
    async with db.uow() as uow:
        out = await tryon.release(uow, await staff_actor(db, shop, "cashier1"), r.id,
                                  location_id=shop.store1)
        await uow.commit()
    assert out.status == TryStatus.RELEASED
    assert await level(db, vid, shop.store1) == (1, 0)
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await tryon.release(uow, SYSTEM, r.id)


async def test_no_show_is_released_with_a_friendly_note(db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [2490], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    em = email()
    past = utcnow() - timedelta(days=3)
    r = await reserve(db, vid, shop.store1, em=em, now=past)
    assert r.expires_at < utcnow()
    async with db.uow() as uow:
        done = await tryon.expire_due(uow, SETTINGS)
        await uow.commit()
    assert r.id in [d.id for d in done]
    assert await _status(db, r.id) == "expired"
    assert await level(db, vid, shop.store1) == (1, 0)
    async with db.reader() as s:
        mails = (await s.scalars(select(OutgoingMail).where(OutgoingMail.to_addr == em)
                                 .order_by(OutgoingMail.id))).all()
    assert [m.kind for m in mails] == ["try_reserved", "try_released"]
    assert r.code in mails[0].body_text and "Show the code at the till" in mails[0].body_text
    mail = mails[1]
    assert r.code in mail.body_text
    assert "back on the shelf" in mail.body_text
    async with db.uow() as uow:  # a second sweep finds nothing more of hers
        assert r.id not in [d.id for d in await tryon.expire_due(uow, SETTINGS)]


async def test_a_signed_in_shoppers_reservation_is_on_her_timeline(db: Database,
                                                                   shop: Shop) -> None:
    from saumaton.customers.timeline import timeline
    from tests.test_timeline import MANAGER, new_customer

    c = await new_customer(db, "Tiina")
    [v] = await make_variants(db, [2490], stock={shop.store1: 1})
    vid = int(v["id"])  # type: ignore[call-overload]
    async with db.uow() as uow:  # signed in: no contact needed, her name from the register
        r = await tryon.reserve(uow, SYSTEM, TryIn(vid, shop.store1, customer_id=c.id),
                                settings=SETTINGS)
        await uow.commit()
    assert r.name == "Tiina Virtanen"
    async with db.reader() as s:
        [e] = [e for e in await timeline(s, MANAGER, c.id) if e.kind == "try"]
    assert (e.number, e.status, e.place) == (r.code, "active", "Store Helsinki")
    async with db.uow() as uow:
        await tryon.release(uow, SYSTEM, r.id)
        await uow.commit()
    async with db.reader() as s:
        [e] = [e for e in await timeline(s, MANAGER, c.id) if e.kind == "try"]
    assert e.status == "released"


async def test_the_funnel_counts_web_visits_that_ended_in_the_store(db: Database,
                                                                    shop: Shop) -> None:
    from saumaton.reports.funnel_report import funnel_report
    from saumaton.reports.period import Period

    today = utcnow().date()
    period = Period(today - timedelta(days=1), today + timedelta(days=1))

    async def figures() -> dict[str, int]:
        async with db.reader() as s:
            return (await funnel_report(s, SYSTEM, period, "Europe/Helsinki")).web_to_store

    before = await figures()
    [v] = await make_variants(db, [990], stock={shop.store1: 2})
    vid = int(v["id"])  # type: ignore[call-overload]
    r = await reserve(db, vid, shop.store1, ph=phone())
    await reserve(db, vid, shop.store1, ph=phone())
    async with db.uow() as uow:
        await tryon.release(uow, SYSTEM, r.id)
        await uow.commit()
    after = await figures()
    assert after["active"] - before["active"] == 1
    assert after["released"] - before["released"] == 1


async def test_one_shopper_racing_herself_stays_within_the_limit(db: Database,
                                                                 shop: Shop) -> None:
    [v] = await make_variants(db, [990], stock={shop.store1: 10})
    vid = int(v["id"])  # type: ignore[call-overload]
    em = email()
    results = await asyncio.gather(*(reserve(db, vid, shop.store1, em=em) for _ in range(5)),
                                   return_exceptions=True)
    won = [r for r in results if isinstance(r, tryon.TryOut)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(won) == 3 and len(refused) == 2, results
    assert all(e.code == "try_limit" for e in refused)
    assert await level(db, vid, shop.store1) == (10, 3)
