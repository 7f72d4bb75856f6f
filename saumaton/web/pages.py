"""Server-rendered pages (webshop, POS, staff login)."""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Mount page routes."""
