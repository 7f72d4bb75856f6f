"""The webhook pages in a real headless Chromium against a real server whose worker
delivers to a local receiver (both databases): mistakes shown next to their fields, the
secret shown once, a test event delivered and logged, and sent again."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from standardwebhooks.webhooks import Webhook

from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, eventually
from tests.webhook_receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def _log_shows(page: Page, text: str) -> bool:
    await page.reload()
    return text in await page.get_by_test_id("delivery-log").inner_text()


async def test_owner_creates_tests_and_resends_a_webhook(
    browser: Browser, contexts: list[BrowserContext], server: Server, shop: Shop,
    receiver: Receiver,
) -> None:
    page = await open_page(contexts, browser)
    await page.goto(f"{server.base_url}/backoffice/webhooks")
    await fill_staff_login(page, shop, "owner")
    await expect(page).to_have_url(f"{server.base_url}/backoffice/webhooks")
    await page.get_by_test_id("new-webhook").click()
    # Nothing filled in: both mistakes at once, next to their fields.
    await page.get_by_test_id("webhook-url").fill("ftp://wrong.example")
    await page.get_by_test_id("webhook-save").click()
    await expect(page.get_by_test_id("error-url")).to_be_visible()
    await expect(page.get_by_test_id("error-topics")).to_be_visible()
    await page.get_by_test_id("webhook-url").fill(receiver.url)
    await page.get_by_test_id("topic-order.paid").check()
    await page.get_by_test_id("webhook-save").click()
    secret = (await page.get_by_test_id("secret").inner_text()).strip()
    assert secret.startswith("whsec_")
    await page.get_by_test_id("webhook-test").click()
    await expect(page.get_by_test_id("notice")).to_be_visible()
    await expect(page.get_by_test_id("secret")).to_have_count(0)  # shown once only
    await eventually(lambda: _log_shows(page, "HTTP 200"), within=15,
                     what="the test event's delivery in the log")
    [got] = receiver.requests
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"
    await page.locator("[data-testid^='again-']").first.click()
    await expect(page.get_by_test_id("notice")).to_be_visible()

    async def twice() -> bool:
        return receiver.accepted.get(got.webhook_id) == 2
    await eventually(twice, within=15, what="sent again with the same webhook-id")
