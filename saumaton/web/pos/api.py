"""The till's JSON endpoints: catalogue snapshot, sales and voids (online or synced)."""

from __future__ import annotations

from saumaton.web.pages import page_router

router = page_router("/pos")
