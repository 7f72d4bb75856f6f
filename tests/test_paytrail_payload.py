"""The Paytrail payment body: items add up to the amount exactly, VAT as 25.5."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from saumaton.orders.schemas import OrderLineOut, OrderOut
from saumaton.payments.paytrail.payload import payment_request, vat_percentage


def order(lines: list[tuple[int, int, int]]) -> OrderOut:
    """lines: (quantity, line total cents, VAT bp)"""
    out = [OrderLineOut(line_no=i + 1, variant_id=i + 1, location_id=1, sku=f"SKU-{i}",
                        name=f"Item {i}", quantity=q, unit_price_cents=t // q + 1,
                        discount_cents=0, total_cents=t, vat_rate_bp=bp, vat_cents=0,
                        campaign_id=None) for i, (q, t, bp) in enumerate(lines)]
    total = sum(t for _, t, _ in lines)
    return OrderOut(id=42, number="000042", channel="web", location_id=None,
                    customer_id=None, status="pending", currency="EUR", subtotal_cents=total,
                    discount_cents=0, total_cents=total, vat_cents=0, paid_cents=0,
                    lines=out, payments=[], vat_breakdown=[],
                    created_at=datetime(2026, 11, 22, tzinfo=UTC), created_by="test")


def request(o: OrderOut) -> dict[str, object]:
    return payment_request(o, stamp="42-1", reference="42", email="a@b.fi", language="fi",
                           success_url="https://shop.example/ok",
                           cancel_url="https://shop.example/cancel")


def test_items_add_up_exactly_even_when_a_discount_does_not_divide() -> None:
    # 3 × 19.99 with 20 % off = 47.98, not divisible by 3
    body = request(order([(3, 4798, 2550), (2, 3000, 1350), (1, 1990, 1000)]))
    items = body["items"]
    assert isinstance(items, list)
    assert body["amount"] == 4798 + 3000 + 1990
    assert sum(i["unitPrice"] * i["units"] for i in items) == body["amount"]
    assert (items[0]["unitPrice"], items[0]["units"]) == (4798, 1)
    assert items[0]["description"].startswith("3 × ")
    assert (items[1]["unitPrice"], items[1]["units"]) == (1500, 2)
    assert [i["vatPercentage"] for i in items] == [25.5, 13.5, 10]
    assert body["language"] == "FI" and body["currency"] == "EUR"
    # serialised as Paytrail expects: 25.5 and 10, not "25.5" or 10.0
    text = json.dumps(body, separators=(",", ":"))
    assert '"vatPercentage":25.5' in text and '"vatPercentage":10,' in text


def test_vat_percentage_and_bad_input() -> None:
    assert vat_percentage(2550) == 25.5 and vat_percentage(0) == 0
    with pytest.raises(ValueError):
        vat_percentage(2555)
    with pytest.raises(ValueError):
        payment_request(order([(1, 100, 2550)]), stamp="s", reference="r", email="a@b.fi",
                        language="de", success_url="https://x/ok", cancel_url="https://x/no")
