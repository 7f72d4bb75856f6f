"""Member prices shown where the shopper and the cashier look, on both databases: the
webshop's listing pages price a signed-in member's cards with their member price (and
say so), a guest sees everyone's price and, on the product page, what members pay; the
till's catalogue snapshot carries each tier's member price so the till can show it the
moment a member is attached (also offline)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers.models import CustomerIdentity
from saumaton.customers.services import new_card_number
from saumaton.db.uow import Database
from saumaton.locations.models import Channel
from saumaton.orders.services import business_day
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.tills.catalogue import build_catalogue
from tests.support import Shop, make_variants
from tests.test_accounts import new_email, register_page, sign_in, text_of


async def member_campaign(db: Database, variant_id: int, cents: int, tier: str,
                          name: str = "Members") -> None:
    async with db.uow() as uow:
        await create_campaign(uow, SYSTEM, CampaignIn(
            name=name, kind="fixed", value=cents, min_tier=tier,
            starts_at=utcnow() - timedelta(hours=1), variant_ids=[variant_id]))
        await uow.commit()


async def give_card(db: Database, customer_id: int) -> None:
    """Enrol the customer (a loyalty card identity makes them a member)."""
    async with db.uow() as uow:
        uow.session.add(CustomerIdentity(customer_id=customer_id, kind="card",
                                         value=new_card_number()))
        await uow.commit()


def tile_price(page: str, slug: str) -> str:
    start = page.index(f'data-product="{slug}"')
    tile = page[start:page.index("</li>", start)]
    return text_of(tile, "tile-price")


async def test_listing_pages_show_a_members_own_price(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    [v] = await make_variants(db, [3000], stock={shop.warehouse: 5})
    vid, slug = int(str(v["id"])), str(v["product_slug"])
    name = f"Product {slug.removeprefix('p-')}"
    await member_campaign(db, vid, 500, "member", name="Jäsenpäivät")
    transport = client._transport
    async with httpx.AsyncClient(transport=transport, base_url="http://test",
                                 headers={"Accept-Language": "fi"}) as guest, \
            httpx.AsyncClient(transport=transport, base_url="http://test",
                              headers={"Accept-Language": "fi"}) as shopper:
        # A guest: everyone's price on the search page, the member price as a teaser.
        page = (await guest.get("/shop/search", params={"q": name})).text
        assert tile_price(page, slug) == "30,00 €"
        assert 'data-testid="member-price"' not in page
        product = (await guest.get(f"/shop/p/{slug}")).text
        assert text_of(product, "price") == "30,00 €"
        assert text_of(product, "member-teaser").startswith("Jäsenhinta 25,00 €")
        assert "/account/login?next=" in product

        # A signed-in shopper without a card is not a member yet: the same as a guest.
        email = new_email()
        assert (await register_page(shopper, email)).status_code == 303
        customer_id = await sign_in(db, email)
        page = (await shopper.get("/shop/search", params={"q": name})).text
        assert tile_price(page, slug) == "30,00 €"

        # A member: their price on the search page and the product page, labelled.
        await give_card(db, customer_id)
        page = (await shopper.get("/shop/search", params={"q": name})).text
        assert tile_price(page, slug) == "25,00 €"
        assert "Jäsenhinta" in text_of(page, "member-price")
        product = (await shopper.get(f"/shop/p/{slug}")).text
        assert text_of(product, "price") == "25,00 €"
        assert text_of(product, "list-price") == "30,00 €"
        assert 'data-testid="member-teaser"' not in product
        fragment = (await shopper.get(f"/shop/p/{slug}/price", params={"variant": vid})).text
        assert text_of(fragment, "price") == "25,00 €"
        # The price sort orders by the member's own price as well.
        page = (await shopper.get("/shop/search", params={"q": name, "sort": "price_asc"})).text
        assert tile_price(page, slug) == "25,00 €"
        # The guest still sees everyone's price (no leak between sessions).
        page = (await guest.get("/shop/search", params={"q": name})).text
        assert tile_price(page, slug) == "30,00 €"


async def test_a_silver_price_is_not_a_members_price(
        db: Database, shop: Shop, client: httpx.AsyncClient) -> None:
    [v] = await make_variants(db, [4000], stock={shop.warehouse: 5})
    vid, slug = int(str(v["id"])), str(v["product_slug"])
    await member_campaign(db, vid, 1000, "silver")
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test",
                                 headers={"Accept-Language": "fi"}) as shopper:
        email = new_email()
        assert (await register_page(shopper, email)).status_code == 303
        await give_card(db, await sign_in(db, email))  # a member, not silver
        product = (await shopper.get(f"/shop/p/{slug}")).text
        assert text_of(product, "price") == "40,00 €"
        # No teaser either: a member's next step is spending, not joining.
        assert 'data-testid="member-teaser"' not in product


async def test_till_snapshot_carries_each_tiers_member_price(db: Database, shop: Shop) -> None:
    plain, silver, everyone = await make_variants(db, [1000, 2000, 3000],
                                                  stock={shop.store1: 5})
    await member_campaign(db, int(str(silver["id"])), 400, "silver", name="Hopea")
    async with db.uow() as uow:  # a campaign for everyone, bigger than the member price
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Kaikille", kind="fixed", value=700, variant_ids=[int(str(everyone["id"]))],
            starts_at=utcnow() - timedelta(hours=1)))
        await uow.commit()
    await member_campaign(db, int(str(everyone["id"])), 300, "member")
    now = utcnow()
    async with db.reader() as s:
        channel = await s.scalar(select(Channel).where(Channel.location_id == shop.store1,
                                                       Channel.kind == "pos"))
        assert channel is not None
        snap = await build_catalogue(s, channel, now, business_day(now))
    by_id = {v["id"]: v for v in snap.body["variants"]}
    assert "member_prices" not in by_id[plain["id"]]
    s_prices = by_id[silver["id"]]
    assert s_prices["campaign_discount_cents"] == 0
    assert set(s_prices["member_prices"]) == {"silver", "gold"}  # gold gets silver's too
    assert s_prices["member_prices"]["silver"]["campaign_discount_cents"] == 400
    assert s_prices["member_prices"]["silver"]["campaign_name"] == "Hopea"
    # Campaigns do not stack: everyone's 7 € beats the members' 3 €, nothing to add.
    assert by_id[everyone["id"]]["campaign_discount_cents"] == 700
    assert "member_prices" not in by_id[everyone["id"]]
    # A new member price changes the snapshot's ETag (tills fetch it again).
    gold_name = f"Gold {uuid.uuid4().hex[:6]}"
    await member_campaign(db, int(str(plain["id"])), 100, "gold", name=gold_name)
    async with db.reader() as s:
        again = await build_catalogue(s, channel, now, business_day(now))
    assert again.etag != snap.etag
    gold = {v["id"]: v for v in again.body["variants"]}[plain["id"]]["member_prices"]
    assert list(gold) == ["gold"]
    assert (gold["gold"]["campaign_discount_cents"], gold["gold"]["campaign_name"],
            gold["gold"]["campaign_ends_at"]) == (100, gold_name, None)
