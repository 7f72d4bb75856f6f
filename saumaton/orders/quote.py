"""Pricing order lines: the one place a cart or an order gets its line prices and totals.

`price_lines` turns variants, quantities and the channel's resolved prices into
priced lines (list price, campaign discount, line total, VAT frozen per line)
and the order totals. `orders.services._place` stores what it returns;
`quote_order` shows the same figures before anything is sold (a POS cart, a
webshop basket), so a cart total is exactly the total the order will get.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.services import VariantInfo
from saumaton.core.money import round_cash, vat_included
from saumaton.locations.services import channel_by_code
from saumaton.orders.schemas import LineIn, OrderIn, OrderLineOut, VatLine
from saumaton.payments.services import PaymentIn, PlannedPayment, plan_payments
from saumaton.pricing.services import PriceQuote, resolve_prices


@dataclass(frozen=True)
class QuotedLine:
    line_no: int
    variant_id: int
    sku: str
    name: str
    quantity: int
    unit_price_cents: int  # the one list price, VAT included
    discount_cents: int  # campaign discount for the whole line
    total_cents: int
    vat_rate_bp: int
    vat_cents: int
    campaign_id: int | None
    campaign_name: str | None
    # Channel codes the campaign is limited to; None: every channel.
    limited_to: tuple[str, ...] | None
    # A gift card: nothing to ship (e-mailed or handed over as a code).
    gift_card: bool = False

    @property
    def list_total_cents(self) -> int:
        """The line at list price, before the campaign discount."""
        return self.unit_price_cents * self.quantity


@dataclass(frozen=True)
class OrderQuote:
    channel: str
    lines: tuple[QuotedLine, ...]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    vat_cents: int

    @property
    def ships_goods(self) -> bool:
        """Something to deliver: a cart of gift cards only has no delivery fee."""
        return any(not ln.gift_card for ln in self.lines)

    @property
    def cash_due_cents(self) -> int:
        """What a customer paying the whole total in cash hands over (Act 890/2000)."""
        return round_cash(self.total_cents)

    @property
    def cash_rounding_cents(self) -> int:
        return self.cash_due_cents - self.total_cents

    @property
    def vat_breakdown(self) -> list[VatLine]:
        from saumaton.orders.services import vat_breakdown

        return vat_breakdown([OrderLineOut(
            line_no=ln.line_no, variant_id=ln.variant_id, location_id=None, sku=ln.sku,
            name=ln.name, quantity=ln.quantity, unit_price_cents=ln.unit_price_cents,
            discount_cents=ln.discount_cents, total_cents=ln.total_cents,
            vat_rate_bp=ln.vat_rate_bp, vat_cents=ln.vat_cents, campaign_id=ln.campaign_id,
        ) for ln in self.lines])

    def cash_payment(self, tendered_cents: int | None) -> PlannedPayment:
        """The whole total paid in cash: rounding and change, as the order will record
        them. Raises `insufficient_cash` when too little is tendered."""
        [planned] = plan_payments(self.total_cents,
                                  [PaymentIn(method="cash", tendered_cents=tendered_cents)])
        return planned


def price_lines(channel_code: str, infos: Sequence[VariantInfo], quantities: Sequence[int],
                quotes: Mapping[int, PriceQuote]) -> OrderQuote:
    """Price each line (infos[i] bought quantities[i] times) with its resolved price."""
    subtotal = discount = total = vat = 0
    lines: list[QuotedLine] = []
    for idx, (info, quantity) in enumerate(zip(infos, quantities, strict=True)):
        q = quotes[info.id]
        if info.gift_card and (q.discount_cents or q.campaign_id is not None):
            # A card is worth what is paid for it: no campaign makes it cheaper.
            q = PriceQuote(variant_id=info.id, list_cents=q.list_cents, discount_cents=0,
                           campaign_id=None, campaign_name=None)
        l_gross = q.list_cents * quantity
        l_disc = q.discount_cents * quantity
        l_total = l_gross - l_disc
        l_vat = vat_included(l_total, info.vat_rate_bp)
        subtotal += l_gross
        discount += l_disc
        total += l_total
        vat += l_vat
        lines.append(QuotedLine(
            line_no=idx + 1, variant_id=info.id, sku=info.sku, name=info.name,
            quantity=quantity, unit_price_cents=q.list_cents, discount_cents=l_disc,
            total_cents=l_total, vat_rate_bp=info.vat_rate_bp, vat_cents=l_vat,
            campaign_id=q.campaign_id, campaign_name=q.campaign_name,
            limited_to=q.limited_to, gift_card=info.gift_card,
        ))
    return OrderQuote(channel=channel_code, lines=tuple(lines), subtotal_cents=subtotal,
                      discount_cents=discount, total_cents=total, vat_cents=vat)


async def quote_order(session: AsyncSession, channel_code: str, lines: list[LineIn],
                      at: datetime) -> OrderQuote:
    """What these lines cost in this channel at `at`, exactly as `place_order` would
    price them. Unknown or inactive variants raise the same errors as placing."""
    # Deferred: orders.services imports this module.
    from saumaton.orders.services import _variants_for, business_day

    channel = await channel_by_code(session, channel_code)
    if not lines:
        return OrderQuote(channel=channel.code, lines=(), subtotal_cents=0, discount_cents=0,
                          total_cents=0, vat_cents=0)
    cmd = OrderIn(channel=channel.code, lines=lines)
    infos = await _variants_for(session, cmd, business_day(at))
    quotes = await resolve_prices(session, list({i.id: i for i in infos}.values()),
                                  channel.id, at)
    return price_lines(channel.code, infos, [ln.quantity for ln in lines], quotes)
