"""An exchange on the till's return screen: the replacement items scanned into the
form, priced, and sold in the same transaction as the return
(`returns.services.exchange`).

The first press previews: the exchange is made in a transaction that is rolled back,
so the page shows exactly what the core would charge or refund (no second copy of the
return's amount rules). The second press, with the total the cashier saw, makes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from saumaton.catalogue.services import find_variant_by_code
from saumaton.config import Settings
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, DomainError
from saumaton.db.uow import Database
from saumaton.orders.quote import quote_order
from saumaton.orders.schemas import LineIn
from saumaton.returns.services import ExchangeOut, exchange, take_exchange
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn
from saumaton.web.i18n import N_
from saumaton.web.pages import gettext
from saumaton.web.pos.routes import Till
from saumaton.web.returns_forms import OrderForReturn, ReturnForm, return_command

MAX_ITEMS = 50


@dataclass
class Exchange:
    """What the exchange part of the form holds."""

    codes: list[str] = field(default_factory=list)  # as scanned, one per unit
    text: str = ""
    expected_total_cents: int | None = None  # the total the cashier was shown
    pay_with: str = "cash"  # the difference: cash | card
    confirmed: bool = False
    seen: str = ""  # the fingerprint of the codes and quantities previewed
    variants: dict[str, int] = field(default_factory=dict)  # code -> variant id
    errors: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[TillLineIn]:
        counts: dict[int, int] = {}
        for code in self.codes:
            vid = self.variants[code]
            counts[vid] = counts.get(vid, 0) + 1
        return [TillLineIn(variant_id=v, quantity=q) for v, q in counts.items()]

    async def resolve(self, request: Request, s: AsyncSession, till: Till) -> dict[str, str]:
        """Each code's product, and the new items' total now (when not yet shown)."""
        unknown: list[str] = []
        for code in dict.fromkeys(self.codes):
            try:
                self.variants[code] = (await find_variant_by_code(s, code)).id
            except DomainError:
                unknown.append(code)
        if unknown:
            return {"exchange_codes": gettext(request, N_(
                "No product has the code %(code)s."), code=", ".join(unknown))}
        if not self.confirmed:
            quote = await quote_order(s, till.channel_code, [
                LineIn(variant_id=ln.variant_id, quantity=ln.quantity)
                for ln in self.lines()], utcnow())
            self.expected_total_cents = quote.total_cents
        return {}

    def sale(self, key: str, drawer_id: int, customer_id: int | None,
             terminal_confirmed: bool) -> TillSaleIn:
        pay = TillPaymentIn(method="card", terminal_confirmed=terminal_confirmed) \
            if self.pay_with == "card" else TillPaymentIn(method="cash")
        return TillSaleIn(key=key, session_id=drawer_id, customer_id=customer_id,
                          lines=self.lines(), payments=[pay],
                          expected_total_cents=self.expected_total_cents)

    async def run(self, db: Database, till: Till, settings: Settings, request: Request,
                  view: OrderForReturn, form: ReturnForm, drawer_id: int, *,
                  dry: bool) -> ExchangeOut:
        """The exchange made (or, `dry`, made and rolled back to show its figures)."""
        cmd = return_command(request, form, location_id=till.location.id,
                             drawer_session_id=drawer_id)
        key = (form.key or "exchange-without-key")[:64]
        if not dry:
            out, _ = await take_exchange(
                db, till.actor, view.order.id, cmd,
                self.sale(key, drawer_id, view.order.customer_id, form.terminal_confirmed),
                channel=till.channel_code, settings=settings)
            return out
        for _attempt in range(2):
            async with db.uow() as uow:  # never committed: a preview
                try:
                    # The preview pays any difference in cash, so the card terminal
                    # is not needed yet.
                    preview = self.sale(key, drawer_id, view.order.customer_id, False)
                    preview = preview.model_copy(
                        update={"payments": [TillPaymentIn(method="cash")]})
                    return await exchange(uow, till.actor, view.order.id, cmd, preview,
                                          channel=till.channel_code, settings=settings)
                except Conflict as exc:
                    # Member prices for the customer: the core says what it charges.
                    total = (exc.extra.get("quote") or {}).get("total_cents") \
                        if exc.code == "price_changed" else None
                    if not isinstance(total, int):
                        raise
                    self.expected_total_cents = total
                finally:
                    await uow.rollback()
        raise Conflict("the prices keep changing", code="price_changed")


def read_exchange(request: Request, posted: FormData) -> Exchange:
    text = posted.get("exchange_codes")
    text = text if isinstance(text, str) else ""
    swap = Exchange(text=text[:4000])
    swap.codes = [c.strip() for c in text.replace(",", "\n").splitlines() if c.strip()]
    if len(swap.codes) > MAX_ITEMS or any(len(c) > 64 for c in swap.codes):
        swap.errors["exchange_codes"] = gettext(request, N_(
            "At most %(n)s replacement items, one code per line."), n=str(MAX_ITEMS))
    pay = posted.get("exchange_pay")
    swap.pay_with = pay if pay in ("cash", "card") else "cash"
    swap.seen = fingerprint(posted)
    shown = posted.get("exchange_total")
    if isinstance(shown, str) and shown.isdigit() and len(shown) < 10 and \
            posted.get("exchange_seen") == swap.seen:
        swap.expected_total_cents = int(shown)
        swap.confirmed = True
    return swap


def fingerprint(posted: FormData) -> str:
    """What the preview was made of (the codes and the quantities): changed, the
    exchange is previewed again before it is made."""
    parts = sorted(f"{k}={v}" for k, v in posted.multi_items()
                   if isinstance(v, str) and (k.startswith("qty-") or k == "exchange_codes"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]
