"""Return commands and views, shared by the till, the account page, the service desk,
the back office and the REST API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from saumaton.core.types import MAX_ID, Input

# What the customer asks for: the original payment (Paytrail, the card at the terminal,
# cash back, back onto the gift card that paid), store credit, or cash / card in the store.
RefundChoice = Literal["original", "store_credit", "cash", "card"]


class ReturnLineIn(Input):
    line_no: int = Field(ge=1, le=10_000, description="the order line's number")
    quantity: int = Field(ge=1, le=10_000)
    restock: bool = Field(default=True, description="false: damaged, written off")
    reason: str = Field(default="", max_length=200)


def check_return_lines(lines: list[ReturnLineIn], reason: str) -> None:
    """What every return request must hold, in whichever channel it is made: each
    order line named once, and a reason that is more than blanks."""
    nos = [ln.line_no for ln in lines]
    if len(set(nos)) != len(nos):
        raise ValueError("name each order line once")
    if not reason.strip():
        raise ValueError("a return needs a reason")


class BankAccountIn(Input):
    """Where finance pays a refund by bank transfer (a post return of a cash sale)."""

    holder: str = Field(min_length=1, max_length=60)
    iban: str = Field(min_length=15, max_length=42)


class ReturnIn(Input):
    """Goods brought back to a store (or received by post) and refunded now."""

    location_id: int = Field(ge=1, le=2**31 - 1, description="where the goods came back")
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    refund_method: RefundChoice = "original"
    reason: str = Field(min_length=1, max_length=200)
    override_reason: str = Field(
        default="", max_length=200,
        description="outside the return window: a manager's reason (audited)")
    drawer_session_id: int | None = Field(
        default=None, ge=1, le=MAX_ID,
        description="a till's open drawer session: cash and card refunds are on its Z report")
    terminal_confirmed: bool = Field(
        default=False, description="card refund: the cashier saw the terminal approve it")
    terminal_reference: str = Field(default="", max_length=100)
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _distinct_lines(self) -> ReturnIn:
        check_return_lines(self.lines, self.reason)
        return self


class PostReturnIn(Input):
    """A return started online (account page, service desk): the goods come by post."""

    lines: list[ReturnLineIn] = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=200)
    refund_method: Literal["original", "store_credit"] = "original"
    bank_account: BankAccountIn | None = None
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _distinct_lines(self) -> PostReturnIn:
        check_return_lines(self.lines, self.reason)
        return self


class ReceiveLineIn(Input):
    line_no: int = Field(ge=1, le=10_000)
    restock: bool = True


class ReceiveIn(Input):
    """A postal return's parcel opened and inspected at a location."""

    location_id: int = Field(ge=1, le=2**31 - 1)
    # Lines found damaged on inspection (the rest go back on the shelf).
    lines: list[ReceiveLineIn] = Field(default_factory=list, max_length=500)
    drawer_session_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    terminal_confirmed: bool = False
    terminal_reference: str = Field(default="", max_length=100)
    override_reason: str = Field(default="", max_length=200)


class ReturnableLine(BaseModel):
    line_no: int
    variant_id: int
    sku: str
    name: str
    quantity: int  # sold
    returned_quantity: int
    returnable_quantity: int
    unit_price_cents: int  # list price
    paid_cents: int  # the line's total (after every discount)
    vat_rate_bp: int
    gift_card: bool = False  # a gift card sold: not returnable


class ReturnableOrder(BaseModel):
    """What a cashier or a shopper sees before taking a return."""

    order_id: int
    number: str
    channel: str
    channel_kind: str
    location_id: int | None
    customer_id: int | None
    status: str
    returnable: bool  # the order's state allows returns
    sold_at: datetime
    window_starts: datetime  # delivery (web) or the sale (store)
    window_days: int
    window_ends: date  # the last day (shop's time zone)
    window_open: bool
    paid_cents: int
    refunded_cents: int
    payment_methods: list[str]
    lines: list[ReturnableLine]


class ReturnLineOut(BaseModel):
    line_no: int
    variant_id: int
    sku: str
    name: str
    quantity: int
    refund_cents: int
    vat_rate_bp: int
    vat_cents: int
    restock: bool
    reason: str


class RefundOut(BaseModel):
    id: int
    method: str
    status: str  # due | pending | ok | fail
    amount_cents: int
    rounding_cents: int
    reference: str
    attempts: int = 0
    error: str = ""
    created_at: datetime


class VatRowOut(BaseModel):
    rate_bp: int
    gross_cents: int
    net_cents: int
    vat_cents: int


class ReturnOut(BaseModel):
    id: int
    order_id: int
    order_number: str
    code: str
    status: str  # requested | completed | cancelled
    kind: str  # in_store | post
    channel: str
    location_id: int | None
    customer_id: int | None
    refund_method: str
    refund_cents: int  # money given back (all methods)
    points_returned: int  # loyalty points used on the order, given back
    points_reversed: int  # loyalty points earned for the goods, taken back
    delivery_fee_cents: int  # the delivery fee refunded (a full withdrawal)
    reason: str
    note: str
    override_reason: str
    receipt_no: str
    drawer_session_id: int | None
    exchange_order_id: int | None
    created_by: str
    created_at: datetime
    received_at: datetime | None
    lines: list[ReturnLineOut]
    refunds: list[RefundOut]
    vat: list[VatRowOut]


class CreditReceipt(BaseModel):
    """A credit receipt (hyvityskuitti), Act 658/2013: seller, business ID, place,
    date and time, number, the goods taken back and the amounts as negatives, VAT per
    rate."""

    seller: str
    business_id: str
    address: str
    store_name: str
    receipt_no: str
    order_number: str  # the sale it credits
    issued_at: datetime
    lines: list[ReturnLineOut]
    delivery_fee_cents: int  # negative when refunded
    total_cents: int  # negative
    vat: list[VatRowOut]  # negative amounts
    refunds: list[RefundOut]
    reason: str
