"""Upsell: the one suggestion engine (refills, her shade, bought together) at a store and
on the web, the "Goes well with" block of the cart and checkout pages, the one-click add
marking the line `upsell` through to the placed order, the till's lines, and the add-on
sales per channel in the reports."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from saumaton.catalogue.models import Variant
from saumaton.checkout import cart as carts
from saumaton.checkout.models import CartLine
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers.models import Customer, CustomerPreference
from saumaton.db.uow import Database
from saumaton.inventory.services import GIFT_CARD_UNITS, live_availability
from saumaton.orders.models import Order, OrderLine
from saumaton.orders.schemas import LineIn, OrderIn
from saumaton.orders.services import business_day, get_order, place_order
from saumaton.orders.suggestions import cached_suggestions, suggestions
from saumaton.payments.services import PaymentIn
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.reports.addons import addon_sales
from saumaton.reports.period import Period
from tests.support import Shop, csrf_of, make_variants, pay_web_order, staff_login
from tests.test_till_api import headers, till


async def store_sale(db: Database, lines: list[tuple[int, str]], customer_id: int | None = None,
                     days_ago: int = 0) -> int:
    """A card sale at store 1's till of (variant, source) lines."""
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=v, quantity=1, source=src) for v, src in lines],  # type: ignore[arg-type]
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"up-{uuid.uuid4().hex}")
    if days_ago:
        async with db.uow() as uow:
            await uow.session.execute(update(Order).where(Order.id == order.id).values(
                created_at=utcnow() - timedelta(days=days_ago)))
            await uow.commit()
    return order.id


async def new_customer(db: Database, shade: str | None = None) -> int:
    async with db.uow() as uow:
        customer = Customer(first_name="Sävy", last_name="Asiakas")
        uow.session.add(customer)
        await uow.session.flush()
        if shade is not None:
            uow.session.add(CustomerPreference(customer_id=customer.id, key="shade",
                                               value=shade))
        await uow.commit()
        return customer.id


def vid(v: dict[str, object]) -> int:
    return int(str(v["id"]))


async def test_engine_refills_shade_and_together_at_a_store_and_on_the_web(
        db: Database, shop: Shop) -> None:
    stock = {shop.store1: 10, shop.warehouse: 10}
    a, b, refill = [vid((await make_variants(db, [1000 + i * 100], stock=stock))[0])
                    for i in range(3)]
    # A product in two shades; the customer's shade is the second one's name.
    shade = f"Sävy-{uuid.uuid4().hex[:6]}"
    other, mine = (vid(v) for v in await make_variants(db, [2500, 2500], stock=stock))
    web_only = vid((await make_variants(db, [900], stock={shop.warehouse: 3}))[0])
    async with db.uow() as uow:
        await uow.session.execute(update(Variant).where(Variant.id == mine).values(name=shade))
        await uow.commit()
    cid = await new_customer(db, shade.lower())  # matched without case
    for _ in range(2):
        await store_sale(db, [(a, ""), (b, "")])
    for _ in range(3):
        await store_sale(db, [(a, ""), (web_only, "")])
    await store_sale(db, [(refill, "")], cid, days_ago=70)
    await store_sale(db, [(refill, "")], cid, days_ago=40)

    async with db.reader() as s:
        at_store = await suggestions(s, shop.store1, cid, [a], limit=5)
        on_web = await suggestions(s, None, cid, [a], limit=5)
    assert [(g.variant_id, g.reason) for g in at_store] == [
        (refill, "repeat"), (mine, "shade"), (b, "together")]  # web_only: not at store 1
    assert other not in [g.variant_id for g in on_web]  # the other shade is not hers
    assert [(g.variant_id, g.reason) for g in on_web] == [
        (refill, "repeat"), (mine, "shade"), (web_only, "together"), (b, "together")]
    assert on_web[2].available == 3 - 3 + 3  # the warehouse's 3 (the sales were at store 1)
    assert on_web[1].reason_text == "in her shade"
    # No customer: only what is bought together.
    async with db.reader() as s:
        guest = await suggestions(s, None, None, [a])
        assert [g.reason for g in guest] == ["together", "together"]
        # The process's copy answers the same.
        assert await cached_suggestions(s, None, None, [a]) == guest


async def test_engine_stock_variants_and_prices_of_the_candidates(
        db: Database, shop: Shop) -> None:
    """What each candidate's own rows decide, as the inventory and price functions say:
    on the web a gift card is available (it keeps no stock) and so is what only a
    pickup store has; at a store only what is on its shelf. An inactive variant is not
    suggested, nor a second variant of the same product; a campaign for the web prices
    the web's suggestion only."""
    [a] = await make_variants(db, [1000], stock={shop.store1: 50})
    [filler] = await make_variants(db, [100], stock={shop.store1: 50})
    [gift] = await make_variants(db, [2500], gift_card=True)  # no level rows anywhere
    [pickup] = await make_variants(db, [1500], stock={shop.store2: 4})
    both = {shop.store1: 3, shop.warehouse: 3}
    twin, twin2 = await make_variants(db, [700, 800], stock=both)  # one product
    [gone] = await make_variants(db, [900], stock=both)
    [cheap] = await make_variants(db, [2000], stock=both)
    # Sold with A: the more often, the earlier suggested (the lines rewritten from a
    # filler's: what a sale of each would leave, without selling what a till cannot).
    for other, times in ((gift, 6), (pickup, 5), (twin, 4), (twin2, 4), (gone, 3),
                         (cheap, 2)):
        for _ in range(times):
            order_id = await store_sale(db, [(vid(a), ""), (vid(filler), "")])
            async with db.uow() as uow:
                await uow.session.execute(update(OrderLine).where(
                    OrderLine.order_id == order_id, OrderLine.variant_id == vid(filler))
                    .values(variant_id=vid(other)))
                await uow.commit()
    async with db.uow() as uow:
        await uow.session.execute(update(Variant).where(Variant.id == vid(gone))
                                  .values(active=False))
        await create_campaign(uow, SYSTEM, CampaignIn(
            name="Verkkoale", kind="percent", value=2000, variant_ids=[vid(cheap)],
            starts_at=utcnow() - timedelta(days=1), channel_codes=["web"]))
        await uow.commit()

    async with db.reader() as s:
        on_web = await suggestions(s, None, None, [vid(a)], limit=10)
        at_store = await suggestions(s, shop.store1, None, [vid(a)], limit=10)
        stock = await live_availability(db, s, [vid(gift), vid(pickup), vid(twin)],
                                        [vid(gift)])
    assert [(g.variant_id, g.score) for g in on_web] == [
        (vid(gift), 6), (vid(pickup), 5), (vid(twin), 4), (vid(cheap), 2)]
    assert [g.available for g in on_web[:3]] == [
        stock[vid(v)].one_order_max for v in (gift, pickup, twin)]
    assert on_web[0].available == GIFT_CARD_UNITS and on_web[1].available == 4
    assert [(g.list_cents, g.price_cents) for g in on_web] == [
        (2500, 2500), (1500, 1500), (700, 700), (2000, 1600)]
    assert {g.with_name for g in on_web} == {
        f"Product {str(a['product_slug'])[2:]} – V0"}
    # Store 1 has no level row of the gift card nor of the pickup store's variant.
    assert [(g.variant_id, g.available, g.price_cents) for g in at_store] == [
        (vid(twin), 3, 700), (vid(cheap), 3, 2000)]


async def test_cart_and_checkout_show_add_ons_and_one_click_marks_the_order_line(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    stock = {shop.warehouse: 10, shop.store1: 10}
    a = (await make_variants(db, [1990], stock=stock))[0]
    b = (await make_variants(db, [690], stock=stock))[0]
    for _ in range(2):
        await store_sale(db, [(vid(a), ""), (vid(b), "")])
    product = await web.get(f"/shop/p/{a['product_slug']}", params={"lang": "en"})
    r = await web.post("/shop/cart/add", data={"csrf_token": csrf_of(product.text),
                                               "variant_id": str(vid(a))})
    assert r.status_code == 303
    cart = await web.get("/shop/cart")
    assert 'data-testid="suggestions"' in cart.text and "Goes well with" in cart.text
    assert f'data-testid="add-suggestion-{vid(b)}"' in cart.text
    page = await web.get("/shop/checkout")
    assert f'data-testid="add-suggestion-{vid(b)}"' in page.text
    assert 'name="source" value="upsell"' in page.text and "<script>" not in page.text
    r = await web.post("/shop/cart/add", data={
        "csrf_token": csrf_of(page.text), "variant_id": str(vid(b)), "quantity": "1",
        "source": "upsell", "back": "checkout"})
    assert r.status_code == 303 and r.headers["location"] == "/shop/checkout"
    async with db.reader() as s:
        sources = dict((await s.execute(select(CartLine.variant_id, CartLine.source).where(
            CartLine.variant_id.in_([vid(a), vid(b)])))).all())
    assert sources == {vid(a): "", vid(b): "upsell"}
    # A made-up source is refused, nothing changes.
    bad = await web.post("/shop/cart/add", data={
        "csrf_token": csrf_of(page.text), "variant_id": str(vid(b)), "source": "x"})
    assert bad.status_code == 422

    page = await web.get("/shop/checkout")
    assert f'data-testid="add-suggestion-{vid(b)}"' not in page.text  # in the cart now
    key = re.search(r'name="key" value="([^"]+)"', page.text)
    assert key
    email = f"lisa-{uuid.uuid4().hex[:6]}@example.fi"
    await web.post("/shop/checkout", data={
        "csrf_token": csrf_of(page.text), "key": key[1], "email": email,
        "first_name": "Lisa", "last_name": "Myynti", "phone": "0401234567",
        "delivery": "home", "address_name": "Lisa Myynti", "street": "Tie 1",
        "postcode": "00100", "city": "Helsinki"})
    async with db.reader() as s:
        order_id = await s.scalar(select(Order.id).where(Order.email == email))
        assert order_id is not None
        lines = dict((await s.execute(select(OrderLine.variant_id, OrderLine.source)
                                      .where(OrderLine.order_id == order_id))).all())
        order = await get_order(s, order_id)
    assert lines == {vid(a): "", vid(b): "upsell"}
    assert {ln.variant_id: ln.source for ln in order.lines} == lines
    today = business_day(utcnow())
    async with db.reader() as s:
        before = {r.channel: r for r in await addon_sales(
            s, Period(today, today), tz=settings.timezone)}
    await pay_web_order(db, settings, order)  # counted once paid
    async with db.reader() as s:
        after = {r.channel: r for r in await addon_sales(
            s, Period(today, today), tz=settings.timezone)}
    was = before.get("Webshop")
    assert after["Webshop"].units - (was.units if was else 0) == 1
    assert after["Webshop"].sales_cents - (was.sales_cents if was else 0) == 690


async def test_add_ons_counted_per_channel_and_the_report_page(
        client: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    today = business_day(utcnow())
    async with db.reader() as s:
        before = {r.channel_id: r for r in await addon_sales(
            s, Period(today, today), tz=settings.timezone)}
    [a] = await make_variants(db, [2000], stock={shop.store1: 10})
    [b] = await make_variants(db, [500], stock={shop.store1: 10})
    await store_sale(db, [(vid(a), ""), (vid(b), "upsell")])
    await store_sale(db, [(vid(a), "")])
    async with db.reader() as s:
        after = {r.channel_id: r for r in await addon_sales(
            s, Period(today, today), tz=settings.timezone)}
        till = await s.scalar(select(Order.channel_id).where(Order.id == await s.scalar(
            select(OrderLine.order_id).where(OrderLine.variant_id == vid(b)))))
    assert till is not None
    was = before.get(till)
    row = after[till]
    assert row.units - (was.units if was else 0) == 1
    assert row.sales_cents - (was.sales_cents if was else 0) == 500
    assert row.orders - (was.orders if was else 0) == 1
    assert row.goods_cents - (was.goods_cents if was else 0) == 4500
    assert row.share_bp is not None and 0 < row.share_bp <= 10_000
    # The back office's sales report shows the figure, and its CSV (the owner).
    c = httpx.AsyncClient(transport=client._transport, base_url="http://test",
                          headers={"Accept-Language": "en"})
    await staff_login(c, shop, "owner")
    query = f"since={today.isoformat()}&until={today.isoformat()}"
    page = await c.get(f"/backoffice/reports?{query}")
    assert page.status_code == 200
    assert 'data-testid="figure-addons"' in page.text
    assert "Add-ons per channel" in page.text
    r = await c.get(f"/backoffice/reports?{query}&format=csv&figure=addons")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    head = r.content.decode("utf-8").splitlines()[0]
    assert "addon_sales_eur" in head and "addon_units" in head


async def test_the_till_shows_add_ons_for_the_sale_and_records_the_upsell_line(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    [a] = await make_variants(db, [1500], stock={shop.store1: 10})
    [b] = await make_variants(db, [450], stock={shop.store1: 10})
    for _ in range(2):
        await store_sale(db, [(vid(a), ""), (vid(b), "")])
    cfg = await till(web, shop, db, "cashier1", "store-1")
    assert cfg["strings"]["addon_together"] == "Ostetaan usein yhdessä"
    page = await web.get("/pos/store-1")
    assert 'data-testid="till-addons"' in page.text
    r = await web.get("/pos/store-1/api/suggestions", params={"variant": [str(vid(a))]})
    assert r.status_code == 200, r.text
    got = r.json()["suggestions"]
    assert got[0]["variant_id"] == vid(b) and got[0]["reason"] == "together"
    assert got[0]["price_cents"] == 450
    # Bad input: a clear 422.
    bad = await web.get("/pos/store-1/api/suggestions", params={"variant": ["x"]})
    assert bad.status_code == 422
    r = await web.post("/pos/store-1/api/sales", headers=headers(cfg), json={
        "key": uuid.uuid4().hex, "session_id": cfg["sessionId"],
        "lines": [{"variant_id": vid(a)}, {"variant_id": vid(b), "source": "upsell"}],
        "payments": [{"method": "card", "terminal_confirmed": True}]})
    assert r.status_code == 201, r.text
    order = r.json()["order"]
    assert [ln["source"] for ln in order["lines"]] == ["", "upsell"]
    async with db.reader() as s:
        stored = dict((await s.execute(select(OrderLine.variant_id, OrderLine.source)
                                       .where(OrderLine.order_id == order["id"]))).all())
    assert stored == {vid(a): "", vid(b): "upsell"}


async def test_an_upsell_line_stays_one_when_the_cart_merges_on_sign_in(
        db: Database, shop: Shop) -> None:
    [a] = await make_variants(db, [1000], stock={shop.warehouse: 5})
    [b] = await make_variants(db, [300], stock={shop.warehouse: 5})
    cid = await new_customer(db)
    async with db.uow() as uow:
        await carts.add_to_cart(uow, None, cid, vid(a), 1)
        await uow.commit()
    async with db.uow() as uow:
        anon = await carts.add_to_cart(uow, None, None, vid(b), 1, "upsell")
        await uow.commit()
    async with db.uow() as uow:
        token = await carts.merge_on_sign_in(uow, anon.token, cid)
        await uow.commit()
    async with db.reader() as s:
        assert await carts.sourced_cart_lines(s, token, cid) == [
            (vid(a), 1, ""), (vid(b), 1, "upsell")]
