"""What a return gives back, exactly, in integer cents.

Every figure is a *cumulative* share: the units returned so far of a line are worth
`floor(total × returned / sold)`, and one return is the difference between the shares
after and before it. However an order is returned (one unit at a time, or all at
once), the returns add up to exactly what was paid, VAT included.

- A line's price paid is its `total_cents` (campaign and member prices and manual
  discounts are already in it); an order-level discount that is not in the line totals
  (order total < Σ line totals + delivery) is spread over the lines in proportion.
- The delivery fee is given back with the return that completes a full withdrawal of
  a delivered web order (Consumer Protection Act ch. 6 § 15: the standard delivery).
- The part of the order paid with loyalty points comes back as points, in
  proportion to the value returned; the rest is money.
"""

from __future__ import annotations

from dataclasses import dataclass

from saumaton.orders.discounts import spread


def share(amount: int, part: int, whole: int) -> int:
    return 0 if whole <= 0 else amount * part // whole


@dataclass(frozen=True)
class LineFacts:
    line_no: int
    quantity: int  # sold
    returned_before: int
    total_cents: int
    vat_cents: int
    vat_rate_bp: int


@dataclass(frozen=True)
class LineAmount:
    line_no: int
    quantity: int
    value_cents: int  # the price paid for these units, VAT incl.
    vat_cents: int


@dataclass(frozen=True)
class ReturnAmounts:
    lines: list[LineAmount]
    delivery_fee_cents: int  # given back with this return
    delivery_vat_cents: int
    points: int  # loyalty points given back (whole points)
    points_cents: int  # their value
    money_cents: int  # value − points: refunded by the chosen methods

    @property
    def value_cents(self) -> int:
        return sum(ln.value_cents for ln in self.lines) + self.delivery_fee_cents

    @property
    def goods_money_cents(self) -> int:
        """The money for the goods (what earned loyalty points)."""
        return max(0, self.money_cents - self.delivery_fee_cents)


def compute(lines: list[LineFacts], taking: dict[int, int], *, order_total_cents: int,
            delivery_fee_cents: int, delivery_vat_cents: int, refund_delivery: bool,
            points_paid: int, point_value_cents: int) -> ReturnAmounts:
    """The amounts of returning `taking` (line_no → units) of an order whose `lines`
    are given with what was returned before."""
    goods_total = order_total_cents - delivery_fee_cents
    line_sum = sum(ln.total_cents for ln in lines)
    extra = spread(max(0, line_sum - goods_total), [ln.total_cents for ln in lines])
    out: list[LineAmount] = []
    before_value = after_value = 0
    for ln, off in zip(lines, extra, strict=True):
        paid = ln.total_cents - off
        vat = ln.vat_cents if not off else ln.vat_cents * paid // max(1, ln.total_cents)
        q = taking.get(ln.line_no, 0)
        b, a = ln.returned_before, ln.returned_before + q
        before_value += share(paid, b, ln.quantity)
        after_value += share(paid, a, ln.quantity)
        if q:
            out.append(LineAmount(
                ln.line_no, q, share(paid, a, ln.quantity) - share(paid, b, ln.quantity),
                share(vat, a, ln.quantity) - share(vat, b, ln.quantity)))
    fee = delivery_fee_cents if refund_delivery else 0
    fee_vat = delivery_vat_cents if refund_delivery else 0
    after_value += fee
    points_back = (share(points_paid, after_value, order_total_cents)
                   - share(points_paid, before_value, order_total_cents))
    value = sum(x.value_cents for x in out) + fee
    return ReturnAmounts(out, fee, fee_vat, points_back, points_back * point_value_cents,
                         value - points_back * point_value_cents)
