"""/api/v1 cash drawer (both databases): a store's cashier opens the till with a float
(a retry with the same Idempotency-Key opens nothing more), puts cash in and takes it
out, reads the X report, closes with the count — a difference over the shop's limit must
be confirmed — and reads the Z reports a page at a time; another store's cashier may do
none of it; strict amounts. A store sale's receipt by e-mail."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from saumaton.db.uow import Database
from saumaton.mail.models import OutgoingMail
from tests.support import Shop, new_store
from tests.test_receipt_email import sale_with_customer
from tests.test_staff_admin import new_person


def _key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def test_open_cash_in_out_close_and_z_reports(client: httpx.AsyncClient, db: Database,
                                                    shop: Shop) -> None:
    store = await new_store(db, "api")
    _, _, token = await new_person(db, [("cashier", store.id)])
    me = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/locations/{store.code}"

    r = await client.get(f"{base}/drawer", headers=me)
    assert r.status_code == 200 and r.json() == {"drawer": None, "x_report": None}
    key = _key()
    r = await client.post(f"{base}/drawer", headers={**me, **key}, json={"float_cents": 15000})
    assert r.status_code == 201, r.text
    drawer = r.json()
    assert drawer["float_cents"] == 15000 and drawer["status"] == "open"
    again = await client.post(f"{base}/drawer", headers={**me, **key},
                              json={"float_cents": 15000})
    assert again.json()["id"] == drawer["id"], again.text
    r = await client.post(f"{base}/drawer", headers={**me, **_key()}, json={"float_cents": 0})
    assert r.status_code == 409 and r.json()["code"] == "drawer_already_open", r.text

    sid = drawer["id"]
    key = _key()
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash", headers={**me, **key},
                          json={"kind": "in", "amount_cents": 5000, "reason": "change"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash", headers={**me, **key},
                          json={"kind": "in", "amount_cents": 5000, "reason": "change"})
    assert r.status_code in (200, 201) and r.json()["amount_cents"] == 5000  # a replay
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash", headers={**me, **_key()},
                          json={"kind": "out", "amount_cents": 2000, "reason": "to bank"})
    assert r.status_code == 201, r.text
    status = (await client.get(f"{base}/drawer", headers=me)).json()
    assert status["drawer"]["id"] == sid
    assert status["x_report"]["expected_cents"] == 15000 + 5000 - 2000

    for body in ({"kind": "in", "amount_cents": "5000", "reason": "x"},
                 {"kind": "in", "amount_cents": True, "reason": "x"},
                 {"kind": "in", "amount_cents": 0, "reason": "x"},
                 {"kind": "sideways", "amount_cents": 1, "reason": "x"},
                 {"kind": "in", "amount_cents": 1, "reason": ""}):
        r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash",
                              headers={**me, **_key()}, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash", headers=me,
                          json={"kind": "in", "amount_cents": 1, "reason": "x"})
    assert r.status_code == 422  # no Idempotency-Key

    # Another store's cashier: nothing here, not even a replay of a movement's key.
    other = shop.auth("cashier1")
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash", headers={**other, **key},
                          json={"kind": "in", "amount_cents": 5000, "reason": "change"})
    assert r.status_code == 403, r.text
    assert (await client.get(f"{base}/drawer", headers=other)).status_code == 403
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/cash", headers={**other, **_key()},
                          json={"kind": "out", "amount_cents": 100, "reason": "x"})
    assert r.status_code == 403
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/close", headers=other,
                          json={"counted_cents": 18000})
    assert r.status_code == 403

    r = await client.post(f"/api/v1/drawer-sessions/{sid}/close", headers=me,
                          json={"counted_cents": 1000})
    assert r.status_code == 422 and r.json()["code"] == "difference_needs_confirmation"
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/close", headers=me,
                          json={"counted_cents": 17990, "note": "one coin short",
                                "confirm_difference": True})
    assert r.status_code == 200, r.text
    z = r.json()
    assert (z["z_number"], z["expected_cents"], z["counted_cents"],
            z["difference_cents"]) == (1, 18000, 17990, -10)
    r = await client.post(f"/api/v1/drawer-sessions/{sid}/close", headers=me,
                          json={"counted_cents": 17990})
    assert r.status_code == 409 and r.json()["code"] == "drawer_closed"

    # A second day, then the Z reports a page at a time, newest first.
    r = await client.post(f"{base}/drawer", headers={**me, **_key()}, json={"float_cents": 0})
    r = await client.post(f"/api/v1/drawer-sessions/{r.json()['id']}/close", headers=me,
                          json={"counted_cents": 0})
    assert r.status_code == 200 and r.json()["z_number"] == 2
    page = (await client.get(f"{base}/z-reports", headers=me, params={"limit": 1})).json()
    assert [x["z_number"] for x in page["items"]] == [2] and page["next_cursor"]
    rest = (await client.get(f"{base}/z-reports", headers=me,
                             params={"cursor": page["next_cursor"]})).json()
    assert [x["z_number"] for x in rest["items"]] == [1] and rest["next_cursor"] is None
    r = await client.get(f"{base}/z-reports/1", headers=shop.auth("owner"))
    assert r.status_code == 200 and r.json()["counted_cents"] == 17990
    assert (await client.get(f"{base}/z-reports/9", headers=me)).status_code == 404
    assert (await client.get(f"{base}/z-reports", headers=other)).status_code == 403
    r = await client.get("/api/v1/locations/no-such-store/drawer", headers=me)
    assert r.status_code == 404


async def test_a_receipt_by_email(client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    order, _, _ = await sale_with_customer(db, shop)
    r = await client.post(f"/api/v1/orders/{order.id}/receipt-email",
                          headers=shop.auth("cashier1"), json={"email": " Kuitti@Example.FI "})
    assert r.status_code == 202, r.text
    assert r.json() == {"order_id": order.id, "to": "kuitti@example.fi"}
    async with db.reader() as s:
        mails = (await s.scalars(select(OutgoingMail).where(
            OutgoingMail.reference == order.number, OutgoingMail.kind == "receipt"))).all()
    assert [m.to_addr for m in mails] == ["kuitti@example.fi"]
    assert order.number in mails[0].body_text or (order.receipt_no or "") in mails[0].subject
    r = await client.post(f"/api/v1/orders/{order.id}/receipt-email",
                          headers=shop.auth("cashier1"), json={"email": "not an address"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_email"
    r = await client.post(f"/api/v1/orders/{order.id}/receipt-email",
                          headers=shop.auth("cashier2"), json={"email": "a@example.fi"})
    assert r.status_code == 403  # another store's cashier
    r = await client.post("/api/v1/orders/999999999/receipt-email",
                          headers=shop.auth("cashier1"), json={"email": "a@example.fi"})
    assert r.status_code == 404
