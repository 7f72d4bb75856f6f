"""Follow-ups in a real headless Chromium against a real server (both databases): a
purchase at the till page (product scanned, the customer found by her phone number and
attached, paid by card) by a customer who allows marketing e-mail gets its follow-up (a
step due 0 days after the purchase) once the job has run, as an e-mail with the
one-click List-Unsubscribe headers; she opens that e-mail's unsubscribe link and confirms; her
next till purchase gets no follow-up, while another consenting customer's does."""

from __future__ import annotations

import email
import uuid
from email.message import Message
from pathlib import Path
from urllib.parse import urlparse

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.config import Settings
from saumaton.core.actor import Actor, RoleGrant
from saumaton.db.uow import Database
from saumaton.followups.models import Followup
from saumaton.followups.sender import run_once
from saumaton.followups.sequences import SequenceIn, StepIn, create_sequence
from saumaton.mail.models import OutgoingMail
from saumaton.orders.models import Order
from tests.browser import browser, contexts, open_page
from tests.builders import a_category, a_customer
from tests.support import Server, Shop, eventually, make_variants
from tests.test_till_api import open_drawer
from tests.test_till_browser import open_till, order_of

__all__ = ["browser", "contexts"]

OWNER = Actor(label="staff:test owner", name="Olli", grants=(RoleGrant("owner", None),))


async def till_purchase(till: Page, db: Database, ean: str, phone: str) -> Order:
    """At the till: scan the product, type the customer's phone number and attach her,
    pay by card; the sale's order."""
    await till.keyboard.type(f"{ean}\n")
    await expect(till.get_by_test_id("cart-line")).to_have_count(1)
    await till.keyboard.type(f"{phone}\n")
    panel = till.get_by_test_id("customer-panel")
    await panel.get_by_test_id("attach-customer").click()
    await expect(panel).to_be_hidden()
    await till.get_by_test_id("pay-card").click()
    await expect(till.get_by_test_id("receipt")).to_be_visible()
    order, _, _ = await order_of(till, db)
    await till.get_by_test_id("new-sale").click()
    await expect(till.locator("#till[data-ready='1']")).to_have_count(1)
    await expect(till.get_by_test_id("cart-line")).to_have_count(0)
    return order


async def followups_of(db: Database, order: Order) -> list[Followup]:
    async with db.reader() as s:
        return list((await s.scalars(select(Followup).where(
            Followup.order_id == order.id))).all())


async def sent_mail(db: Database, order: Order) -> OutgoingMail:
    """The order's follow-up, once the job has queued and the server's sender sent it."""
    async def sent() -> OutgoingMail | None:
        rows = await followups_of(db, order)
        if not rows or rows[0].mail_id is None:
            return None
        async with db.reader() as s:
            mail = await s.get(OutgoingMail, rows[0].mail_id)
        return mail if mail is not None and mail.status == "sent" else None
    return await eventually(sent, within=30, what=f"the follow-up of order {order.id} sent")


def eml(folders: list[Path], mail: OutgoingMail) -> Message:
    """The .eml the sender wrote for a mail it has sent: the server's, or the test
    session's in-process app's (it runs the jobs too; the other database's run may have
    a mail of the same id there, so the recipient tells them apart)."""
    [found] = [m for d in folders for f in d.glob(f"*-{mail.id}-{mail.kind}.eml")
               if (m := email.message_from_bytes(f.read_bytes()))["To"] == mail.to_addr]
    return found


async def test_a_follow_up_after_a_till_purchase_and_not_after_unsubscribing(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, database_url: str, settings: Settings) -> None:
    var = Path(server.log.name).parent
    # The job as the server runs it (its secret key signs the unsubscribe links).
    srv_settings = Settings(database_url=database_url, var_dir=var,
                            public_url=server.base_url)
    cat, slug = await a_category(db, "Ihonhoito")
    async with db.uow() as uow:
        await create_sequence(uow, OWNER, SequenceIn(
            name=f"Käyttövinkit {uuid.uuid4().hex[:6]}", category_id=cat, enabled=True,
            refill_days=None, steps=[StepIn(
                kind="how_to_use", delay_days=0, subject_fi="Näin käytät: {product}",
                body_fi="Hei {first_name},\n\nannostele {product} puhtaalle iholle.",
                subject_en="How to use {product}", body_en="Hi {first_name}")]))
        await uow.commit()
    [v] = await make_variants(db, [3490], stock={shop.store1: 10}, category=slug)
    ean = str(v["ean"])
    maija = await a_customer(db, consent=True, first_name="Maija")
    other = await a_customer(db, consent=True, first_name="Olga")
    assert maija.phone and other.phone
    await open_drawer(db, shop.store1)
    till = await open_page(contexts, browser)
    await open_till(till, server, shop)

    first = await till_purchase(till, db, ean, maija.phone)
    assert first.customer_id == maija.id
    await run_once(db, srv_settings)
    mail = await sent_mail(db, first)
    assert mail.to_addr == maija.email and mail.subject.startswith("Näin käytät: ")
    msg = eml([var / "mail", settings.mail_dir()], mail)
    link = mail.list_unsubscribe
    assert msg["List-Unsubscribe"] == f"<{link}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert link in mail.body_text  # the same link in the body she reads

    # She opens the e-mail's unsubscribe link and confirms.
    page = await open_page(contexts, browser)
    await page.goto(server.base_url + urlparse(link).path)
    await page.get_by_test_id("unsubscribe-button").click()
    await expect(page.get_by_test_id("unsubscribe-done")).to_be_visible()

    # Her next purchase gets nothing; another consenting customer's does.
    second = await till_purchase(till, db, ean, maija.phone)
    theirs = await till_purchase(till, db, ean, other.phone)
    assert (second.customer_id, theirs.customer_id) == (maija.id, other.id)
    await run_once(db, srv_settings)
    other_mail = await sent_mail(db, theirs)
    assert other_mail.to_addr == other.email
    assert await followups_of(db, second) == []
    async with db.reader() as s:
        mails = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.to_addr == maija.email, OutgoingMail.kind == "followup"))).all()
    assert [m.id for m in mails] == [mail.id]

