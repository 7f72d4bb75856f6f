"""NPS, the funnel per device and the loyalty figures of a known month (both databases,
a database of their own): every figure checked exactly; days are Helsinki days."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select
from starlette.requests import Request

from saumaton.analytics.buffer import AnalyticsBuffer
from saumaton.analytics.device import device_of
from saumaton.analytics.models import AnalyticsEvent
from saumaton.config import Settings
from saumaton.core.actor import Actor, RoleGrant
from saumaton.core.errors import Forbidden
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.uow import Database
from saumaton.loyalty.models import LoyaltyEntry
from saumaton.reports.funnel_report import funnel_report
from saumaton.reports.loyalty_report import NEW, loyalty_report
from saumaton.reports.nps_report import nps_report
from saumaton.reports.period import Grain, Period
from saumaton.service.models import NpsSurvey
from saumaton.web.analytics import track
from tests.report_orders import add_order, channel_ids, new_customer
from tests.support import Shop, build_shop, drop_pg_database, fresh_database, make_variants

OWNER = Actor(label="staff:o", name="Olli Owner", grants=(RoleGrant("owner", None),))
SEPTEMBER = Period.month(2026, 9)
TZ = "Europe/Helsinki"


def utc(y: int, m: int, d: int, h: int = 12, minute: int = 0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC)


@dataclass
class World:
    db: Database
    shop: Shop
    ch: dict[str, int]
    variant: int
    settings: Settings
    members: dict[str, int]


@pytest.fixture(scope="module")
async def world(backend: str, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("figures")
    url = await fresh_database(backend, tmp)
    db = Database(url)
    try:
        shop = await build_shop(db)
        [v] = await make_variants(db, [1000])
        w = World(db, shop, await channel_ids(db), int(str(v["id"])),
                  Settings(database_url=url, var_dir=tmp / "var",
                           secret_key="test-secret-key-0123456789"), {})
        await build_nps(w)
        await build_funnel(w)
        await build_loyalty(w)
        yield w
    finally:
        await db.dispose()
        if backend == "postgresql":
            await drop_pg_database(url)


# --- NPS ------------------------------------------------------------------------------


async def build_nps(w: World) -> None:
    customer = await new_customer(w.db, "Nina")
    rows = [  # channel, sent, answered, score, comment
        ("web", utc(2026, 9, 3), utc(2026, 9, 4), 10, ""),
        ("web", utc(2026, 9, 5), utc(2026, 9, 20), 10, "Loistavaa"),
        ("web", utc(2026, 9, 6), utc(2026, 9, 7), 9, ""),
        ("web", utc(2026, 9, 8), utc(2026, 9, 25), 3, "Hidas toimitus"),  # newest comment
        ("web", utc(2026, 9, 10), None, None, ""),  # sent, never answered
        ("pos-1", utc(2026, 8, 30), utc(2026, 9, 2), 10, ""),  # sent in August
        ("pos-1", utc(2026, 9, 11), utc(2026, 9, 12), 6, ""),
        # Answered on 1 October (Helsinki), 00:30: not September's answer
        ("pos-1", utc(2026, 9, 30), utc(2026, 9, 30, 21, 30), 0, "Ei hyvä"),
    ]
    async with w.db.uow() as uow:
        for channel, sent, answered, score, comment in rows:
            order_id, _ = await add_order(w.db, channel_id=w.ch[channel], customer_id=customer,
                                          at=sent, lines=[(w.variant, 1000)])
            uow.session.add(NpsSurvey(
                customer_id=customer, order_id=order_id,
                token_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(), sent_at=sent,
                score=score, comment=comment, answered_at=answered))
        await uow.commit()


async def test_nps_per_channel_over_time_with_comments(world: World) -> None:
    w = world
    async with w.db.reader() as s:
        r = await nps_report(s, OWNER, SEPTEMBER, Grain.MONTH, TZ)
    web, pos1 = r.by_channel[w.ch["web"]], r.by_channel[w.ch["pos-1"]]
    assert (web.responses, web.promoters, web.passives, web.detractors) == (4, 3, 0, 1)
    assert web.nps == 50.0  # (3 - 1) / 4
    assert (web.sent, web.answered_of_sent, web.response_rate) == (5, 4, 0.8)
    assert (pos1.responses, pos1.promoters, pos1.detractors, pos1.nps) == (2, 1, 1, 0.0)
    assert (pos1.sent, pos1.answered_of_sent) == (2, 2)  # the 1 October answer too
    t = r.total
    assert (t.responses, t.promoters, t.passives, t.detractors) == (6, 4, 0, 2)
    assert t.nps == pytest.approx(100 * 2 / 6)
    assert (t.sent, t.answered_of_sent) == (7, 6)
    assert r.buckets == [date(2026, 9, 1)]
    assert r.over_time[date(2026, 9, 1)][None].responses == 6
    assert [(c.comment, c.score, c.channel.code) for c in r.comments] == [
        ("Hidas toimitus", 3, "web"), ("Loistavaa", 10, "web")]
    async with w.db.reader() as s:
        weekly = await nps_report(s, OWNER, SEPTEMBER, Grain.WEEK, TZ)
    assert weekly.buckets[0] == date(2026, 8, 31) and len(weekly.buckets) == 5
    # 2.9 and 4.9 in the week of 31.8; 7.9 (web) and 12.9 (pos-1) in the week of 7.9
    assert weekly.over_time[date(2026, 8, 31)][None].responses == 2
    week = weekly.over_time[date(2026, 9, 7)]
    assert (week[None].responses, week[w.ch["web"]].responses,
            week[w.ch["pos-1"]].detractors) == (2, 1, 1)


# --- funnel ---------------------------------------------------------------------------


async def build_funnel(w: World) -> None:
    ua_phone = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
    ua_desktop = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
                  "(KHTML, like Gecko) Chrome/120.0 Safari/537.36")
    phone, desktop = device_of(ua_phone), device_of(ua_desktop)
    at = utc(2026, 9, 10, 9)
    events = ([("visit", phone, None)] * 4 + [("product_view", phone, None)] * 3
              + [("add_to_cart", phone, None)] * 2 + [("checkout_started", phone, None)] * 2
              + [("payment_started", phone, 9001), ("order_placed", "unknown", 9001)]
              + [("visit", desktop, None)] * 2 + [("product_view", desktop, None)] * 2
              + [("add_to_cart", desktop, None), ("checkout_started", desktop, None)])
    async with w.db.uow() as uow:
        uow.session.add_all([AnalyticsEvent(at=at, kind=k, channel="web", device=d,
                                            order_id=o, path="", data={})
                             for k, d, o in events])
        # 22.30 UTC on 10.9 is 01.30 on 11.9 in Helsinki; 30.9 22.00 UTC is October.
        uow.session.add_all([
            AnalyticsEvent(at=utc(2026, 9, 10, 22, 30), kind="visit", channel="web",
                           device=desktop, path="", data={}),
            AnalyticsEvent(at=utc(2026, 9, 30, 22), kind="visit", channel="web",
                           device=desktop, path="", data={})])
        await uow.commit()


def test_device_of_user_agents() -> None:
    assert device_of("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                     "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36") == "mobile"
    assert device_of("Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 "
                     "(KHTML, like Gecko) Chrome/120.0 Safari/537.36") == "tablet"
    assert device_of("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)") == "tablet"
    assert device_of("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Safari/605") == "desktop"
    assert device_of("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0") == "desktop"
    assert device_of("Googlebot/2.1 (+http://www.google.com/bot.html)") == "unknown"
    assert device_of("") == device_of(None) == "unknown"


async def test_funnel_per_day_channel_and_device(world: World) -> None:
    async with world.db.reader() as s:
        r = await funnel_report(s, OWNER, SEPTEMBER, TZ)
    mobile = r.rows[(date(2026, 9, 10), "web", "mobile")]
    assert mobile.events == {"visit": 4, "product_view": 3, "add_to_cart": 2,
                             "checkout_started": 2, "payment_started": 1, "order_placed": 1}
    assert mobile.step_conversion("add_to_cart") == pytest.approx(2 / 3)
    assert mobile.step_conversion("visit") is None
    assert mobile.conversion == 0.25
    desktop = r.rows[(date(2026, 9, 10), "web", "desktop")]
    assert desktop.events["visit"] == 2 and desktop.step_conversion("order_placed") is None
    assert r.rows[(date(2026, 9, 11), "web", "desktop")].events["visit"] == 1
    assert list(r.by_device) == ["mobile", "desktop"]
    assert r.by_device["desktop"].events["visit"] == 3
    assert r.total.events["visit"] == 7 and r.total.events["order_placed"] == 1
    assert [(d, c, dev) for d, c, dev, _ in r.sorted_rows()] == [
        (date(2026, 9, 10), "web", "mobile"), (date(2026, 9, 10), "web", "desktop"),
        (date(2026, 9, 11), "web", "desktop")]


# --- loyalty --------------------------------------------------------------------------


async def member(w: World, name: str, created: datetime, *, card: bool = True,
                 merged_into: int | None = None) -> int:
    cid = await new_customer(w.db, name, at=created)
    async with w.db.uow() as uow:
        if card:
            uow.session.add(CustomerIdentity(customer_id=cid, kind="card",
                                             value=f"CARD-{uuid.uuid4().hex[:10]}"))
        if merged_into is not None:
            c = await uow.session.get(Customer, cid)
            assert c is not None
            c.merged_into_id = merged_into
        await uow.commit()
    w.members[name] = cid
    return cid


async def build_loyalty(w: World) -> None:
    web, v = w.ch["web"], w.variant
    old = utc(2025, 1, 1)
    m1 = await member(w, "M1", old)
    m2 = await member(w, "M2", old)
    m3 = await member(w, "M3", utc(2026, 9, 5))
    m4 = await member(w, "M4", old)
    await member(w, "X", old, merged_into=m4)
    n = await member(w, "N", old, card=False)
    for who, at, cents in ((m1, utc(2026, 1, 15), 35000), (m1, utc(2026, 9, 10), 50000),
                           (m2, utc(2025, 9, 15), 40000), (m3, utc(2026, 9, 6), 20000),
                           (n, utc(2026, 9, 6), 100000)):
        await add_order(w.db, channel_id=web, customer_id=who, at=at, lines=[(v, cents)],
                        status="shipped")
    entries = [("earn", 500, "pos"), ("earn", 200, "web"), ("redeem", -300, "pos"),
               ("refund", 100, "pos"), ("expire", -50, ""), ("adjust", 25, ""),
               ("reverse", -40, "web")]
    async with w.db.uow() as uow:
        uow.session.add_all([LoyaltyEntry(customer_id=m1, kind=k, points=p, channel=c,
                                          key=f"test:{uuid.uuid4().hex}",
                                          created_at=utc(2026, 9, 12))
                             for k, p, c in entries])
        uow.session.add(LoyaltyEntry(customer_id=m1, kind="earn", points=999, channel="web",
                                     key=f"test:{uuid.uuid4().hex}",
                                     created_at=utc(2026, 8, 12)))
        await uow.commit()


async def test_loyalty_members_points_and_tier_movement(world: World) -> None:
    w = world
    async with w.db.reader() as s:
        r = await loyalty_report(s, OWNER, SEPTEMBER, w.settings)
    assert (r.members, r.new_members) == (4, 1)
    assert r.points == {"earn": 700, "redeem": -300, "refund": 100, "reverse": -40,
                        "expire": -50, "adjust": 25}
    assert (r.issued, r.used, r.expired, r.net_change) == (700, 200, 50, 435)
    assert r.earned_by_channel == {"pos": 500, "web": 200}
    assert r.start_tiers == {"member": 1, "silver": 2, "gold": 0}
    assert r.end_tiers == {"member": 3, "silver": 0, "gold": 1}
    assert (r.up, r.down, r.same) == (1, 1, 1)
    assert r.moves == {("silver", "gold"): 1, ("silver", "member"): 1,
                       (NEW, "member"): 1, ("member", "member"): 1}


async def test_figures_are_chain_wide(world: World) -> None:
    manager = Actor(label="staff:m", name="M", grants=(RoleGrant("manager", world.shop.store1),))
    async with world.db.reader() as s:
        with pytest.raises(Forbidden):
            await nps_report(s, manager, SEPTEMBER, Grain.MONTH, TZ)
        with pytest.raises(Forbidden):
            await funnel_report(s, manager, SEPTEMBER, TZ)
        with pytest.raises(Forbidden):
            await loyalty_report(s, manager, SEPTEMBER, world.settings)


async def test_track_records_the_device_of_the_request(world: World) -> None:
    """Through the page-side recorder and its buffer into the table: the User-Agent's
    device is stored, the header itself is not."""
    buffer = AnalyticsBuffer(world.db)
    path = f"/shop/device-{uuid.uuid4().hex[:8]}"
    agents = {"mobile": b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148 Safari",
              "desktop": b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
              "unknown": b""}
    for agent in agents.values():
        scope: dict[str, Any] = {
            "type": "http", "method": "GET", "path": path, "query_string": b"",
            "root_path": "", "scheme": "http", "server": ("test", 80),
            "headers": [(b"user-agent", agent)] if agent else [],
            "app": SimpleNamespace(state=SimpleNamespace(analytics=buffer))}
        track(Request(scope), "product_view")
    assert await buffer.flush() == 3
    async with world.db.reader() as s:
        found = (await s.scalars(select(AnalyticsEvent).where(AnalyticsEvent.path == path)
                                 .order_by(AnalyticsEvent.id))).all()
    assert [e.device for e in found] == list(agents)
    assert all("Mozilla" not in str(e.data) for e in found)
