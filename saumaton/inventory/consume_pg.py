"""`consume` for several reservations as CTEs of a caller's PostgreSQL statement: the
paid web order's write (checkout/paid_pg.py) takes its units out of stock in the same
round trip as the rest of the payment.

The same rows as `inventory.services.consume` once per reservation: each reservation
becomes `consumed`, its level loses the units from `reserved` and from `on_hand` (a
non-strict move: a level pushed below zero is flagged for a count), a `sale` movement
records the balance, and `stock.changed` is emitted twice per reservation with the
levels `consume` emits (after the reservation closes, after the units leave). Levels
are written in (variant, location) order like every stock write, so concurrent writers
never deadlock.
"""

from __future__ import annotations


def consume_ctes(*, ids: str, now: str, actor: str, order_id: str, reference: str) -> str:
    """CTEs `cr` (the reservations consumed: id, variant_id, location_id, quantity),
    `clv` (their levels after), `cmv` (the movements) and `stock_events` (n, topic,
    payload: the events in the order `consume` emits them). The arguments are the
    statement's placeholders: `ids` a bigint[] of active reservations the caller has
    locked."""
    return f"""
cr AS (
    UPDATE stock_reservations SET status = 'consumed'
    WHERE id = ANY({ids}::bigint[]) AND status = 'active'
    RETURNING id, variant_id, location_id, quantity
), clv AS (
    INSERT INTO stock_levels AS s (variant_id, location_id, on_hand, reserved, needs_count,
                                   updated_at)
    SELECT variant_id, location_id, -sum(quantity), -sum(quantity), false, {now}::timestamptz
    FROM cr GROUP BY variant_id, location_id ORDER BY variant_id, location_id
    ON CONFLICT (variant_id, location_id) DO UPDATE
    SET on_hand = s.on_hand + excluded.on_hand, reserved = s.reserved + excluded.reserved,
        needs_count = s.needs_count OR s.on_hand + excluded.on_hand < 0,
        updated_at = excluded.updated_at
    RETURNING s.variant_id, s.location_id, s.on_hand, s.reserved, s.needs_count
), crl AS (
    -- each reservation with the level just after it was consumed (in id order)
    SELECT cr.id, cr.variant_id, cr.location_id, cr.quantity, clv.needs_count,
           clv.on_hand + coalesce(sum(cr.quantity) OVER later, 0) AS on_hand_after,
           clv.reserved + coalesce(sum(cr.quantity) OVER later, 0) AS reserved_after
    FROM cr JOIN clv USING (variant_id, location_id)
    WINDOW later AS (PARTITION BY cr.variant_id, cr.location_id ORDER BY cr.id DESC
                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), cmv AS (
    INSERT INTO stock_movements (variant_id, location_id, kind, quantity, balance_after,
                                 reason, reference, order_id, actor, created_at)
    SELECT variant_id, location_id, 'sale', -quantity, on_hand_after,
           'reservation ' || id, {reference}::text, {order_id}::bigint, {actor}::text,
           {now}::timestamptz
    FROM crl ORDER BY variant_id, location_id, id
), stock_events AS (
    SELECT row_number() OVER (ORDER BY variant_id, location_id, id, step) AS n,
           'stock.changed'::text AS topic,
           json_build_object('variant_id', variant_id, 'location_id', location_id,
                             'on_hand', on_hand, 'reserved', reserved_after,
                             'available', on_hand - reserved_after,
                             'needs_count', needs_count) AS payload
    FROM (SELECT id, variant_id, location_id, reserved_after, needs_count,
                 1 AS step, on_hand_after + quantity AS on_hand FROM crl
          UNION ALL
          SELECT id, variant_id, location_id, reserved_after, needs_count,
                 2, on_hand_after FROM crl) e
)"""
