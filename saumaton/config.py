"""Settings from the environment (pydantic-settings).

Every setting has a default that works on a fresh machine: SQLite under ./var/
and a secret key generated once and kept in ./var/secret_key.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Paytrail's published test merchant, used with the built-in simulator.
TEST_MERCHANT = ("375917", "SAIPPUAKAUPPIAS")
SIMULATOR_PATH = "/paytrail-sim"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAUMATON_", extra="ignore")

    var_dir: Path = Field(default=Path("var"))
    database_url: str = ""
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias="PORT")
    # Shown on receipts (Act 658/2013: name, contact details, business ID).
    business_name: str = "Saumaton Demo Oy"
    business_id: str = "2077474-0"
    business_address: str = "Esimerkkikatu 1, 00100 Helsinki"
    default_language: str = "fi"
    timezone: str = "Europe/Helsinki"
    # Seconds before an unpaid web reservation lapses.
    reservation_ttl_seconds: int = 15 * 60
    # Home delivery fee (VAT incl., cents) and the order value from which it is free
    # (0: never free). Click & collect is free.
    home_delivery_fee_cents: int = 590
    free_delivery_from_cents: int = 5000
    # A paid click & collect order is held at the store this many days.
    pickup_hold_days: int = 14
    # The shopper is reminded this many days before an uncollected pickup's hold ends.
    pickup_reminder_days_before: int = Field(default=3, ge=0)
    # Reserve to try (docs/reserve-to-try.md): a unit held at a store without payment
    # until the store closes (try_close_hour, local time) this many days after the day
    # it was reserved; a shopper may hold at most try_limit_per_customer at once.
    try_hold_days: int = Field(default=1, ge=0, le=14)
    try_close_hour: int = Field(default=20, ge=1, le=24)
    try_limit_per_customer: int = Field(default=3, ge=1, le=50)
    # Returns (docs/returns.md): web orders carry the 14-day withdrawal right (Consumer
    # Protection Act ch. 6) from delivery; a store's own sales follow the store's
    # policy (locations.return_days). Refunds for a till sale paid in cash or by card
    # when the goods come back by post: "store_credit" or "bank_transfer".
    web_return_days: int = Field(default=14, ge=14)
    post_return_cash_refund: Literal["store_credit", "bank_transfer"] = "store_credit"
    # Gift cards and store credit are valid this many days from issue (docs/gift-cards.md:
    # three years, the general limitation period of a debt, Act 728/2003).
    gift_card_valid_days: int = Field(default=3 * 365, ge=1)
    # The till: the largest manual discount (per cent of a line or of the sale) a
    # cashier may give; managers and owners may give any. Card payments taken while
    # the till is offline: "to_confirm" (recorded, flagged for checking against the
    # terminal's report) or "refuse" (cash only offline).
    pos_cashier_max_discount_pct: int = Field(default=20, ge=0, le=100)
    pos_offline_card: Literal["to_confirm", "refuse"] = "to_confirm"
    # Closing a till whose counted cash differs from the expected by more than this
    # (cents) needs the cashier to confirm the count.
    pos_close_confirm_cents: int = Field(default=1000, ge=0)
    # Loyalty (docs/loyalty.md): points earned per whole euro of a paid order's goods
    # (delivery and the part paid with points excluded); earned points lapse this many
    # days after earning unless used (first in, first out); tiers by the customer's
    # spend over the last 365 days (cents, VAT incl.); what one point is worth (cents)
    # when it pays for a purchase.
    loyalty_points_per_euro: int = Field(default=1, ge=0, le=1000)
    loyalty_points_valid_days: int = Field(default=730, ge=1)
    loyalty_silver_from_cents: int = Field(default=30000, ge=0)
    loyalty_gold_from_cents: int = Field(default=80000, ge=0)
    loyalty_point_value_cents: int = Field(default=1, ge=1, le=10000)
    # Outgoing mail: SMTP when smtp_host is set, else .eml files under var/mail/.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "Saumaton Demo <noreply@saumaton.invalid>"
    # Where the service desk's offline messages are mailed; empty: mail_from's address.
    service_email: str = ""
    # Connections each process keeps open (plus half as many at a peak): db/engine.py.
    db_pool_size: int = 20
    # Seconds a request waits for a free database connection before a 503 "busy".
    db_pool_timeout: float = 30.0
    # Seconds between runs of the job that applies scheduled price changes.
    price_job_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Seconds between runs of the job that releases lapsed reservations to try (no-shows).
    try_expiry_interval_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Where shoppers reach this app (links in Paytrail redirects); default http://host:port.
    public_url: str = ""
    # Paytrail: with both account and secret set, the real API is used (or paytrail_url
    # if given); without them, the built-in simulator at /paytrail-sim with Paytrail's
    # public test merchant.
    paytrail_account: str = ""
    paytrail_secret: str = ""
    paytrail_url: str = ""
    # Settlement reconciliation: a paid Paytrail payment (or an ok Paytrail refund) in no
    # settlement after this many business days (Mon-Fri) is listed as a discrepancy.
    settlement_grace_days: int = Field(default=7, ge=1, le=60)

    # Reports (docs/reports.md) may read from a replica; empty: the main database.
    reports_database_url: str = ""
    # How often the reports job brings the sales and journey summaries up to date.
    reports_job_interval_seconds: float = Field(default=300.0, gt=0)

    # --- production (docs/deployment.md) ---------------------------------------------
    # "production" refuses to start with the Paytrail simulator, a generated secret key
    # or an SQLite database under several workers, and says why (saumaton/production.py).
    env: Literal["development", "production"] = "development"
    # Worker processes `saumaton serve` starts (uvicorn workers).
    workers: int = Field(default=1, ge=1, le=64)
    # Background jobs (mail, expiries, reports, webhook delivery...) in this process:
    # "on" in every `saumaton serve` by default; "off" where a dedicated `saumaton worker`
    # runs them.
    run_jobs: bool = True
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed
    # (comma-separated IPs or networks); empty: none, the socket's peer is the client.
    trusted_proxies: str = ""
    # Sign-in throttling (saumaton/throttle): failed attempts allowed per account and per
    # address within the window before sign-ins are refused until it passes.
    login_max_failures_per_account: int = Field(default=5, ge=1, le=1000)
    login_max_failures_per_address: int = Field(default=20, ge=1, le=100000)
    login_throttle_window_seconds: int = Field(default=900, ge=10, le=86400)

    # --- webhooks (docs/webhooks.md) ---------------------------------------------------
    # A receiver must answer within this many seconds or the attempt counts as failed.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # How long a delivery is retried (exponential backoff) before it is given up.
    webhook_retry_hours: float = Field(default=30.0, ge=24, le=24 * 14)
    # A subscription whose deliveries have failed without a success for this long is
    # disabled and the owner is e-mailed.
    webhook_disable_after_hours: float = Field(default=72.0, ge=1, le=24 * 30)

    def resolved_reports_database_url(self) -> str:
        return self.reports_database_url or self.resolved_database_url()

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{(self.var_dir / 'saumaton.db').resolve()}"

    def mail_dir(self) -> Path:
        return self.var_dir / "mail"

    def media_dir(self) -> Path:
        """Uploaded and generated product images, served at /media/."""
        return self.var_dir / "media"

    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def paytrail_simulated(self) -> bool:
        return not (self.paytrail_account and self.paytrail_secret)

    def paytrail(self) -> tuple[str, str, str]:
        """(account, secret, base URL) of the Paytrail service to use."""
        if self.paytrail_simulated():
            return (TEST_MERCHANT[0], TEST_MERCHANT[1],
                    self.paytrail_url or self.resolved_public_url() + SIMULATOR_PATH)
        return (self.paytrail_account, self.paytrail_secret,
                self.paytrail_url or "https://services.paytrail.com")

    def resolved_secret_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        # Read once per process and var dir: pages and mails ask for it per request
        # (pickup codes), and the file never changes once written.
        key = _generated_keys.get(path)
        if key is None:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text(secrets.token_urlsafe(48))
                path.chmod(0o600)
            key = _generated_keys[path] = path.read_text().strip()
        return key


# The generated secret key of each var dir, as read from its file (resolved_secret_key).
_generated_keys: dict[Path, str] = {}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
