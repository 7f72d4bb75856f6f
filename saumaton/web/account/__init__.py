"""Shopper account pages under /account: sign-in, registration, password reset, e-mail
verification, the overview with order history, addresses and consents."""

from __future__ import annotations

from fastapi import APIRouter

from saumaton.web.account import profile, returns, signin

router = APIRouter()
router.include_router(signin.router)
router.include_router(profile.router)
router.include_router(returns.router)
