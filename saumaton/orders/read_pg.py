"""An order as `get_order` shows it, read by PostgreSQL as one JSON value: a hot
statement (the payment callback's row lock, the status page) takes the whole order
with it instead of three further queries through the ORM.

`ORDER_JSON` is an expression over the orders row `o`; `order_out` builds the same
`OrderOut` as `orders.services.get_order` from its value.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from saumaton.orders.schemas import (
    DeliveryOut,
    OrderLineOut,
    OrderOut,
    OrderRefundOut,
    PaymentOut,
)
from saumaton.orders.services import order_number, vat_breakdown

ORDER_JSON = """json_build_object(
    'o', row_to_json(o),
    'channel', (SELECT ch.code FROM channels ch WHERE ch.id = o.channel_id),
    'lines', (SELECT coalesce(json_agg(x ORDER BY x.line_no), '[]') FROM (
        SELECT l.*, cp.name AS campaign_name FROM order_lines l
        LEFT JOIN campaigns cp ON cp.id = l.campaign_id WHERE l.order_id = o.id) x),
    'payments', (SELECT coalesce(json_agg(p ORDER BY p.id), '[]') FROM payments p
                 WHERE p.order_id = o.id),
    'refunds', CASE WHEN o.refunded_cents <> 0 THEN (
        SELECT coalesce(json_agg(r ORDER BY r.id), '[]') FROM refunds r
        WHERE r.order_id = o.id) ELSE '[]' END
)::text"""

_LINE_FIELDS = tuple(OrderLineOut.model_fields)
_PAYMENT_FIELDS = tuple(PaymentOut.model_fields)
_REFUND_FIELDS = tuple(OrderRefundOut.model_fields)
_STAMPS = ("created_at", "payment_due_at", "sold_at", "collected_at", "ready_at",
           "packed_at", "shipped_at", "pickup_reminded_at")


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def loads(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


def order_out(data: dict[str, Any]) -> OrderOut:
    """`OrderOut` from the value of `ORDER_JSON` (parsed with `loads`)."""
    o = data["o"]
    lines = [OrderLineOut(**{k: ln[k] for k in _LINE_FIELDS}) for ln in data["lines"]]
    payments = [PaymentOut(**{k: p[k] for k in _PAYMENT_FIELDS}) for p in data["payments"]]
    refunds = [OrderRefundOut(**{k: r[k] for k in _REFUND_FIELDS}) for r in data["refunds"]]
    stamps = {k: _when(o[k]) for k in _STAMPS}
    delivery = None if o["delivery_method"] is None else DeliveryOut(
        method=o["delivery_method"], fee_cents=o["delivery_fee_cents"],
        vat_rate_bp=o["delivery_vat_rate_bp"], vat_cents=o["delivery_vat_cents"],
        address=o["shipping_address"])
    return OrderOut(
        id=o["id"], number=order_number(o["id"]), channel=data["channel"],
        location_id=o["location_id"], customer_id=o["customer_id"], status=o["status"],
        currency=o["currency"], subtotal_cents=o["subtotal_cents"],
        discount_cents=o["discount_cents"], total_cents=o["total_cents"],
        vat_cents=o["vat_cents"], paid_cents=o["paid_cents"], lines=lines,
        payments=payments, vat_breakdown=vat_breakdown(lines, delivery),
        created_by=o["created_by"], email=o["email"], phone=o["phone"],
        language=o["language"], delivery=delivery,
        drawer_session_id=o["drawer_session_id"], offline=o["offline"],
        client_ref=o["client_ref"], receipt_no=o["receipt_no"], flags=o["flags"].split(),
        discount_reason=o["discount_reason"], collected_by=o["collected_by"],
        carrier=o["carrier"], tracking_number=o["tracking_number"],
        refunded_cents=o["refunded_cents"], refunds=refunds, **stamps)
