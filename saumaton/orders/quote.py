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
from saumaton.pricing.bundles import Bundle, CartLine, LineBundle, apply_bundles, load_bundles
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
    # The part of discount_cents that is a bundle campaign's (campaign_id names it).
    bundle_cents: int = 0

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
                quotes: Mapping[int, PriceQuote], bundles: Sequence[Bundle] = (),
                line_campaigns: Sequence[LineBundle | None] | None = None) -> OrderQuote:
    """Price each line (infos[i] bought quantities[i] times) with its resolved price,
    then the bundle campaigns over the whole cart (`pricing.bundles`). An offline till
    sale passes the campaign discount it charged per line (`line_campaigns`) instead."""
    subtotal = discount = total = vat = 0
    lines: list[QuotedLine] = []
    units: list[PriceQuote] = []
    for info in infos:
        q = quotes[info.id]
        if info.gift_card and (q.discount_cents or q.campaign_id is not None):
            # A card is worth what is paid for it: no campaign makes it cheaper.
            q = PriceQuote(variant_id=info.id, list_cents=q.list_cents, discount_cents=0,
                           campaign_id=None, campaign_name=None)
        units.append(q)
    if line_campaigns is None:
        line_campaigns = bundle_campaigns(infos, quantities, units, bundles)
    for idx, (info, quantity, q) in enumerate(zip(infos, quantities, units, strict=True)):
        l_gross = q.list_cents * quantity
        l_disc = q.discount_cents * quantity
        campaign_id, campaign_name, limited_to = q.campaign_id, q.campaign_name, q.limited_to
        bundle_cents = 0
        if (lc := line_campaigns[idx]) is not None and not info.gift_card:
            l_disc, bundle_cents = lc.discount_cents, lc.bundle_cents
            campaign_id, campaign_name, limited_to = (lc.campaign_id, lc.campaign_name,
                                                      lc.limited_to)
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
            campaign_id=campaign_id, campaign_name=campaign_name,
            limited_to=limited_to, gift_card=info.gift_card, bundle_cents=bundle_cents,
        ))
    return OrderQuote(channel=channel_code, lines=tuple(lines), subtotal_cents=subtotal,
                      discount_cents=discount, total_cents=total, vat_cents=vat)


def bundle_campaigns(infos: Sequence[VariantInfo], quantities: Sequence[int],
                     units: Sequence[PriceQuote], bundles: Sequence[Bundle]
                     ) -> list[LineBundle | None]:
    """The bundle campaigns' discount per line (None: the line keeps its unit price)."""
    if not bundles:
        return [None] * len(infos)
    return list(apply_bundles([
        CartLine(variant_id=info.id, product_id=info.product_id, category_id=info.category_id,
                 quantity=quantity, unit_cents=q.list_cents, unit_discount_cents=q.discount_cents,
                 eligible=not info.gift_card)
        for info, quantity, q in zip(infos, quantities, units, strict=True)], bundles))


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
    distinct = list({i.id: i for i in infos}.values())
    quotes = await resolve_prices(session, distinct, channel.id, at)
    bundles = await load_bundles(session, distinct, channel.id, at)
    return price_lines(channel.code, infos, [ln.quantity for ln in lines], quotes, bundles)
