"""PostgreSQL: a web order's stock reserved inside the statement that writes the order.

The same rule as `inventory.services.reserve`, for every stock line at once: each
line is held at the first candidate location (in routing order) that has all of it,
by a conditional UPDATE (`on_hand - reserved >= quantity`, re-checked under the row
lock), with its reservation row. Rows are locked in (variant, location) order, the
lock order of every stock write, so two checkouts never deadlock.

A line that no location can hold whole is left unreserved: the caller sees fewer
levels than lines and rolls back (then `reserve` splits it, or refuses it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saumaton.inventory.services import LevelAfter


def reserve_ctes(*, variants: int, quantities: int, candidates: int, reference: int,
                 expires: int, now: int, order_cte: str = "o") -> str:
    """CTEs `w`, `pick`, `lk`, `r` (the levels changed: variant_id, location_id,
    on_hand, reserved, needs_count, quantity) and `rv` (the reservations), taking
    their values from the numbered parameters given. Nothing is reserved unless
    `order_cte` returned a row (the order was written)."""
    return f"""w AS (
  SELECT * FROM unnest(${variants}::int[], ${quantities}::int[]) AS w(variant_id, quantity)
), pick AS (
  SELECT DISTINCT ON (w.variant_id) w.variant_id, s.location_id, w.quantity
  FROM w JOIN unnest(${candidates}::int[]) WITH ORDINALITY AS c(location_id, rank) ON true
  JOIN stock_levels s ON s.variant_id = w.variant_id AND s.location_id = c.location_id
  WHERE s.on_hand - s.reserved >= w.quantity AND EXISTS (SELECT 1 FROM {order_cte})
  ORDER BY w.variant_id, c.rank
), lk AS (
  SELECT s.variant_id, s.location_id FROM stock_levels s
  JOIN pick p ON p.variant_id = s.variant_id AND p.location_id = s.location_id
  ORDER BY s.variant_id, s.location_id FOR UPDATE OF s
), r AS (
  UPDATE stock_levels s SET reserved = s.reserved + p.quantity, updated_at = ${now}::timestamptz
  FROM pick p JOIN lk ON lk.variant_id = p.variant_id AND lk.location_id = p.location_id
  WHERE s.variant_id = p.variant_id AND s.location_id = p.location_id
    AND s.on_hand - s.reserved >= p.quantity
  RETURNING s.variant_id, s.location_id, s.on_hand, s.reserved, s.needs_count, p.quantity
), rv AS (
  INSERT INTO stock_reservations (variant_id, location_id, quantity, reference, status,
                                  expires_at, created_at)
  SELECT variant_id, location_id, quantity, ${reference}::text, 'active',
         ${expires}::timestamptz, ${now}::timestamptz
  FROM r ORDER BY variant_id
)"""


# What the statement returns of `r`, as arrays in one row.
RESERVED_COLUMNS = ("(SELECT array_agg(variant_id ORDER BY variant_id) FROM r), "
                    "(SELECT array_agg(location_id ORDER BY variant_id) FROM r), "
                    "(SELECT array_agg(on_hand ORDER BY variant_id) FROM r), "
                    "(SELECT array_agg(reserved ORDER BY variant_id) FROM r), "
                    "(SELECT array_agg(needs_count ORDER BY variant_id) FROM r)")


def reserved_levels(cols: Sequence[Any]) -> list[LevelAfter]:
    """The levels of RESERVED_COLUMNS' five arrays (none reserved: all NULL)."""
    if cols[0] is None:
        return []
    return [LevelAfter(int(v), int(loc), int(h), int(r), bool(n))
            for v, loc, h, r, n in zip(*cols, strict=True)]
