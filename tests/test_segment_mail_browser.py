"""An e-mail to a segment in a real headless Chromium against a real server (both
databases): the owner writes it, sees her mistakes next to the fields, previews it,
and sends it with a double click to a segment of two consenting customers and one who
did not consent: two mails, sent once, each with the one-click unsubscribe headers,
whose URL unsubscribes its customer when posted as a mail provider does."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import httpx
from playwright.async_api import Browser, BrowserContext, expect
from sqlalchemy import func, select

from saumaton.customers.consents import current_consents
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail, SegmentMailing
from tests.browser import PHONE, assert_fits, fill_staff_login, open_page
from tests.support import Server, Shop, eventually
from tests.test_segment_mail import segment_with
from tests.test_segments import new_customer, new_tag


async def test_owner_sends_an_e_mail_to_a_segment_once(
        browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
        shop: Shop, session_tmp: Path, backend: str) -> None:
    tag = new_tag()
    aino = await new_customer(db, tag, consent=True, first="Aino")
    emma = await new_customer(db, tag, consent=True, first="Emma")
    bea = await new_customer(db, tag, consent=False, first="Bea")
    segment_id = await segment_with(db, tag)

    page = await open_page(contexts, browser, viewport=PHONE)
    await page.goto(f"{server.base_url}/backoffice/segments/{segment_id}")
    await fill_staff_login(page, shop, "owner")
    await page.get_by_test_id("segment-mail").click()
    await expect(page.get_by_test_id("mail-recipients")).to_have_attribute("data-count", "2")
    await expect(page.get_by_test_id("mail-send")).to_contain_text("2")

    # Sending with nothing written: every mistake next to its field, nothing sent.
    await page.get_by_test_id("mail-subject-en").fill("Spring news")
    await page.get_by_test_id("mail-send").click()
    for field in ("subject_fi", "text_fi", "text_en"):
        await expect(page.get_by_test_id(f"error-{field}")).to_be_visible()
    await expect(page.get_by_test_id("error-subject_en")).to_have_count(0)
    await expect(page.get_by_test_id("mail-subject-en")).to_have_value("Spring news")
    await expect(page.get_by_test_id("mail-text-fi")).to_have_attribute("aria-invalid", "true")
    await assert_fits(page)

    await page.get_by_test_id("mail-subject-fi").fill("Kevään uutuudet")
    await page.get_by_test_id("mail-text-fi").fill("Hei!\n\nUusi sävy 2N on tullut.")
    await page.get_by_test_id("mail-text-en").fill("Hello!\n\nThe new shade 2N is in.")
    await page.get_by_test_id("mail-preview").click()
    await expect(page.get_by_test_id("mail-preview-fi")).to_contain_text("Peru tilaus")
    await expect(page.get_by_test_id("mail-preview-en")).to_contain_text("Spring news")
    key = await page.locator("input[name=key]").input_value()
    csrf = await page.locator("[data-testid=mail-form] input[name=csrf_token]").input_value()

    await page.get_by_test_id("mail-send").dblclick()  # an impatient double click
    await expect(page.get_by_test_id("mailing-queued")).to_have_text("2")
    await expect(page.get_by_test_id("mailing-status")).to_have_attribute("data-status",
                                                                          "done")
    mailing_url = page.url

    # The same form posted once more (a retry, the back button): the same mailing.
    again = await page.request.post(
        f"{server.base_url}/backoffice/segments/{segment_id}/mail", max_redirects=0,
        form={"csrf_token": csrf, "key": key, "action": "send",
              "subject_fi": "Kevään uutuudet", "text_fi": "x", "subject_en": "Spring news",
              "text_en": "y"})
    assert again.status == 303 and again.headers["location"] in mailing_url
    async with db.reader() as s:
        rows = (await s.scalars(select(SegmentMailing).where(
            SegmentMailing.segment_id == segment_id))).all()
        assert len(rows) == 1
        mails = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == f"mailing:{rows[0].id}")
            .order_by(OutgoingMail.customer_id))).all()
    assert [m.customer_id for m in mails] == [aino, emma]
    assert bea not in {m.customer_id for m in mails}
    assert all(m.list_unsubscribe.startswith(f"{server.base_url}/unsubscribe/")
               for m in mails)

    # The server's sender writes them out (no SMTP in tests) with the headers.
    folder = session_tmp / f"server-{backend}" / "mail"

    async def written() -> list[Path]:
        found = [f for m in mails for f in (folder.glob(f"*-{m.id}-segment_mailing.eml")
                                            if folder.exists() else [])]
        return found if len(found) == 2 else []

    files = await eventually(written, within=20, what="both mails written as .eml")
    headers = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert all(h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for h in headers)
    urls = {str(h["List-Unsubscribe"]).strip("<>") for h in headers}
    assert urls == {m.list_unsubscribe for m in mails}

    # Aino's provider posts the one-click unsubscribe: her consent is off at once.
    async with httpx.AsyncClient() as c:
        r = await c.post(mails[0].list_unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    async with db.reader() as s:
        assert (await current_consents(s, aino))["marketing_email"] is False
        assert (await current_consents(s, emma))["marketing_email"] is True
        assert await s.scalar(select(func.count()).select_from(SegmentMailing).where(
            SegmentMailing.segment_id == segment_id)) == 1

    async def recorded() -> bool:
        async with db.reader() as s:
            return set((await s.scalars(select(OutgoingMail.status).where(
                OutgoingMail.id.in_([m.id for m in mails])))).all()) == {"sent"}

    await eventually(recorded, within=20, what="both mails recorded as sent")
    await page.reload()
    await expect(page.get_by_test_id("mailing-sent")).to_have_text("2")
