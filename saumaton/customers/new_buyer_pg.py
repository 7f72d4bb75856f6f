"""PostgreSQL: a new web buyer created inside the statement that writes their order.

The customer row and its e-mail and phone identities, as `checkout.services` does
it on the portable path. Two checkouts with the same new e-mail at once: the unique
identity decides; the loser's `ne` returns no row, and the caller rolls back and
takes the portable path (which finds the winner).
"""

from __future__ import annotations


def new_buyer_ctes(*, create: int, first_name: int, last_name: int, email: int, phone: int,
                   now: int) -> str:
    """CTEs `nc` (the new customer's id, when parameter `create` is true) and `ne`
    (its e-mail identity, when it won) and `np` (the phone, when given and free)."""
    return f"""nc AS (
  INSERT INTO customers (first_name, last_name, created_at)
  SELECT ${first_name}::text, ${last_name}::text, ${now}::timestamptz WHERE ${create}::boolean
  RETURNING id
), ne AS (
  INSERT INTO customer_identities (customer_id, kind, value)
  SELECT id, 'email', ${email}::text FROM nc ON CONFLICT DO NOTHING RETURNING customer_id
), np AS (
  INSERT INTO customer_identities (customer_id, kind, value)
  SELECT id, 'phone', ${phone}::text FROM nc WHERE ${phone}::text <> ''
  ON CONFLICT DO NOTHING
)"""
