"""The customer card at the till: find (phone, e-mail, card, QR), create, preferences, notes."""

from __future__ import annotations

from saumaton.web.pages import page_router

router = page_router("/pos")
