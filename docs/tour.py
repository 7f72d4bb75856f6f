"""Screenshots for docs/backoffice.md: the demo shop on a fresh SQLite database, served by
a real uvicorn, visited in Debian's Chromium as the owner (desktop) and a cashier (phone).

    .venv/bin/python docs/tour.py        # writes docs/img/backoffice/*.png

Pages that answer anything but 200 are reported and skipped, so the tour shows what runs.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img" / "backoffice"
CHROMIUM = "/usr/bin/chromium"
OWNER = ("omistaja@kaunisiho.fi", "demo-owner-1")
CASHIER = ("kassa1@kaunisiho.fi", "demo-kassa-1")

# (file name, path) as the owner on a desktop screen.
OWNER_PAGES = [
    ("01-staff-home", "/staff/"),
    ("02-backoffice-home", "/backoffice/"),
    ("03-products", "/backoffice/products"),
    ("04-product-new", "/backoffice/products/new"),
    ("05-product-edit", "/backoffice/products/1"),
    ("06-categories", "/backoffice/categories"),
    ("07-price-changes", "/backoffice/prices"),
    ("08-price-history", "/backoffice/prices/variants/1"),
    ("09-campaigns", "/backoffice/campaigns"),
    ("10-campaign-bundle", "/backoffice/campaigns/3"),
    ("11-price-parity", "/backoffice/price-parity"),
    ("12-stock", "/backoffice/stock"),
    ("13-stock-variant", "/backoffice/stock/variants/1"),
    ("14-receive", "/backoffice/stock/receive"),
    ("15-transfer-new", "/backoffice/stock/transfers/new"),
    ("16-counts", "/backoffice/stock/counts"),
    ("17-staff", "/backoffice/staff"),
    ("18-audit", "/backoffice/audit"),
    ("19-settings", "/backoffice/settings"),
    ("20-import-export", "/backoffice/import-export"),
    ("21-orders", "/backoffice/orders"),
    ("24-reports-sales", "/backoffice/reports"),
    ("25-reports-products", "/backoffice/reports/sales/products"),
    ("26-customer-reports", "/backoffice/reports/customers"),
    ("27-funnel", "/backoffice/reports/funnel"),
    ("28-settlements", "/backoffice/settlements"),
    ("29-card-cash", "/backoffice/card-cash"),
    ("30-flags", "/backoffice/flags"),
    ("31-journal", "/backoffice/journal"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(os.environ, SAUMATON_DATABASE_URL=f"sqlite+aiosqlite:///{tmp}/tour.db",
               SAUMATON_VAR_DIR=str(tmp / "var"), PORT=str(port))
    cli = [sys.executable, "-m", "saumaton"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, cwd=ROOT)
    subprocess.run([*cli, "demo-data"], env=env, check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    proc = subprocess.Popen([*cli, "serve"], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            proc.poll()
            if proc.returncode is not None:
                raise SystemExit("the server exited") from None
            time.sleep(0.2)  # a script, not a test: wait for the server to listen
    raise SystemExit("the server did not start")


async def _login(page: Page, base: str, who: tuple[str, str]) -> None:
    await page.goto(f"{base}/staff/login")
    await page.fill("#email", who[0])
    await page.fill("#password", who[1])
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/staff/")


async def _tour(base: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu"])
        desk = await browser.new_page(viewport={"width": 1280, "height": 860},
                                      locale="fi-FI")
        await _login(desk, base, OWNER)
        for name, path in OWNER_PAGES:
            response = await desk.goto(base + path)
            if response is None or response.status != 200:
                print(f"skipped {path}: {response.status if response else 'no answer'}")
                continue
            await desk.wait_for_load_state("networkidle")
            await desk.screenshot(path=str(OUT / f"{name}.png"))
            print(f"{name}.png  {path}")
        phone = await browser.new_page(viewport={"width": 375, "height": 740},
                                       locale="fi-FI")
        await _login(phone, base, CASHIER)
        await phone.screenshot(path=str(OUT / "22-cashier-home-phone.png"))
        await phone.goto(base + "/backoffice/settings")
        await phone.screenshot(path=str(OUT / "23-forbidden-phone.png"))
        owner_phone = await browser.new_page(viewport={"width": 375, "height": 740},
                                             locale="fi-FI")
        await _login(owner_phone, base, OWNER)
        await owner_phone.goto(base + "/backoffice/reports")
        await owner_phone.screenshot(path=str(OUT / "32-reports-phone.png"), full_page=True)
        await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, base = _serve(Path(tmp))
        try:
            asyncio.run(_tour(base))
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
