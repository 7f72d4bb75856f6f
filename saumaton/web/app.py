"""The application factory: one ASGI app serving the API, the webshop and the POS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from saumaton import __version__, production
from saumaton.analytics.buffer import AnalyticsBuffer
from saumaton.api import (
    analytics,
    catalogue,
    catalogue_admin,
    customers,
    events,
    fulfilment,
    gdpr,
    giftcards,
    giftcards_admin,
    orders,
    prices,
    problems,
    returns,
    returns_admin,
    stock,
    stock_admin,
    webhooks,
)
from saumaton.api import customer_reports as customer_reports_api
from saumaton.api import customers_admin as customers_admin_api
from saumaton.api import drawer as drawer_api
from saumaton.api import followups as followups_api
from saumaton.api import mail_events as mail_events_api
from saumaton.api import openapi as api_openapi
from saumaton.api import reconcile as reconcile_api
from saumaton.api import reports as reports_api
from saumaton.api import segments as segments_api
from saumaton.api import settings as settings_api
from saumaton.api import staff as staff_api
from saumaton.api import tryon as tryon_api
from saumaton.catalogue.images import is_content_named
from saumaton.config import SIMULATOR_PATH, TEST_MERCHANT, Settings, get_settings
from saumaton.db.uow import Database
from saumaton.events.hub import EventHub
from saumaton.jobs import JobContext, paytrail_client, start_jobs, stop_jobs
from saumaton.payments.paytrail.simulator import create_simulator
from saumaton.shopsettings.live import LiveSettings
from saumaton.web.analytics import VisitMiddleware
from saumaton.web.auth import follow_staff_events
from saumaton.web.route_access import public
from saumaton.web.route_gates import gate_included_routers
from saumaton.web.security import (
    SecurityHeadersMiddleware,
    TrustedProxyMiddleware,
    content_security_policy,
)
from saumaton.web.session import SessionMiddleware
from saumaton.web.shopper import ShopperMiddleware, follow_shopper_events

STATIC = Path(__file__).parent / "static"
log = logging.getLogger(__name__)


class MediaFiles(StaticFiles):
    """/media: uploaded product pictures are named by their content's hash, so a browser
    keeps them for a year; other files (demo pictures) for an hour."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Any,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        name = os.path.basename(str(full_path))
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if is_content_named(name)
            else "public, max-age=3600")
        return response

API_DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Saumaton API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/api/v1/openapi.json"></div>
<script src="/static/vendor/swagger-ui-bundle.js"></script>
<script src="/static/js/swagger-init.js"></script>
</body>
</html>
"""
API_DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                "base-uri 'self'; form-action 'self'; object-src 'none'")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # SAUMATON_ENV=production: refuse to build an app that is not fit to serve a real
    # shop, naming every reason (saumaton/production.py).
    production.check(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.resolved_database_url(), pool_size=settings.db_pool_size,
                      pool_timeout=settings.db_pool_timeout)
        hub = EventHub(db)
        await hub.start()
        app.state.db = db
        # Reports read through their own URL (a read replica) when one is set.
        reports_url = settings.resolved_reports_database_url()
        app.state.reports_db = (db if reports_url == settings.resolved_database_url()
                                else Database(reports_url, pool_size=2,
                                              pool_timeout=settings.db_pool_timeout))
        app.state.hub = hub
        # The environment's settings with the owner's changes from the back office,
        # replaced on every change (this process's or another's): never captured.
        live = LiveSettings(settings)
        live.on_change.append(lambda fresh: setattr(app.state, "settings", fresh))
        app.state.live_settings = live
        app.state.settings = await live.refresh(db)
        app.state.paytrail = paytrail_client(settings)
        stop = asyncio.Event()
        # Per process, whatever SAUMATON_RUN_JOBS says: they keep this process's memory
        # current (settings, the session cache, the analytics buffer).
        settings_follower = asyncio.create_task(live.follow(db, hub, stop))
        app.state.analytics = AnalyticsBuffer(db)
        app.state.analytics.start()
        # Revoked sessions and tokens leave this process's cache at once.
        staff_events = asyncio.create_task(follow_staff_events(hub))
        shopper_events = asyncio.create_task(follow_shopper_events(hub))
        # The background jobs (saumaton/jobs.py), unless a `saumaton worker` runs them.
        jobs = JobContext(db, settings, live, app.state.paytrail, stop)
        job_tasks = start_jobs(jobs) if settings.run_jobs else []
        try:
            yield
        finally:
            for follower in (staff_events, shopper_events):
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await stop_jobs(jobs, [*job_tasks, settings_follower])
            await app.state.analytics.stop()  # flushes what is left
            await app.state.paytrail.aclose()
            if app.state.simulator is not None:
                # A mounted app gets no lifespan of its own: its kept connections close here.
                await app.state.simulator.aclose()
            await hub.stop()
            if app.state.reports_db is not db:
                await app.state.reports_db.dispose()
            await db.dispose()

    app = FastAPI(
        title="Saumaton API", version=__version__, lifespan=lifespan,
        openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
        description=(
            "One core for a retailer's stores and webshop. Errors are "
            "`application/problem+json` with a stable `code`. Writes need a staff "
            "session or `Authorization: Bearer <token>` (`saumaton token create`)."
        ),
    )
    # Innermost: a method the API path does not take is answered 405 before routing.
    app.add_middleware(problems.MethodCheckMiddleware)
    app.add_middleware(VisitMiddleware)  # inside the sessions: it sets a session flag
    # Inside the sessions, outside the rest: the signed-in shopper is known (server-side
    # session) before any route or the visit tracker asks (web/shopper.py).
    app.add_middleware(ShopperMiddleware)
    # https_only stays off: SecurityHeadersMiddleware adds Secure to every cookie
    # (this one included) when the request came over HTTPS, per request.
    app.add_middleware(SessionMiddleware, secret_key=settings.resolved_secret_key(),
                       session_cookie="saumaton_session", same_site="lax",
                       max_age=12 * 3600)
    # Outside everything that sets cookies; the proxy middleware outermost, so that
    # everything inside sees the client's scheme and address (docs/security.md).
    app.add_middleware(SecurityHeadersMiddleware,
                       csp=content_security_policy([settings.paytrail()[2]]))
    app.add_middleware(TrustedProxyMiddleware, trusted_proxies=settings.trusted_proxies)
    problems.install(app)
    api_openapi.install(app)
    from saumaton.web import pages
    pages.install_shop(app)
    for module in (catalogue, orders, returns, customers, gdpr, stock, events, analytics,
                   giftcards, prices, staff_api, settings_api, reports_api, reconcile_api,
                   customers_admin_api, customer_reports_api, drawer_api,
                   catalogue_admin, stock_admin, returns_admin, giftcards_admin, fulfilment,
                   webhooks, segments_api, mail_events_api, tryon_api, followups_api):
        app.include_router(module.router)

    @app.get("/healthz", tags=["ops"], summary="Liveness and database status",
             dependencies=[public("monitoring reads it; it tells nothing but up or down")])
    async def healthz(request: Request) -> JSONResponse:
        db: Database = request.app.state.db
        try:
            async with db.reader() as s:
                revision = await s.scalar(text("SELECT version_num FROM alembic_version"))
            return JSONResponse({"status": "ok", "version": __version__,
                                 "database": {"status": "ok", "dialect": db.dialect,
                                              "revision": revision}})
        except Exception as exc:  # report, don't crash: this is what monitoring reads
            log.warning("health check failed: %s", exc)
            return JSONResponse({"status": "error", "version": __version__,
                                 "database": {"status": "error", "dialect": db.dialect,
                                              "error": type(exc).__name__}},
                                status_code=503)

    @app.get("/api/docs", include_in_schema=False,
             dependencies=[public("the API's own documentation")])
    async def api_docs() -> HTMLResponse:
        # The vendored Swagger UI, started by a static file (no inline script). Its
        # React components set style attributes and may add <style> elements: this one
        # page allows inline styles; scripts stay 'self' only.
        return HTMLResponse(API_DOCS_HTML, headers={
            "Content-Security-Policy": API_DOCS_CSP})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    settings.media_dir().mkdir(parents=True, exist_ok=True)
    app.mount("/media", MediaFiles(directory=settings.media_dir()), name="media")
    app.state.simulator = None
    if settings.paytrail_simulated() and settings.env != "production":
        # No merchant credentials: serve a local Paytrail with the same HTTP contract.
        app.state.simulator = create_simulator(
            {TEST_MERCHANT[0]: TEST_MERCHANT[1]},
            settings.resolved_public_url() + SIMULATOR_PATH)
        app.mount(SIMULATOR_PATH, app.state.simulator)
    pages.install(app)
    # Last, when every router is in: each turns away the paths it cannot match.
    gate_included_routers(app)
    return app
