"""Builders for the card and cash tests: a store of its own (so no other test's card
payments share its days), till sales paid by card online and offline, and a card
terminal's report file in the documented layout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from saumaton.core.actor import Actor
from saumaton.db.uow import Database
from saumaton.orders.schemas import OrderOut
from saumaton.payments.terminal import ManualTerminal
from saumaton.tills.sales import TillLineIn, TillPaymentIn, TillSaleIn, sell
from tests.support import make_variants, new_store, open_drawer

TZ = ZoneInfo("Europe/Helsinki")
HEADER = "date;time;terminal_id;store;amount;type;card_brand;masked_pan;auth_code;reference"


@dataclass(frozen=True)
class CardStore:
    id: int
    code: str
    cashier: Actor
    session_id: int


async def card_store(db: Database) -> CardStore:
    """A store with its till channel and an open drawer session."""
    store = await new_store(db, "cc")
    store_id, code, cashier = store.id, store.code, store.cashier
    return CardStore(store_id, code, cashier, await open_drawer(db, store_id))


def local(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    """The moment `hh:mm:ss` of `day` in Helsinki, as UTC."""
    return datetime.combine(day, time(hh, mm, ss), TZ).astimezone(UTC)


async def card_sale(db: Database, store: CardStore, price_cents: int, *,
                    offline_at: datetime | None = None, reference: str = "",
                    unit_price_cents: int | None = None, location_id: int | None = None,
                    session_id: int | None = None, cashier: Actor | None = None
                    ) -> OrderOut:
    """A sale of one new product paid by card: offline at `offline_at` (the till's clock;
    the payment waits for confirmation), else online through a standalone terminal
    giving `reference`."""
    where = location_id or store.id
    [v] = await make_variants(db, [price_cents], stock={where: 5})
    line = TillLineIn(variant_id=int(v["id"]), quantity=1)
    if offline_at is not None:
        line = TillLineIn(variant_id=int(v["id"]), quantity=1,
                          unit_price_cents=unit_price_cents or price_cents,
                          campaign_discount_cents=0)
    cmd = TillSaleIn(key=uuid.uuid4().hex, session_id=session_id or store.session_id,
                     lines=[line], payments=[TillPaymentIn(method="card",
                                                           terminal_confirmed=True)],
                     offline=offline_at is not None, sold_at=offline_at,
                     client_ref="K9-000001" if offline_at else "")
    order, _ = await sell(db, cashier or store.cashier, where, cmd,
                          None if offline_at else ManualTerminal(True, reference))
    return order


def terminal_file(rows: list[tuple[str, ...]]) -> bytes:
    """A terminal report: each row (date, time, terminal, store, amount, type, brand,
    masked card, authorisation code, reference), with the byte order mark Excel writes."""
    return ("\ufeff" + HEADER + "\r\n"
            + "".join(";".join(r) + "\r\n" for r in rows)).encode("utf-8")
