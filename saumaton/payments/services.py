"""Payments v1: cash (Act 890/2000 rounding, change), card-present, and balances kept
by the shop (a gift card by its code, a customer's store credit; giftcards.payments
spends them in the order's transaction).

Only the cash payment is rounded, never the order total or the lines: the
order's `paid_cents` equals its exact total, and the payment row records the
rounding difference that went into (or out of) the drawer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from saumaton.core.errors import ValidationFailed
from saumaton.core.money import round_cash
from saumaton.core.types import Input
from saumaton.giftcards.ledger import clean_code

GIFT_CARD = "gift_card"
STORE_CREDIT = "store_credit"
BALANCE_METHODS = (GIFT_CARD, STORE_CREDIT)


class PaymentIn(Input):
    method: Literal["cash", "card", "gift_card", "store_credit"]
    amount_cents: int | None = Field(
        default=None, gt=0, le=100_000_000,
        description="applied to the order; omit to pay the rest of the total")
    tendered_cents: int | None = Field(default=None, ge=0, le=100_000_000,
                                       description="cash handed over by the customer")
    terminal_confirmed: bool = Field(
        default=False, description="card: the cashier saw the terminal approve the payment")
    reference: str = Field(default="", max_length=100)
    code: str = Field(default="", max_length=40,
                      description="gift_card: the card's 16-digit code (spaces allowed)")


@dataclass(frozen=True)
class PlannedPayment:
    method: str
    amount_cents: int
    rounding_cents: int
    tendered_cents: int | None
    change_cents: int
    reference: str
    # gift_card: the full code to spend (never stored on the payment: its reference
    # shows only the last digits).
    code: str = ""

    @property
    def collected_cents(self) -> int:
        return self.amount_cents + self.rounding_cents


def plan_payments(total_cents: int, payments: list[PaymentIn]) -> list[PlannedPayment]:
    """Check the payments settle the total exactly and work out rounding and change."""
    planned: list[PlannedPayment] = []
    due = total_cents
    for i, p in enumerate(payments):
        field = f"payments.{i}"
        if due <= 0:
            raise ValidationFailed("the order is already paid in full", code="overpayment",
                                   field=field)
        amount = p.amount_cents if p.amount_cents is not None else due
        if amount > due:
            raise ValidationFailed(f"payment {amount} exceeds the {due} still due",
                                   code="overpayment", field=f"{field}.amount_cents")
        if p.method == "card":
            if not p.terminal_confirmed:
                raise ValidationFailed("confirm that the card terminal approved the payment",
                                       code="card_not_confirmed", field=field)
            planned.append(PlannedPayment("card", amount, 0, None, 0, p.reference))
        elif p.method == GIFT_CARD:
            code = clean_code_at(p.code, f"{field}.code")
            planned.append(PlannedPayment(GIFT_CARD, amount, 0, None, 0,
                                          "•••• " + code[-4:], code))
        elif p.method == STORE_CREDIT:
            planned.append(PlannedPayment(STORE_CREDIT, amount, 0, None, 0, ""))
        else:
            settles = amount == due
            to_collect = round_cash(amount) if settles else amount
            tendered = p.tendered_cents if p.tendered_cents is not None else to_collect
            if tendered < to_collect:
                raise ValidationFailed(
                    f"cash tendered {tendered} is less than {to_collect} to pay",
                    code="insufficient_cash", field=f"{field}.tendered_cents")
            planned.append(PlannedPayment("cash", amount, to_collect - amount, tendered,
                                          tendered - to_collect, p.reference))
        due -= amount
    if payments and due != 0:
        raise ValidationFailed(f"payments leave {due} cents unpaid", code="payment_incomplete",
                               field="payments")
    return planned


def clean_code_at(raw: str, field: str) -> str:
    """A gift card code as typed or scanned, checked (field: where the error points)."""
    try:
        return clean_code(raw)
    except ValidationFailed as e:
        raise ValidationFailed(e.detail, code=e.code, field=field) from None
