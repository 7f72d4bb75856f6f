"""The Content-Security-Policy in a real headless Chromium against a real uvicorn server
(both databases): the main pages load and work with zero CSP violations — the shop
(list, product page, cart, checkout), the till, the back office (home, a campaign form,
the categories), the service desk and the API docs.

Violations are caught twice: the page's `securitypolicyviolation` events (a listener
added before any page script runs) and Chromium's console messages about the policy.
"""

from __future__ import annotations

from playwright.async_api import Browser, BrowserContext, Page, expect

from saumaton.db.uow import Database
from tests.browser import fill_staff_login, open_page
from tests.support import Server, Shop, make_variants
from tests.test_till_api import open_drawer

LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watch:
    """Every CSP complaint of one page: its events and its console messages."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(m.text)
                if "Content Security Policy" in m.text else None)

    async def violations(self) -> list[str]:
        events: list[str] = await self.page.evaluate("window.__cspViolations || []")
        return events + self.console


async def watched(contexts: list[BrowserContext], browser: Browser) -> tuple[Page, Watch]:
    page = await open_page(contexts, browser)
    await page.context.add_init_script(LISTENER)
    return page, Watch(page)


async def visit(page: Page, watch: Watch, url: str, ready: str, seen: dict[str, list[str]]
                ) -> None:
    """Open `url`, wait until `ready` (a selector) shows, note the page's violations."""
    response = await page.goto(url)
    assert response is not None and response.ok, (url, response and response.status)
    csp = await response.header_value("content-security-policy")
    assert csp and "script-src 'self'" in csp, url
    await expect(page.locator(ready).first).to_be_visible()
    await page.wait_for_load_state("networkidle")
    seen[url] = await watch.violations()
    watch.console.clear()
    await page.evaluate("window.__cspViolations = []")


async def test_main_pages_run_under_the_csp_without_violations(
    browser: Browser, contexts: list[BrowserContext], server: Server, db: Database,
    shop: Shop,
) -> None:
    [v] = await make_variants(db, [1490], stock={shop.store1: 5, shop.warehouse: 5})
    await open_drawer(db, shop.store1)
    base = server.base_url
    seen: dict[str, list[str]] = {}

    # The shopper: list, product page, add to cart, cart, checkout.
    shopper, watch = await watched(contexts, browser)
    await visit(shopper, watch, f"{base}/shop/", "main", seen)
    product = f"{base}/shop/p/{v['product_slug']}?variant={v['id']}"
    await visit(shopper, watch, product, "[data-testid=price]", seen)
    await shopper.get_by_test_id("add-to-cart").click()
    await expect(shopper.get_by_test_id("cart-count")).to_have_text("1")
    seen[product + " (add to cart)"] = await watch.violations()
    await visit(shopper, watch, f"{base}/shop/cart", "main", seen)
    await visit(shopper, watch, f"{base}/shop/checkout", "form", seen)
    await visit(shopper, watch, f"{base}/account/login", "form", seen)

    # The till: the cashier signs in and the till starts (its scripts, service worker).
    cashier, watch = await watched(contexts, browser)
    await cashier.goto(f"{base}/pos/")
    await fill_staff_login(cashier, shop, "cashier1")
    await expect(cashier).to_have_url(f"{base}/pos/store-1")
    await expect(cashier.locator("#till[data-ready='1']")).to_have_count(1)
    await cashier.wait_for_load_state("networkidle")
    seen[f"{base}/pos/store-1"] = await watch.violations()
    watch.console.clear()

    # The back office and the service desk as the owner.
    owner, watch = await watched(contexts, browser)
    await owner.goto(f"{base}/staff/login")
    await fill_staff_login(owner, shop, "owner")
    await expect(owner).not_to_have_url(f"{base}/staff/login")
    await visit(owner, watch, f"{base}/staff/", "main", seen)
    await visit(owner, watch, f"{base}/backoffice/campaigns/new", "[data-testid=campaign-form]",
                seen)
    # the campaign form's kind switch (moved out of the template) still works
    kind = owner.get_by_test_id("campaign-kind")
    options = await kind.locator("option").evaluate_all("os => os.map(o => o.value)")
    hidden_before = await owner.locator("[data-kinds][hidden]").count()
    assert hidden_before > 0, "the form shows only the chosen kind's fields"
    await kind.select_option(options[-1])
    seen["campaign kind switch"] = await watch.violations()
    await visit(owner, watch, f"{base}/backoffice/categories", "main", seen)
    await visit(owner, watch, f"{base}/service", "main", seen)
    await visit(owner, watch, f"{base}/api/docs", ".swagger-ui .info", seen)

    assert {url: found for url, found in seen.items() if found} == {}
