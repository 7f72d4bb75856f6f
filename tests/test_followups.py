"""After-purchase follow-ups (both databases): a till sale and a paid web order schedule
the steps of the sequences whose category (or a parent) holds a bought product, one
mail per step however many products match and never twice per order; the consent is
checked when the mail is sent; the refill reminder comes from the customer's own
repurchase interval (median, two purchases or more) or the category's; a new purchase
reschedules it; a return cancels what is pending; the job is idempotent; the back
office's editor refuses unknown placeholders next to the field."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from saumaton.catalogue.models import Variant
from saumaton.checkout.pickup import hand_over
from saumaton.config import Settings
from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.customers.consents import set_consent
from saumaton.customers.timeline import timeline
from saumaton.db.uow import Database
from saumaton.events.models import OutboxEvent
from saumaton.followups.models import Followup, FollowupOrder
from saumaton.followups.schedule import (
    claim_unfollowed,
    due_orders,
    own_interval,
    schedule_order,
)
from saumaton.followups.sender import run_once, send_due_in
from saumaton.followups.sequences import (
    SequenceIn,
    SequenceInvalid,
    StepIn,
    create_sequence,
    get_sequence,
    set_enabled,
    update_sequence,
)
from saumaton.mail.models import OutgoingMail
from saumaton.mail.sender import send_due as send_mail
from saumaton.orders.models import Order
from saumaton.orders.schemas import OrderOut
from saumaton.returns.schemas import ReturnIn, ReturnLineIn
from saumaton.returns.services import take_return
from tests.builders import a_category, a_customer, a_paid_web_order, a_till_sale
from tests.support import Shop, csrf_of, make_variants, staff_actor, staff_login, text_of

OWNER = Actor(label="staff:test owner", name="Olli", grants=(RoleGrant("owner", None),))


def step(kind: str, delay: int, word: str) -> StepIn:
    return StepIn(kind=kind, delay_days=delay,
                  subject_fi=f"{word}: {{product}}", body_fi=f"Hei {{first_name}},\n\n{word} "
                  "{product} {shade} ({refill_days})\n\n{shop}",
                  subject_en=f"{word} EN: {{product}}", body_en=f"Hi {{first_name}},\n\n{word} "
                  "{product}\n\n{shop}")


async def a_sequence(db: Database, category_id: int, steps: list[StepIn],
                     refill_days: int | None = None) -> int:
    async with db.uow() as uow:
        out = await create_sequence(uow, OWNER, SequenceIn(
            name=f"Seq {uuid.uuid4().hex[:6]}", category_id=category_id, enabled=True,
            refill_days=refill_days, steps=steps))
        await uow.commit()
    return out.id


async def product_in(db: Database, shop: Shop, slug: str, *shades: str) -> list[int]:
    vs = await make_variants(db, [2490] * max(1, len(shades)), stock={shop.store1: 50,
                                                                    shop.warehouse: 50},
                             category=slug)
    return [int(str(v["id"])) for v in vs]


async def rows_of(db: Database, order_id: int) -> list[Followup]:
    async with db.reader() as s:
        return list((await s.scalars(select(Followup).where(Followup.order_id == order_id)
                                     .order_by(Followup.due_at, Followup.id))).all())


async def mail_of(db: Database, row: Followup) -> OutgoingMail | None:
    async with db.reader() as s:
        return await s.scalar(select(OutgoingMail).where(
            OutgoingMail.reference == f"followup:{row.id}"))


async def schedule(db: Database, settings: Settings, order: OrderOut) -> int | None:
    async with db.uow() as uow:
        n = await schedule_order(uow, settings, order.id)
        await uow.commit()
    return n


async def send(db: Database, settings: Settings, at: datetime | None = None) -> None:
    async with db.uow() as uow:
        await send_due_in(uow, settings, at or utcnow(), limit=10_000)
        await uow.commit()


async def send_and_hold(db: Database, settings: Settings) -> list[int]:
    """The job's pass, the mails it queued held in the same commit (due in a day):
    the senders of the in-process app and of a test server on the same database poll
    the queue, and would otherwise send them whenever their tick came. `release` puts
    them back in turn."""
    async with db.uow() as uow:
        before = int(await uow.session.scalar(select(func.max(OutgoingMail.id))) or 0)
        await send_due_in(uow, settings, utcnow(), limit=10_000)
        held = list((await uow.session.scalars(
            update(OutgoingMail).where(OutgoingMail.id > before,
                                       OutgoingMail.reference.like("followup:%"))
            .values(next_attempt_at=utcnow() + timedelta(days=1))
            .returning(OutgoingMail.id))).all())
        await uow.commit()
    return held


async def release(db: Database, mail_ids: list[int]) -> None:
    async with db.uow() as uow:
        await uow.session.execute(update(OutgoingMail).where(OutgoingMail.id.in_(mail_ids))
                                  .values(next_attempt_at=utcnow()))
        await uow.commit()


async def delivered(db: Database, settings: Settings, row: Followup) -> OutgoingMail:
    """Run the mail sender until the follow-up's mail has its outcome. (The in-process
    app's own sender may have claimed it a moment earlier: then that one records it, and
    the next look sees it.)"""
    for _ in range(1000):
        await send_mail(db, settings, limit=10_000)
        mail = await mail_of(db, row)
        assert mail is not None
        if mail.status != "queued":
            return mail
    raise AssertionError(f"mail {row.mail_id} was never sent")


async def counts_of(web: httpx.AsyncClient, seq: int) -> dict[str, str]:
    """The back office list's counts of the sequence's mails (its own row)."""
    page = (await web.get("/backoffice/follow-ups")).text
    row = re.search(rf'<tr data-testid="followup-{seq}">(.*?)</tr>', page, re.S)
    assert row is not None
    return {k: text_of(row[0], f"followup-{k}") for k in ("queued", "sent", "skipped", "failed")}


async def backdate(db: Database, order_id: int, days: int) -> None:
    at = utcnow() - timedelta(days=days)
    async with db.uow() as uow:
        await uow.session.execute(update(Order).where(Order.id == order_id)
                                  .values(created_at=at, sold_at=at))
        await uow.commit()


async def test_till_sale_schedules_each_step_once_and_sends_when_due(
        db: Database, shop: Shop, settings: Settings) -> None:
    parent, _ = await a_category(db, "Ihonhoito")
    _, child = await a_category(db, "Seerumit", parent_id=parent)
    seq = await a_sequence(db, parent, [step("how_to_use", 0, "Käyttö"),
                                        step("shade", 7, "Sävy")])
    serum = await product_in(db, shop, child)
    cream = await product_in(db, shop, child)
    other = await make_variants(db, [990], stock={shop.store1: 5})  # no category
    anna = await a_customer(db, consent=True)
    order = await a_till_sale(db, shop, [serum[0], cream[0], int(str(other[0]["id"]))],
                              customer_id=anna.id)
    async with db.reader() as s:
        assert order.id in await due_orders(s, limit=100_000)
    assert await schedule(db, settings, order) == 2  # two steps, not two per product
    assert await schedule(db, settings, order) is None  # never twice
    async with db.reader() as s:
        assert order.id not in await due_orders(s, limit=100_000)
    first, second = await rows_of(db, order.id)
    assert (first.status, second.status) == ("pending", "pending")
    assert second.due_at - first.due_at == timedelta(days=7)
    assert first.sequence_id == seq and first.language == "fi"

    await send(db, settings)
    first, second = await rows_of(db, order.id)
    # handed to the outbox is not sent: queued, linked to its mail
    assert (first.status, second.status) == ("queued", "pending")
    mail = await mail_of(db, first)
    assert mail is not None and mail.to_addr == anna.email and mail.kind == "followup"
    assert first.mail_id == mail.id and mail.status == "queued"
    async with db.reader() as s:
        [event] = [e for e in await timeline(s, SYSTEM, anna.id) if e.kind == "followup"]
    assert event.status == "queued"
    assert (await delivered(db, settings, first)).status == "sent"
    async with db.reader() as s:  # the timeline shows the outcome at once
        [event] = [e for e in await timeline(s, SYSTEM, anna.id) if e.kind == "followup"]
    assert event.status == "sent"
    await send(db, settings)  # the job's next pass records it on the follow-up
    first, second = await rows_of(db, order.id)
    assert (first.status, second.status) == ("sent", "pending")
    assert mail.subject.startswith("Käyttö: Product ")
    assert mail.body_text.startswith("Hei Anna,")
    assert mail.list_unsubscribe and mail.list_unsubscribe in mail.body_text
    await send(db, settings, utcnow() + timedelta(days=8))
    first, second = await rows_of(db, order.id)
    assert second.status == "queued"
    assert (await delivered(db, settings, second)).status == "sent"
    await send(db, settings, utcnow() + timedelta(days=8))
    first, second = await rows_of(db, order.id)
    assert second.status == "sent"
    # on her timeline, newest first
    async with db.reader() as s:
        events = [e for e in await timeline(s, SYSTEM, anna.id) if e.kind == "followup"]
    assert [(e.status, e.number) for e in events] == [("sent", order.number)] * 2


async def test_paid_web_order_in_english(db: Database, shop: Shop,
                                         settings: Settings) -> None:
    cat, slug = await a_category(db)
    await a_sequence(db, cat, [step("how_to_use", 0, "Use")])
    [v] = await product_in(db, shop, slug)
    email = f"web.{uuid.uuid4().hex[:8]}@example.fi"
    order = await a_paid_web_order(db, settings, [v], email=email, marketing_email=True,
                                   language="en")
    assert await schedule(db, settings, order) == 1
    [row] = await rows_of(db, order.id)
    assert row.language == "en"
    await send(db, settings)
    mail = await mail_of(db, (await rows_of(db, order.id))[0])
    assert mail is not None and mail.to_addr == email
    assert mail.subject.startswith("Use EN: ") and "Unsubscribe" in mail.body_html


async def test_consent_is_checked_when_sending(db: Database, shop: Shop,
                                               settings: Settings) -> None:
    cat, slug = await a_category(db)
    # due tomorrow: the app processes' own job (real time) leaves it to this test
    await a_sequence(db, cat, [step("text", 1, "Moi")])
    [v] = await product_in(db, shop, slug)
    later_no = await a_customer(db, consent=True)
    never = await a_customer(db, consent=False)
    o1 = await a_till_sale(db, shop, [v], customer_id=later_no.id)
    o2 = await a_till_sale(db, shop, [v], customer_id=never.id)
    assert await schedule(db, settings, o1) == 1
    assert await schedule(db, settings, o2) == 0  # no consent at the purchase: nothing
    async with db.uow() as uow:  # withdrawn after the purchase, before the mail
        await set_consent(uow, later_no.id, "marketing_email", False, "account")
        await uow.commit()
    await send(db, settings, utcnow() + timedelta(days=2))
    [row] = await rows_of(db, o1.id)
    assert row.status == "skipped_no_consent" and row.mail_id is None
    assert await mail_of(db, row) is None
    async with db.reader() as s:
        [event] = [e for e in await timeline(s, SYSTEM, later_no.id) if e.kind == "followup"]
    assert event.status == "skipped_no_consent"


def test_own_interval_is_the_median() -> None:
    t0 = datetime(2026, 1, 1, 12)
    assert own_interval([t0]) is None
    assert own_interval([t0, t0 + timedelta(days=30)]) == 30
    assert own_interval([t0, t0 + timedelta(days=20), t0 + timedelta(days=50),
                         t0 + timedelta(days=150)]) == 30


async def test_refill_from_own_history_or_the_category(db: Database, shop: Shop,
                                                       settings: Settings) -> None:
    cat, slug = await a_category(db)
    await a_sequence(db, cat, [step("refill", 0, "Täyttö")], refill_days=60)
    [serum] = await product_in(db, shop, slug)
    regular = await a_customer(db, consent=True)
    new = await a_customer(db, consent=True)
    for days in (50, 30):  # bought 50 and 30 days ago (gaps 20 and 30 with today's)
        old = await a_till_sale(db, shop, [serum], customer_id=regular.id)
        await backdate(db, old.id, days)
    today = await a_till_sale(db, shop, [serum], customer_id=regular.id)
    first = await a_till_sale(db, shop, [serum], customer_id=new.id)
    assert await schedule(db, settings, today) == 1
    assert await schedule(db, settings, first) == 1
    [own] = await rows_of(db, today.id)
    [default] = await rows_of(db, first.id)
    assert (own.kind, own.interval_days, own.interval_source) == ("refill", 25, "own")
    assert (default.interval_days, default.interval_source) == (60, "category")
    # due a few days before the expected run-out: 25 - 5 days, 60 - 5 days
    assert abs(own.due_at - (utcnow() + timedelta(days=20))) < timedelta(minutes=5)
    assert abs(default.due_at - (utcnow() + timedelta(days=55))) < timedelta(minutes=5)
    await send(db, settings, utcnow() + timedelta(days=21))
    [own] = await rows_of(db, today.id)
    mail = await mail_of(db, own)
    assert own.status == "queued" and mail is not None and "(25)" in mail.body_text
    assert (await rows_of(db, first.id))[0].status == "pending"


async def test_a_new_purchase_reschedules_the_refill(db: Database, shop: Shop,
                                                     settings: Settings) -> None:
    cat, slug = await a_category(db)
    await a_sequence(db, cat, [step("refill", 0, "Täyttö")], refill_days=60)
    [serum] = await product_in(db, shop, slug)
    [other] = await product_in(db, shop, slug)
    c = await a_customer(db, consent=True)
    first = await a_till_sale(db, shop, [serum, other], customer_id=c.id)
    assert await schedule(db, settings, first) == 2  # a reminder per product
    await backdate(db, first.id, 40)
    again = await a_till_sale(db, shop, [serum], customer_id=c.id)
    assert await schedule(db, settings, again) == 1
    by_product = {r.product_id: r for r in await rows_of(db, first.id)}
    assert (by_product[await _product(db, serum)].status,
            by_product[await _product(db, serum)].reason) == ("cancelled", "repurchased")
    assert by_product[await _product(db, other)].status == "pending"  # not bought again
    [new] = await rows_of(db, again.id)
    assert (new.status, new.interval_days, new.interval_source) == ("pending", 40, "own")


async def test_what_can_lead_to_nothing_is_claimed_at_once(db: Database, shop: Shop,
                                                             settings: Settings) -> None:
    """The job claims together the purchases of customers without marketing consent and
    with no refill reminder pending (nothing to write, nothing to cancel), leaving the
    same claim as `schedule_order`; the others are scheduled one by one as before, so a
    repurchase by a customer who withdrew her consent still cancels her reminder."""
    cat, slug = await a_category(db)
    await a_sequence(db, cat, [step("refill", 0, "Täyttö")], refill_days=60)
    [serum] = await product_in(db, shop, slug)
    no, yes, withdrew = (await a_customer(db, consent=False), await a_customer(db),
                         await a_customer(db))
    earlier = await a_till_sale(db, shop, [serum], customer_id=withdrew.id)
    assert await schedule(db, settings, earlier) == 1  # her reminder, pending
    async with db.uow() as uow:
        await set_consent(uow, withdrew.id, "marketing_email", False, "account")
        await uow.commit()
    o_no, o_yes, o_again = [await a_till_sale(db, shop, [serum], customer_id=c.id)
                            for c in (no, yes, withdrew)]
    async with db.uow() as uow:
        rest = await claim_unfollowed(uow, [o_no.id, o_yes.id, o_again.id])
        await uow.commit()
    assert rest == [o_yes.id, o_again.id]
    async with db.reader() as s:
        claim = await s.get(FollowupOrder, o_no.id)
        assert o_no.id not in await due_orders(s, limit=100_000)
    assert claim is not None and claim.scheduled == 0
    assert await schedule(db, settings, o_no) is None and await rows_of(db, o_no.id) == []
    async with db.uow() as uow:  # claimed by another process meanwhile: no error
        assert await claim_unfollowed(uow, [o_no.id]) == []
        await uow.commit()
    assert await schedule(db, settings, o_yes) == 1
    assert await schedule(db, settings, o_again) == 0  # no consent now: nothing new...
    [old] = await rows_of(db, earlier.id)
    assert (old.status, old.reason) == ("cancelled", "repurchased")  # ...the old one goes


async def _product(db: Database, variant_id: int) -> int:
    async with db.reader() as s:
        return int(await s.scalar(select(Variant.product_id).where(Variant.id == variant_id))
                   or 0)


async def test_a_return_cancels_what_is_pending(db: Database, shop: Shop,
                                                settings: Settings) -> None:
    cat, slug = await a_category(db)
    await a_sequence(db, cat, [step("how_to_use", 3, "Käyttö")], refill_days=None)
    [serum] = await product_in(db, shop, slug)
    other = await make_variants(db, [990], stock={shop.store1: 5})
    c = await a_customer(db, consent=True)
    whole = await a_till_sale(db, shop, [serum], customer_id=c.id)
    part = await a_till_sale(db, shop, [int(str(other[0]["id"])), serum], customer_id=c.id)
    kept = await a_till_sale(db, shop, [int(str(other[0]["id"])), serum], customer_id=c.id)
    for o in (whole, part, kept):
        assert await schedule(db, settings, o) == 1
    manager = await staff_actor(db, shop, "manager")
    await take_return(db, manager, whole.id, ReturnIn(
        location_id=shop.store1, lines=[ReturnLineIn(line_no=1, quantity=1)],
        reason="ei sopinut", terminal_confirmed=True))
    await take_return(db, manager, part.id, ReturnIn(  # the serum back, the other kept
        location_id=shop.store1, lines=[ReturnLineIn(line_no=2, quantity=1)],
        reason="ei sopinut", terminal_confirmed=True))
    await take_return(db, manager, kept.id, ReturnIn(  # the other back, the serum kept
        location_id=shop.store1, lines=[ReturnLineIn(line_no=1, quantity=1)],
        reason="ei sopinut", terminal_confirmed=True))
    await send(db, settings)  # before the send time: the sweep cancels
    assert [(r.status, r.reason) for r in await rows_of(db, whole.id)] == [
        ("cancelled", "returned")]
    assert [(r.status, r.reason) for r in await rows_of(db, part.id)] == [
        ("cancelled", "returned")]
    assert [r.status for r in await rows_of(db, kept.id)] == ["pending"]
    await send(db, settings, utcnow() + timedelta(days=4))
    assert [r.status for r in await rows_of(db, kept.id)] == ["queued"]
    assert await mail_of(db, (await rows_of(db, whole.id))[0]) is None


async def test_the_job_is_idempotent_and_a_switched_off_sequence_sends_nothing(
        db: Database, shop: Shop, settings: Settings) -> None:
    cat, slug = await a_category(db)
    on = await a_sequence(db, cat, [step("how_to_use", 0, "Käyttö")])
    cat2, slug2 = await a_category(db)
    off = await a_sequence(db, cat2, [step("how_to_use", 1, "Pois")])
    [v] = await product_in(db, shop, slug)
    [w] = await product_in(db, shop, slug2)
    c = await a_customer(db, consent=True)
    order = await a_till_sale(db, shop, [v, w], customer_id=c.id)
    # two passes at once (two processes), then one more
    await asyncio.gather(run_once(db, settings), run_once(db, settings))
    await run_once(db, settings)
    rows = await rows_of(db, order.id)
    assert sorted((r.sequence_id, r.status) for r in rows) == sorted(
        [(on, "queued"), (off, "pending")])
    async with db.reader() as s:
        mails = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference.in_([f"followup:{r.id}" for r in rows])))).all()
        assert await s.scalar(select(FollowupOrder.scheduled).where(
            FollowupOrder.order_id == order.id)) == 2
    assert len(mails) == 1
    async with db.uow() as uow:
        await set_enabled(uow, OWNER, off, False)
        await uow.commit()
    await send(db, settings, utcnow() + timedelta(days=2))
    assert sorted((r.sequence_id, r.status, r.reason) for r in await rows_of(db, order.id)) \
        == sorted([(on, "queued", ""), (off, "cancelled", "disabled")])


async def test_templates_are_checked_field_by_field(db: Database) -> None:
    cat, _ = await a_category(db)
    bad = StepIn(kind="shade", delay_days=400, subject_fi="Hei {etunimi}",
                 body_fi="ok {product}", subject_en="", body_en="a { b")
    async with db.uow() as uow:
        with pytest.raises(SequenceInvalid) as exc:
            await create_sequence(uow, OWNER, SequenceIn(
                name="", category_id=cat, enabled=True, refill_days=3, steps=[bad]))
    fields = {e.field: e.code for e in exc.value.errors}
    assert fields == {"name": "name_required", "refill_days": "invalid_refill_days",
                      "step0_delay_days": "invalid_delay",
                      "step0_subject_fi": "template_unknown_placeholder",
                      "step0_subject_en": "template_required",
                      "step0_body_en": "template_stray_brace"}


async def test_backoffice_pages(web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    cat, _ = await a_category(db, "Meikit")
    _, child = await a_category(db, "Meikkivoiteet", parent_id=cat)
    [pv] = await make_variants(db, [1990], category=child)  # in a subcategory only
    await staff_login(web, shop, "manager")
    assert (await web.get("/backoffice/follow-ups")).status_code == 403
    await staff_login(web, shop, "owner")
    page = await web.get("/backoffice/follow-ups/new")
    assert page.status_code == 200
    token = csrf_of(page.text)
    form = {"csrf_token": token, "name": "Sävy", "category_id": str(cat), "enabled": "1",
            "refill_days": "", "step_count": "2", "step0_kind": "shade",
            "step0_delay_days": "7", "step0_subject_fi": "Sopiiko {sävy}?",
            "step0_body_fi": "Hei {first_name}, {product}",
            "step0_subject_en": "Is {shade} right?",
            "step0_body_en": "Hi {first_name}", "step1_kind": "text"}
    r = await web.post("/backoffice/follow-ups", data=form)
    assert r.status_code == 422
    assert text_of(r.text, "error-step0_subject_fi").startswith("Tuntematon paikkamerkki: {sävy}")
    assert 'value="Sopiiko {sävy}?"' in r.text  # what was typed stays
    r = await web.post("/backoffice/follow-ups",
                       data={**form, "step0_subject_fi": "Sopiiko sävy {shade}?"})
    assert r.status_code == 303, r.text
    url = r.headers["location"].split("?")[0]
    seq_id = int(url.rsplit("/", 1)[1])
    preview = (await web.get(f"{url}/preview")).text
    assert "Sopiiko sävy Hiekka 3N?" in preview
    assert f"Hei Anna, Product {str(pv['product_slug'])[2:]}" in preview
    listing = (await web.get("/backoffice/follow-ups")).text
    assert text_of(listing, f"followup-{seq_id}").startswith("Sävy ")
    r = await web.post(f"{url}/enabled", data={"csrf_token": token, "enabled": "0"})
    assert r.status_code == 303
    listing = (await web.get("/backoffice/follow-ups?done=disabled")).text
    assert "Ei käytössä" in text_of(listing, f"followup-{seq_id}")


async def test_editing_keeps_a_step_and_a_removed_step_sends_nothing(
        db: Database, shop: Shop, settings: Settings) -> None:
    cat, slug = await a_category(db)
    seq = await a_sequence(db, cat, [step("how_to_use", 1, "Käyttö"), step("text", 2, "Pois")])
    [v] = await product_in(db, shop, slug)
    c = await a_customer(db, consent=True)
    order = await a_till_sale(db, shop, [v], customer_id=c.id)
    assert await schedule(db, settings, order) == 2
    async with db.reader() as s:
        kept, removed = (await get_sequence(s, seq)).steps
    edited = StepIn(**{**step("how_to_use", 1, "Uusi").__dict__, "id": kept.id})
    async with db.uow() as uow:
        out = await update_sequence(uow, OWNER, seq, SequenceIn(
            name="Muokattu", category_id=cat, enabled=True, refill_days=None,
            steps=[edited]))
        await uow.commit()
    assert [st.id for st in out.steps] == [kept.id]
    await send(db, settings, utcnow() + timedelta(days=3))
    rows = {r.step_id: r for r in await rows_of(db, order.id)}
    assert rows[kept.id].status == "queued"
    assert rows[kept.id].subject.startswith("Uusi: ")  # the text as it is when sent
    [gone] = [r for r in await rows_of(db, order.id) if r.step_id is None]
    assert (gone.status, gone.reason) == ("cancelled", "step_removed")
    assert removed.id not in rows


async def test_click_and_collect_counts_from_the_handover(db: Database, shop: Shop,
                                                          settings: Settings) -> None:
    cat, slug = await a_category(db)
    await a_sequence(db, cat, [step("how_to_use", 1, "Käyttö")])
    [v] = await product_in(db, shop, slug)
    c = await a_customer(db, consent=True)
    order = await a_paid_web_order(db, settings, [v], email=str(c.email), customer_id=c.id,
                                   pickup_at=shop.store1)
    async with db.reader() as s:  # paid, not yet handed over: not a purchase yet
        assert order.id not in await due_orders(s, limit=100_000)
    assert await schedule(db, settings, order) is None
    async with db.uow() as uow:
        await hand_over(uow, SYSTEM, order.id, shop.store1, id_checked=True)
        await uow.commit()
    async with db.reader() as s:
        assert order.id in await due_orders(s, limit=100_000)
        collected = await s.scalar(select(Order.collected_at).where(Order.id == order.id))
    assert await schedule(db, settings, order) == 1
    [row] = await rows_of(db, order.id)
    assert collected is not None and row.due_at == collected + timedelta(days=1)


async def test_the_mails_outcome_is_the_followups_state(
        web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings) -> None:
    """Queued when handed to the outbox; then what the mail sender did with the mail:
    sent, suppressed (the consent withdrawn before its turn) or failed. The timeline and
    the back office's counts show the outcome as soon as the sender recorded it, the
    follow-up row takes it in the job's next pass."""
    cat, slug = await a_category(db)
    seq = await a_sequence(db, cat, [step("how_to_use", 0, "Käyttö")])
    [v] = await product_in(db, shop, slug)
    sent_to, withdrew, bounced = [await a_customer(db, consent=True) for _ in range(3)]
    async with db.reader() as s:
        since = int(await s.scalar(select(func.max(OutboxEvent.id))) or 0)
    rows: dict[str, Followup] = {}
    held: list[int] = []
    for name, c in (("sent", sent_to), ("suppressed", withdrew), ("failed", bounced)):
        order = await a_till_sale(db, shop, [v], customer_id=c.id)
        assert await schedule(db, settings, order) == 1
        held += await send_and_hold(db, settings)
        [rows[name]] = await rows_of(db, order.id)
        assert rows[name].status == "queued" and rows[name].mail_id is not None
    assert {r.mail_id for r in rows.values()} <= set(held)
    await staff_login(web, shop, "owner")
    assert await counts_of(web, seq) == {"queued": "3", "sent": "0", "skipped": "0",
                                         "failed": "0"}
    await release(db, held)
    async with db.uow() as uow:  # withdrawn after the mail was queued
        await set_consent(uow, withdrew.id, "marketing_email", False, "account")
        await uow.commit()
    async with db.uow() as uow:  # as the sender records a mail it could not deliver
        done = await uow.session.execute(
            update(OutgoingMail).where(OutgoingMail.id == rows["failed"].mail_id,
                                       OutgoingMail.status == "queued")
            .values(status="failed", last_error="recipient refused: 550 no such user"))
        await uow.commit()
    assert getattr(done, "rowcount", 0) == 1
    assert (await delivered(db, settings, rows["sent"])).status == "sent"
    assert (await delivered(db, settings, rows["suppressed"])).status == "suppressed"

    for name, c in (("sent", sent_to), ("suppressed", withdrew), ("failed", bounced)):
        async with db.reader() as s:
            [event] = [e for e in await timeline(s, SYSTEM, c.id) if e.kind == "followup"]
        assert event.status == name
    page = (await web.get(f"/timeline/{withdrew.id}")).text
    assert "Seurantaviestiä ei lähetetty: markkinointilupa peruttiin ennen lähetystä" in page
    page = (await web.get(f"/timeline/{bounced.id}")).text
    assert "Seurantaviestiä ei saatu perille" in page
    assert await counts_of(web, seq) == {"queued": "0", "sent": "1", "skipped": "1",
                                         "failed": "1"}

    await send(db, settings)  # the job's pass stores the outcomes
    for name, row_before in rows.items():
        [after] = await rows_of(db, row_before.order_id)
        assert after.status == name
    await send(db, settings)  # and only once: nothing is left queued
    async with db.reader() as s:
        assert await s.scalar(select(Followup.id).where(
            Followup.id.in_([r.id for r in rows.values()]), Followup.status == "queued")) is None
        events = (await s.execute(select(OutboxEvent.topic, OutboxEvent.payload).where(
            OutboxEvent.id > since, OutboxEvent.topic.like("followup.%"))
            .order_by(OutboxEvent.id))).all()
    mine = {r.id: name for name, r in rows.items()}
    said = sorted((mine[p["followup_id"]], t, p["status"]) for t, p in events
                  if p.get("followup_id") in mine)
    assert said == sorted([
        ("sent", "followup.queued", "queued"), ("sent", "followup.sent", "sent"),
        ("suppressed", "followup.queued", "queued"),
        ("suppressed", "followup.skipped", "suppressed"),
        ("failed", "followup.queued", "queued"), ("failed", "followup.skipped", "failed")])



async def test_the_refill_lead_time_is_the_sequences(db: Database, shop: Shop,
                                                     settings: Settings) -> None:
    """Each sequence says how many days before the run-out its refill reminder comes
    (default 5; 0 = on the day; never more than a quarter of the interval)."""
    due: dict[int, timedelta] = {}
    for lead in (12, 0, 5):
        cat, slug = await a_category(db)
        async with db.uow() as uow:
            out = await create_sequence(uow, OWNER, SequenceIn(
                name=f"Lead {lead}", category_id=cat, enabled=True, refill_days=60,
                steps=[step("refill", 0, "Täyttö")], refill_lead_days=lead))
            await uow.commit()
        assert out.refill_lead_days == lead
        [v] = await product_in(db, shop, slug)
        c = await a_customer(db, consent=True)
        order = await a_till_sale(db, shop, [v], customer_id=c.id)
        assert await schedule(db, settings, order) == 1
        [row] = await rows_of(db, order.id)
        due[lead] = row.due_at - row.created_at
    assert {k: round(v / timedelta(hours=1)) for k, v in due.items()} == {
        12: 48 * 24, 0: 60 * 24, 5: 55 * 24}
    # a short interval: a quarter of it at most (20 days, lead 12: 5 days early)
    cat, slug = await a_category(db)
    async with db.uow() as uow:
        await create_sequence(uow, OWNER, SequenceIn(
            name="Short", category_id=cat, enabled=True, refill_days=20,
            steps=[step("refill", 0, "Täyttö")], refill_lead_days=12))
        await uow.commit()
    [v] = await product_in(db, shop, slug)
    order = await a_till_sale(db, shop, [v], customer_id=(await a_customer(db)).id)
    assert await schedule(db, settings, order) == 1
    [row] = await rows_of(db, order.id)
    assert round((row.due_at - row.created_at) / timedelta(hours=1)) == 15 * 24


async def test_the_refill_lead_time_is_checked(db: Database) -> None:
    cat, _ = await a_category(db)
    for bad in (-1, 61):
        async with db.uow() as uow:
            with pytest.raises(SequenceInvalid) as exc:
                await create_sequence(uow, OWNER, SequenceIn(
                    name="Lead", category_id=cat, enabled=True, refill_days=60,
                    steps=[step("refill", 0, "Täyttö")], refill_lead_days=bad))
        assert [(e.field, e.code) for e in exc.value.errors] == [
            ("refill_lead_days", "invalid_refill_lead_days")]


async def test_the_refill_lead_time_in_the_editor(web: httpx.AsyncClient, db: Database,
                                                  shop: Shop) -> None:
    cat, _ = await a_category(db)
    await staff_login(web, shop, "owner")
    page = await web.get("/backoffice/follow-ups/new")
    assert 'name="refill_lead_days"' in page.text and 'value="5"' in page.text  # default
    form = {"csrf_token": csrf_of(page.text), "name": "Täyttö", "category_id": str(cat),
            "enabled": "1", "refill_days": "60", "refill_lead_days": "61",
            "step_count": "1", "step0_kind": "refill", "step0_delay_days": "0",
            "step0_subject_fi": "Loppuuko {product}?", "step0_body_fi": "Hei {first_name}",
            "step0_subject_en": "Running out of {product}?", "step0_body_en": "Hi"}
    r = await web.post("/backoffice/follow-ups", data=form)
    assert r.status_code == 422
    assert text_of(r.text, "error-refill_lead_days") == \
        "Anna päivät ennen kuin tuote loppuu (0–60)."
    assert 'aria-describedby="fu-refill_lead_days-error"' in r.text
    r = await web.post("/backoffice/follow-ups?lang=en",
                       data={**form, "refill_lead_days": "viisi"})
    assert r.status_code == 422
    assert text_of(r.text, "error-refill_lead_days") == "Give a whole number of days."
    r = await web.post("/backoffice/follow-ups?lang=en", data={**form, "refill_lead_days": "61"})
    assert text_of(r.text, "error-refill_lead_days") == \
        "Give the days before the product runs out (0–60)."
    r = await web.post("/backoffice/follow-ups", data={**form, "refill_lead_days": "10"})
    assert r.status_code == 303, r.text
    seq_id = int(r.headers["location"].split("?")[0].rsplit("/", 1)[1])
    async with db.reader() as s:
        assert (await get_sequence(s, seq_id)).refill_lead_days == 10
    edit = await web.get(f"/backoffice/follow-ups/{seq_id}")
    assert 'name="refill_lead_days" inputmode="numeric" maxlength="4" value="10"' in edit.text
