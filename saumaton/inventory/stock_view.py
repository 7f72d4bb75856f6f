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


def pg_one_order_max(variant: str, gift_card: str) -> str:
    """PostgreSQL: a scalar sub-select of `Availability.one_order_max` of the variant
    `variant` (the SQL of its id; `gift_card` the SQL of its product's flag), as
    `availability_of` computes it: the units available at the locations that ship web
    orders, or at the pickup store that has the most, whichever is more; a location
    without a level row has nothing (a gift card GIFT_CARD_UNITS). For a hot path that
    wants the figure, not the rows, in its own statement (the locations read there)."""
    return f"""(SELECT GREATEST(COALESCE(sum(a.n) FILTER (WHERE l.ships_web_orders), 0),
                        COALESCE(max(a.n) FILTER (WHERE l.pickup_point), 0))
   FROM locations l
   LEFT JOIN stock_levels sl ON sl.variant_id = {variant} AND sl.location_id = l.id
   CROSS JOIN LATERAL (
     SELECT GREATEST(0, CASE WHEN {gift_card} THEN {GIFT_CARD_UNITS}
                             ELSE COALESCE(sl.on_hand, 0) END
                        - COALESCE(sl.reserved, 0)) AS n) a
   WHERE l.ships_web_orders OR l.pickup_point)"""
