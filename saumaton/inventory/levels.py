"""Stock levels for the back office: per location, searched and filtered (low, negative,
needs a count, in transit), a page at a time, with the units in transit to each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from saumaton.catalogue.models import Product, Variant
from saumaton.catalogue.services import like_pattern
from saumaton.core.actor import Actor
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import FEW_LEFT
from saumaton.inventory.transfers import in_transit
from saumaton.locations.models import Location

STATES = ("low", "negative", "needs_count", "in_transit")


@dataclass(frozen=True)
class LevelRow:
    variant_id: int
    product_id: int
    sku: str
    ean: str | None
    name: str
    location_id: int
    location_name: str
    on_hand: int
    reserved: int
    needs_count: bool
    in_transit: int  # on its way here, on no shelf yet

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


def readable_locations(actor: Actor, location_ids: list[int]) -> list[int]:
    return [loc for loc in location_ids if actor.can("stock.read", loc)]


async def list_levels(session: AsyncSession, actor: Actor, *, location_id: int | None = None,
                      search: str = "", state: str = "", limit: int = 50, offset: int = 0
                      ) -> tuple[list[LevelRow], bool]:
    """Rows (and whether there is a next page) at the locations `actor` may read."""
    found = await _query(session, actor, location_id=location_id, search=search, state=state)
    if found is None:
        return [], False
    q, all_locs, transit = found
    q = q.order_by(Product.name, Variant.sku, StockLevel.location_id)
    out = _rows((await session.execute(q.limit(limit + 1).offset(offset))).all(), all_locs,
                transit)
    return out[:limit], len(out) > limit


async def levels_after(session: AsyncSession, actor: Actor, *, location_id: int | None = None,
                       variant_id: int | None = None, search: str = "", state: str = "",
                       after: tuple[int, int] | None = None, limit: int = 50
                       ) -> list[LevelRow]:
    """The same rows as `list_levels` (same filters, same locations) for the API's
    keyset pages: by (variant, location), those after `after`, `limit + 1` rows at
    most (the extra one says that more follow)."""
    found = await _query(session, actor, location_id=location_id, search=search, state=state)
    if found is None:
        return []
    q, all_locs, transit = found
    if variant_id is not None:
        q = q.where(StockLevel.variant_id == variant_id)
    if after is not None:
        q = q.where(tuple_(StockLevel.variant_id, StockLevel.location_id) > after)
    q = q.order_by(StockLevel.variant_id, StockLevel.location_id).limit(limit + 1)
    return _rows((await session.execute(q)).all(), all_locs, transit)


async def _query(session: AsyncSession, actor: Actor, *, location_id: int | None,
                 search: str, state: str
                 ) -> tuple[Any, dict[int, str], dict[tuple[int, int], int]] | None:
    """The filtered query (unordered), the location names and the units in transit;
    None when nothing can match."""
    all_locs = {int(i): n for i, n in (await session.execute(
        select(Location.id, Location.name).order_by(Location.id))).all()}
    locs = readable_locations(actor, list(all_locs))
    if location_id is not None:
        locs = [loc for loc in locs if loc == location_id]
    if not locs:
        return None
    transit = await in_transit(session)
    q = (select(StockLevel, Variant.sku, Variant.ean, Variant.product_id, Product.name,
                Variant.name)
         .join(Variant, Variant.id == StockLevel.variant_id)
         .join(Product, Product.id == Variant.product_id)
         .where(StockLevel.location_id.in_(locs)))
    text = search.strip()
    if text:
        pattern = like_pattern(text)
        q = q.where(or_(Product.name.ilike(pattern, escape="\\"),
                        Variant.name.ilike(pattern, escape="\\"),
                        Variant.sku.ilike(pattern, escape="\\"), Variant.ean == text))
    if state == "low":
        q = q.where(StockLevel.on_hand >= 0,
                    StockLevel.on_hand - StockLevel.reserved <= FEW_LEFT)
    elif state == "negative":
        q = q.where(StockLevel.on_hand < 0)
    elif state == "needs_count":
        q = q.where(StockLevel.needs_count)
    elif state == "in_transit":
        pairs = [(v, loc) for (v, loc) in transit if loc in locs]
        if not pairs:
            return None
        q = q.where(tuple_(StockLevel.variant_id, StockLevel.location_id).in_(pairs))
    return q, all_locs, transit


def _rows(rows: Sequence[Any], all_locs: dict[int, str],
          transit: dict[tuple[int, int], int]) -> list[LevelRow]:
    return [LevelRow(lv.variant_id, int(pid), sku, ean, f"{pn} {vn}".strip(), lv.location_id,
                     all_locs.get(lv.location_id, ""), lv.on_hand, lv.reserved,
                     bool(lv.needs_count), transit.get((lv.variant_id, lv.location_id), 0))
            for lv, sku, ean, pid, pn, vn in rows]
