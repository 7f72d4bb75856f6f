"""The till's service worker and offline files, served under /pos/ (the worker's scope)."""

from __future__ import annotations

from saumaton.web.pages import page_router

router = page_router("/pos")
