"""Price changes (both databases): now, scheduled, cancelled; the history per variant;
the job applies a due change exactly once even with two job loops at once; campaigns
are audited when created, edited and ended; the price-parity report."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import Variant
from saumaton.core.actor import SYSTEM, Actor
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, ValidationFailed
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.locations.models import Channel, Location
from saumaton.pricing import campaigns, changes
from saumaton.pricing.changes import PriceChangeIn
from saumaton.pricing.models import PriceChange
from saumaton.pricing.parity import price_parity
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.staff.models import Staff
from saumaton.staff.services import actor_for
from tests.support import Shop, drop_pg_database, fresh_database, make_variants


async def price_of(db: Database, variant_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(Variant.price_cents).where(Variant.id == variant_id))
                   or 0)


async def audits(db: Database, action: str, subject_type: str,
                 subject_id: int) -> list[AuditEntry]:
    async with db.reader() as s:
        return list((await s.scalars(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.subject_type == subject_type,
            AuditEntry.subject_id == subject_id).order_by(AuditEntry.id))).all())


async def staff_actor(db: Database, who: str) -> Actor:
    async with db.reader() as s:
        staff_id = (await s.scalars(select(Staff.id).where(
            Staff.email == f"{who}@test.example"))).one()
        actor = await actor_for(s, staff_id)
    assert actor is not None
    return actor


async def test_price_change_now_writes_history_audit_and_event(db: Database, shop: Shop) -> None:
    v1, v2 = await make_variants(db, [1000, 2000])
    me = await staff_actor(db, "owner")
    async with db.uow() as uow:
        ids = await changes.change_prices(uow, me, PriceChangeIn(
            variant_ids=[int(v1["id"]), int(v2["id"])], price_cents=1500, note="spring"))
        await uow.commit()
    assert await price_of(db, int(v1["id"])) == 1500
    assert await price_of(db, int(v2["id"])) == 1500
    async with db.reader() as s:
        hist = await changes.price_history(s, int(v2["id"]))
        rows = (await s.scalars(select(PriceChange).where(PriceChange.id.in_(ids)))).all()
        events = (await s.scalars(select(OutboxEvent).where(
            OutboxEvent.topic == "price.changed").order_by(OutboxEvent.id.desc())
            .limit(10))).all()
    assert [(h.old_price_cents, h.price_cents, h.status, h.note) for h in hist] == [
        (2000, 1500, "applied", "spring")]
    assert hist[0].created_by == me.label and hist[0].applied_at is not None
    assert {r.batch_id for r in rows} == {min(ids)}  # one batch
    entry = (await audits(db, "price.change", "variant", int(v1["id"])))[-1]
    assert entry.actor == me.label
    assert entry.data["old_price_cents"] == 1000 and entry.data["price_cents"] == 1500
    assert {e.payload["variant_id"] for e in events} >= {int(v1["id"]), int(v2["id"])}


async def test_the_api_price_route_records_history(client: httpx.AsyncClient, db: Database,
                                                   shop: Shop) -> None:
    (v,) = await make_variants(db, [990])
    r = await client.put(f"/api/v1/variants/{v['id']}/price", json={"price_cents": 1290},
                         headers=shop.auth("manager"))
    assert r.status_code == 200 and r.json()["price_cents"] == 1290
    async with db.reader() as s:
        hist = await changes.price_history(s, int(v["id"]))
    assert [(h.old_price_cents, h.price_cents) for h in hist] == [(990, 1290)]
    assert (await audits(db, "price.change", "variant", int(v["id"])))[-1].actor.startswith(
        "staff:")
    r = await client.put(f"/api/v1/variants/{v['id']}/price", json={"price_cents": 1},
                         headers=shop.auth("manager1"))  # a manager of one store: no
    assert r.status_code == 403
    assert await price_of(db, int(v["id"])) == 1290


async def test_scheduled_change_waits_applies_once_and_can_be_cancelled(
        db: Database, shop: Shop) -> None:
    v1, v2 = await make_variants(db, [1000, 3000])
    me = await staff_actor(db, "manager")
    now = utcnow()
    later = now + timedelta(hours=2)
    async with db.uow() as uow:
        (c1,) = await changes.change_prices(uow, me, PriceChangeIn(
            variant_ids=[int(v1["id"])], price_cents=800, effective_at=later))
        (c2,) = await changes.change_prices(uow, me, PriceChangeIn(
            variant_ids=[int(v2["id"])], price_cents=2500, effective_at=later))
        await uow.commit()
    assert await price_of(db, int(v1["id"])) == 1000  # not yet
    assert (await audits(db, "price.schedule", "variant", int(v1["id"])))[-1].data[
        "change_id"] == c1
    async with db.reader() as s:
        scheduled = {c.id for c in await changes.list_changes(s, status="scheduled")}
    assert {c1, c2} <= scheduled

    async with db.uow() as uow:
        await changes.cancel_change(uow, me, c2)
        await uow.commit()
    assert (await audits(db, "price.cancel", "variant", int(v2["id"])))
    async with db.uow() as uow:
        with pytest.raises(Conflict) as err:
            await changes.cancel_change(uow, me, c2)
    assert err.value.code == "price_change_not_scheduled"

    # Nothing due now; at the time (a clock moved ahead) only the live one applies.
    assert await changes.apply_due(db, now) == 0 or await price_of(db, int(v1["id"])) == 1000
    await changes.apply_due(db, later + timedelta(seconds=1))
    assert await price_of(db, int(v1["id"])) == 800
    assert await price_of(db, int(v2["id"])) == 3000  # cancelled
    async with db.reader() as s:
        hist = await changes.price_history(s, int(v1["id"]))
    assert [(h.id, h.status, h.old_price_cents) for h in hist] == [(c1, "applied", 1000)]
    entry = (await audits(db, "price.change", "variant", int(v1["id"])))[-1]
    assert entry.actor == "system" and entry.data["scheduled_by"] == me.label
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await changes.cancel_change(uow, me, c1)  # applied: history now


async def test_price_change_rules(db: Database, shop: Shop) -> None:
    (v,) = await make_variants(db, [500])
    manager1 = await staff_actor(db, "manager1")
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await changes.change_prices(uow, manager1, PriceChangeIn(
                variant_ids=[int(v["id"])], price_cents=400))
        with pytest.raises(ValidationFailed) as err:
            await changes.change_prices(uow, SYSTEM, PriceChangeIn(
                variant_ids=[int(v["id"]), 2_000_000_000], price_cents=400))
    assert err.value.code == "unknown_variant"
    with pytest.raises(ValueError):
        PriceChangeIn(variant_ids=[1], price_cents=100, effective_at=datetime(2030, 1, 1))
    assert await price_of(db, int(v["id"])) == 500


@pytest.mark.parametrize("n", [12])
async def test_two_job_loops_apply_each_due_change_exactly_once(
        db: Database, database_url: str, shop: Shop, n: int) -> None:
    variants = await make_variants(db, [1000 + i for i in range(n)])
    due = utcnow() - timedelta(seconds=1)
    ids: list[int] = []
    async with db.uow() as uow:
        for i, v in enumerate(variants):
            ids += await changes.change_prices(uow, SYSTEM, PriceChangeIn(
                variant_ids=[int(v["id"])], price_cents=2000 + i,
                effective_at=utcnow() + timedelta(hours=1)))
        await uow.commit()
    async with db.uow() as uow:  # make them due
        for row in (await uow.session.scalars(
                select(PriceChange).where(PriceChange.id.in_(ids)))).all():
            row.effective_at = due
        await uow.commit()
    # Two job loops at once, each with its own engine and connections (like two
    # processes); on PostgreSQL they claim rows with SKIP LOCKED.
    first, second = Database(database_url), Database(database_url)
    try:
        counts = await asyncio.gather(changes.apply_due(first), changes.apply_due(second))
    finally:
        await first.dispose()
        await second.dispose()
    assert sum(counts) <= n  # (the app's own job may have taken some)
    async with db.reader() as s:
        statuses = (await s.scalars(select(PriceChange.status).where(
            PriceChange.id.in_(ids)))).all()
    assert set(statuses) == {"applied"}
    for i, (v, cid) in enumerate(zip(variants, ids, strict=True)):
        entries = [e for e in await audits(db, "price.change", "variant", int(v["id"]))
                   if e.data["change_id"] == cid]
        assert len(entries) == 1, f"change {cid} applied {len(entries)} times"
        assert entries[0].data["old_price_cents"] == 1000 + i
        assert await price_of(db, int(v["id"])) == 2000 + i


async def new_campaign(db: Database, actor: Actor = SYSTEM, **kw: Any) -> int:
    data: dict[str, Any] = {"name": f"camp-{uuid.uuid4().hex[:6]}", "kind": "percent",
                            "value": 1000, "starts_at": utcnow() - timedelta(hours=1), **kw}
    async with db.uow() as uow:
        cid = await create_campaign(uow, actor, CampaignIn(**data))
        await uow.commit()
    return cid


async def test_campaign_create_update_end_are_audited(db: Database, shop: Shop) -> None:
    (v,) = await make_variants(db, [2000])
    me = await staff_actor(db, "owner")
    cid = await new_campaign(db, me, variant_ids=[int(v["id"])])
    assert (await audits(db, "campaign.create", "campaign", cid))[0].actor == me.label
    start = utcnow() + timedelta(days=1)
    async with db.uow() as uow:
        out = await campaigns.update_campaign(uow, me, cid, CampaignIn(
            name="3 for 2", kind="x_for_y", buy_quantity=3, pay_quantity=2,
            starts_at=start, product_ids=[int(v["product_id"])], channel_codes=["web"],
            min_tier="member"))
        await uow.commit()
    assert (out.kind, out.buy_quantity, out.pay_quantity, out.state, out.channels,
            out.min_tier) == ("x_for_y", 3, 2, "scheduled", ("web",), "member")
    assert [t.type for t in out.targets] == ["product"]
    entry = (await audits(db, "campaign.update", "campaign", cid))[-1]
    assert entry.data["before"]["kind"] == "percent" and entry.data["after"]["kind"] == "x_for_y"
    async with db.reader() as s:
        scheduled = await campaigns.list_campaigns(s, state="scheduled")
        running = await campaigns.list_campaigns(s, state="running")
    assert cid in {c.id for c in scheduled} and cid not in {c.id for c in running}

    async with db.uow() as uow:
        await campaigns.end_now(uow, me, cid)
        await uow.commit()
    async with db.reader() as s:
        ended = await campaigns.get_campaign(s, cid)
    assert ended.state == "ended" and ended.ended_by == me.label
    assert ended.updated_at is not None
    assert (await audits(db, "campaign.end", "campaign", cid))[-1].actor == me.label
    async with db.uow() as uow:  # an ended campaign stays ended
        with pytest.raises(Conflict) as ended_err:
            await campaigns.update_campaign(uow, me, cid, CampaignIn(
                name="again", kind="percent", value=10, starts_at=start,
                variant_ids=[int(v["id"])]))
    assert ended_err.value.code == "campaign_ended"
    manager1 = await staff_actor(db, "manager1")
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await campaigns.update_campaign(uow, manager1, cid, CampaignIn(
                name="x", kind="percent", value=10, starts_at=start, variant_ids=[1]))


async def test_parity_zero_without_limited_campaigns_and_exactly_the_limited_ones(
        db: Database, shop: Shop) -> None:
    v1, v2, v3 = await make_variants(db, [1000, 2000, 3000])
    start = utcnow() + timedelta(days=400 + int(uuid.uuid4().int % 100))
    end = start + timedelta(days=2)
    # At that moment: a campaign for every channel and a member price (no tier asked).
    await new_campaign(db, variant_ids=[int(v1["id"])], starts_at=start, ends_at=end)
    await new_campaign(db, variant_ids=[int(v2["id"])], starts_at=start, ends_at=end,
                       min_tier="member")
    moment = start + timedelta(hours=1)
    ours = [int(v["id"]) for v in (v1, v2, v3)]
    async with db.reader() as s:
        report = await price_parity(s, moment, now=utcnow(), variant_ids=ours)
    assert report.variants_checked == 3
    assert report.differences == [], report.differences

    # A unit campaign only in the webshop and a bundle only in store 1's till.
    web_only = await new_campaign(db, name="Web week", variant_ids=[int(v3["id"])],
                                  starts_at=start, ends_at=end, channel_codes=["web"])
    bundle = await new_campaign(db, name="3 for 2 in Helsinki", kind="x_for_y",
                                buy_quantity=3, pay_quantity=2,
                                product_ids=[int(v1["product_id"])],
                                starts_at=start, ends_at=end, channel_codes=["pos-1"])
    async with db.reader() as s:
        report = await price_parity(s, moment, now=utcnow(), variant_ids=ours)
        after = await price_parity(s, end + timedelta(minutes=1), now=utcnow(),
                                   variant_ids=ours)
        member = await price_parity(s, moment, tier="gold", now=utcnow(), variant_ids=ours)
    assert [d.variant_id for d in report.differences] == [int(v3["id"])]
    diff = report.differences[0]
    assert diff.prices["web"] == 2700 and diff.prices["pos-1"] == 3000
    assert diff.prices["api"] == 3000 and diff.usual_cents == 3000
    assert [(c.campaign_id, c.limited_to) for c in diff.causes] == [(web_only, ("web",))]
    assert (bundle, ("pos-1",), "x_for_y") in [
        (b.campaign_id, b.limited_to, b.kind) for b in report.bundles]
    assert after.differences == []
    assert bundle not in {b.campaign_id for b in after.bundles}
    # The gold member's member price is the same everywhere: still only the web one.
    assert [d.variant_id for d in member.differences] == [int(v3["id"])]
    assert member.differences[0].prices["web"] == 2700


async def test_parity_of_a_whole_shop_is_zero_without_limited_campaigns(
        backend: str, tmp_path: Path) -> None:
    """A database of its own: every active variant of the shop, every channel."""
    url = await fresh_database(backend, tmp_path)
    db = Database(url)
    try:
        async with db.uow() as uow:
            store = Location(code="store-1", name="Helsinki", kind="store",
                             sells_in_person=True)
            uow.session.add(store)
            await uow.session.flush()
            uow.session.add_all([
                Channel(code="web", kind="webshop", name="Webshop"),
                Channel(code="pos-1", kind="pos", name="Till", location_id=store.id),
                Channel(code="service", kind="service_desk", name="Service desk"),
                Channel(code="api", kind="api", name="API")])
            await uow.commit()
        variants = await make_variants(db, [500 + i for i in range(30)])
        variants += await make_variants(db, [900, 1900])
        now = utcnow()
        await new_campaign(db, variant_ids=[int(variants[0]["id"])])  # every channel
        await new_campaign(db, product_ids=[int(variants[-1]["product_id"])],
                           min_tier="silver")  # a member price
        await new_campaign(db, kind="x_for_y", buy_quantity=3, pay_quantity=2,
                           product_ids=[int(variants[1]["product_id"])])  # bundle, all
        limited = await new_campaign(db, variant_ids=[int(variants[5]["id"])],
                                     channel_codes=["pos-1"], starts_at=now + timedelta(days=1),
                                     ends_at=now + timedelta(days=2))
        async with db.reader() as s:
            today = await price_parity(s, now, now=now, include_all=True)
            tomorrow = await price_parity(s, now + timedelta(days=1, hours=1), now=now)
            silver = await price_parity(s, now, tier="silver", now=now)
            after = await price_parity(s, now + timedelta(days=3), now=now)
        assert today.variants_checked == 32 and len(today.channels) == 4
        assert today.differences == [] and today.bundles == [] and today.count == 0
        assert today.rows[0].prices == {"web": 450, "api": 450, "pos-1": 450, "service": 450}
        assert silver.differences == []
        assert [(d.variant_id, [c.campaign_id for c in d.causes])
                for d in tomorrow.differences] == [(int(variants[5]["id"]), [limited])]
        assert after.differences == []
    finally:
        await db.dispose()
        if backend == "postgresql":
            await drop_pg_database(url)


async def test_the_prices_api(client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    (v,) = await make_variants(db, [1500])
    vid = int(v["id"])
    later = (utcnow() + timedelta(days=3)).isoformat()
    r = await client.post("/api/v1/price-changes", headers=shop.auth("manager"), json={
        "variant_ids": [vid], "price_cents": 1200, "effective_at": later, "note": "api"})
    assert r.status_code == 201, r.text
    (cid,) = r.json()["ids"]
    r = await client.get("/api/v1/price-changes", headers=shop.auth("finance"))
    assert cid in {c["id"] for c in r.json()["items"]}
    r = await client.post(f"/api/v1/price-changes/{cid}/cancel", headers=shop.auth("manager1"))
    assert r.status_code == 403
    r = await client.post(f"/api/v1/price-changes/{cid}/cancel", headers=shop.auth("manager"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await client.post("/api/v1/price-changes", headers=shop.auth("owner"), json={
        "variant_ids": [vid], "price_cents": 1400})
    assert r.status_code == 201
    r = await client.get(f"/api/v1/variants/{vid}/price-history", headers=shop.auth("finance"))
    assert [(c["status"], c["old_price_cents"], c["price_cents"]) for c in r.json()["items"]] == [
        ("cancelled", None, 1200), ("applied", 1500, 1400)]  # by when they take effect
    assert (await client.get(f"/api/v1/variants/{vid}/price-history",
                             headers=shop.auth("cashier1"))).status_code == 403
    r = await client.post("/api/v1/price-changes", headers=shop.auth("owner"), json={
        "variant_ids": [vid], "price_cents": -1})
    assert r.status_code == 422

    body = {"name": f"api-{uuid.uuid4().hex[:6]}", "kind": "percent", "value": 1000,
            "starts_at": utcnow().isoformat(), "variant_ids": [vid]}
    r = await client.post("/api/v1/campaigns", headers=shop.auth("owner"), json=body)
    camp = r.json()["id"]
    r = await client.put(f"/api/v1/campaigns/{camp}", headers=shop.auth("owner"),
                         json={**body, "channel_codes": ["web"]})
    assert r.status_code == 200 and r.json()["channels"] == ["web"]
    r = await client.get("/api/v1/price-parity", headers=shop.auth("finance"))
    diff = [d for d in r.json()["differences"] if d["variant_id"] == vid]
    assert diff and diff[0]["prices"]["web"] == 1260 and diff[0]["prices"]["pos-1"] == 1400
    assert diff[0]["causes"][0]["limited_to"] == ["web"]
    r = await client.post(f"/api/v1/campaigns/{camp}/end", headers=shop.auth("owner"))
    assert r.status_code == 204
    r = await client.get("/api/v1/campaigns", params={"state": "ended"},
                         headers=shop.auth("owner"))
    assert camp in {c["id"] for c in r.json()["items"]}
    # the back office's filters: part of the name, the kind
    r = await client.get("/api/v1/campaigns", params={"q": body["name"][4:]},
                         headers=shop.auth("owner"))
    assert [c["id"] for c in r.json()["items"]] == [camp]
    r = await client.get("/api/v1/campaigns", params={"q": body["name"], "kind": "fixed"},
                         headers=shop.auth("owner"))
    assert r.status_code == 200 and r.json()["items"] == []
    r = await client.get("/api/v1/campaigns", params={"kind": "halved"},
                         headers=shop.auth("owner"))
    assert r.status_code == 422
    r = await client.get("/api/v1/price-parity", headers=shop.auth("finance"))
    assert vid not in {d["variant_id"] for d in r.json()["differences"]}
