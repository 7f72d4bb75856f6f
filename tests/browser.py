"""What every browser test needs: Debian's Chromium through Playwright, one browser per
test module, browser contexts (separate cookie jars, like separate devices) closed
after each test, and the few page checks the tests share.

Import the fixtures by name in a test module (`from tests.browser import browser,
contexts`) so pytest finds them there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.support import Shop

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright cannot download browsers here
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run"]
WAIT_MS = 10_000
PHONE = {"width": 375, "height": 740}

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        await b.close()


@pytest.fixture
async def contexts() -> AsyncIterator[list[BrowserContext]]:
    """Contexts opened by the test (see open_page), closed after it."""
    opened: list[BrowserContext] = []
    yield opened
    for c in opened:
        await c.close()


async def open_page(contexts: list[BrowserContext], browser: Browser,
                    **options: object) -> Page:
    """A page in a new context (Finnish unless `locale` is given)."""
    options.setdefault("locale", "fi-FI")
    context = await browser.new_context(**options)  # type: ignore[arg-type]
    context.set_default_timeout(WAIT_MS)
    contexts.append(context)
    return await context.new_page()


async def fill_staff_login(page: Page, shop: Shop, who: str) -> None:
    """On the staff login page: the e-mail and password of `who`, then log in."""
    email, password = shop.logins[who]
    await page.get_by_label("Sähköposti").fill(email)
    await page.get_by_label("Salasana").fill(password)
    await page.get_by_role("button", name="Kirjaudu").click()
    # On the page logged in to, its scripts are listening: a field filled before
    # htmx has processed the page sends nothing (a live count stays stale).
    await page.wait_for_url(lambda url: "/staff/login" not in url,
                            wait_until="domcontentloaded")


async def assert_fits(page: Page, width: int = PHONE["width"]) -> None:
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"page is {scroll_width}px wide on a {width}px screen"
