"""What a new shopper meets around the webshop, in a real Chromium on a phone and a
desktop, in Finnish and English: the cookie banner's buttons free to press beside the
chat button, searching with English words or far too many, and registering with an
over-long name then seeing the loyalty card and tier agree once the e-mail is confirmed.
(The checkout form's errors: tests/test_checkout_browser.py.)"""

from __future__ import annotations

import re
import uuid

from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy import select

from saumaton.catalogue.schemas import ProductIn, VariantIn
from saumaton.catalogue.services import create_category, create_product
from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from tests.browser import PHONE, assert_fits, open_page
from tests.support import Server, Shop

PASSWORD = "vihreä kettu hyppää"


async def box(page: Page, testid: str) -> dict[str, float]:
    found = await page.get_by_test_id(testid).bounding_box()
    assert found is not None, testid
    return dict(found)


# --- the cookie banner and the chat button ------------------------------------------------

async def test_on_a_phone_the_chat_button_leaves_the_cookie_choice_free(
    browser: Browser, contexts: list[BrowserContext], server: Server,
) -> None:
    for locale, necessary in (("fi-FI", "Vain välttämättömät"), ("en-GB", "Only necessary")):
        page = await open_page(contexts, browser, locale=locale, viewport=PHONE,
                               is_mobile=True, has_touch=True)
        await page.goto(f"{server.base_url}/shop/")
        await expect(page.get_by_test_id("consent-banner")).to_be_visible()
        await expect(page.get_by_test_id("chat-open")).to_be_visible()
        banner, chat = await box(page, "consent-banner"), await box(page, "chat-open")
        assert chat["y"] + chat["height"] <= banner["y"], (chat, banner)  # above, not on it
        await assert_fits(page)
        # A real click (Playwright refuses to click what another element covers).
        await page.get_by_role("button", name=necessary).click()
        await expect(page.get_by_test_id("consent-banner")).to_have_count(0)
        await expect(page.get_by_test_id("consent-settings")).to_be_visible()
        # With the banner gone the button is back at the bottom of the screen.
        await page.wait_for_function(
            "document.querySelector('[data-testid=chat-open]').getBoundingClientRect()"
            ".bottom > window.innerHeight - 40")
        await page.get_by_test_id("chat-open").click()
        await expect(page.get_by_test_id("chat-panel")).to_be_visible()


# --- search ---------------------------------------------------------------------------------

async def test_english_words_find_every_foundation_and_a_long_search_is_no_404(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
) -> None:
    t = uuid.uuid4().hex[:8]
    word = f"foundation{t}"
    async with db.uow() as uow:
        await create_category(uow, SYSTEM, word, f"Meikkivoiteet {t}")
        for slug, name in ((f"silk-{t}", f"Silk {t} -meikkivoide"),
                           (f"matte-{t}", f"Matte Finish {t} -meikkivoide"),
                           (f"tint-{t}", f"Skin Tint {t} sävyttävä voide")):
            await create_product(uow, SYSTEM, ProductIn(
                slug=slug, name=name, brand="Kaunis Iho", category_slug=word,
                variants=[VariantIn(sku=f"{slug}-1", price_cents=2990)]))
        await uow.commit()

    page = await open_page(contexts, browser, locale="en-GB")
    await page.goto(f"{server.base_url}/shop/")
    await page.get_by_role("button", name="Only necessary").click()
    await page.get_by_test_id("search").fill(word)
    await page.get_by_test_id("search-submit").click()
    await expect(page.get_by_test_id("product-tile")).to_have_count(3)

    response = await page.goto(f"{server.base_url}/shop/search?q=silk+{'x' * 3000}")
    assert response is not None and response.status == 200
    await expect(page.get_by_test_id("search-shortened")).to_have_text(
        "Your search was long: we searched with its first 100 characters.")
    await expect(page.get_by_test_id("search")).to_have_value(f"silk {'x' * 95}")


# --- registering, then the account page ---------------------------------------------------

async def test_an_over_long_name_is_refused_and_the_new_member_has_card_and_tier(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    base = server.base_url
    email = f"uusi.{uuid.uuid4().hex[:10]}@example.fi"
    page = await open_page(contexts, browser, viewport=PHONE, is_mobile=True, has_touch=True)
    await page.goto(f"{base}/account/register")
    await page.get_by_role("button", name="Vain välttämättömät").click()
    await expect(page.get_by_text("Voin perua suostumukseni milloin tahansa.",
                                  exact=False)).to_be_visible()
    first = page.get_by_label("Etunimi")
    await first.fill("A" * 5000)
    await expect(first).to_have_value("A" * 5000)  # the browser does not cut it silently
    await page.get_by_label("Sukunimi").fill("Meikäläinen")
    await page.get_by_label("Sähköposti", exact=True).fill(email)
    await page.get_by_label("Salasana", exact=True).fill(PASSWORD)
    await page.get_by_test_id("register-submit").click()
    await expect(page.get_by_test_id("error-first_name")).to_have_text(
        "Käytä enintään 100 merkkiä.")
    await expect(first).to_have_attribute("aria-describedby", re.compile(r"first_name-error"))
    await first.fill("Maija")
    await page.get_by_label("Salasana", exact=True).fill(PASSWORD)
    await page.get_by_test_id("register-submit").click()
    await expect(page).to_have_url(f"{base}/account/")
    await expect(page.get_by_test_id("loyalty-tier")).to_have_text(
        "Ei jäsen (ei kanta-asiakaskorttia)")
    await expect(page.get_by_test_id("card-number")).to_have_count(0)

    async with db.reader() as s:
        mail = await s.scalar(select(OutgoingMail).where(
            OutgoingMail.to_addr == email, OutgoingMail.kind == "verify_email"))
    assert mail is not None
    assert "Tervetuloa asiakkaaksemme!" in mail.body_text
    link = re.search(r"/account/verify/\S+", mail.body_text)
    assert link, mail.body_text
    await page.goto(base + link[0])
    await expect(page.get_by_test_id("verified")).to_be_visible()
    await page.get_by_role("link", name="Omalle tilille").click()

    await expect(page.get_by_test_id("card-number")).to_have_text(
        re.compile(r"^Kortin numero \d+$"))
    await expect(page.get_by_test_id("loyalty-tier")).to_have_text("Jäsen")
    await expect(page.get_by_text("Kanta-asiakaspisteet", exact=True)).to_have_count(1)
    await expect(page.get_by_role("heading", name="Kanta-asiakaskorttisi")).to_have_count(1)
    await assert_fits(page)
