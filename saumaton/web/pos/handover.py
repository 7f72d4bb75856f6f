"""Click & collect at the till: find an order, check ID, hand over; receipts by e-mail."""

from __future__ import annotations

from saumaton.web.pages import page_router

router = page_router("/pos")
