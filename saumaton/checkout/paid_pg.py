"""PostgreSQL: Paytrail's answer about a payment in the fewest round trips.

`record_pg` is `services._record` for the common case, with the same guarantees:
the attempt and the order are locked in one statement that also reads the whole order
(`orders.read_pg`); a new "ok" for a pending home-delivery order whose reservations
still hold all its units is then written in one statement — the attempt settled, the
payment row, the move to paid (the order lifecycle's UPDATE and event), its
reservations consumed (the stock ledger's rows and events), the confirmation mail
rendered from the order in hand and queued, the loyalty points, the analytics event,
the sales summary's day forgotten and the outbox rows with their notifications. With
BEGIN and COMMIT: 4 round trips. Anything else (a failure, a second payment, click &
collect, gift cards sold, a lapsed reservation) answers None and the caller goes the
portable way in the same transaction, which holds the locks already.

`settled_pg` is the shopper's return when the callback came first: one statement
without a transaction reads the attempt and, if the answer is recorded already,
everything the status page shows, and takes a paid order's items out of the cart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from saumaton.config import Settings
from saumaton.core.errors import DomainError
from saumaton.db.uow import Database, Transaction, outbox_ctes_pg
from saumaton.inventory.consume_pg import consume_ctes
from saumaton.loyalty.ledger import POINTS_METHOD, points_for
from saumaton.mail.messages import order_confirmation
from saumaton.mail.queue import claimed_until, hand_after_commit, queued_mail_cte_pg
from saumaton.mail.sender import Claimed
from saumaton.orders.lifecycle import OrderStatus, audited, move_cte_pg, moved_event
from saumaton.orders.read_pg import ORDER_JSON, loads, order_out
from saumaton.orders.schemas import OrderOut, PaymentOut
from saumaton.orders.services import order_number
from saumaton.reports.models import touched_days

# The order number as the reservations' reference (`order_number`: at least 6 digits).
_NUMBER = "CASE WHEN o.id < 1000000 THEN lpad(o.id::text, 6, '0') ELSE o.id::text END"
_RESERVED = (
    "(SELECT coalesce(json_agg(json_build_array(r.id, r.variant_id, r.quantity) "
    "ORDER BY r.id), '[]')::text FROM stock_reservations r "
    f"WHERE r.reference = {_NUMBER} AND r.status = 'active')")
_GIFT_LINES = (
    "EXISTS (SELECT 1 FROM order_lines gl JOIN variants gv ON gv.id = gl.variant_id "
    "JOIN products gp ON gp.id = gv.product_id WHERE gl.order_id = o.id AND gp.gift_card)")

# 1 round trip: the attempt and its order locked (in that order, as the portable way).
_LOCK_SQL = f"""
SELECT p.id, p.status, p.transaction_id, p.amount_cents, o.id, o.status,
       o.delivery_method, {ORDER_JSON}, {_RESERVED}, {_GIFT_LINES}
FROM paytrail_payments p JOIN orders o ON o.id = p.order_id
WHERE p.stamp = $1 FOR UPDATE OF p, o"""

_PAID = OrderStatus.PAID
_PENDING = OrderStatus.PENDING
_MOVE = move_cte_pg(0, _PENDING, _PAID, id_param="$1", now_param="$2",
                    set_sql="payment_due_at = NULL, paid_cents = paid_cents + $5::int")
_CONSUME = consume_ctes(ids="$6", now="$2", actor="$7", order_id="$1", reference="$8")
_QUEUED = queued_mail_cte_pg(kind="'order_confirmation'", to="$9", subject="$10",
                             text="$11", html="$12", reference="$8", now="$2", until="$23")
# Events in the order the portable way emits them: the stock's, the move's, the points'.
_EVENTS = ("SELECT n, topic, payload FROM stock_events "
           "UNION ALL SELECT 1000001, $13::text, $14::json "
           "UNION ALL SELECT 1000002, 'loyalty.changed', json_build_object("
           "'customer_id', customer_id, 'kind', 'earn', 'points', points, "
           "'order_id', order_id) FROM earned")
# 1 round trip: every write of the paid order (see the module's doc).
_PAID_SQL = f"""
WITH {_MOVE}, settled AS (
    UPDATE paytrail_payments SET status = 'ok', transaction_id = $3::text,
        provider = CASE WHEN $4::text = '' THEN provider ELSE $4::text END,
        updated_at = $2::timestamptz
    WHERE id = $15::bigint RETURNING id
), captured AS (
    INSERT INTO payments (order_id, method, status, amount_cents, rounding_cents,
                          tendered_cents, change_cents, reference, location_id, created_at)
    SELECT id, 'paytrail', 'captured', $5::int, 0, NULL, 0, $3::text, $16::int,
           $2::timestamptz FROM moved RETURNING id
), forgotten AS (
    DELETE FROM sales_daily_days WHERE day BETWEEN $17::date AND $18::date
), earned AS (
    INSERT INTO loyalty_entries (customer_id, kind, points, order_id, channel, reason,
                                 expires_at, key, created_by, created_at)
    SELECT $19::bigint, 'earn', $20::int, $1::bigint, $21::text, '', $22::timestamptz,
           'earn:order:' || $1::text, '', $2::timestamptz
    WHERE $20::int > 0 AND $19::bigint IS NOT NULL
    ON CONFLICT DO NOTHING RETURNING customer_id, points, order_id
), tracked AS (
    INSERT INTO analytics_events (at, kind, channel, visitor_id, customer_id, order_id,
                                  variant_id, path, data)
    VALUES ($2::timestamptz, 'order_placed', 'web', NULL, $19::bigint, $1::bigint, NULL, '',
            '{{}}')
), {_CONSUME}, {_QUEUED}, {outbox_ctes_pg(_EVENTS, now="$2")}
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM cr),
       (SELECT count(*) FROM settled), (SELECT n FROM outbox_notified),
       (SELECT id FROM queued)"""


class FastPathMissed(DomainError):
    """The paid order's write found its rows changed since they were read (a reservation
    lapsed meanwhile): the transaction is rolled back and the portable way taken."""

    status = 409
    code = "fast_path_missed"


@dataclass(frozen=True)
class Locked:
    attempt_id: int
    attempt_status: str
    attempt_txn: str | None
    attempt_amount: int
    order_id: int
    order_status: str
    delivery_method: str | None
    order: dict[str, Any]
    reserved: list[list[int]]
    gift_lines: bool


async def lock_pg(uow: Transaction, stamp: str) -> Locked | None:
    """The attempt and its order, locked, with the order as `get_order` reads it."""
    row = await uow.fetchrow(_LOCK_SQL, stamp)
    if row is None:
        return None
    return Locked(int(row[0]), str(row[1]), row[2], int(row[3]), int(row[4]), str(row[5]),
                  row[6], loads(row[7]), json.loads(row[8]), bool(row[9]))


def _covers(reserved: list[list[int]], order: OrderOut) -> bool:
    """Whether the active reservations hold exactly the order's units, variant by variant
    (else some lapsed: the portable way takes them again)."""
    want: dict[int, int] = {}
    for ln in order.lines:
        want[ln.variant_id] = want.get(ln.variant_id, 0) + ln.quantity
    have: dict[int, int] = {}
    for _rid, variant_id, qty in reserved:
        have[variant_id] = have.get(variant_id, 0) + qty
    return bool(want) and want == have


def paid_order(settings: Settings, locked: Locked) -> OrderOut | None:
    """The order if the one-statement write can pay it, else None."""
    if (locked.order_status != _PENDING or locked.delivery_method != "home"
            or locked.gift_lines or audited(None, _PAID)):
        return None
    order = order_out(locked.order)
    return order if _covers(locked.reserved, order) else None


async def write_paid_pg(uow: Transaction, settings: Settings, locked: Locked, order: OrderOut,
                        *, txn: str, amount: int, provider: str, now: datetime,
                        actor_label: str) -> OrderOut:
    """Pay `order` (pending, home delivery, `paid_order` said yes) in one statement;
    returns it as it now is. FastPathMissed when a reservation was no longer active.
    The confirmation goes to this process's mail sender once the caller commits."""
    number = order_number(order.id)
    # The confirmation shows the order as the portable way renders it: with the payment
    # recorded, before the move (rendered before the stock rows are locked, too).
    shown = order.model_copy(update={
        "paid_cents": order.paid_cents + amount,
        "payments": [*order.payments, PaymentOut(
            method="paytrail", amount_cents=amount, rounding_cents=0, tendered_cents=None,
            change_cents=0, reference=txn, status="captured")]})
    token = locked.order["o"]["access_token"] or ""
    mail = order_confirmation(
        shown, status_url=settings.resolved_public_url()
        + f"/shop/orders/{number}?t={token}", lang=order.language, settings=settings,
        pickup_store_name=None)
    with_points = sum(p.amount_cents for p in order.payments if p.method == POINTS_METHOD)
    points = points_for(order.total_cents - order.delivery_fee_cents - with_points, settings)
    first, last = touched_days(order.sold_at or order.created_at)
    topic, payload = moved_event(order.id, _PENDING, _PAID, customer_id=order.customer_id,
                                 data={"channel": order.channel,
                                       "location_id": order.location_id,
                                       "total_cents": order.total_cents,
                                       "delivery": locked.delivery_method})
    rids = [r[0] for r in locked.reserved]
    until = claimed_until(uow.db, now)  # the mail queued claimed by this process's sender
    row = await uow.fetchrow(
        _PAID_SQL, order.id, now, txn, provider, amount, rids, actor_label, number,
        order.email, mail.subject, mail.text, mail.html, topic,
        json.dumps(payload, separators=(",", ":")), locked.attempt_id, order.location_id,
        first, last, order.customer_id, points, order.channel,
        now + timedelta(days=settings.loyalty_points_valid_days), until)
    if row[0] != 1 or row[1] != len(rids) or row[2] != 1:
        raise FastPathMissed(f"order {number} changed while it was being paid")
    uow.wrote_events(("stock.changed", topic, "loyalty.changed"))
    hand_after_commit(uow, Claimed(int(row[4]), "order_confirmation", order.email or "",
                                   mail.subject[:300], mail.text, mail.html, 1), until, now)
    return shown.model_copy(update={"status": _PAID.value, "payment_due_at": None})


# --- the shopper's return after the callback --------------------------------------------

_SETTLED_SQL = f"""
WITH a AS (
    SELECT p.status, p.transaction_id, p.amount_cents, p.order_id
    FROM paytrail_payments p WHERE p.stamp = $1
), c AS (
    SELECT id FROM carts WHERE token = $2 AND (customer_id IS NULL OR customer_id = $3::bigint)
), bought AS (
    SELECT l.variant_id, sum(l.quantity) AS q FROM order_lines l
    JOIN a ON a.order_id = l.order_id JOIN orders o ON o.id = a.order_id
    WHERE o.status = 'paid' GROUP BY l.variant_id
), less AS (
    UPDATE cart_lines cl SET quantity = cl.quantity - b.q FROM c, bought b
    WHERE cl.cart_id = c.id AND cl.variant_id = b.variant_id AND cl.quantity > b.q
    RETURNING cl.cart_id
), gone AS (
    DELETE FROM cart_lines cl USING c, bought b
    WHERE cl.cart_id = c.id AND cl.variant_id = b.variant_id AND cl.quantity <= b.q
    RETURNING cl.cart_id
), touched AS (
    UPDATE carts SET updated_at = $4::timestamptz
    WHERE id IN (SELECT cart_id FROM less UNION SELECT cart_id FROM gone)
)
SELECT a.status, a.transaction_id, a.amount_cents, o.id, o.status, o.access_token,
       {ORDER_JSON},
       (SELECT json_build_object('name', s.name, 'address', s.address)::text
        FROM locations s WHERE s.id = o.location_id),
       EXISTS (SELECT 1 FROM returns rt WHERE rt.order_id = o.id)
       OR EXISTS (SELECT 1 FROM refunds rf WHERE rf.order_id = o.id)
FROM a JOIN orders o ON o.id = a.order_id"""


@dataclass(frozen=True)
class Settled:
    attempt_status: str
    attempt_txn: str | None
    attempt_amount: int
    order_id: int
    order_status: str
    access_token: str
    order: OrderOut
    store: dict[str, str] | None
    has_returns_or_refunds: bool


async def settled_pg(db: Database, stamp: str, *, cart_token: str | None,
                     customer_id: int | None, now: datetime) -> Settled | None:
    """One statement, no transaction: the attempt and its order as the status page shows
    it; a paid order's items leave this browser's cart (as `cart.remove_ordered`). The
    caller decides from the attempt whether the answer still has to be recorded."""
    row = await db.fetchrow_once(_SETTLED_SQL, stamp, cart_token or "", customer_id, now)
    if row is None:
        return None
    store = json.loads(row[7]) if row[7] else None
    return Settled(str(row[0]), row[1], int(row[2]), int(row[3]), str(row[4]),
                   str(row[5] or ""), order_out(loads(row[6])), store, bool(row[8]))

