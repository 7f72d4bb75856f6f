"""The cash drawer pages: open with a float, cash in and out, close with the count, Z reports."""

from __future__ import annotations

from saumaton.web.pages import page_router

router = page_router("/pos")
