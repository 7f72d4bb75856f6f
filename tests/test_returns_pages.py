"""The returns pages over HTTP (both databases): the till finds an order of another store
and takes a cash return with its credit receipt; the form's errors come back next to
their fields, all at once, changing nothing; a shopper starts a postal return from her
account and the back office receives it; the till offers an order number for a return."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select

from saumaton.checkout.pickup import pickup_code
from saumaton.config import Settings
from saumaton.customers.services import CustomerIn, create_customer
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order, OrderLine
from saumaton.returns.models import Return
from tests.support import Shop, csrf_of, staff_login, text_of
from tests.test_returns import on_hand, till_sale
from tests.test_till_api import open_drawer


async def returned(db: Database, order_id: int) -> list[int]:
    async with db.reader() as s:
        return list((await s.scalars(select(OrderLine.returned_quantity).where(
            OrderLine.order_id == order_id).order_by(OrderLine.line_no))).all())


async def test_cash_return_at_another_store_with_credit_receipt(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    order_id, [vid, _] = await till_sale(db, shop, [1999, 1000], qty=2)
    await open_drawer(db, shop.store2)
    await staff_login(web, shop, "cashier2")
    number = f"{order_id:06d}"

    r = await web.get("/pos/store-2/returns", params={"q": number})
    assert r.status_code == 303
    assert r.headers["location"] == f"/pos/store-2/returns/orders/{order_id}"
    page = (await web.get(r.headers["location"])).text
    assert text_of(page, "order-number") == number
    assert text_of(page, "order-where") == "Store Helsinki"
    assert (text_of(page, "sold-1"), text_of(page, "returned-1"),
            text_of(page, "returnable-1")) == ("2", "0", "2")
    assert text_of(page, "window").startswith("Palautusaika on auki")
    token = csrf_of(page)
    key = re.search(r'name="key" value="([^"]+)"', page)
    assert key

    # Nothing chosen, no reason, letters as a quantity: every error at once, nothing done.
    r = await web.post(f"/pos/store-2/returns/orders/{order_id}", data={
        "csrf_token": token, "key": key[1], "qty-1": "", "qty-2": "x",
        "refund_method": "cash"})
    assert r.status_code == 422
    assert text_of(r.text, "error-qty-2") == "Anna kokonaisluku 0–2."
    assert text_of(r.text, "error-reason") == "Valitse palautuksen syy."
    r = await web.post(f"/pos/store-2/returns/orders/{order_id}", data={
        "csrf_token": token, "key": key[1], "qty-1": "3", "reason": "Does not suit me",
        "refund_method": "cash"})
    assert r.status_code == 422
    assert text_of(r.text, "error-qty-1") == "Tältä riviltä voi palauttaa enintään 2."
    assert await returned(db, order_id) == [0, 0]

    before = await on_hand(db, vid, shop.store2)
    r = await web.post(f"/pos/store-2/returns/orders/{order_id}", data={
        "csrf_token": token, "key": key[1], "qty-1": "1", "condition-1": "shelf",
        "reason": "Does not suit me", "refund_method": "cash"})
    assert r.status_code == 303, r.text
    assert await returned(db, order_id) == [1, 0]
    assert await on_hand(db, vid, shop.store2) == before + 1
    receipt = (await web.get(r.headers["location"])).text
    assert text_of(receipt, "return-done") == "Palautus tehty. Hyvitys: 19,99 €."
    assert text_of(receipt, "cash-note") == "Anna kassasta 20,00 €."  # rounded
    assert text_of(receipt, "credit-total") == "-19,99 €"
    assert text_of(receipt, "credited-order") == number
    assert text_of(receipt, "credit-vat-row").startswith("25,5 %")
    assert "-19,99 €" in text_of(receipt, "credit-vat-row")
    # The same form sent again (a double click): the same return, not a second one.
    again = await web.post(f"/pos/store-2/returns/orders/{order_id}", data={
        "csrf_token": token, "key": key[1], "qty-1": "1", "condition-1": "shelf",
        "reason": "Does not suit me", "refund_method": "cash"})
    assert again.headers["location"] == r.headers["location"]
    assert await returned(db, order_id) == [1, 0]

    # E-mail the credit receipt: a bad address is said next to the field.
    url = r.headers["location"].split("?")[0]
    bad = await web.post(f"{url}/email", data={"csrf_token": token, "email": "nope"})
    assert bad.status_code == 422 and text_of(bad.text, "credit-email-error")
    ok = await web.post(f"{url}/email", data={"csrf_token": token, "email": "a@example.fi"})
    assert ok.status_code == 303
    async with db.reader() as s:
        mail = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.kind == "credit_receipt", OutgoingMail.to_addr == "a@example.fi")
            .order_by(OutgoingMail.id.desc()))).first()
    assert mail is not None and "Hyvityskuitti" in mail.body_text
    assert "-19,99\xa0€" in mail.body_text


async def test_search_by_phone_lists_orders_and_says_when_nothing_matches(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    await staff_login(web, shop, "cashier1")
    # The QR of an order e-mail (the pickup code) opens its order.
    order_id, _ = await till_sale(db, shop, [300])
    code = pickup_code(order_id, settings.resolved_secret_key())
    r = await web.get("/pos/store-1/returns", params={"q": code})
    assert r.headers["location"] == f"/pos/store-1/returns/orders/{order_id}"
    # Scanned into the till, the QR goes to the pickups; nothing waiting there: the
    # page offers the order for a return.
    page = (await web.get("/pos/store-1/pickups/find", params={"q": code})).text
    assert f'href="/pos/store-1/returns?q={code}"' in page
    # So does the till receipt's number.
    async with db.reader() as s:
        receipt_no = await s.scalar(select(Order.receipt_no).where(Order.id == order_id))
    assert receipt_no
    r = await web.get("/pos/store-1/returns", params={"q": receipt_no})
    assert r.headers["location"] == f"/pos/store-1/returns/orders/{order_id}"
    r = await web.get("/pos/store-1/returns", params={"q": "999999999"})
    assert r.status_code == 404
    assert text_of(r.text, "return-q-error") == "Mikään tilaus ei vastaa hakua 999999999."
    r = await web.get("/pos/store-1/returns", params={"q": ""})
    assert text_of(r.text, "return-q-error").startswith("Skannaa kuitin koodi")
    phone = f"040{uuid.uuid4().int % 10**7:07d}"
    from saumaton.core.actor import SYSTEM
    async with db.uow() as uow:
        c = await create_customer(uow, SYSTEM, CustomerIn(first_name="Pia", last_name="P",
                                                          phone=phone))
        await uow.commit()
    first, _ = await till_sale(db, shop, [500], customer_id=c.id)
    second, _ = await till_sale(db, shop, [700], customer_id=c.id)
    r = await web.get("/pos/store-1/returns", params={"q": phone})
    assert r.status_code == 200
    listed = re.findall(r'data-testid="return-open-(\d+)"', r.text)
    assert listed == [f"{second:06d}", f"{first:06d}"]


async def test_shopper_starts_a_post_return_and_back_office_receives_it(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    from tests.test_returns_browser import paid_account_order

    shopper = await paid_account_order(db, shop)
    async with httpx.AsyncClient(transport=web._transport, base_url="http://test") as me:
        await shopper.sign_in(me)
        page = (await me.get(f"/account/orders/{shopper.number}")).text
        assert 'data-testid="return-items"' in page
        form = (await me.get(f"/account/orders/{shopper.number}/return")).text
        token = csrf_of(form)
        key = re.search(r'name="key" value="([^"]+)"', form)
        assert key
        r = await me.post(f"/account/orders/{shopper.number}/return", data={
            "csrf_token": token, "key": key[1], "refund_method": "original"})
        assert r.status_code == 422
        assert text_of(r.text, "error-lines") == "Valitse ainakin yksi palautettava tuote."
        assert text_of(r.text, "error-reason") == "Valitse palautuksen syy."
        r = await me.post(f"/account/orders/{shopper.number}/return", data={
            "csrf_token": token, "key": key[1], "qty-1": "1",
            "reason": "Wrong shade or size", "refund_method": "original"})
        assert r.status_code == 303, r.text
        code = r.headers["location"].split("/")[-1].split("?")[0]
        page = (await me.get(r.headers["location"])).text
        assert text_of(page, "return-code") == code
        assert "<svg" in page  # the QR
    async with db.reader() as s:
        ret = await s.scalar(select(Return).where(Return.code == code))
        mail = await s.scalar(select(OutgoingMail).where(OutgoingMail.reference == code))
    assert ret is not None and ret.status == "requested" and ret.kind == "post"
    assert mail is not None and code in mail.body_text

    await staff_login(web, shop, "manager")
    listing = await web.get("/backoffice/returns", params={"q": code})
    assert listing.status_code == 303
    page = (await web.get(listing.headers["location"])).text
    r = await web.post(listing.headers["location"], data={
        "csrf_token": csrf_of(page), "location": str(shop.warehouse), "condition-1": "shelf"})
    assert r.status_code == 303, r.text
    done = (await web.get(r.headers["location"])).text
    assert text_of(done, "return-done").startswith("Vastaanotettu ja hyvitetty")
    assert text_of(done, "credit-total").startswith("-")
    async with db.reader() as s:
        ret = await s.scalar(select(Return).where(Return.code == code))
        order = await s.get(Order, shopper.order_id)
    assert ret is not None and ret.status == "completed"
    assert ret.location_id == shop.warehouse
    assert order is not None and order.refunded_cents > 0


async def test_closed_window_needs_a_managers_reason(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from saumaton.core.clock import utcnow

    order_id, _ = await till_sale(db, shop, [1500])
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order_id).values(
            created_at=utcnow() - timedelta(days=40)))
        await uow.commit()
    await open_drawer(db, shop.store1)
    await staff_login(web, shop, "cashier1")
    url = f"/pos/store-1/returns/orders/{order_id}"
    page = (await web.get(url)).text
    assert text_of(page, "window").startswith("Palautusaika päättyi")
    assert text_of(page, "override-needs-manager").startswith("Vain esihenkilö")
    form = {"csrf_token": csrf_of(page), "key": "k-" + uuid.uuid4().hex, "qty-1": "1",
            "reason": "Faulty or damaged", "refund_method": "cash"}
    r = await web.post(url, data=form)
    assert r.status_code == 409
    assert text_of(r.text, "error-override-reason").startswith("Palautusaika on päättynyt")
    assert await returned(db, order_id) == [0]

    web.cookies.clear()
    await staff_login(web, shop, "manager")
    page = (await web.get(url)).text
    assert 'data-testid="override-reason"' in page
    r = await web.post(url, data={**form, "csrf_token": csrf_of(page),
                                  "override_reason": "Viallinen erä, vaihdettu"})
    assert r.status_code == 303, r.text
    assert await returned(db, order_id) == [1]
    async with db.reader() as s:
        ret = await s.scalar(select(Return).where(Return.order_id == order_id))
    assert ret is not None and ret.override_reason == "Viallinen erä, vaihdettu"


async def test_service_desk_starts_a_post_return_for_the_customer(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    from tests.test_returns_browser import paid_account_order

    shopper = await paid_account_order(db, shop)
    await staff_login(web, shop, "service")
    url = f"/service/orders/{shopper.order_id}/return"
    page = (await web.get(url)).text
    assert text_of(page, "returnable-1") == "2"
    r = await web.post(url, data={"csrf_token": csrf_of(page), "key": "s-" + uuid.uuid4().hex,
                                  "qty-1": "5", "reason": "Other", "refund_method": "original"})
    assert r.status_code == 422
    assert text_of(r.text, "error-qty-1") == "Tältä riviltä voi palauttaa enintään 2."
    assert text_of(r.text, "error-reason-other") == "Kerro syy muutamalla sanalla."
    r = await web.post(url, data={"csrf_token": csrf_of(page), "key": "s-" + uuid.uuid4().hex,
                                  "qty-1": "2", "reason": "Other",
                                  "reason_other": "Allergic reaction",
                                  "refund_method": "store_credit"})
    assert r.status_code == 303, r.text
    page = (await web.get(r.headers["location"])).text
    code = text_of(page, "return-code")
    async with db.reader() as s:
        ret = await s.scalar(select(Return).where(Return.code == code))
        mail = await s.scalar(select(OutgoingMail).where(OutgoingMail.reference == code))
    assert ret is not None and (ret.kind, ret.channel, ret.status) == (
        "post", "service", "requested")
    assert ret.reason == "Allergic reaction" and ret.refund_method == "store_credit"
    assert mail is not None and mail.to_addr == shopper.email
    assert await returned(db, shopper.order_id) == [2]  # set aside for the parcel


async def test_a_store_receives_a_postal_return_with_a_damaged_item(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    from tests.test_returns_browser import paid_account_order

    shopper = await paid_account_order(db, shop)
    async with httpx.AsyncClient(transport=web._transport, base_url="http://test") as me:
        await shopper.sign_in(me)
        form = (await me.get(f"/account/orders/{shopper.number}/return")).text
        r = await me.post(f"/account/orders/{shopper.number}/return", data={
            "csrf_token": csrf_of(form), "key": "a-" + uuid.uuid4().hex, "qty-1": "2",
            "reason": "Faulty or damaged", "refund_method": "store_credit"})
        assert r.status_code == 303, r.text
        code = r.headers["location"].split("/")[-1].split("?")[0]
    await open_drawer(db, shop.store2)
    await staff_login(web, shop, "cashier2")
    waiting = (await web.get("/pos/store-2/returns/receive")).text
    assert f'data-testid="open-return-{code}"' in waiting
    r = await web.get("/pos/store-2/returns/receive", params={"q": "NOSUCHCODE"})
    assert text_of(r.text, "receive-q-error") == \
        "Mikään matkalla oleva palautus ei vastaa hakua NOSUCHCODE."
    r = await web.get("/pos/store-2/returns/receive", params={"q": code})
    assert r.status_code == 303
    page = (await web.get(r.headers["location"])).text
    stock = await on_hand(db, shopper.variant_id, shop.store2)
    r = await web.post(r.headers["location"], data={"csrf_token": csrf_of(page),
                                                    "condition-1": "damaged"})
    assert r.status_code == 303, r.text
    receipt = (await web.get(r.headers["location"])).text
    assert text_of(receipt, "store-credit-note").endswith("lisätty asiakkaan hyvityssaldoon.")
    assert "vaurioitunut" in text_of(receipt, "credit-line")
    assert await on_hand(db, shopper.variant_id, shop.store2) == stock  # written off
    # Receiving it again changes nothing: the page shows the completed return.
    again = await web.get(r.headers["location"].split("?")[0])
    assert again.status_code == 200
