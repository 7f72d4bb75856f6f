"""The staff knowledge board (both databases): running and upcoming campaigns, new
products, notices per store or for everyone in their time window; who may write and end
notices; the till, back office and fragment pages."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest

from saumaton.core.actor import SYSTEM, Actor, RoleGrant
from saumaton.core.clock import utcnow
from saumaton.core.errors import Conflict, Forbidden, ValidationFailed
from saumaton.db.uow import Database
from saumaton.pricing.services import CampaignIn, create_campaign
from saumaton.service.board import NoticeIn, board, create_notice, end_notice
from tests.support import Shop, make_variants
from tests.support import staff_login as login


def manager_at(location_id: int) -> Actor:
    return Actor(label="staff:store manager", name="Sanna Store",
                 grants=(RoleGrant("manager", location_id),))


CASHIER = Actor(label="staff:c", name="Kaisa", grants=(RoleGrant("cashier", None),))


async def notice(db: Database, actor: Actor, title: str, **kw: object) -> int:
    async with db.uow() as uow:
        out = await create_notice(uow, actor, NoticeIn(title=title, **kw))
        await uow.commit()
    return out.id


async def test_board_shows_campaigns_products_and_notices(db: Database, shop: Shop) -> None:
    tag = uuid.uuid4().hex[:6]
    [v] = await make_variants(db, [1000])
    now = utcnow()
    async with db.uow() as uow:
        running = await create_campaign(uow, SYSTEM, CampaignIn(
            name=f"Syysale {tag}", kind="percent", value=2000, starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=3), variant_ids=[int(str(v["id"]))]))
        upcoming = await create_campaign(uow, SYSTEM, CampaignIn(
            name=f"Joulu {tag}", kind="fixed", value=500, starts_at=now + timedelta(days=5),
            variant_ids=[int(str(v["id"]))]))
        past = await create_campaign(uow, SYSTEM, CampaignIn(
            name=f"Kesä {tag}", kind="fixed", value=500, starts_at=now - timedelta(days=9),
            ends_at=now - timedelta(days=2), variant_ids=[int(str(v["id"]))]))
        await uow.commit()
    everyone = await notice(db, SYSTEM, f"Kaikille {tag}", body="Uusi kassajärjestelmä")
    mine = await notice(db, manager_at(shop.store1), f"Helsinki {tag}",
                        location_id=shop.store1)
    theirs = await notice(db, manager_at(shop.store2), f"Tampere {tag}",
                          location_id=shop.store2)
    later = await notice(db, SYSTEM, f"Myöhemmin {tag}", starts_at=now + timedelta(days=2))

    async with db.reader() as s:
        b1 = await board(s, CASHIER, shop.store1)
        everything = await board(s, SYSTEM)
    ids = {c.id for c in b1.running}
    assert running in ids and past not in ids and upcoming not in ids
    assert upcoming in {c.id for c in b1.upcoming}
    assert int(str(v["product_id"])) in {p.id for p in b1.new_products}
    shown = {n.id for n in b1.notices}
    assert {everyone, mine} <= shown and theirs not in shown and later not in shown
    # the back office (every store, and what is scheduled for later)
    assert {everyone, mine, theirs, later} <= {n.id for n in everything.notices}

    # a store manager ends their notice: it leaves the board
    async with db.uow() as uow:
        await end_notice(uow, manager_at(shop.store1), mine)
        await uow.commit()
    async with db.reader() as s:
        assert mine not in {n.id for n in (await board(s, CASHIER, shop.store1)).notices}
    async with db.uow() as uow:
        with pytest.raises(Conflict):
            await end_notice(uow, manager_at(shop.store1), mine)


async def test_who_may_write_notices_and_bad_input(db: Database, shop: Shop) -> None:
    async with db.uow() as uow:
        with pytest.raises(Forbidden):  # a cashier
            await create_notice(uow, CASHIER, NoticeIn(title="x", location_id=shop.store1))
        with pytest.raises(Forbidden):  # a store's manager, for everyone
            await create_notice(uow, manager_at(shop.store1), NoticeIn(title="x"))
        with pytest.raises(Forbidden):  # ... or for another store
            await create_notice(uow, manager_at(shop.store1),
                                NoticeIn(title="x", location_id=shop.store2))
        for data, field in ((NoticeIn(title="  "), "title"),
                            (NoticeIn(title="x" * 201), "title"),
                            (NoticeIn(title="x", body="y" * 4001), "body"),
                            (NoticeIn(title="x", ends_at=utcnow() - timedelta(hours=1)),
                             "ends_at"),
                            (NoticeIn(title="x", location_id=999_999), "location_id")):
            with pytest.raises(ValidationFailed) as exc:
                await create_notice(uow, SYSTEM, data)
            assert exc.value.field == field
    theirs = await notice(db, SYSTEM, "Tampere only", location_id=shop.store2)
    async with db.uow() as uow:
        with pytest.raises(Forbidden):
            await end_notice(uow, manager_at(shop.store1), theirs)


# --- pages ------------------------------------------------------------------------------



async def test_pages(web: httpx.AsyncClient, shop: Shop) -> None:
    tag = uuid.uuid4().hex[:6]
    assert (await web.get("/backoffice/board")).status_code == 303  # log in first
    csrf = await login(web, shop, "manager")
    page = await web.get("/backoffice/board")
    assert page.status_code == 200 and 'data-testid="notice-form"' in page.text
    # every back office page links to the board
    customers = (await web.get("/backoffice/customers")).text
    assert 'href="/backoffice/board" data-testid="nav-board"' in customers
    # errors next to the field, nothing saved
    bad = await web.post("/backoffice/board/notices", data={
        "csrf_token": csrf, "title": "", "body": "b", "location": ""})
    assert bad.status_code == 422
    assert 'data-testid="notice-error-title"' in bad.text and 'aria-invalid="true"' in bad.text
    bad = await web.post("/backoffice/board/notices", data={
        "csrf_token": csrf, "title": "t", "location": "", "ends_at": "yesterday"})
    assert bad.status_code == 422 and 'data-testid="notice-error-ends_at"' in bad.text
    ok = await web.post("/backoffice/board/notices", data={
        "csrf_token": csrf, "title": f"Inventaario {tag}", "body": "Ma klo 8",
        "location": str(shop.store1), "starts_at": "", "ends_at": ""})
    assert ok.status_code == 303
    page = await web.get("/backoffice/board")
    assert f"Inventaario {tag}" in page.text
    assert (await web.get("/pos/store-1/board")).status_code == 200
    frag = await web.get("/board?store=store-2")
    assert frag.status_code == 200 and f"Inventaario {tag}" not in frag.text
    assert f"Inventaario {tag}" in (await web.get("/pos/store-1/board")).text
    m = re.search(rf'Inventaario {tag}.*?action="(/backoffice/board/notices/\d+/end)"',
                  page.text, re.S)
    assert m
    assert (await web.post(m[1], data={"csrf_token": csrf})).status_code == 303
    assert f"Inventaario {tag}" not in (await web.get("/pos/store-1/board")).text
    web.cookies.clear()
    await login(web, shop, "cashier1")
    till = await web.get("/pos/store-1/board")
    assert till.status_code == 200 and 'data-testid="board"' in till.text
    assert 'data-testid="notice-form"' not in (await web.get("/backoffice/board")).text
    assert (await web.get("/pos/store-2/board")).status_code == 403
