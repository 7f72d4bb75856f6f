"""Security hardening (docs/security.md): a copied session cookie dies with the session,
Secure cookies over HTTPS (trusted proxies only), sign-in throttling per account and per
address (both databases; exact under parallel attempts on PostgreSQL), security headers
and a CSP without inline script, and the production switch. Both databases."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from saumaton.audit.models import AuditEntry
from saumaton.catalogue.models import Variant
from saumaton.config import Settings
from saumaton.db.uow import Database
from saumaton.production import ProductionRefused, problems
from saumaton.staff import admin
from saumaton.throttle import services as throttle
from saumaton.throttle.services import Limits
from saumaton.web.app import create_app
from saumaton.web.security import TrustedProxyMiddleware
from tests.support import (
    Shop,
    csrf_of,
    drop_pg_database,
    fresh_database,
    make_variants,
    staff_login,
)
from tests.test_staff_admin import (
    PASSWORD,
    client_of,
    last_mail,
    link_of,
    login,
    new_person,
    owner_post,
    signed_in,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "saumaton" / "web" / "templates"


# --- F1: a copy of the session cookie ends with the session -----------------------------

async def _price(db: Database, variant_id: int) -> int:
    async with db.reader() as s:
        price = await s.scalar(select(Variant.price_cents).where(Variant.id == variant_id))
    assert price is not None
    return int(price)


@pytest.mark.parametrize("event", ["logout", "password_change", "disable"])
async def test_a_copied_cookie_is_refused_at_once_for_reads_and_writes(
    event: str, web: httpx.AsyncClient, db: Database, shop: Shop, settings: Settings
) -> None:
    staff_id, email, _ = await new_person(db, [("owner", None)])
    [variant] = await make_variants(db, [1000])
    vid = int(str(variant["id"]))
    async with client_of(web) as her, client_of(web) as thief:
        csrf = await login(her, email)
        thief.cookies.update(her.cookies)  # the copy, taken while she is signed in
        headers = {"X-CSRF-Token": csrf}
        # the copy works before the event: a read and a price change
        assert await signed_in(thief)
        r = await thief.put(f"/api/v1/variants/{vid}/price", json={"price_cents": 1100},
                            headers=headers)
        assert r.status_code == 200, r.text
        assert await _price(db, vid) == 1100
        if event == "logout":
            r = await her.post("/staff/logout", data={"csrf_token": csrf})
            assert r.status_code == 303
        elif event == "password_change":
            async with db.uow() as uow:
                await admin.request_password_reset(uow, email, lang="en",
                                                   settings=settings)
                await uow.commit()
            link = link_of(await last_mail(db, email))
            async with client_of(web) as other:
                form = (await other.get(f"/staff/set-password?token={link}")).text
                r = await other.post("/staff/set-password", data={
                    "csrf_token": csrf_of(form), "token": link,
                    "password": "an-entirely-new-pw-1", "confirm": "an-entirely-new-pw-1"})
                assert r.status_code == 303, r.text
        else:
            async with client_of(web) as owner:
                await staff_login(owner, shop, "owner")
                r = await owner_post(owner, f"/backoffice/staff/{staff_id}/disable")
                assert r.status_code == 303
        # the very next requests through the copy are refused: read and write (each
        # with the cookie exactly as copied: a refused read clears the jar's copy)
        copied = dict(thief.cookies)
        assert not await signed_in(thief)
        thief.cookies.clear()
        thief.cookies.update(copied)
        r = await thief.put(f"/api/v1/variants/{vid}/price", json={"price_cents": 1},
                            headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "not_authenticated", r.text
        assert await _price(db, vid) == 1100  # unchanged


async def test_a_copied_cookie_cannot_write_after_logout_without_reading_first(
    web: httpx.AsyncClient, db: Database
) -> None:
    """The write comes first, from a client that never read anything."""
    _, email, _ = await new_person(db, [("owner", None)])
    [variant] = await make_variants(db, [2000])
    vid = int(str(variant["id"]))
    async with client_of(web) as her:
        csrf = await login(her, email)
        copied = dict(her.cookies)
        assert (await her.post("/staff/logout", data={"csrf_token": csrf})).status_code == 303
    async with client_of(web) as thief:
        thief.cookies.update(copied)
        r = await thief.put(f"/api/v1/variants/{vid}/price", json={"price_cents": 5},
                            headers={"X-CSRF-Token": csrf})
        assert r.status_code == 401 and r.json()["code"] == "not_authenticated", r.text
        r = await thief.get("/api/v1/orders?limit=1")
        assert r.status_code == 401
    assert await _price(db, vid) == 2000


# --- F2: Secure cookies over HTTPS, trusted proxies ------------------------------------

@pytest.fixture(scope="module")
async def proxied(settings: Settings, shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    """An app that trusts 127.0.0.1 (the in-process client's address) as its proxy,
    with small sign-in limits."""
    strict = settings.model_copy(update={
        "trusted_proxies": "127.0.0.1, 10.9.0.0/16",
        "login_max_failures_per_account": 3, "login_max_failures_per_address": 6,
        "login_throttle_window_seconds": 600})
    app = create_app(strict)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def _cookies(r: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def _secure(header: str) -> bool:
    return any(p.strip().lower() == "secure" for p in header.split(";")[1:])


async def _set_cookies_everywhere(c: httpx.AsyncClient, shop: Shop, db: Database,
                                  headers: dict[str, str]) -> dict[str, str]:
    """Visit what sets each of the app's cookies; returns name -> Set-Cookie."""
    seen: dict[str, str] = {}
    r = await c.get("/shop/?lang=en", headers=headers)  # language (+ session)
    seen.update(_cookies(r))
    page = r.text
    r = await c.post("/shop/consent", data={"choice": "analytics", "csrf_token": csrf_of(page),
                                       "next": "/shop/"}, headers=headers)
    assert r.status_code == 303, r.text
    seen.update(_cookies(r))
    [variant] = await make_variants(db, [500], stock={shop.warehouse: 5})
    r = await c.get(f"/shop/p/{variant['product_slug']}", headers=headers)
    page = r.text
    r = await c.post("/shop/cart/add", data={"variant_id": str(variant["id"]),
                                             "quantity": "1", "csrf_token": csrf_of(page)},
                     headers=headers)
    assert r.status_code in (200, 303), r.text
    seen.update(_cookies(r))
    r = await c.post("/service/chat/messages", data={
        "body": "Hei", "csrf_token": csrf_of(page)}, headers=headers)
    assert r.status_code == 200, r.text
    seen.update(_cookies(r))
    email, password = shop.logins["cashier1"]
    page = (await c.get("/staff/login", headers=headers)).text
    r = await c.post("/staff/login", data={"email": email, "password": password,
                                           "csrf_token": csrf_of(page)}, headers=headers)
    assert r.status_code == 303, r.text
    seen.update(_cookies(r))
    return seen


async def test_cookies_get_secure_only_over_https(proxied: httpx.AsyncClient, shop: Shop,
                                                  db: Database) -> None:
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    # https:// so that the client sends the Secure cookies back (the proxy's side)
    async with httpx.AsyncClient(transport=proxied._transport, base_url="https://test") as c:
        over_https = await _set_cookies_everywhere(c, shop, db, https)
    async with httpx.AsyncClient(transport=proxied._transport, base_url="http://test") as c:
        over_http = await _set_cookies_everywhere(c, shop, db, {})
    expected = {"saumaton_session", "saumaton_lang", "saumaton_consent", "saumaton_vid",
                "saumaton_cart", "saumaton_chat"}
    assert expected <= set(over_https), sorted(over_https)
    assert set(over_https) == set(over_http)
    for name, header in over_https.items():
        assert _secure(header), f"{name} lacks Secure over https: {header}"
        assert "httponly" in header.lower() and "samesite=lax" in header.lower(), header
    for name, header in over_http.items():
        assert not _secure(header), f"{name} is Secure over plain http: {header}"
        assert "httponly" in header.lower(), header


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    client: httpx.AsyncClient, proxied: httpx.AsyncClient
) -> None:
    """`client` trusts no proxy: the same header is ignored (no Secure, no HSTS)."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    r = await client.get("/shop/?lang=fi", headers=headers)
    assert r.status_code == 200
    assert not any(_secure(h) for h in r.headers.get_list("set-cookie"))
    assert "strict-transport-security" not in r.headers
    r = await proxied.get("/shop/?lang=fi", headers=headers)
    assert r.headers["strict-transport-security"].startswith("max-age=")
    assert all(_secure(h) for h in r.headers.get_list("set-cookie"))


def test_the_client_address_is_the_nearest_untrusted_hop() -> None:
    mw = TrustedProxyMiddleware(lambda *a: None, "10.0.0.0/8, 127.0.0.1")  # type: ignore[arg-type, return-value]
    # the client wrote the first entry itself; the proxies appended the rest
    assert mw.client_of("127.0.0.1", "1.2.3.4, 198.51.100.5, 10.0.0.2") == "198.51.100.5"
    assert mw.client_of("127.0.0.1", "10.0.0.3") == "10.0.0.3"
    with pytest.raises(ValueError, match="not-an-ip"):
        TrustedProxyMiddleware(lambda *a: None, "not-an-ip")  # type: ignore[arg-type, return-value]


async def test_an_untrusted_peer_cannot_choose_its_address(
    db: Database, settings: Settings, shop: Shop
) -> None:
    """Without trusted proxies every request counts against the socket's address, so
    changing X-Forwarded-For does not escape the per-address limit."""
    strict = settings.model_copy(update={"login_max_failures_per_address": 2,
                                         "login_max_failures_per_account": 100})
    app = create_app(strict)
    # An address of its own for this test (the shared 127.0.0.1 row belongs to others).
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{_octet()}", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            page = (await c.get("/staff/login")).text
            codes = []
            for i in range(4):
                r = await c.post("/staff/login", headers={"X-Forwarded-For": f"10.1.1.{i}"},
                                 data={"email": f"u{i}-{uuid.uuid4().hex[:6]}@x.example",
                                       "password": "wrong-wrong-1",
                                       "csrf_token": csrf_of(page)})
                codes.append(r.status_code)
    assert codes == [401, 401, 429, 429]


def _octet() -> int:
    return uuid.uuid4().int % 250 + 1


# --- sign-in throttling ----------------------------------------------------------------

def _address() -> str:
    """A fresh client address (behind the trusted proxy): tests do not share counts."""
    return f"203.0.{_octet()}.{_octet()}"


async def _staff_login(c: httpx.AsyncClient, email: str, password: str, address: str,
                       accept: str = "text/html") -> httpx.Response:
    page = (await c.get("/staff/login?lang=en")).text
    return await c.post("/staff/login", data={"email": email, "password": password,
                                              "csrf_token": csrf_of(page)},
                        headers={"X-Forwarded-For": address, "Accept": accept})


async def test_staff_sign_ins_are_throttled_per_account_with_a_clear_message(
    proxied: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    _, email, _ = await new_person(db, [("cashier", shop.store1)])
    async with client_of(proxied) as c:
        codes = [(await _staff_login(c, email, "wrong-pw-123", _address())).status_code
                 for _ in range(3)]
        assert codes == [401, 401, 401]
        # the fourth, even with the right password and from another address, is refused
        r = await _staff_login(c, email, PASSWORD, _address())
        assert r.status_code == 429
        assert "Too many failed sign-ins; try again in 10 minutes." in r.text
        assert 'data-testid="error-form"' in r.text
        assert 0 < int(r.headers["retry-after"]) <= 600
        r = await _staff_login(c, email, PASSWORD, _address(), accept="application/json")
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["code"] == "too_many_attempts" and 0 < body["retry_after"] <= 600
        assert int(r.headers["retry-after"]) == body["retry_after"]
        page = (await c.get("/staff/login?lang=fi")).text
        r = await c.post("/staff/login", data={"email": email, "password": PASSWORD,
                                               "csrf_token": csrf_of(page)},
                         headers={"X-Forwarded-For": _address()})
        assert "Liian monta epäonnistunutta kirjautumista" in r.text
    # audited once per lockout, not per refused request
    async with db.reader() as s:
        rows = (await s.scalars(select(AuditEntry).where(
            AuditEntry.action == "login.throttled"))).all()
    mine = [e for e in rows if e.data.get("who") == f"staff:{email}"]
    assert len(mine) == 1 and mine[0].data["scope"] == "account", [e.data for e in rows]


async def test_a_successful_sign_in_clears_the_accounts_failures(
    proxied: httpx.AsyncClient, db: Database, shop: Shop
) -> None:
    _, email, _ = await new_person(db, [("cashier", shop.store1)])
    address = _address()
    async with client_of(proxied) as c:
        for _ in range(2):
            assert (await _staff_login(c, email, "wrong-pw-123", address)).status_code == 401
        assert (await _staff_login(c, email, PASSWORD, address)).status_code == 303
    async with client_of(proxied) as c:
        # three more wrong ones are allowed again (the count started afresh)
        codes = [(await _staff_login(c, email, "wrong-pw-123", address)).status_code
                 for _ in range(3)]
        assert codes == [401, 401, 401]
        assert (await _staff_login(c, email, PASSWORD, address)).status_code == 429


async def test_sign_ins_are_throttled_per_address_across_accounts(
    proxied: httpx.AsyncClient, db: Database
) -> None:
    address = _address()
    async with client_of(proxied) as c:
        codes = []
        for i in range(8):
            email = f"spray-{i}-{uuid.uuid4().hex[:6]}@x.example"
            codes.append((await _staff_login(c, email, "guess-guess-1", address)).status_code)
        assert codes == [401] * 6 + [429] * 2
        # another address is not affected
        r = await _staff_login(c, f"n-{uuid.uuid4().hex[:6]}@x.example", "guess-guess-1",
                               _address())
        assert r.status_code == 401


async def test_customer_sign_in_and_reset_forms_are_throttled(
    proxied: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    from tests.test_accounts import register

    email = f"shopper-{uuid.uuid4().hex[:8]}@example.com"
    await register(db, settings, email)
    async with client_of(proxied) as c:
        page = (await c.get("/account/login?lang=en")).text
        codes = []
        for _ in range(4):
            r = await c.post("/account/login", data={
                "email": email, "password": "wrong-password-9", "csrf_token": csrf_of(page)},
                headers={"X-Forwarded-For": _address()})
            codes.append(r.status_code)
        assert codes == [401, 401, 401, 429], codes
        assert "Too many failed sign-ins; try again in" in r.text
        # the forgotten-password form: each request counts (it sends mail)
        page = (await c.get("/account/reset?lang=en")).text
        other = f"reset-{uuid.uuid4().hex[:8]}@example.com"
        codes = []
        for _ in range(4):
            r = await c.post("/account/reset", data={"email": other,
                                                     "csrf_token": csrf_of(page)},
                             headers={"X-Forwarded-For": _address()})
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429], codes
        assert "Too many password reset requests" in r.text
        # the staff one too
        page = (await c.get("/staff/forgot-password?lang=en")).text
        codes = []
        for _ in range(4):
            r = await c.post("/staff/forgot-password", data={"email": other,
                                                             "csrf_token": csrf_of(page)},
                             headers={"X-Forwarded-For": _address()})
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429], codes
        assert 'data-testid="error-email"' in r.text


async def test_the_window_passes_and_attempts_are_allowed_again(db: Database) -> None:
    limits = Limits(per_account=2, per_address=100, window_seconds=10)
    email, address = f"w-{uuid.uuid4().hex[:8]}@x.example", _address()
    for expected in (0, 0):
        async with db.uow() as uow:
            assert await throttle.reserve(uow, "staff", email, address, limits) == expected
            await uow.commit()
    async with db.uow() as uow:
        wait = await throttle.reserve(uow, "staff", email, address, limits)
        await uow.commit()
    assert 0 < wait <= 10
    # move the window's start back past its length, as time would
    from datetime import timedelta

    from saumaton.throttle.models import LoginThrottle
    async with db.uow() as uow:
        row = await uow.session.get(LoginThrottle, throttle.account_key("staff", email))
        assert row is not None
        row.window_started_at -= timedelta(seconds=11)
        await uow.commit()
    async with db.uow() as uow:
        assert await throttle.reserve(uow, "staff", email, address, limits) == 0
        await uow.commit()
    # a counter whose window passed long ago is pruned by the next attempt's statement
    async with db.uow() as uow:
        row = await uow.session.get(LoginThrottle, throttle.account_key("staff", email))
        assert row is not None
        row.window_started_at -= timedelta(seconds=21)
        await uow.commit()
    async with db.uow() as uow:
        assert await throttle.reserve(uow, "customer", email, _address(), limits) == 0
        await uow.commit()
    async with db.reader() as s:
        assert await s.get(LoginThrottle, throttle.account_key("staff", email)) is None


async def test_parallel_wrong_passwords_cannot_pass_the_limit(
    db: Database, backend: str
) -> None:
    """Many processes' worth of parallel attempts (separate connections): exactly the
    limit pass, thanks to the row lock (PostgreSQL) or serialised writers (SQLite)."""
    limits = Limits(per_account=5, per_address=1000, window_seconds=600)
    email = f"par-{uuid.uuid4().hex[:8]}@x.example"
    others = [Database(db.url, pool_size=2) for _ in range(3)] if backend == "postgresql" \
        else []
    pool = [db, *others]
    try:
        async def one(i: int) -> int:
            async with pool[i % len(pool)].uow() as uow:
                wait = await throttle.reserve(uow, "staff", email, _address(), limits)
                await uow.commit()
            return wait
        results = await asyncio.gather(*(one(i) for i in range(30)))
    finally:
        for other in others:
            await other.dispose()
    allowed = sum(1 for w in results if w == 0)
    assert allowed == limits.per_account, results


# --- security headers and the CSP -------------------------------------------------------

async def test_every_response_carries_the_security_headers(client: httpx.AsyncClient,
                                                            shop: Shop) -> None:
    for path in ("/shop/", "/staff/login", "/api/v1/openapi.json", "/healthz",
                 "/static/css/site.css", "/no-such-page", "/api/v1/orders"):
        r = await client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp, (path, csp)
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert "form-action 'self'" in csp and "base-uri 'self'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in r.headers["permissions-policy"]
        assert "strict-transport-security" not in r.headers  # plain http
    # the API docs page: its own policy (inline styles for Swagger UI), scripts 'self'
    r = await client.get("/api/docs")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self' 'unsafe-inline'" in csp
    assert "<script>" not in r.text


def test_the_payment_provider_is_an_allowed_form_target(settings: Settings) -> None:
    from saumaton.web.security import content_security_policy
    real = settings.model_copy(update={"paytrail_account": "1", "paytrail_secret": "s"})
    csp = content_security_policy([real.paytrail()[2]])
    assert "form-action 'self' https://services.paytrail.com" in csp


INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")"
                           r"[^>]*>", re.I)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"""(?:href|src|action|formaction)\s*=\s*["']?\s*javascript:""", re.I)
STYLE_ATTR = re.compile(r"""\sstyle\s*=\s*["']""", re.I)


def test_no_template_has_inline_script_handlers_or_style_attributes() -> None:
    """A strict CSP refuses them: code goes to static/*.js, styles to static/css/.
    JSON data blocks (<script type="application/json">) are data, not code."""
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text()
        for name, pattern in (("inline <script>", INLINE_SCRIPT), ("on*= handler", HANDLER),
                              ("javascript: URL", JS_URL), ("style attribute", STYLE_ATTR)):
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{path.relative_to(TEMPLATES)}:{line}: {name}")
    assert found == []


# --- the production switch --------------------------------------------------------------

GOOD = {"env": "production", "paytrail_account": "123456", "paytrail_secret": "merchant",
        "secret_key": "k" * 48, "database_url": "postgresql://u@db.example/shop",
        "public_url": "https://kauppa.example", "workers": 4}


def _production(**changes: object) -> Settings:
    return Settings(**{**GOOD, **changes})  # type: ignore[arg-type]


def test_a_valid_production_configuration_has_no_problems() -> None:
    assert problems(_production()) == []
    assert problems(Settings(env="development")) == []  # a dev setup is never refused


@pytest.mark.parametrize(("changes", "words"), [
    ({"paytrail_account": "", "paytrail_secret": ""}, "Paytrail simulator"),
    ({"secret_key": ""}, "generated file"),
    ({"secret_key": "short-key"}, "9 characters"),
    ({"database_url": ""}, "SQLite"),
    ({"database_url": "sqlite+aiosqlite:///x.db", "workers": 3}, "SAUMATON_WORKERS=3"),
    ({"public_url": "http://kauppa.example"}, "not an https://"),
    ({"public_url": ""}, "not set"),
])
def test_each_production_problem_is_named(changes: dict[str, object], words: str) -> None:
    reasons = problems(_production(**changes))
    assert len(reasons) == 1 and words in reasons[0], reasons


def test_create_app_refuses_production_with_every_reason(tmp_path: Path) -> None:
    bad = Settings(env="production", var_dir=tmp_path, secret_key="")
    with pytest.raises(ProductionRefused) as caught:
        create_app(bad)
    text = str(caught.value)
    assert len(caught.value.reasons) == 4
    for words in ("Paytrail simulator", "secret key", "SQLite", "https://"):
        assert words in text


async def test_a_valid_production_app_starts_without_the_simulator(tmp_path: Path) -> None:
    """On PostgreSQL, whichever backend the rest of the run uses: production refuses
    SQLite (tested above)."""
    database_url = await fresh_database("postgresql", tmp_path)
    try:
        prod = Settings(**{**GOOD, "database_url": database_url, "var_dir": tmp_path})  # type: ignore[arg-type]
        app = create_app(prod)
        assert not any(getattr(r, "path", "") == "/paytrail-sim" for r in app.routes)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="https://test") as c:
                r = await c.get("/healthz")
                assert r.status_code == 200
                assert (await c.get("/paytrail-sim/")).status_code == 404
    finally:
        await drop_pg_database(database_url)


@pytest.mark.parametrize("command", [["serve", "--port", "9"], ["worker"]])
def test_saumaton_serve_refuses_production_before_serving(tmp_path: Path,
                                                          command: list[str]) -> None:
    """The real commands (the web server and the job worker): exit status 2 and every
    reason, and nothing started."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SAUMATON_")}
    env.update(SAUMATON_ENV="production", SAUMATON_VAR_DIR=str(tmp_path),
               SAUMATON_PUBLIC_URL="http://kauppa.example", COLUMNS="200")
    done = subprocess.run([sys.executable, "-m", "saumaton", *command],
                          env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    for words in ("refuses to start", "Paytrail simulator", "secret key", "SQLite",
                  "not an https://"):
        assert words in out, out
    assert not (tmp_path / "secret_key").exists()  # nothing was prepared either
