"""Walking an API list's cursor pages in the tests."""

from __future__ import annotations

from typing import Any

import httpx


async def all_pages(client: httpx.AsyncClient, url: str, headers: dict[str, str], *,
                    limit: int, key: str = "id", params: dict[str, Any] | None = None
                    ) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, following `next_cursor` with `limit` per page, and how
    many pages it took. Fails on a page larger than `limit`, or an item seen twice."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {**(params or {}), "limit": limit}
        if cursor:
            query["cursor"] = cursor
        r = await client.get(url, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert body["items"], "a page with a next cursor has items"
        assert pages < 1000
    keys = [i[key] for i in items]
    assert len(keys) == len(set(keys)), f"an item came twice: {keys}"
    return items, pages
