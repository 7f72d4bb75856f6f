"""The cart's PostgreSQL hot path: adding to the cart and reading it for the cart and
checkout pages, each as one prepared statement (see `saumaton.checkout.cart` for the
rules; the portable path there is the reference and SQLite's path).

Adding: one statement finds the shopper's cart (by cookie token, else the signed-in
customer's latest), checks the variant and what can be sold of it, and only when all
is well creates the cart if needed and upserts the line; it answers which check
failed, so the caller raises the same errors as the portable path. The statement is
the whole unit of work and runs in a transaction of its own (no BEGIN or COMMIT): one
round trip.

Reading: one statement on a pooled connection in autocommit returns the cart with its lines, the
variants' price facts, slugs, English names, pictures and stock level rows; the
locations come from the per-process cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from saumaton.catalogue.services import VariantInfo, display_name
from saumaton.core.errors import OutOfStock, ValidationFailed
from saumaton.db.fetcher import Fetcher
from saumaton.db.uow import UnitOfWork
from saumaton.inventory.services import GIFT_CARD_UNITS, Availability
from saumaton.inventory.stock_view import availability_of
from saumaton.locations.reference import LocationRef

# $1 cookie token (NULL: none), $2 customer id (NULL: guest), $3 variant, $4 units to
# add, $5 the token of a cart made now, $6 now, $7 most units per line, $8 most lines,
# $9 what a gift card counts as available, $10 the line's source ('upsell': from the
# suggestions; kept from the line's first add). `lim` is Availability.one_order_max capped
# at $7: the web stock (locations that ship) or the best pickup store, whichever is more.
_ADD_SQL = """
WITH v AS (
  SELECT v.active AND p.active AS active, p.gift_card
  FROM variants v JOIN products p ON p.id = v.product_id WHERE v.id = $3::int),
lim AS (
  SELECT LEAST($7::int, GREATEST(
           COALESCE(SUM(a.n) FILTER (WHERE l.ships_web_orders), 0),
           COALESCE(MAX(a.n) FILTER (WHERE l.pickup_point), 0)))::int AS n
  FROM v CROSS JOIN locations l
  LEFT JOIN stock_levels sl ON sl.variant_id = $3::int AND sl.location_id = l.id
  CROSS JOIN LATERAL (SELECT GREATEST(0, CASE WHEN v.gift_card THEN $9::int
                                              ELSE COALESCE(sl.on_hand, 0) END
                                         - COALESCE(sl.reserved, 0)) AS n) a
  WHERE l.ships_web_orders OR l.pickup_point),
mine AS (
  (SELECT id, token, 1 AS pref FROM carts
   WHERE token = $1::text AND (customer_id IS NULL OR customer_id = $2::bigint))
  UNION ALL
  (SELECT id, token, 2 FROM carts WHERE customer_id = $2::bigint
   ORDER BY updated_at DESC, id DESC LIMIT 1)
  ORDER BY pref LIMIT 1),
have AS (
  SELECT COALESCE((SELECT cl.quantity FROM cart_lines cl JOIN mine ON cl.cart_id = mine.id
                   WHERE cl.variant_id = $3::int), 0) AS q,
         (SELECT count(*) FROM cart_lines cl JOIN mine ON cl.cart_id = mine.id) AS lines),
verdict AS (
  SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM v) THEN 'unknown_variant'
              WHEN NOT (SELECT active FROM v) THEN 'variant_inactive'
              WHEN (SELECT n FROM lim) <= 0 THEN 'out_of_stock'
              WHEN have.q = 0 AND have.lines >= $8::int THEN 'cart_full'
              ELSE 'ok' END AS status,
         have.q, (SELECT n FROM lim) AS lim
  FROM have),
made AS (
  INSERT INTO carts (token, customer_id, created_at, updated_at)
  SELECT $5::text, $2::bigint, $6::timestamptz, $6::timestamptz FROM verdict
  WHERE verdict.status = 'ok' AND NOT EXISTS (SELECT 1 FROM mine)
  RETURNING id, token),
cart AS (SELECT id, token FROM mine UNION ALL SELECT id, token FROM made),
line AS (
  INSERT INTO cart_lines (cart_id, variant_id, quantity, added_at, source)
  SELECT cart.id, $3::int, LEAST(verdict.q + $4::int, verdict.lim), $6::timestamptz,
         $10::text
  FROM cart CROSS JOIN verdict WHERE verdict.status = 'ok'
  ON CONFLICT (cart_id, variant_id) DO UPDATE SET quantity = EXCLUDED.quantity
  RETURNING quantity),
touched AS (
  UPDATE carts SET updated_at = $6::timestamptz
  WHERE id = (SELECT id FROM mine) AND (SELECT status FROM verdict) = 'ok'
  RETURNING id)
SELECT verdict.status, verdict.q, verdict.lim, (SELECT token FROM cart),
       (SELECT quantity FROM line), (SELECT count(*) FROM touched)
FROM verdict"""


@dataclass(frozen=True)
class Added:
    token: str
    have: int  # in the cart before
    quantity: int  # in the cart now
    limit: int


async def add_pg(uow: UnitOfWork, token: str | None, customer_id: int | None,
                 variant_id: int, quantity: int, new_token: str, now: datetime,
                 max_quantity: int, max_lines: int, source: str = "") -> Added:
    """Add `quantity` units (already checked to be 1..max_quantity) in one statement, the
    whole of `uow` (`UnitOfWork.fetchrow_alone`: committed when it returns; it writes
    nothing when it answers with an error)."""
    status, have, limit, cart_token, now_in, _ = await uow.fetchrow_alone(
        _ADD_SQL, token, customer_id, variant_id, quantity, new_token, now, max_quantity,
        max_lines, GIFT_CARD_UNITS, source)
    if status == "unknown_variant":
        raise ValidationFailed("no such product", code="unknown_variant", field="variant_id")
    if status == "variant_inactive":
        raise ValidationFailed("this product is not for sale", code="variant_inactive",
                               field="variant_id")
    if status == "out_of_stock":
        raise OutOfStock("this product is sold out", code="out_of_stock",
                         field="quantity", extra={"variant_id": variant_id})
    if status == "cart_full":
        raise ValidationFailed(f"a cart holds at most {max_lines} different products",
                               code="cart_full", field="variant_id")
    return Added(str(cart_token), int(have), int(now_in), int(limit))


# $1 cookie token, $2 the business day (VAT rate in force). One row per line in the
# order added (a cart without lines: one row with NULL line columns). The picture: the
# variant's own (the last by position, as the portable path keeps the last one it
# meets), else the product's first.
_VIEW_SQL = """
SELECT c.id, c.customer_id, cl.variant_id, cl.quantity,
       v.id, v.product_id, p.category_id, v.sku, v.ean, p.name, v.name, v.price_cents,
       (SELECT r.rate_bp FROM vat_rates r
        WHERE r.vat_class_code = p.vat_class_code AND r.valid_from <= $2::date
              AND (r.valid_to IS NULL OR r.valid_to > $2::date)
        ORDER BY r.valid_from DESC LIMIT 1),
       v.active AND p.active, p.gift_card, p.slug, p.name_en, v.name_en,
       COALESCE((SELECT i.url FROM product_images i
                 WHERE i.product_id = v.product_id AND i.variant_id = v.id
                 ORDER BY i.position DESC, i.id DESC LIMIT 1),
                (SELECT i.url FROM product_images i
                 WHERE i.product_id = v.product_id AND i.variant_id IS NULL
                 ORDER BY i.position, i.id LIMIT 1)),
       s.locs, s.on_hand, s.reserved, s.needs_count
FROM carts c
LEFT JOIN cart_lines cl ON cl.cart_id = c.id
LEFT JOIN variants v ON v.id = cl.variant_id
LEFT JOIN products p ON p.id = v.product_id
LEFT JOIN LATERAL (
  SELECT array_agg(sl.location_id) AS locs, array_agg(sl.on_hand) AS on_hand,
         array_agg(sl.reserved) AS reserved, array_agg(sl.needs_count) AS needs_count
  FROM stock_levels sl WHERE sl.variant_id = v.id) s ON true
WHERE c.token = $1::text
ORDER BY cl.added_at, cl.variant_id"""


@dataclass(frozen=True)
class CartRows:
    """What the cart pages need of the cart, read in one statement."""

    cart_id: int
    token: str
    wanted: list[tuple[int, int]]  # (variant_id, quantity), in the order added
    infos: dict[int, VariantInfo]
    slugs: dict[int, str]
    names_en: dict[int, str]
    images: dict[int, str]
    stock: dict[int, Availability]  # the variants for sale only


async def load_cart_pg(conn: Fetcher, token: str, customer_id: int | None, day: date,
                       places: Sequence[LocationRef]) -> CartRows | None:
    """The cart behind `token` if it belongs to this shopper (as `find_cart`), else None.
    `conn`: a pooled connection outside a transaction (the statement is its own
    snapshot); `places`: every location (the process's copy)."""
    rows = await conn.fetch(_VIEW_SQL, token, day)
    if not rows or (rows[0][1] is not None and rows[0][1] != customer_id):
        return None
    out = CartRows(int(rows[0][0]), token, [], {}, {}, {}, {}, {})
    for r in rows:
        if r[2] is None:
            continue  # a cart without lines
        vid = int(r[2])
        out.wanted.append((vid, int(r[3])))
        if r[4] is None:
            continue
        out.infos[vid] = _info(r, day)
        out.slugs[vid] = str(r[15])
        if r[16] or r[17]:
            out.names_en[vid] = display_name(r[16] or r[9], r[17] or r[10])
        if r[18] is not None:
            out.images[vid] = str(r[18])
        if out.infos[vid].active:
            levels = ({int(loc): (int(oh), int(rs), bool(nc))
                       for loc, oh, rs, nc in zip(r[19], r[20], r[21], r[22], strict=True)}
                      if r[19] is not None else {})
            out.stock[vid] = availability_of(vid, bool(r[14]), places, levels)
    return out


def _info(r: Any, day: date) -> VariantInfo:
    if r[12] is None:  # as load_variant_infos
        raise ValidationFailed(f"no VAT rate in force for variant {r[7]} on {day}",
                               code="no_vat_rate")
    return VariantInfo(id=int(r[4]), product_id=int(r[5]), category_id=r[6], sku=r[7],
                       ean=r[8], name=display_name(r[9], r[10]), price_cents=int(r[11]),
                       vat_rate_bp=int(r[12]), active=bool(r[13]), gift_card=bool(r[14]))
