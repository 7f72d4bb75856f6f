"""Order commands and views, shared by every channel."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from saumaton.core.types import MAX_ID, MAX_INT32, Input
from saumaton.payments.services import PaymentIn


class LineIn(Input):
    variant_id: int | None = Field(default=None, ge=1, le=MAX_INT32)
    ean: str | None = Field(default=None, max_length=20, description="instead of variant_id")
    quantity: int = Field(default=1, ge=1, le=10_000)
    source: Literal["", "upsell"] = Field(
        default="", description="'upsell': a suggested add-on taken (counted in reports)")

    @model_validator(mode="after")
    def _one_key(self) -> LineIn:
        if (self.variant_id is None) == (self.ean is None):
            raise ValueError("give exactly one of variant_id or ean")
        return self


class OrderIn(Input):
    channel: str = Field(min_length=1, max_length=32, description="channel code, e.g. 'web'")
    location_id: int | None = Field(
        default=None, ge=1, le=MAX_INT32,
        description="POS: the store (defaults to the channel's); web: fulfil here")
    customer_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    payments: list[PaymentIn] = Field(default_factory=list, max_length=10)
    drawer_session_id: int | None = Field(
        default=None, ge=1, le=MAX_ID,
        description="POS: the open cash drawer session the sale goes into (its Z report); "
                    "defaults to the store's open session")


class OrderLineOut(BaseModel):
    line_no: int
    variant_id: int
    location_id: int | None
    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    discount_cents: int
    total_cents: int
    vat_rate_bp: int
    vat_cents: int
    campaign_id: int | None
    # The campaign's name, for receipts ("3 for 2: −12,90 €").
    campaign_name: str | None = None
    # Of discount_cents, the part given by hand at the till, and why.
    manual_discount_cents: int = 0
    discount_reason: str = ""
    returned_quantity: int = 0  # units taken back by returns
    # An endless-aisle sale: taken from the store's shelf at the sale; the order's other
    # lines are still to come (shipped home or to the store for pickup).
    taken_at_sale: bool = False
    source: str = ""  # 'upsell': a suggested add-on

    def still_to_come(self, delivery: DeliveryOut | None) -> bool:
        """A line of an order with a delivery that the customer did not take at once."""
        return delivery is not None and not self.taken_at_sale


class PaymentOut(BaseModel):
    method: str
    amount_cents: int
    rounding_cents: int
    tendered_cents: int | None
    change_cents: int
    reference: str
    status: str = "captured"  # captured | to_confirm (card taken offline) | refunded (points)

    @property
    def collected_cents(self) -> int:
        """What the payment took: for cash, the amount plus its 5-cent rounding."""
        return self.amount_cents + self.rounding_cents


class OrderRefundOut(BaseModel):
    """Money given back for the order (payments.refunds)."""

    id: int
    return_id: int | None
    method: str  # paytrail | card | cash | store_credit | gift_card | bank_transfer
    status: str  # due | pending | ok | fail
    amount_cents: int
    created_at: datetime


class VatLine(BaseModel):
    rate_bp: int
    gross_cents: int
    net_cents: int
    vat_cents: int


class DeliveryOut(BaseModel):
    method: str  # home | pickup
    fee_cents: int  # VAT included
    vat_rate_bp: int
    vat_cents: int
    address: dict[str, str] | None  # home: name, street, postcode, city, country


class OrderOut(BaseModel):
    id: int
    number: str
    channel: str
    location_id: int | None
    customer_id: int | None
    status: str
    currency: str
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    vat_cents: int
    paid_cents: int
    lines: list[OrderLineOut]
    payments: list[PaymentOut]
    vat_breakdown: list[VatLine]
    created_at: datetime
    created_by: str
    # Web orders: contact and delivery (None / "" for a sale in the store).
    email: str = ""
    phone: str = ""
    language: str = "fi"
    delivery: DeliveryOut | None = None
    payment_due_at: datetime | None = None
    # Store sales.
    drawer_session_id: int | None = None
    offline: bool = False
    sold_at: datetime | None = None  # offline: the till's clock
    client_ref: str = ""  # offline: the receipt number the till printed
    receipt_no: str = ""  # a store sale: its register's receipt number, e.g. "1-000042"
    flags: list[str] = Field(default_factory=list)  # negative_stock price_mismatch …
    discount_reason: str = ""
    collected_at: datetime | None = None
    collected_by: str = ""
    # Fulfilment of a web order (orders.lifecycle): when each step happened.
    ready_at: datetime | None = None
    packed_at: datetime | None = None
    shipped_at: datetime | None = None
    carrier: str = ""
    tracking_number: str = ""
    pickup_reminded_at: datetime | None = None
    refunded_cents: int = 0
    refunds: list[OrderRefundOut] = Field(default_factory=list)

    @property
    def delivery_fee_cents(self) -> int:
        return self.delivery.fee_cents if self.delivery else 0

    @property
    def products_subtotal_cents(self) -> int:
        """The products at list price: the subtotal without the delivery fee."""
        return self.subtotal_cents - self.delivery_fee_cents
