"""The back office's front page counts what needs doing, for the person looking: a
cashier sees her own store's figures only, the owner the whole chain's."""

from __future__ import annotations

import re

import httpx

from saumaton.core.actor import SYSTEM
from saumaton.db.uow import Database
from saumaton.inventory.services import Move, apply_moves
from tests.support import Shop, make_variants, staff_login


async def _figure(c: httpx.AsyncClient, key: str) -> int:
    page = (await c.get("/backoffice/")).text
    m = re.search(rf'data-testid="todo-{key}-count">(\d+)<', page)
    assert m, f"no figure {key}"
    return int(m[1])


async def test_figures_count_the_work_of_the_viewers_stores(
        client: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    async with httpx.AsyncClient(transport=client._transport, base_url="http://test") as owner, \
            httpx.AsyncClient(transport=client._transport, base_url="http://test") as cashier:
        await staff_login(owner, shop, "owner")
        await staff_login(cashier, shop, "cashier1")
        before = {who: {k: await _figure(c, k) for k in ("negative", "counts")}
                  for who, c in (("owner", owner), ("cashier", cashier))}
        [a, b] = await make_variants(db, [1000, 2000])
        async with db.uow() as uow:  # a sale below zero in Tampere, then in Helsinki
            await apply_moves(uow, SYSTEM, [Move(a["id"], shop.store2, -2, "sale"),
                                            Move(b["id"], shop.store1, -1, "sale")])
            await uow.commit()
        assert await _figure(owner, "negative") == before["owner"]["negative"] + 2
        assert await _figure(owner, "counts") == before["owner"]["counts"] + 2
        assert await _figure(cashier, "negative") == before["cashier"]["negative"] + 1
        assert await _figure(cashier, "counts") == before["cashier"]["counts"] + 1
        # Price figures are not a cashier's business.
        page = (await cashier.get("/backoffice/")).text
        assert 'data-testid="todo-campaigns"' not in page
        assert 'data-testid="todo-campaigns"' in (await owner.get("/backoffice/")).text
