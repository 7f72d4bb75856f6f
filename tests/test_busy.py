"""When every database connection stays busy, a request gets a clear 503 "busy"
(with Retry-After) instead of a crash, and nothing is changed."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from sqlalchemy import text

from saumaton.config import Settings
from saumaton.web.app import create_app
from tests.support import Shop


async def test_exhausted_pool_answers_busy(settings: Settings, shop: Shop) -> None:
    tight = settings.model_copy(update={"db_pool_size": 1, "db_pool_timeout": 0.3})
    app = create_app(tight)
    async with app.router.lifespan_context(app), AsyncExitStack() as held:
        db = app.state.db
        for _ in range(2):  # the pool's one connection and its one overflow
            s = await held.enter_async_context(db.reader())
            await s.execute(text("SELECT 1"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            api = await c.get("/api/v1/locations")
            assert api.status_code == 503 and api.headers["retry-after"] == "2"
            assert api.json()["code"] == "busy"
            page = await c.get("/shop/search", params={"q": "voide"},
                               headers={"Accept-Language": "fi"})
            assert page.status_code == 503 and page.headers["retry-after"] == "2"
            assert "kiireinen" in page.text
