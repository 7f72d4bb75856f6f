"""Keep in touch (both databases): the after-purchase mail with the receipt and the NPS
question goes only to customers who allow marketing e-mail, once per order, and for
click & collect only once the order is handed over; the link's token is stored hashed
and answers once; scores outside 0–10 are refused; the answer lands on the timeline; a
GDPR erasure closes the link."""

from __future__ import annotations

import hashlib
import random
import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from saumaton.checkout.pickup import hand_over
from saumaton.checkout.services import CheckoutIn, place_web_order, record_payment_status
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, NotFound, ValidationFailed
from saumaton.customers.card import QuickCustomerIn, quick_create
from saumaton.customers.consents import set_consent
from saumaton.customers.gdpr import erase_customer
from saumaton.customers.services import CustomerOut
from saumaton.customers.timeline import timeline
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from saumaton.orders.schemas import LineIn, OrderIn, OrderOut
from saumaton.orders.services import place_order
from saumaton.payments.models import PaytrailPayment
from saumaton.payments.services import PaymentIn
from saumaton.service.models import NpsSurvey
from saumaton.service.nps import (
    SurveyClosed,
    answer_survey,
    due_orders,
    send_due,
    send_survey,
    survey_for_token,
)
from tests.support import Shop, csrf_of, make_variants

CASHIER = Actor(label="staff:test cashier", name="Kaisa Kassa",
                grants=(RoleGrant("cashier", None),))


async def customer(db: Database, *, consent: bool, email: bool = True) -> CustomerOut:
    async with db.uow() as uow:
        out = await quick_create(uow, CASHIER, QuickCustomerIn(
            phone=f"040 {random.randrange(10**7):07d}", first_name="Nina",
            last_name="Nps", email=f"nps.{uuid.uuid4().hex[:10]}@example.fi" if email else "",
            marketing_email=consent))
        await uow.commit()
    return out


async def sale(db: Database, shop: Shop, customer_id: int | None) -> OrderOut:
    [v] = await make_variants(db, [1990], stock={shop.store1: 5})
    order, _ = await place_order(db, SYSTEM, OrderIn(
        channel="pos-1", customer_id=customer_id,
        lines=[LineIn(variant_id=int(str(v["id"])), quantity=1)],
        payments=[PaymentIn(method="card", terminal_confirmed=True)]),
        f"nps-{uuid.uuid4().hex}")
    return order


async def surveys_for(db: Database, order_id: int) -> list[NpsSurvey]:
    async with db.reader() as s:
        return list((await s.scalars(select(NpsSurvey).where(
            NpsSurvey.order_id == order_id))).all())


async def mails_for(db: Database, number: str) -> list[OutgoingMail]:
    async with db.reader() as s:
        return list((await s.scalars(select(OutgoingMail).where(
            OutgoingMail.kind == "nps", OutgoingMail.reference == number))).all())


async def test_only_with_consent_once_per_order(db: Database, shop: Shop,
                                                settings: Settings) -> None:
    yes = await customer(db, consent=True)
    no = await customer(db, consent=False)
    withdrawn = await customer(db, consent=True)
    async with db.uow() as uow:
        await set_consent(uow, withdrawn.id, "marketing_email", False, "account")
        await uow.commit()
    o_yes, o_no, o_withdrawn = (await sale(db, shop, yes.id), await sale(db, shop, no.id),
                                await sale(db, shop, withdrawn.id))
    anonymous = await sale(db, shop, None)
    old = await sale(db, shop, yes.id)
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == old.id).values(
            created_at=utcnow() - timedelta(days=3)))
        await uow.commit()
    async with db.reader() as s:  # (other tests' purchases may be due too)
        due = await due_orders(s, limit=100_000)
    assert o_yes.id in due
    assert not {o_no.id, o_withdrawn.id, anonymous.id, old.id} & set(due)

    # the job, run twice (two app processes, or two ticks): one survey, one mail
    await send_due(db, settings, limit=100_000)
    await send_due(db, settings, limit=100_000)
    async with db.uow() as uow:  # and once more straight: the order has its survey
        assert await send_survey(uow, settings, o_yes.id) is None
        await uow.commit()
    assert len(await surveys_for(db, o_yes.id)) == 1
    [mail] = await mails_for(db, o_yes.number)
    assert mail.to_addr == yes.email
    # the receipt and the eleven links in the mail
    assert o_yes.number in mail.body_text and "19,90" in mail.body_text
    links = re.findall(r"https?://\S+/nps/([\w-]+)\?score=(\d+)", mail.body_text)
    assert [int(n) for _, n in links] == list(range(11))
    assert len({t for t, _ in links}) == 1
    token = links[0][0]
    [survey] = await surveys_for(db, o_yes.id)
    assert survey.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in survey.token_hash
    for order in (o_no, o_withdrawn, old):
        assert await surveys_for(db, order.id) == []
        assert await mails_for(db, order.number) == []


async def test_answer_once_in_range_and_on_the_timeline(db: Database, shop: Shop,
                                                       settings: Settings) -> None:
    c = await customer(db, consent=True)
    order = await sale(db, shop, c.id)
    async with db.uow() as uow:
        token = await send_survey(uow, settings, order.id)
        await uow.commit()
    assert token
    for bad in (-1, 11, "7.5", "", "ten"):
        async with db.uow() as uow:
            with pytest.raises(ValidationFailed) as exc:
                await answer_survey(uow, token, bad)
            assert (exc.value.status, exc.value.field) == (422, "score")
    async with db.uow() as uow:
        with pytest.raises(NotFound):
            await answer_survey(uow, "not-a-token", 5)
    async with db.uow() as uow:
        out = await answer_survey(uow, token, 10, "Ihana palvelu!")
        await uow.commit()
    assert out.score == 10
    async with db.uow() as uow:
        with pytest.raises(Conflict) as conflict:
            await answer_survey(uow, token, 0, "toinen vastaus")
        assert conflict.value.code == "already_answered"
    [survey] = await surveys_for(db, order.id)
    assert (survey.score, survey.comment) == (10, "Ihana palvelu!")
    async with db.reader() as s:
        events = await timeline(s, CASHIER, c.id)
    [nps] = [e for e in events if e.kind == "nps"]
    assert (nps.score, nps.text, nps.number) == (10, "Ihana palvelu!", order.number)


async def test_the_public_pages(web: httpx.AsyncClient, db: Database, shop: Shop,
                                settings: Settings) -> None:
    c = await customer(db, consent=True)
    order = await sale(db, shop, c.id)
    async with db.uow() as uow:
        token = await send_survey(uow, settings, order.id)
        await uow.commit()
    assert token
    assert (await web.get("/nps/nonsense?score=5")).status_code == 404
    assert (await web.get(f"/nps/{token}?score=11")).status_code == 422
    assert (await web.get(f"/nps/{token}?score=x")).status_code == 422
    page = await web.get(f"/nps/{token}?score=8")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert re.search(r'value="8" required checked', page.text)
    [survey] = await surveys_for(db, order.id)
    assert survey.answered_at is None  # opening the link records nothing
    csrf = csrf_of(page.text)
    bad = await web.post(f"/nps/{token}", data={"csrf_token": csrf, "score": "12"})
    assert bad.status_code == 422 and 'data-testid="nps-error-score"' in bad.text
    ok = await web.post(f"/nps/{token}", data={"csrf_token": csrf, "score": "8",
                                               "comment": "Nopea kassa"})
    assert ok.status_code == 200 and 'data-testid="nps-thanks"' in ok.text
    again = await web.post(f"/nps/{token}", data={"csrf_token": csrf, "score": "3"})
    assert again.status_code == 409
    assert (await web.get(f"/nps/{token}?score=3")).status_code == 409
    [survey] = await surveys_for(db, order.id)
    assert (survey.score, survey.comment) == (8, "Nopea kassa")


async def pickup_order(db: Database, settings: Settings, shop: Shop, c: CustomerOut,
                       ordered_days_ago: int) -> OrderOut:
    """A click & collect order of the customer, paid, waiting at Store Helsinki."""
    [v] = await make_variants(db, [2490], stock={shop.store1: 5})
    order, _ = await place_web_order(db, settings, CheckoutIn(
        email=str(c.email), phone="040 123 4567", first_name="Nina", delivery="pickup",
        pickup_location_id=shop.store1, lines=[LineIn(variant_id=int(str(v["id"])))]),
        customer_id=c.id, key=f"nps-pickup-{uuid.uuid4().hex}")
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order.id).values(
            created_at=utcnow() - timedelta(days=ordered_days_ago)))
        uow.session.add(PaytrailPayment(order_id=order.id, stamp=f"st-{order.id}",
                                        transaction_id=f"tx-{order.id}",
                                        amount_cents=order.total_cents, status="new"))
        await uow.commit()
    out = await record_payment_status(db, settings, f"st-{order.id}", f"tx-{order.id}", "ok",
                                      order.total_cents)
    assert out.order_status == "paid"
    return order


async def test_click_and_collect_is_asked_about_after_the_handover(
        db: Database, shop: Shop, settings: Settings) -> None:
    c = await customer(db, consent=True)
    # paid today, not collected yet; and one ordered 4 days ago, collected now
    waiting = await pickup_order(db, settings, shop, c, 0)
    slow = await pickup_order(db, settings, shop, c, 4)
    async with db.reader() as s:
        due = set(await due_orders(s, limit=100_000))
    assert not {waiting.id, slow.id} & due  # paid is not yet a purchase to ask about
    async with db.uow() as uow:  # nor when asked straight
        assert await send_survey(uow, settings, waiting.id) is None
        await uow.commit()
    assert await surveys_for(db, waiting.id) == []

    for order in (waiting, slow):
        async with db.uow() as uow:
            await hand_over(uow, SYSTEM, order.id, shop.store1, id_checked=True)
            await uow.commit()
    async with db.reader() as s:
        due = set(await due_orders(s, limit=100_000))
    # handed over: due, the slow one too (the window counts from the handover)
    assert {waiting.id, slow.id} <= due
    async with db.uow() as uow:
        assert await send_survey(uow, settings, slow.id)
        await uow.commit()
    [mail] = await mails_for(db, slow.number)
    assert mail.to_addr == c.email

    # collected long ago (the job was down): too late to ask
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == waiting.id).values(
            collected_at=utcnow() - timedelta(days=3)))
        await uow.commit()
    async with db.reader() as s:
        assert waiting.id not in await due_orders(s, limit=100_000)


async def test_erasure_closes_the_survey_link(web: httpx.AsyncClient, db: Database,
                                              shop: Shop, settings: Settings) -> None:
    c = await customer(db, consent=True)
    open_order, answered_order = await sale(db, shop, c.id), await sale(db, shop, c.id)
    async with db.uow() as uow:
        token = await send_survey(uow, settings, open_order.id)
        answered = await send_survey(uow, settings, answered_order.id)
        await uow.commit()
    assert token and answered
    async with db.uow() as uow:
        await answer_survey(uow, answered, 7, "Kiitos, t. Nina")
        await uow.commit()
    page = await web.get(f"/nps/{token}?score=9")
    assert page.status_code == 200
    csrf = csrf_of(page.text)

    async with db.uow() as uow:
        await erase_customer(uow, SYSTEM, c.id, "the customer's request")
        await uow.commit()
    for t in (token, answered):
        async with db.uow() as uow:
            with pytest.raises(SurveyClosed) as closed:
                await answer_survey(uow, t, 9, "uusi kommentti")
        assert (closed.value.status, closed.value.code) == (410, "survey_closed")
        r = await web.get(f"/nps/{t}?score=9")
        assert r.status_code == 410 and r.headers["cache-control"] == "no-store"
        assert 'data-testid="nps-closed"' in r.text
        assert "Tämä kysely on suljettu, eikä siihen voi enää vastata." in r.text
        r = await web.post(f"/nps/{t}", data={"csrf_token": csrf, "score": "9",
                                              "comment": "uusi kommentti"})
        assert r.status_code == 410 and 'data-testid="nps-closed"' in r.text
        r = await web.post(f"/nps/{t}", data={"csrf_token": csrf, "score": "12"})
        assert r.status_code == 410  # closed, whatever was sent
    r = await web.get("/nps/nonsense?score=9")
    assert r.status_code == 404  # a mistyped link is still "not valid", not "closed"
    # nothing recorded: the open one stays unanswered, the answered one keeps its score
    [still_open] = await surveys_for(db, open_order.id)
    assert (still_open.score, still_open.comment, still_open.answered_at) == (None, "", None)
    [done] = await surveys_for(db, answered_order.id)
    assert (done.score, done.comment) == (7, "")
    async with db.reader() as s:
        with pytest.raises(NotFound):
            await survey_for_token(s, "x" + token)
