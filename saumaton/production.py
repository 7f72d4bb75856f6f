"""The production switch (SAUMATON_ENV=production): what keeps the app from starting.

`problems(settings)` is a pure function returning one sentence per reason; the CLI
(`saumaton serve`, `saumaton worker`) and `create_app` call it and refuse to start with
all the reasons at once (docs/security.md, docs/deployment.md).
"""

from __future__ import annotations

from saumaton.config import Settings

# A key shorter than this (characters) is refused in production: 32 random bytes in
# URL-safe base64 are 43 characters.
MIN_SECRET_KEY_LENGTH = 32


class ProductionRefused(RuntimeError):
    """The configuration is not fit for production; the message lists every reason."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("SAUMATON_ENV=production refuses to start:\n"
                         + "\n".join(f"  - {r}" for r in reasons))


def problems(settings: Settings) -> list[str]:
    """Why these settings cannot serve a real shop (empty: they can, or the
    environment is not production)."""
    if settings.env != "production":
        return []
    reasons: list[str] = []
    if settings.paytrail_simulated():
        reasons.append(
            "the Paytrail simulator would be mounted (SAUMATON_PAYTRAIL_ACCOUNT and "
            "SAUMATON_PAYTRAIL_SECRET are not set): anyone could mark their own order "
            "paid with Paytrail's public test secret")
    if not settings.secret_key:
        reasons.append(
            "the secret key is the generated file var/secret_key, not set through "
            "SAUMATON_SECRET_KEY (every server of the shop must share one key, kept "
            "outside the working directory)")
    elif len(settings.secret_key) < MIN_SECRET_KEY_LENGTH:
        reasons.append(
            f"SAUMATON_SECRET_KEY is {len(settings.secret_key)} characters; use at least "
            f"{MIN_SECRET_KEY_LENGTH} random ones (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')")
    if _is_sqlite(settings):
        reasons.append(
            "the database is SQLite (SAUMATON_DATABASE_URL is not a postgresql:// URL): "
            "production runs on PostgreSQL, which several workers and servers share"
            + (f" (SAUMATON_WORKERS={settings.workers})" if settings.workers > 1 else ""))
    if not settings.public_url.lower().startswith("https://"):
        reasons.append(
            "SAUMATON_PUBLIC_URL is not an https:// address"
            + (f" ({settings.public_url!r})" if settings.public_url else " (not set)")
            + ": shoppers' sessions and payment returns must travel encrypted")
    return reasons


def _is_sqlite(settings: Settings) -> bool:
    # The URL as set, not resolved: resolving would create var/ as a side effect.
    url = settings.database_url
    return not url or url.startswith("sqlite")


def check(settings: Settings) -> None:
    """Raise ProductionRefused with every reason, if there is any."""
    reasons = problems(settings)
    if reasons:
        raise ProductionRefused(reasons)
