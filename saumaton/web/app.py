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
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.middleware.sessions import SessionMiddleware

from saumaton import __version__
from saumaton.analytics.buffer import AnalyticsBuffer
from saumaton.api import (
    analytics,
    catalogue,
    customers,
    events,
    gdpr,
    giftcards,
    orders,
    prices,
    problems,
    returns,
    stock,
    webhooks,
)
from saumaton.catalogue.images import is_content_named
from saumaton.checkout.jobs import run_checkout_jobs
from saumaton.config import SIMULATOR_PATH, TEST_MERCHANT, Settings, get_settings
from saumaton.db.uow import Database
from saumaton.events.hub import EventHub
from saumaton.giftcards.jobs import run_expiry as run_gift_card_expiry
from saumaton.inventory.expiry import run_expiry
from saumaton.loyalty.ledger import run_expiry as run_loyalty_expiry
from saumaton.mail.sender import run_mail_sender
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from saumaton.payments.paytrail.simulator import create_simulator
from saumaton.pricing.changes import run_price_changes
from saumaton.reports.jobs import run_reports_job
from saumaton.service.nps import run_nps_job
from saumaton.shopsettings.live import LiveSettings
from saumaton.web.analytics import VisitMiddleware
from saumaton.web.auth import follow_staff_events
from saumaton.webhooks.worker import run_webhook_worker

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

def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

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
        account, secret, base_url = settings.paytrail()
        app.state.paytrail = PaytrailClient(PaytrailConfig(account, secret, base_url))
        stop_expiry = asyncio.Event()
        expiry = asyncio.create_task(run_expiry(db, stop=stop_expiry))
        settings_follower = asyncio.create_task(live.follow(db, hub, stop_expiry))
        mail_sender = asyncio.create_task(run_mail_sender(db, live, stop_expiry))
        checkout_jobs = asyncio.create_task(run_checkout_jobs(
            db, app.state.paytrail, live, stop_expiry))
        nps_job = asyncio.create_task(run_nps_job(db, live, stop_expiry))
        loyalty_expiry = asyncio.create_task(run_loyalty_expiry(db, stop=stop_expiry))
        gift_card_expiry = asyncio.create_task(run_gift_card_expiry(db, stop=stop_expiry))
        price_changes = asyncio.create_task(run_price_changes(
            db, stop_expiry, settings.price_job_interval_seconds))
        reports_job = asyncio.create_task(run_reports_job(
            db, stop_expiry, settings.reports_job_interval_seconds, settings.timezone))
        webhook_worker = (asyncio.create_task(run_webhook_worker(db, live, stop_expiry))
                          if settings.run_jobs else None)
        app.state.analytics = AnalyticsBuffer(db)
        app.state.analytics.start()
        # Revoked sessions and tokens leave this process's cache at once.
        staff_events = asyncio.create_task(follow_staff_events(hub))
        try:
            yield
        finally:
            stop_expiry.set()
            staff_events.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await staff_events
            await expiry
            await settings_follower
            await mail_sender
            await checkout_jobs
            await nps_job
            await loyalty_expiry
            await gift_card_expiry
            await price_changes
            await reports_job
            if webhook_worker is not None:
                await webhook_worker
            await app.state.analytics.stop()  # flushes what is left
            await app.state.paytrail.aclose()
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
    app.add_middleware(VisitMiddleware)  # inside the sessions: it sets a session flag
    app.add_middleware(SessionMiddleware, secret_key=settings.resolved_secret_key(),
                       session_cookie="saumaton_session", same_site="lax",
                       max_age=12 * 3600)
    problems.install(app)
    for module in (catalogue, orders, returns, customers, gdpr, stock, events, analytics,
                   giftcards, prices, webhooks):
        app.include_router(module.router)

    @app.get("/healthz", tags=["ops"], summary="Liveness and database status")
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

    @app.get("/api/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/v1/openapi.json", title="Saumaton API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
            # No validator badge: it would call validator.swagger.io from the browser.
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    settings.media_dir().mkdir(parents=True, exist_ok=True)
    app.mount("/media", MediaFiles(directory=settings.media_dir()), name="media")
    if settings.paytrail_simulated():
        # No merchant credentials: serve a local Paytrail with the same HTTP contract.
        app.mount(SIMULATOR_PATH, create_simulator(
            {TEST_MERCHANT[0]: TEST_MERCHANT[1]},
            settings.resolved_public_url() + SIMULATOR_PATH))
    from saumaton.web import pages
    pages.install(app)
    return app
