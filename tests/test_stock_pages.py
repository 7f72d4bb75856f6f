"""The stock pages in the back office (both databases): levels with filters, a variant's
movements and write-off, a delivery received by scanning, a transfer sent and received
with a difference, a count scanned, reviewed and posted; errors next to the fields; each
location's staff see and change only their own."""

from __future__ import annotations

import re
import uuid

import httpx

from saumaton.db.uow import Database
from saumaton.inventory.models import StockLevel
from saumaton.inventory.services import verify_ledger
from tests.support import Shop, csrf_of, make_variants, staff_login, text_of

EN = {"Accept-Language": "en"}


async def level(db: Database, variant_id: object, location_id: int) -> int:
    async with db.reader() as s:
        lv = await s.get(StockLevel, (int(str(variant_id)), location_id))
    return lv.on_hand if lv else 0


def has(page: str, testid: str) -> bool:
    return f'data-testid="{testid}"' in page


async def test_receive_a_delivery_by_scanning(web: httpx.AsyncClient, db: Database,
                                             shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 2000])
    token = await staff_login(web, shop, "manager1")
    page = await web.get("/backoffice/stock/receive")
    assert page.status_code == 200 and has(page.text, "scan")
    # Only the locations where she may write stock are offered.
    assert f'value="{shop.store1}"' in page.text and f'value="{shop.store2}"' not in page.text
    form: dict[str, object] = {"csrf_token": token, "action": "scan",
                               "location_id": str(shop.store1)}
    r = await web.post("/backoffice/stock/receive", data={**form, "code": a["ean"]})
    assert r.status_code == 200 and has(r.text, f"qty-{a['sku']}")
    assert f'name="q-{a["id"]}"' in r.text and 'value="1"' in r.text
    # A second scan of a: +1; b: a new line; an unknown code: an error by the field.
    lines = {"line": [str(a["id"])], f"q-{a['id']}": "1"}
    r = await web.post("/backoffice/stock/receive", data={**form, **lines, "code": a["ean"]})
    assert re.search(rf'name="q-{a["id"]}" min="0" max="1000000" value="2"', r.text)
    r = await web.post("/backoffice/stock/receive", data={
        **form, "line": [str(a["id"])], f"q-{a['id']}": "2", "code": "9999999999999"},
        headers=EN)
    assert r.status_code == 422
    assert text_of(r.text, "error-code") == "No product has the code 9999999999999."
    assert 'aria-describedby="code-error"' in r.text
    # Posting without a delivery note number, and a bad quantity: both errors at once.
    r = await web.post("/backoffice/stock/receive", data={
        **form, "action": "post", "line": [str(a["id"]), str(b["id"])],
        f"q-{a['id']}": "x", f"q-{b['id']}": "3", "reference": ""}, headers=EN)
    assert r.status_code == 422
    assert text_of(r.text, "error-reference") == "Give the delivery note number."
    assert text_of(r.text, f"error-q-{a['id']}") == "Give a whole number of at least 1."
    assert await level(db, a["id"], shop.store1) == 0
    ref = f"DN-{uuid.uuid4().hex[:6]}"
    posted = {**form, "action": "post", "line": [str(a["id"]), str(b["id"])],
              f"q-{a['id']}": "2", f"q-{b['id']}": "3", "reference": ref,
              "supplier": "Lumene", "key": uuid.uuid4().hex}
    r = await web.post("/backoffice/stock/receive", data=posted)
    assert r.status_code == 303
    again = await web.post("/backoffice/stock/receive", data=posted)  # a double submit
    assert again.status_code == 303
    assert ref in text_of((await web.get(r.headers["location"])).text, "notice")
    assert (await level(db, a["id"], shop.store1), await level(db, b["id"], shop.store1)) \
        == (2, 3)
    # Tampere is not hers: refused, nothing moves.
    r = await web.post("/backoffice/stock/receive", data={
        **form, "action": "post", "location_id": str(shop.store2), "line": [str(a["id"])],
        f"q-{a['id']}": "1", "reference": ref}, headers=EN)
    assert r.status_code == 422 and has(r.text, "error-location_id")
    assert await level(db, a["id"], shop.store2) == 0


async def test_levels_filters_and_the_variant_page(web: httpx.AsyncClient, db: Database,
                                                   shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1000], stock={shop.store1: 10, shop.store2: 2})
    token = await staff_login(web, shop, "manager")
    r = await web.get("/backoffice/stock", params={"q": a["sku"]})
    assert r.status_code == 200
    row = r.text.split(f'data-testid="level-{a["sku"]}-{shop.store1}"')[1]
    assert text_of(row, "on-hand") == "10" and text_of(row, "available") == "10"
    assert has(r.text, f"level-{a['sku']}-{shop.store2}")
    assert not has(r.text, f"level-{b['sku']}-{shop.store1}")
    r = await web.get("/backoffice/stock", params={"q": a["sku"], "location": shop.store2,
                                                   "state": "low"})
    assert has(r.text, f"level-{a['sku']}-{shop.store2}")
    assert not has(r.text, f"level-{a['sku']}-{shop.store1}")
    # Write-off: errors at once next to their fields, then done.
    url = f"/backoffice/stock/variants/{b['id']}"
    page = await web.get(url)
    assert page.status_code == 200 and has(page.text, "write-off-form")
    r = await web.post(f"{url}/write-off", data={"csrf_token": token, "location_id":
                                                 str(shop.store1), "quantity": "0",
                                                 "reason": ""}, headers=EN)
    assert r.status_code == 422
    assert text_of(r.text, "error-quantity") == "Give a whole number of at least 1."
    assert text_of(r.text, "error-reason") == "Say why the units are written off."
    r = await web.post(f"{url}/write-off", data={"csrf_token": token, "location_id":
                                                 str(shop.store1), "quantity": "4",
                                                 "reason": "broken in the shelf"})
    assert r.status_code == 303
    page = (await web.get(r.headers["location"])).text
    assert await level(db, b["id"], shop.store1) == 6
    assert 'data-kind="write_off"' in page and "broken in the shelf" in page
    # A sale into negative: the level shows under "negative" and "needs a count".
    async with db.uow() as uow:
        from saumaton.core.actor import SYSTEM
        from saumaton.inventory.services import Move, apply_moves
        await apply_moves(uow, SYSTEM, [Move(int(str(a["id"])), shop.store2, -5, "sale")])
        await uow.commit()
    for state in ("negative", "needs_count"):
        r = await web.get("/backoffice/stock", params={"state": state, "q": a["sku"]})
        assert has(r.text, f"level-{a['sku']}-{shop.store2}"), state
        assert not has(r.text, f"level-{a['sku']}-{shop.store1}"), state
    flagged = await web.get("/backoffice/stock/needs-count")
    assert has(flagged.text, f"level-{a['sku']}-{shop.store2}")
    assert has(flagged.text, "count-flagged-store-2")
    assert (await web.get("/backoffice/stock/variants/999999999")).status_code == 404


async def test_transfer_pages_send_receive_with_a_difference(
        web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1000], stock={shop.warehouse: 10})
    token = await staff_login(web, shop, "manager")
    page = await web.get("/backoffice/stock/transfers/new")
    assert page.status_code == 200
    base = {"csrf_token": token, "from_location_id": str(shop.warehouse), "key":
            uuid.uuid4().hex}
    # Too many and no destination: both errors at once; nothing moves.
    r = await web.post("/backoffice/stock/transfers/new", data={
        **base, "action": "send", "to_location_id": "", "line": [str(a["id"])],
        f"q-{a['id']}": "11"}, headers=EN)
    assert r.status_code == 422 and text_of(r.text, "error-to_location_id") \
        == "Choose a location."
    r = await web.post("/backoffice/stock/transfers/new", data={
        **base, "action": "send", "to_location_id": str(shop.store2), "line": [str(a["id"])],
        f"q-{a['id']}": "11"}, headers=EN)
    assert r.status_code == 422
    assert text_of(r.text, f"error-q-{a['id']}") == "Not that many in stock to send."
    assert await level(db, a["id"], shop.warehouse) == 10
    r = await web.post("/backoffice/stock/transfers/new", data={
        **base, "action": "send", "to_location_id": str(shop.store2),
        "line": [str(a["id"]), str(b["id"])], f"q-{a['id']}": "6", f"q-{b['id']}": "4"})
    assert r.status_code == 303
    url = r.headers["location"].split("?")[0]
    again = await web.post("/backoffice/stock/transfers/new", data={
        **base, "action": "send", "to_location_id": str(shop.store2),
        "line": [str(a["id"]), str(b["id"])], f"q-{a['id']}": "6", f"q-{b['id']}": "4"})
    assert again.headers["location"] == url  # a double submit sends once
    assert await level(db, a["id"], shop.warehouse) == 4
    page = (await web.get(url)).text
    assert 'data-status="in_transit"' in page and has(page, "receive-form")
    levels = (await web.get("/backoffice/stock", params={"q": a["sku"],
                                                         "state": "in_transit"})).text
    assert text_of(levels, "in-transit") == "6"
    # Tampere's cashier reads it but may not post the receipt.
    cashier = httpx.AsyncClient(transport=web._transport, base_url="http://test")
    async with cashier:
        ctoken = await staff_login(cashier, shop, "cashier2")
        seen = (await cashier.get(url)).text
        assert 'data-status="in_transit"' in seen and not has(seen, "receive")
        r = await cashier.post(f"{url}/receive", data={"csrf_token": ctoken})
        assert r.status_code == 403
    r = await web.post(f"{url}/receive", data={"csrf_token": token, f"r-{a['id']}": "-1"},
                       headers=EN)
    assert r.status_code == 422 and has(r.text, f"error-r-{a['id']}")
    r = await web.post(f"{url}/receive", data={"csrf_token": token, f"r-{a['id']}": "5",
                                               f"r-{b['id']}": "4", "note": "one broken"})
    assert r.status_code == 303
    page = (await web.get(r.headers["location"])).text
    assert 'data-status="received"' in page
    assert text_of(page, f"difference-{a['sku']}") == "-1"
    assert text_of(page, f"difference-{b['sku']}") == ""
    assert await level(db, a["id"], shop.store2) == 5
    listed = (await web.get("/backoffice/stock/transfers")).text
    assert has(listed, f"transfer-{url.rsplit('/', 1)[1]}")
    async with db.reader() as s:
        assert await verify_ledger(s) == []


async def test_count_pages_scan_review_post(web: httpx.AsyncClient, db: Database,
                                            shop: Shop) -> None:
    a, b = await make_variants(db, [1000, 1000], stock={shop.store1: 3})
    token = await staff_login(web, shop, "cashier1")
    page = await web.get("/backoffice/stock/counts")
    assert page.status_code == 200
    assert f'value="{shop.store2}"' not in page.text  # not her store
    r = await web.post("/backoffice/stock/counts", data={
        "csrf_token": token, "location_id": str(shop.store1), "scope": ""}, headers=EN)
    assert r.status_code == 422 and has(r.text, "error-scope")
    r = await web.post("/backoffice/stock/counts", data={
        "csrf_token": token, "location_id": str(shop.store1), "scope": "shelf A3"})
    assert r.status_code == 303
    url = r.headers["location"]
    for _ in range(2):
        r = await web.post(f"{url}/lines", data={"csrf_token": token, "code": a["ean"]})
        assert r.status_code == 303
    r = await web.post(f"{url}/lines", data={"csrf_token": token, "code": "123"}, headers=EN)
    assert r.status_code == 422 and text_of(r.text, "error-code") == \
        "No product has the code 123."
    r = await web.post(f"{url}/lines", data={"csrf_token": token, "code": b["ean"]})
    r = await web.post(f"{url}/lines", data={"csrf_token": token, "variant_id": str(b["id"]),
                                             "counted": "5"})
    assert r.status_code == 303
    review = (await web.get(f"{url}/review")).text
    row = text_of(review, f"variance-{a['sku']}")
    assert "3" in row and "-1" in row
    assert has(review, "cancel-count") and not has(review, "post-count")  # a cashier
    r = await web.post(f"{url}/post", data={"csrf_token": token})
    assert r.status_code == 403
    manager = httpx.AsyncClient(transport=web._transport, base_url="http://test")
    async with manager:
        mtoken = await staff_login(manager, shop, "manager1")
        r = await manager.post(f"{url}/post", data={"csrf_token": mtoken})
        assert r.status_code == 303
        done = (await manager.get(r.headers["location"])).text
    assert 'data-status="posted"' in done
    assert (await level(db, a["id"], shop.store1), await level(db, b["id"], shop.store1)) \
        == (2, 5)
    # Tampere's cashier does not see Helsinki's count.
    other = httpx.AsyncClient(transport=web._transport, base_url="http://test")
    async with other:
        await staff_login(other, shop, "cashier2")
        assert (await other.get(url)).status_code == 404
    assert (await web.get("/backoffice/stock/counts/999999999")).status_code == 404
    assert csrf_of(page.text)


async def test_every_stock_page_declares_its_permission(web: httpx.AsyncClient,
                                                        shop: Shop) -> None:
    """Each role without the route's permission gets the HTML 403 page for a GET and a
    POST; with it, a GET answers 200, 303 or the HTML 404 page."""
    from fastapi.routing import APIRoute

    from saumaton.core.actor import ROLE_PERMISSIONS
    from saumaton.web.backoffice.access import declared_permission
    from saumaton.web.backoffice.stock import router
    roles = {"owner": "owner", "manager": "manager", "manager1": "manager",
             "cashier1": "cashier", "service": "service", "finance": "finance"}
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 19
    for who, role in roles.items():
        c = httpx.AsyncClient(transport=web._transport, base_url="http://test")
        async with c:
            await staff_login(c, shop, who)
            for route in routes:
                perms = [p for d in route.dependant.dependencies
                         if (p := declared_permission(d.call)) is not None]
                assert len(perms) == 1, route.path
                perm = perms[0].permission
                path = route.path.replace("{variant_id}", "1").replace(
                    "{transfer_id}", "1").replace("{count_id}", "1")
                allowed = "*" in ROLE_PERMISSIONS[role] or perm in ROLE_PERMISSIONS[role]
                for method in route.methods:
                    r = await c.request(method, path)
                    if not allowed:
                        assert r.status_code == 403, (who, method, path)
                        assert "text/html" in r.headers["content-type"]
                    elif method == "GET":
                        assert r.status_code in (200, 303, 404), (who, path, r.status_code)
                        assert "text/html" in r.headers["content-type"], (who, path)
    anon = httpx.AsyncClient(transport=web._transport, base_url="http://test")
    async with anon:
        r = await anon.get("/backoffice/stock")
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


async def test_counting_on_a_till_device(web: httpx.AsyncClient, db: Database,
                                         shop: Shop) -> None:
    [a] = await make_variants(db, [1000], stock={shop.store1: 1})
    token = await staff_login(web, shop, "cashier1")
    page = await web.get("/pos/store-1/stock", params={"code": a["ean"]})
    assert page.status_code == 200
    assert text_of(page.text, "till-available") == "1"
    assert text_of(page.text, "till-in-transit") == "0"
    r = await web.get("/pos/store-1/stock", params={"code": "42"}, headers=EN)
    assert r.status_code == 422 and text_of(r.text, "error-code") == \
        "No product has the code 42."
    r = await web.post("/pos/store-1/counts", data={"csrf_token": token, "scope": "kassa"})
    assert r.status_code == 303
    url = r.headers["location"]
    assert url.startswith("/pos/store-1/counts/")
    for _ in range(3):
        r = await web.post(f"{url}/lines", data={"csrf_token": token, "code": a["ean"]})
        assert r.status_code == 303
    page = (await web.get(r.headers["location"])).text
    assert 'data-testid="stock-link"' in page  # the till's header
    assert re.search(rf'data-testid="set-{a["sku"]}"', page) and 'value="3"' in page
    assert (await web.get(url.replace("store-1", "store-2"))).status_code == 403
    count_id = url.rsplit("/", 1)[1]
    review = (await web.get(f"/backoffice/stock/counts/{count_id}/review")).text
    assert "+2" in text_of(review, f"variance-{a['sku']}")
