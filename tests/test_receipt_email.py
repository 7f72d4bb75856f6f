"""Receipts by e-mail from the till (both databases): the form on the receipt, the mail
queued with everything the printed receipt has, errors next to the field."""

from __future__ import annotations

import html
import re
import uuid

import httpx
from sqlalchemy import func, select

from saumaton.config import Settings
from saumaton.core.actor import SYSTEM
from saumaton.customers.models import Customer, CustomerIdentity
from saumaton.db.uow import Database
from saumaton.mail.messages import receipt
from saumaton.mail.models import OutgoingMail
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut, PaymentOut
from saumaton.orders.services import place_order
from saumaton.payments.services import PaymentIn
from tests.support import Shop, make_variants
from tests.support import staff_login as login


def hidden(page: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m, f"no {name} in page"
    return html.unescape(m[1])




async def sale_with_customer(db: Database, shop: Shop) -> tuple[OrderOut, str, str]:
    [v, w] = await make_variants(db, [1990, 455], stock={shop.store1: 5})
    tag = uuid.uuid4().hex[:8]
    email = f"kuitti-{tag}@example.fi"
    async with db.uow() as uow:
        customer = Customer(first_name="Kaisa", last_name=f"Kuitti{tag}")
        uow.session.add(customer)
        await uow.session.flush()
        uow.session.add(CustomerIdentity(customer_id=customer.id, kind="email", value=email))
        await uow.commit()
        cid = customer.id
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=cid,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=2),
               LineIn(variant_id=int(str(w["id"])), quantity=1)],
        payments=[PaymentIn(method="cash", tendered_cents=5000)]), f"rc-{tag}")
    return order, f"Kaisa Kuitti{tag}", email


async def mails_for(db: Database, number: str) -> list[OutgoingMail]:
    async with db.reader() as s:
        return list((await s.scalars(select(OutgoingMail).where(
            OutgoingMail.kind == "receipt", OutgoingMail.reference == number)
            .order_by(OutgoingMail.id))).all())


async def test_receipt_is_emailed_from_the_till(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    order, name, email = await sale_with_customer(db, shop)
    await login(web, shop, "cashier1")
    url = f"/pos/store-1/receipt/{order.id}"
    page = (await web.get(url)).text
    assert 'data-testid="print-receipt"' in page and 'data-testid="receipt-email-form"' in page
    assert "pos-receipt.css" in page
    token = hidden(page, "csrf_token")

    # a typo: 422, the message next to the field, nothing queued
    r = await web.post(f"{url}/email", data={"email": "kaisa@", "csrf_token": token})
    assert r.status_code == 422
    assert 'data-testid="receipt-email-error"' in r.text
    assert 'aria-describedby="receipt-email-error"' in r.text
    assert 'value="kaisa@"' in r.text
    assert name in r.text  # the customer's name on the receipt
    assert await mails_for(db, order.number) == []
    # no CSRF token: refused
    r = await web.post(f"{url}/email", data={"email": email})
    assert r.status_code == 403
    assert await mails_for(db, order.number) == []

    r = await web.post(f"{url}/email", data={"email": email.upper(), "csrf_token": token})
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"{url}?emailed=")
    [mail] = await mails_for(db, order.number)
    # Queued, and the app's sender (woken by the commit) may have sent it already.
    assert mail.to_addr == email and mail.status in ("queued", "sent")
    # The receipt's number is its register's; the order number is on it too.
    assert order.receipt_no and order.receipt_no in mail.subject
    assert settings.business_name in mail.subject
    assert mail.subject.startswith("Kuitti")  # the store's default language: Finnish
    text = mail.body_text
    for needed in (settings.business_name, settings.business_id, order.number,
                   f"Kuitin nro: {order.receipt_no}", name,
                   "2 × 19,90", "4,55", "44,35", "Maksettu käteisellä 44,35", "ALV 25,5 %"):
        assert needed in text, (needed, text)
    assert "Vaihtoraha 5,65" in text  # 50,00 − 44,35
    assert order.number in mail.body_html and name in mail.body_html
    assert order.receipt_no in mail.body_html
    assert settings.business_id in mail.body_html

    shown = (await web.get(r.headers["location"])).text
    assert 'data-testid="receipt-emailed"' in shown and email in shown

    # another store's cashier cannot send this store's receipts
    async with httpx.AsyncClient(transport=web._transport, base_url="http://test") as other:
        await login(other, shop, "cashier2")
        page2 = (await other.get("/pos/store-2/pickups")).text
        r = await other.post(f"{url}/email", data={"email": email,
                                                   "csrf_token": hidden(page2, "csrf_token")})
        assert r.status_code == 403
    async with db.reader() as s:
        n = await s.scalar(select(func.count()).select_from(OutgoingMail).where(
            OutgoingMail.reference == order.number))
    assert n == 1


async def test_receipt_mail_shows_discounts_offline_number_and_unconfirmed_card(
        db: Database, shop: Shop, settings: Settings) -> None:
    order, name, _ = await sale_with_customer(db, shop)
    first = order.lines[0].model_copy(update={
        "discount_cents": 398, "manual_discount_cents": 398, "total_cents": 3582,
        "discount_reason": "Näyte-erä"})
    shown = order.model_copy(update={
        "lines": [first, *order.lines[1:]], "offline": True, "client_ref": "K1-000017",
        "discount_reason": "Kanta-asiakas",
        "payments": [PaymentOut(method="card", amount_cents=order.total_cents,
                                rounding_cents=0, tendered_cents=None, change_cents=0,
                                reference="", status="to_confirm")]})
    mail = receipt(shown, settings=settings, store_name="Store Helsinki",
                   store_address="Aleksanterinkatu 1", customer_name=name)
    for body in (mail.text, mail.html):
        assert "K1-000017" in body
        assert "Näyte-erä" in body and "−3,98" in body
        assert "Kanta-asiakas" in body
        assert "Kortti: vahvistetaan" in body
        assert name in body and "Store Helsinki" in body
    en = receipt(shown, settings=settings.model_copy(update={"default_language": "en"}),
                 store_name="Store Helsinki", customer_name=name)
    assert en.subject.startswith("Receipt") and "Card: to be confirmed" in en.text
