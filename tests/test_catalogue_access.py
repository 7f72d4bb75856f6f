"""Every catalogue page answers each role as the back office's access rules say (both
databases): without the permission a GET and a POST answer the HTML 403 page; with it
a GET answers 200/303 or the HTML 404 page for an id that does not exist."""

from __future__ import annotations

import httpx
from fastapi.routing import APIRoute

from saumaton.web.backoffice import catalogue as pages
from tests.support import Shop, staff_login

READERS = {"owner", "manager", "manager1", "finance"}
WRITERS = {"owner", "manager"}


def routes() -> list[tuple[str, str, bool]]:
    """(method, path with ids filled in, needs write) of every catalogue page."""
    out = []
    for r in pages.router.routes:
        assert isinstance(r, APIRoute)
        path = r.path
        for name in ("product_id", "variant_id", "image_id", "category_id"):
            path = path.replace("{" + name + "}", "2147483000")
        write = any(getattr(d.call, "everywhere", False) for d in r.dependant.dependencies)
        for method in r.methods:
            out.append((method, path, write or method == "POST"))
    return out


async def test_every_catalogue_route_answers_every_role(
        client: httpx.AsyncClient, shop: Shop) -> None:
    found = routes()
    assert ("GET", "/backoffice/products", False) in found and len(found) >= 14
    for who in ("owner", "manager", "manager1", "cashier1", "service", "finance"):
        async with httpx.AsyncClient(transport=client._transport,
                                     base_url="http://test") as c:
            csrf = await staff_login(c, shop, who)
            for method, path, write in found:
                allowed = who in (WRITERS if write else READERS)
                r = await c.request(method, path, data={"csrf_token": csrf}
                                    if method == "POST" else None)
                assert r.headers["content-type"].startswith("text/html"), (who, method, path)
                if not allowed:
                    assert r.status_code == 403, (who, method, path, r.status_code)
                elif method == "GET":
                    assert r.status_code in (200, 303, 404), (who, path, r.status_code)
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as c:
        r = await c.get("/backoffice/products")
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
