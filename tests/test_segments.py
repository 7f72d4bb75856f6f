"""Customer segments on both databases: each criterion picks the right customers, the
count and the preview, consent and erasure respected by members and exports, a
segment's campaign price for its members only (webshop cart, web order, till sale,
till snapshot), the CSV and webhook exports, saving, editing, deleting and bad rules.

Every test's customers carry a tag of their own, and every rule set names it, so the
figures do not depend on what other tests left in the shared database. A segment
campaign is ended when its test is done (other tests price with no segment prices)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from saumaton.checkout.cart import price_cart
from saumaton.checkout.services import place_web_order
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saumaton.customers.consents import set_consent
from saumaton.customers.fields import create_field, get_field
from saumaton.customers.gdpr import erase_customer
from saumaton.customers.models import Customer
from saumaton.customers.notes import set_preference
from saumaton.customers.segments import (
    SegmentRules,
    buyer_segments,
    count_members,
    create_segment,
    delete_segment,
    export_csv,
    export_webhook,
    get_segment,
    members,
    parse_rules,
    preview,
    update_segment,
)
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.customers.tags import add_tag
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.locations.models import Channel
from saumaton.orders.models import Order
from saumaton.orders.services import business_day
from saumaton.pricing.services import CampaignIn, create_campaign, end_campaign
from saumaton.reports.journey_tables import CustomerJourney
from saumaton.tills.catalogue import build_catalogue
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import Shop, make_variants, open_drawer, staff_actor
from tests.test_checkout import cmd


async def new_customer(db: Database, tag: str, *, card: bool = False, consent: bool = False,
                       first: str = "Anna") -> int:
    async with db.uow() as uow:
        out = await create_customer(uow, SYSTEM, CustomerIn(
            first_name=first, last_name=f"S{uuid.uuid4().hex[:6]}", issue_card=card,
            email=f"{uuid.uuid4().hex[:10]}@example.fi"))
        await add_tag(uow, SYSTEM, out.id, tag)
        if consent:
            await set_consent(uow, out.id, "marketing_email", True, "pos")
        await uow.commit()
    return out.id


def rules(tag: str, **kw: Any) -> SegmentRules:
    return parse_rules({"tags": [tag], **kw})


async def ids_of(db: Database, r: SegmentRules) -> set[int]:
    async with db.reader() as s:
        return {m.id for m in await preview(s, r, limit=100)}


def new_tag() -> str:
    return f"seg-{uuid.uuid4().hex[:8]}"


async def till_sale(db: Database, shop: Shop, customer_id: int, cents: int, *,
                    expected: int | None = None, variant_id: int | None = None) -> int:
    if variant_id is None:
        [v] = await make_variants(db, [cents], stock={shop.store1: 5})
        variant_id = int(str(v["id"]))
    sid = await open_drawer(db, shop.store1)
    order, _ = await sell(db, await staff_actor(db, shop, "cashier1"), shop.store1, TillSaleIn(
        key=uuid.uuid4().hex, session_id=sid, lines=[TillLineIn(variant_id=variant_id)],
        payments=[TillPaymentIn(method="cash")], customer_id=customer_id,
        expected_total_cents=expected))
    return order.total_cents


# --- criteria -------------------------------------------------------------------------------

async def test_tags_any_and_all(db: Database) -> None:
    tag, other = new_tag(), new_tag()
    a = await new_customer(db, tag)
    b = await new_customer(db, tag)
    async with db.uow() as uow:
        await add_tag(uow, SYSTEM, b, other)
        await uow.commit()
    c = await new_customer(db, other)
    assert await ids_of(db, parse_rules({"tags": [tag, other]})) == {a, b, c}
    assert await ids_of(db, parse_rules({"tags": [tag, other], "tags_match": "all"})) == {b}
    # Tags are normalised as the card stores them.
    assert await ids_of(db, parse_rules({"tags": [f"  {tag.upper()} "]})) == {a, b}


async def test_tiers(db: Database, shop: Shop, settings: Settings) -> None:
    tag = new_tag()
    plain = await new_customer(db, tag)
    member = await new_customer(db, tag, card=True)
    silver = await new_customer(db, tag, card=True)
    await till_sale(db, shop, silver, settings.loyalty_silver_from_cents)
    assert await ids_of(db, rules(tag, tiers=["none"])) == {plain}
    assert await ids_of(db, rules(tag, tiers=["member"])) == {member}
    assert await ids_of(db, rules(tag, tiers=["silver", "gold"])) == {silver}
    assert await ids_of(db, rules(tag, tiers=["member", "silver"])) == {member, silver}


async def test_preferences(db: Database) -> None:
    tag = new_tag()
    async with db.uow() as uow:
        if await get_field(uow.session, "skin_type") is None:
            await create_field(uow, SYSTEM, "skin_type", "Skin type", "text")
        if await get_field(uow.session, "shade") is None:
            await create_field(uow, SYSTEM, "shade", "Shade", "text")
        await uow.commit()
    a, b, c = [await new_customer(db, tag) for _ in range(3)]
    async with db.uow() as uow:
        await set_preference(uow, SYSTEM, a, "shade", "2N")
        await set_preference(uow, SYSTEM, a, "skin_type", "sensitive")
        await set_preference(uow, SYSTEM, b, "shade", "3W")
        await set_preference(uow, SYSTEM, c, "skin_type", "sensitive")
        await uow.commit()
    shade = {"key": "shade", "values": ["2N", "3W"]}
    sensitive = {"key": "skin_type", "values": ["sensitive"]}
    assert await ids_of(db, rules(tag, preferences=[shade])) == {a, b}
    assert await ids_of(db, rules(tag, preferences=[sensitive])) == {a, c}
    assert await ids_of(db, rules(tag, preferences=[shade, sensitive])) == {a}


async def test_channel_journey(db: Database) -> None:
    tag = new_tag()
    web_then_store, store_only, web_only = [await new_customer(db, tag) for _ in range(3)]
    async with db.uow() as uow:
        channels = dict((await uow.session.execute(select(Channel.kind, Channel.id))).all())
        now = utcnow()
        for cid, first, mask, later in ((web_then_store, "webshop", 3, 1),
                                        (store_only, "pos", 1, 1), (web_only, "webshop", 2, 0)):
            uow.session.add(CustomerJourney(
                customer_id=cid, first_at=now, first_channel_id=channels[first],
                first_kind=first, orders=2, revenue_cents=1000, kinds_mask=mask,
                later_kinds_mask=later, channels=1))
        await uow.commit()
    assert await ids_of(db, rules(tag, first_channel="webshop", then_channel="pos")) == {
        web_then_store}
    assert await ids_of(db, rules(tag, first_channel="webshop")) == {web_then_store, web_only}
    assert await ids_of(db, rules(tag, bought_in=["pos"])) == {web_then_store, store_only}
    assert await ids_of(db, rules(tag, then_channel="webshop")) == set()


async def test_last_purchase(db: Database, shop: Shop) -> None:
    tag = new_tag()
    recent, lapsed, never = [await new_customer(db, tag) for _ in range(3)]
    await till_sale(db, shop, recent, 1000)
    await till_sale(db, shop, lapsed, 1000)
    async with db.uow() as uow:  # the lapsed customer's purchase was 100 days ago
        await uow.session.execute(update(Order).where(Order.customer_id == lapsed).values(
            created_at=utcnow() - timedelta(days=100)))
        await uow.commit()
    within = {"op": "within", "days": 30}
    assert await ids_of(db, rules(tag, last_purchase=within)) == {recent}
    assert await ids_of(db, rules(tag, last_purchase={"op": "before", "days": 30})) == {lapsed}
    assert await ids_of(db, rules(tag, last_purchase={"op": "before", "days": 365})) == set()
    assert await ids_of(db, rules(tag, last_purchase={"op": "never"})) == {never}


async def test_consent_count_preview_and_erased(db: Database) -> None:
    tag = new_tag()
    yes = await new_customer(db, tag, consent=True, first="Aino")
    no = await new_customer(db, tag, first="Bea")
    withdrawn = await new_customer(db, tag, consent=True, first="Cia")
    erased = await new_customer(db, tag, consent=True, first="Dora")
    async with db.uow() as uow:
        await set_consent(uow, withdrawn, "marketing_email", False, "web")
        await uow.session.execute(update(Customer).where(Customer.id == erased).values(
            erased_at=utcnow()))
        await uow.commit()
    async with db.reader() as s:
        assert await count_members(s, rules(tag)) == 3  # never the erased one
        assert await count_members(s, rules(tag), marketing_only=True) == 1
        assert await count_members(s, rules(tag, consent="granted")) == 1
        assert await count_members(s, rules(tag, consent="not_granted")) == 2
        shown = await preview(s, rules(tag), limit=2)
    assert [m.id for m in shown] == [yes, no]
    assert shown[0].first_name == "Aino" and shown[0].email.endswith("@example.fi")
    assert shown[0].marketing_email and not shown[1].marketing_email
    async with db.uow() as uow:
        seg = await create_segment(uow, SYSTEM, f"Kaikki {tag}", rules(tag))
        await uow.commit()
    async with db.uow() as uow:  # the e-mail audience: consenting members only
        assert [m.id async for m in members(uow, seg.id)] == [yes]
        everyone = [m.id async for m in members(uow, seg.id, marketing_only=False, batch=1)]
    assert everyone == [yes, no, withdrawn]


# --- saving, exports --------------------------------------------------------------------------

async def test_save_edit_delete_and_bad_input(db: Database, shop: Shop) -> None:
    tag = new_tag()
    await new_customer(db, tag)
    name = f"Herkkä iho {tag}"
    async with db.uow() as uow:
        seg = await create_segment(uow, SYSTEM, f"  {name} ", rules(tag))
        await uow.commit()
    assert seg.name == name
    async with db.uow() as uow:
        with pytest.raises(Conflict) as dup:
            await create_segment(uow, SYSTEM, name.upper(), rules(tag))
        assert dup.value.code == "duplicate_segment"
        with pytest.raises(ValidationFailed) as empty:
            await create_segment(uow, SYSTEM, "   ", rules(tag))
        assert empty.value.code == "name_required"
        manager = await staff_actor(db, shop, "manager")
        with pytest.raises(Forbidden):  # the owner's only
            await create_segment(uow, manager, "Manager's", rules(tag))
    with pytest.raises(ValidationFailed) as bad:
        parse_rules({"tags": ["!!"], "tiers": ["platinum"], "last_purchase": {"op": "within"},
                     "colour": "red"})
    fields = {e["field"] for e in bad.value.extra["errors"]}
    assert {"tags", "tiers.0", "last_purchase.days", "colour"} <= fields  # all at once
    async with db.uow() as uow:
        changed = await update_segment(uow, SYSTEM, seg.id, name, rules(tag, consent="granted"))
        await uow.commit()
    assert changed.rules.consent == "granted"
    async with db.uow() as uow:
        await delete_segment(uow, SYSTEM, seg.id)
        await uow.commit()
    async with db.reader() as s:
        with pytest.raises(NotFound):
            await get_segment(s, seg.id)


async def test_csv_and_webhook_exports(db: Database) -> None:
    tag = new_tag()
    yes = await new_customer(db, tag, consent=True, first="Äiti")
    no = await new_customer(db, tag, first="=SUM(A1)")
    async with db.uow() as uow:
        seg = await create_segment(uow, SYSTEM, f"Vienti {tag}", rules(tag))
        await uow.commit()
    async with db.uow() as uow:
        text = "".join([line async for line in export_csv(uow, SYSTEM, seg.id)])
        full = "".join([line async for line in export_csv(uow, SYSTEM, seg.id, full=True)])
        await uow.commit()
    assert text.startswith("\ufeffcustomer_id;first_name;last_name;email;phone;"
                           "marketing_email\r\n")
    lines = text.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{yes};Äiti;")
    assert len(full.splitlines()) == 3 and f"\r\n{no};'=SUM(A1);" in full  # no formulas
    async with db.uow() as uow:
        sent = await export_webhook(uow, SYSTEM, seg.id)
        await uow.commit()
    assert (sent.members, sent.parts) == (1, 1)
    async with db.reader() as s:
        [payload] = (await s.scalars(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "segment.exported")
            .order_by(OutboxEvent.id.desc()).limit(1))).all()
    assert payload["export_id"] == sent.export_id
    assert [m["customer_id"] for m in payload["members"]] == [yes]
    assert payload["members"][0]["first_name"] == "Äiti"
    # Erased (GDPR): out of the exports already sent, never in a new one.
    async with db.uow() as uow:
        report = await erase_customer(uow, SYSTEM, yes, "asked by e-mail")
        await uow.commit()
    assert report.anonymised["segment_exports"] >= 1
    async with db.reader() as s:
        payload = await s.scalar(select(OutboxEvent.payload).where(
            OutboxEvent.topic == "segment.exported").order_by(OutboxEvent.id.desc()).limit(1))
    assert payload is not None and payload["members"] == []
    async with db.uow() as uow:
        full = "".join([line async for line in export_csv(uow, SYSTEM, seg.id, full=True)])
    assert [ln.split(";")[0] for ln in full.splitlines()[1:]] == [str(no)]


# --- campaign prices ---------------------------------------------------------------------------

@pytest.fixture
async def segment_campaign(db: Database, shop: Shop) -> AsyncIterator[dict[str, int]]:
    """A segment of customers with the shade 2N and a 5 € segment price for it on one
    variant (stocked in the warehouse and the Helsinki store); ended afterwards."""
    tag = new_tag()
    async with db.uow() as uow:
        if await get_field(uow.session, "shade") is None:
            await create_field(uow, SYSTEM, "shade", "Shade", "text")
        await uow.commit()
    member = await new_customer(db, tag, card=True)
    outsider = await new_customer(db, tag, card=True)
    async with db.uow() as uow:
        await set_preference(uow, SYSTEM, member, "shade", "2N")
        seg = await create_segment(uow, SYSTEM, f"2N {tag}", rules(tag, preferences=[
            {"key": "shade", "values": ["2N"]}]))
        await uow.commit()
    [v] = await make_variants(db, [3000], stock={shop.warehouse: 20, shop.store1: 20})
    async with db.uow() as uow:
        campaign = await create_campaign(uow, SYSTEM, CampaignIn(
            name="2N-päivät", kind="fixed", value=500, segment_id=seg.id,
            starts_at=utcnow() - timedelta(hours=1), variant_ids=[int(str(v["id"]))]))
        await uow.commit()
    yield {"member": member, "outsider": outsider, "segment": seg.id,
           "variant": int(str(v["id"])), "campaign": campaign}
    async with db.uow() as uow:
        await end_campaign(uow, SYSTEM, campaign)
        await uow.commit()


async def test_segment_price_in_the_webshop(db: Database, settings: Settings,
                                            segment_campaign: dict[str, int]) -> None:
    sc = segment_campaign
    vid = sc["variant"]
    async with db.reader() as s:
        assert await buyer_segments(s, sc["member"]) == frozenset({sc["segment"]})
        assert await buyer_segments(s, sc["outsider"]) == frozenset()
        member = await price_cart(s, None, None, [(vid, 2)], utcnow(), customer_id=sc["member"])
        outsider = await price_cart(s, None, None, [(vid, 2)], utcnow(),
                                    customer_id=sc["outsider"])
        guest = await price_cart(s, None, None, [(vid, 2)], utcnow())
    assert member.quote.total_cents == 5000
    assert outsider.quote.total_cents == guest.quote.total_cents == 6000
    order, _ = await place_web_order(db, settings, cmd(vid, 1), customer_id=sc["member"],
                                     key=f"seg-{uuid.uuid4().hex}")
    assert order.lines[0].total_cents == 2500
    other, _ = await place_web_order(db, settings, cmd(vid, 1), customer_id=sc["outsider"],
                                     key=f"seg-{uuid.uuid4().hex}")
    assert other.lines[0].total_cents == 3000


async def test_segment_price_at_the_till(db: Database, shop: Shop,
                                         segment_campaign: dict[str, int]) -> None:
    sc = segment_campaign
    vid = sc["variant"]
    assert await till_sale(db, shop, sc["member"], 0, variant_id=vid) == 2500
    assert await till_sale(db, shop, sc["outsider"], 0, variant_id=vid) == 3000
    # The till showed everyone's price with a member attached: the core answers with
    # the segment price (409 price_changed, the till reprices).
    with pytest.raises(Conflict) as exc:
        await till_sale(db, shop, sc["member"], 0, variant_id=vid, expected=3000)
    assert exc.value.code == "price_changed"
    # The snapshot carries the segment price, the member's card names the segment.
    now = utcnow()
    async with db.reader() as s:
        channel = await s.scalar(select(Channel).where(Channel.location_id == shop.store1,
                                                       Channel.kind == "pos"))
        assert channel is not None
        snap = await build_catalogue(s, channel, now, business_day(now))
    v = {x["id"]: x for x in snap.body["variants"]}[vid]
    assert v["campaign_discount_cents"] == 0
    assert v["segment_prices"][str(sc["segment"])]["campaign_discount_cents"] == 500
    # A segment a campaign prices for cannot be deleted.
    async with db.uow() as uow:
        with pytest.raises(Conflict) as used:
            await delete_segment(uow, SYSTEM, sc["segment"])
    assert used.value.code == "segment_in_use"


async def test_a_campaign_names_an_existing_segment(db: Database) -> None:
    [v] = await make_variants(db, [1000])
    async with db.uow() as uow:
        with pytest.raises(ValidationFailed) as exc:
            await create_campaign(uow, SYSTEM, CampaignIn(
                name="X", kind="percent", value=1000, segment_id=999_999,
                starts_at=utcnow(), variant_ids=[int(str(v["id"]))]))
    assert exc.value.code == "unknown_segment"
    with pytest.raises(ValueError, match="tier or a segment"):
        CampaignIn(name="X", kind="percent", value=1000, segment_id=1, min_tier="gold",
                   starts_at=utcnow(), variant_ids=[1])
    with pytest.raises(ValueError, match="percent or fixed"):
        CampaignIn(name="X", kind="x_for_y", buy_quantity=3, pay_quantity=2, segment_id=1,
                   starts_at=utcnow(), variant_ids=[1])

