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
