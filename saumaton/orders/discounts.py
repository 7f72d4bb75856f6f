"""Manual discounts given at the till: on a line and on the whole sale.

The arithmetic, exactly (the till's offline pricing in `static/pos/pricing.js`
mirrors it, and a test compares the two):

1. A line after its campaign: `after = unit_price × qty − campaign_discount`.
2. A line discount: `percent_bp` gives `div_round(after × bp, 10000)`; `cents`
   gives `cents` (at most `after`). The line's net is `after − that`.
3. An order discount on `base = Σ net`: `percent_bp` gives `div_round(base × bp,
   10000)`, `cents` gives `cents` (at most `base`). It is spread over the lines in
   proportion to their net: each line gets `floor(D × net / base)`, and the cents
   left over go one each to the lines with the largest remainders (ties: the
   earlier line), so that VAT per rate stays exact.
4. A line's `discount_cents` = campaign + manual; `total = after − manual`;
   `vat = vat_included(total, rate)`.

Who may give how much: staff with `discounts.any` (managers, owners) any amount; a
cashier at most `pos_cashier_max_discount_pct` per cent of the line (after its
campaign) or of the sale. Every manual discount needs a reason.
"""

from __future__ import annotations

from dataclasses import replace

from pydantic import Field, model_validator

from saumaton.core.actor import Actor
from saumaton.core.errors import Forbidden, ValidationFailed
from saumaton.core.money import div_round, vat_included
from saumaton.core.types import Input
from saumaton.orders.quote import OrderQuote, QuotedLine


class DiscountIn(Input):
    percent_bp: int | None = Field(default=None, ge=1, le=10_000,
                                   description="per cent × 100: 1000 = 10 %")
    cents: int | None = Field(default=None, ge=1, le=100_000_000)
    reason: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_kind(self) -> DiscountIn:
        if (self.percent_bp is None) == (self.cents is None):
            raise ValueError("give exactly one of percent_bp or cents")
        if not self.reason.strip():
            raise ValueError("a discount needs a reason")
        return self


def discount_amount(d: DiscountIn, base_cents: int, field: str) -> int:
    if d.percent_bp is not None:
        return div_round(base_cents * d.percent_bp, 10000)
    assert d.cents is not None
    if d.cents > base_cents:
        raise ValidationFailed(f"a discount of {d.cents} is more than the {base_cents} it is on",
                               code="discount_too_large", field=field)
    return d.cents


def spread(amount: int, weights: list[int]) -> list[int]:
    """`amount` split in proportion to `weights` (largest remainder, ties to the
    earlier), summing exactly to `amount`."""
    total = sum(weights)
    if total <= 0 or amount <= 0:
        return [0] * len(weights)
    shares = [amount * w // total for w in weights]
    left = amount - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(amount * weights[i] % total), i))
    for i in order[:left]:
        shares[i] += 1
    return shares


def check_limit(actor: Actor, location_id: int, max_pct: int, amount: int, base: int,
                field: str) -> None:
    """A cashier's discount may be at most `max_pct` per cent of what it is on."""
    if amount == 0 or actor.can("discounts.any", location_id):
        return
    if amount * 100 > max_pct * base:
        raise Forbidden(f"a cashier may give at most {max_pct} % discount; ask a manager",
                        code="discount_over_limit", field=field, extra={"max_pct": max_pct})


def apply_discounts(quote: OrderQuote, line_discounts: list[DiscountIn | None],
                    order_discount: DiscountIn | None, *, actor: Actor | None = None,
                    location_id: int = 0, max_pct: int = 100
                    ) -> tuple[OrderQuote, list[int], list[str]]:
    """The quote with manual discounts applied. Returns (quote, manual discount per
    line, reason per line). With `actor`, checks the discount limit."""
    manual: list[int] = []
    reasons: list[str] = []
    for i, (ln, d) in enumerate(zip(quote.lines, line_discounts, strict=True)):
        after = ln.total_cents
        if d is None:
            manual.append(0)
            reasons.append("")
            continue
        amount = discount_amount(d, after, f"lines.{i}.discount")
        if actor is not None:
            check_limit(actor, location_id, max_pct, amount, after, f"lines.{i}.discount")
        manual.append(amount)
        reasons.append(d.reason.strip())
    if order_discount is not None:
        nets = [ln.total_cents - m for ln, m in zip(quote.lines, manual, strict=True)]
        base = sum(nets)
        amount = discount_amount(order_discount, base, "order_discount")
        if actor is not None:
            check_limit(actor, location_id, max_pct, amount, base, "order_discount")
        for i, share in enumerate(spread(amount, nets)):
            manual[i] += share
            if share and not reasons[i]:
                reasons[i] = order_discount.reason.strip()
    if not any(manual):
        return quote, manual, reasons
    lines: list[QuotedLine] = []
    for ln, m in zip(quote.lines, manual, strict=True):
        total = ln.total_cents - m
        lines.append(replace(ln, discount_cents=ln.discount_cents + m, total_cents=total,
                             vat_cents=vat_included(total, ln.vat_rate_bp)))
    return replace(
        quote, lines=tuple(lines), discount_cents=sum(ln.discount_cents for ln in lines),
        total_cents=sum(ln.total_cents for ln in lines),
        vat_cents=sum(ln.vat_cents for ln in lines)), manual, reasons
