"""A sale at the till, online or synced later from a till that was offline.

`sell` is the one entry point for the till (the JSON endpoint `POST
/pos/{store}/api/sales` only translates). It prices the sale with the core's one
price resolution plus the manual discounts (`orders.discounts`), checks the
drawer session, records the sale, its payments, its voided lines and its stock
moves in one transaction, and is idempotent on the till's key: the same key
returns the first sale, however often the till sends it.

Online, the till shows its own total (computed from its catalogue snapshot); if
the core prices the cart differently (a campaign started, a price changed),
`sell` refuses with 409 `price_changed` and the new figures, so the cashier never
charges a total the receipt would not show.

Offline, the customer has already paid what the till showed: the sale is
recorded with the till's prices (`TillLineIn.unit_price_cents` and
`campaign_discount_cents`), flagged `price_mismatch` if the core would have priced
it differently, `negative_stock` if it took a stock level below zero, and
`card_unconfirmed` for a card payment the terminal could not confirm online.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from saumaton.core.actor import Actor
from saumaton.core.types import MAX_ID, MAX_INT32, Input
from saumaton.db.uow import Database
from saumaton.orders.discounts import DiscountIn
from saumaton.orders.schemas import OrderOut

KEY_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class TillLineIn(Input):
    variant_id: int = Field(ge=1, le=MAX_INT32)
    quantity: int = Field(ge=1, le=10_000)
    discount: DiscountIn | None = None
    # Offline sales only: the prices the till charged (per unit, VAT incl.).
    unit_price_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    campaign_discount_cents: int | None = Field(default=None, ge=0, le=100_000_000,
                                                description="per unit")
    campaign_id: int | None = Field(default=None, ge=1, le=MAX_INT32)


class TillPaymentIn(Input):
    method: str = Field(pattern="^(cash|card)$")
    amount_cents: int | None = Field(default=None, gt=0, le=100_000_000,
                                     description="omit on the last payment: the rest")
    tendered_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    terminal_confirmed: bool = False


class VoidIn(Input):
    variant_id: int = Field(ge=1, le=MAX_INT32)
    quantity: int = Field(ge=1, le=10_000)
    amount_cents: int = Field(ge=0, le=100_000_000, description="at the price shown")
    reason: str = Field(default="", max_length=200)


class TillSaleIn(Input):
    key: str = Field(pattern=KEY_PATTERN, description="the till's idempotency key")
    session_id: int = Field(ge=1, le=MAX_ID, description="the open drawer session")
    customer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    lines: list[TillLineIn] = Field(min_length=1, max_length=500)
    order_discount: DiscountIn | None = None
    payments: list[TillPaymentIn] = Field(min_length=1, max_length=10)
    voids: list[VoidIn] = Field(default_factory=list, max_length=500)
    expected_total_cents: int | None = Field(default=None, ge=0)
    offline: bool = False
    sold_at: datetime | None = Field(default=None, description="offline: the till's clock")
    client_ref: str = Field(default="", max_length=40,
                            description="offline: the receipt number the till printed")

    @model_validator(mode="after")
    def _offline_prices(self) -> TillSaleIn:
        if self.offline and any(ln.unit_price_cents is None for ln in self.lines):
            raise ValueError("an offline sale gives the unit price the till charged")
        return self


class VoidsIn(Input):
    """Voided lines of a sale that was cancelled (never paid)."""

    key: str = Field(pattern=KEY_PATTERN)
    session_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    voids: list[VoidIn] = Field(min_length=1, max_length=500)


async def sell(db: Database, actor: Actor, location_id: int, cmd: TillSaleIn
               ) -> tuple[OrderOut, bool]:
    """Record a till sale at `location_id`. Returns (order, replayed)."""
    raise NotImplementedError


async def record_voids(db: Database, actor: Actor, location_id: int, cmd: VoidsIn) -> int:
    """Record the voided lines of a cancelled sale; returns how many were new."""
    raise NotImplementedError
