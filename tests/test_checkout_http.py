"""The whole web purchase over real HTTP: cart, checkout, the Paytrail simulator,
signed return and callbacks, order status page."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from sqlalchemy import func, select

from saumaton.db.uow import Database
from saumaton.inventory.services import verify_ledger
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order, OrderLine
from saumaton.payments.models import Payment
from tests.support import Server, Shop, make_variants


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


class Shopper:
    """One browser: cookies, CSRF token, and the steps of a purchase."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30.0)
        self.token = ""

    async def __aenter__(self) -> Shopper:
        self.token = csrf((await self.http.get("/staff/login")).text)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def add(self, variant_id: int, quantity: int = 1) -> httpx.Response:
        return await self.http.post("/shop/cart/add", data={
            "csrf_token": self.token, "variant_id": str(variant_id), "quantity": str(quantity)})

    async def checkout(self, **fields: str) -> httpx.Response:
        page = await self.http.get("/shop/checkout")
        assert page.status_code == 200, page.text
        key = re.search(r'name="key" value="([^"]+)"', page.text)
        assert key
        data = {"csrf_token": self.token, "key": key.group(1), "email": "anna@example.fi",
                "first_name": "Anna", "last_name": "Asiakas", "phone": "0401234567",
                "delivery": "home", "address_name": "Anna Asiakas",
                "street": "Mannerheimintie 1", "postcode": "00100", "city": "Helsinki"}
        data.update(fields)
        return await self.http.post("/shop/checkout", data=data)

    async def pay(self, payment_page: str, outcome: str = "success",
                  callbacks: int = 1) -> httpx.Response:
        """At the simulator: choose the outcome; returns its redirect back to the shop."""
        page = await self.http.get(payment_page)
        assert page.status_code == 200
        r = await self.http.post(f"{payment_page}/{outcome}?callbacks={callbacks}",
                                 data={"provider": "osuuspankki"})
        assert r.status_code == 303
        return r


async def order_of(db: Database, number: str) -> Order:
    async with db.reader() as s:
        order = await s.get(Order, int(number))
        assert order is not None
        return order


async def test_guest_purchase_through_paytrail(server: Server, db: Database,
                                               shop: Shop) -> None:
    [v] = await make_variants(db, [1990], stock={shop.warehouse: 4})
    async with Shopper(server.base_url) as b:
        r = await b.add(int(str(v["id"])), 2)
        assert r.status_code == 303
        assert (await b.http.get("/shop/cart/count")).text == "2"
        r = await b.checkout()
        assert r.status_code == 303, r.text
        href = r.headers["location"]
        assert href.startswith(server.base_url + "/paytrail-sim/pay/")
        back = await b.pay(href)
        back_url = back.headers["location"]
        assert back_url.startswith(server.base_url + "/shop/checkout/return/success?")
        # The return answers with the status page itself (no redirect to it) ...
        page = await b.http.get(back_url)
        assert page.status_code == 200
        assert 'data-status="paid"' in page.text
        number = re.search(r'data-testid="order-number">(\d+)<', page.text)
        assert number
        # ... and the page's own link (bookmarks, the e-mail) shows the same order.
        token = (await order_of(db, number.group(1))).access_token
        own = await b.http.get(f"/shop/orders/{number.group(1)}?t={token}")
        assert own.status_code == 200 and 'data-status="paid"' in own.text
        assert (await b.http.get(f"/shop/orders/{number.group(1)}?t=wrong")).status_code \
            == 404
        assert (await b.http.get("/shop/cart/count")).text == ""  # the cart is done
    order = await order_of(db, number.group(1))
    assert order.status == "paid" and order.total_cents == 2 * 1990 + 590
    async with db.reader() as s:
        assert await verify_ledger(s) == []
        # the confirmation was queued with the payment, in the same transaction
        mail = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.kind == "order_confirmation",
            OutgoingMail.reference == number.group(1)))).one()
    assert mail.to_addr == "anna@example.fi" and number.group(1) in mail.body_text


async def test_tampered_return_is_rejected_and_changes_nothing(
        server: Server, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1200], stock={shop.warehouse: 1})
    async with Shopper(server.base_url) as b:
        await b.add(int(str(v["id"])))
        href = (await b.checkout()).headers["location"]
        back = (await b.pay(href, callbacks=0)).headers["location"]
        params = dict(parse_qsl(urlsplit(back).query))
        forged = dict(params, **{"checkout-amount": "1"})
        r = await b.http.get("/shop/checkout/return/success?" + urlencode(forged))
        assert r.status_code == 400
        r = await b.http.get("/shop/checkout/callback/success?" + urlencode(forged))
        assert r.status_code == 400
        unsigned = {k: v for k, v in params.items() if k != "signature"}
        r = await b.http.get("/shop/checkout/callback/success?" + urlencode(unsigned))
        assert r.status_code == 400
        order = await order_of(db, params["checkout-reference"])
        assert order.status == "pending" and order.paid_cents == 0


async def test_callback_three_times_gives_one_payment(server: Server, db: Database,
                                                      shop: Shop) -> None:
    [v] = await make_variants(db, [1200], stock={shop.warehouse: 1})
    async with Shopper(server.base_url) as b:
        await b.add(int(str(v["id"])))
        href = (await b.checkout()).headers["location"]
        back = (await b.pay(href, callbacks=0)).headers["location"]
        params = dict(parse_qsl(urlsplit(back).query))
        callback = "/shop/checkout/callback/success?" + urlencode(params)
        answers = await asyncio.gather(*(b.http.get(callback) for _ in range(3)))
        assert [a.status_code for a in answers] == [200, 200, 200]
        await b.http.get(back)  # and the shopper's own redirect after them
    order = await order_of(db, params["checkout-reference"])
    assert order.status == "paid"
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Payment)
                              .where(Payment.order_id == order.id)) == 1


async def test_hundred_concurrent_checkouts_for_twenty_units(
        server: Server, db: Database, shop: Shop) -> None:
    [v] = await make_variants(db, [1000], stock={shop.warehouse: 20})
    vid = int(str(v["id"]))

    async def buyer(i: int) -> str:
        async with Shopper(server.base_url) as b:
            added = await b.add(vid)
            if added.status_code == 409:  # all units already held by other checkouts
                return "sold_out"
            assert added.status_code == 303
            r = await b.checkout(email=f"buyer{i}@example.fi")
            if r.status_code != 303:
                assert r.status_code == 409, r.text
                return "sold_out"
            back = (await b.pay(r.headers["location"], callbacks=0)).headers["location"]
            assert (await b.http.get(back)).status_code == 200
            return "paid"

    results = await asyncio.gather(*(buyer(i) for i in range(100)))
    assert results.count("paid") == 20 and results.count("sold_out") == 80
    async with db.reader() as s:
        from saumaton.inventory.models import StockLevel
        lv = (await s.scalars(select(StockLevel).where(
            StockLevel.variant_id == vid, StockLevel.location_id == shop.warehouse))).one()
        assert (lv.on_hand, lv.reserved) == (0, 0)
        # this variant's orders only: other tests' web orders may cost the same
        paid = await s.scalar(select(func.count(func.distinct(Order.id))).select_from(Order)
                              .join(Payment, Payment.order_id == Order.id)
                              .join(OrderLine, OrderLine.order_id == Order.id)
                              .where(Order.status == "paid", OrderLine.variant_id == vid,
                                     Payment.amount_cents == 1000 + 590))
        assert paid == 20
        assert await verify_ledger(s) == []
