"""A variant's Availability built from its stock level rows and the locations in hand
(the per-process location list), for pages that read the levels in their own
statement; the same figures as `inventory.services.availability`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from saumaton.inventory.services import GIFT_CARD_UNITS, Availability, LocationStock
from saumaton.locations.reference import LocationRef


def availability_of(variant_id: int, gift_card: bool, locations: Sequence[LocationRef],
                    levels: Mapping[int, tuple[int, int, bool]]) -> Availability:
    """`levels`: location_id -> (on_hand, reserved, needs_count); a location without
    a row has nothing. A gift card keeps no stock: GIFT_CARD_UNITS everywhere."""
    per = []
    for loc in locations:
        on_hand, reserved, needs_count = levels.get(loc.id, (0, 0, False))
        per.append(LocationStock(
            loc.id, loc.code, loc.name, loc.kind, loc.sells_in_person, loc.ships_web_orders,
            loc.pickup_point, GIFT_CARD_UNITS if gift_card else on_hand, reserved,
            needs_count))
    online = sum(p.available for p in per if p.ships_web_orders)
    return Availability(variant_id, online, tuple(per))


def pg_one_order_max(variant: str, gift_card: str, ships: str, pickups: str) -> str:
    """PostgreSQL: a scalar expression of `Availability.one_order_max` of the variant
    `variant` (the SQL of its id; `gift_card` the SQL of its product's flag), as
    `availability_of` computes it: the units available at the locations that ship web
    orders (`ships`, the SQL of an int[] of their ids) or at the pickup store that has
    the most (`pickups`), whichever is more. A location without a level row has nothing;
    a gift card keeps no stock: GIFT_CARD_UNITS at each of the locations. For a hot path
    that wants the figure, not the rows, in a statement of its own (the locations from
    the process's copy, as `live_availability` takes them)."""
    def best(rows: str) -> str:  # rows: (location id, units available there)
        return (f"(SELECT GREATEST(COALESCE(sum(a.n) FILTER (WHERE a.id = ANY({ships})), 0),"
                f" COALESCE(max(a.n) FILTER (WHERE a.id = ANY({pickups})), 0))"
                f" FROM ({rows}) a (id, n))")
    levels = ("SELECT sl.location_id, GREATEST(0, sl.on_hand - sl.reserved) "
              f"FROM stock_levels sl WHERE sl.variant_id = {variant}")
    cards = (f"SELECT l.id, GREATEST(0, {GIFT_CARD_UNITS} - COALESCE(sl.reserved, 0)) "
             f"FROM (SELECT DISTINCT unnest({ships} || {pickups})) l (id) "
             f"LEFT JOIN stock_levels sl ON sl.variant_id = {variant} AND sl.location_id = l.id")
    return f"CASE WHEN {gift_card} THEN {best(cards)} ELSE {best(levels)} END"
