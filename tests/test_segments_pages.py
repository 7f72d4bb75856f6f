"""The back office's segment pages (both databases, Finnish): the editor shows every
error at once next to its field and saves nothing; the live count follows the form;
save, edit, CSV exports, webhook export and delete; a campaign form names a segment
(with its own errors); only the owner may open them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import func, select

from saumaton.core.actor import SYSTEM
from saumaton.core.clock import utcnow
from saumaton.customers.models import Segment
from saumaton.db.uow import Database
from saumaton.pricing.models import Campaign
from saumaton.pricing.services import end_campaign
from tests.support import Shop, csrf_of, make_variants, staff_login, text_of
from tests.test_prices_pages import TZ
from tests.test_segments import new_customer, new_tag


async def test_segment_pages(web: httpx.AsyncClient, db: Database, shop: Shop) -> None:
    tag = new_tag()
    yes = await new_customer(db, tag, consent=True, first="Aino")
    no = await new_customer(db, tag, first="Bea")
    await staff_login(web, shop, "manager")
    assert (await web.get("/backoffice/segments")).status_code == 403
    await staff_login(web, shop, "owner")
    page = await web.get("/backoffice/segments/new")
    assert page.status_code == 200
    token = csrf_of(page.text)
    async with db.reader() as s:
        before = await s.scalar(select(func.count()).select_from(Segment))

    # Every error at once, in Finnish, next to its field; nothing saved.
    r = await web.post("/backoffice/segments", data={
        "csrf_token": token, "name": "", "tags": "ok, !!", "tier": "platinum",
        "last_op": "within", "last_days": "0", "first_channel": "fax"})
    assert r.status_code == 422
    assert text_of(r.text, "error-name") == "Anna segmentille nimi."
    assert text_of(r.text, "error-tags").startswith("Tunniste on 1–50")
    for field in ("tiers", "last_days", "first_channel"):
        assert text_of(r.text, f"error-{field}"), field
    assert 'aria-describedby="sg-name-error"' in r.text
    async with db.reader() as s:
        assert await s.scalar(select(func.count()).select_from(Segment)) == before

    # The live count: the form as it is, without a name.
    r = await web.post("/backoffice/segments/count", data={"csrf_token": token, "tags": tag},
                       headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'data-count="2"' in r.text and text_of(r.text, "segment-live-count") == "2 asiakasta"
    assert f'data-testid="preview-{yes}"' in r.text
    r = await web.post("/backoffice/segments/count", data={
        "csrf_token": token, "tags": tag, "consent": "granted"})
    assert 'data-count="1"' in r.text

    name = f"Uutiskirje {tag}"
    r = await web.post("/backoffice/segments", data={"csrf_token": token, "name": name,
                                                     "tags": tag})
    assert r.status_code == 303, r.text
    sid = int(r.headers["location"].split("/")[-1].split("?")[0])
    listing = await web.get("/backoffice/segments")
    assert text_of(listing.text, f"segment-{sid}").startswith(f"{name} 2 1")
    again = await web.post("/backoffice/segments", data={"csrf_token": token,
                                                         "name": name.upper(), "tags": tag})
    assert again.status_code == 409
    assert text_of(again.text, "error-name") == "Tämänniminen segmentti on jo olemassa."

    csv = await web.get(f"/backoffice/segments/{sid}/export.csv")
    assert csv.status_code == 200 and csv.content.startswith("\ufeff".encode())
    assert [ln.split(";")[0] for ln in csv.text.splitlines()[1:]] == [str(yes)]
    full = await web.get(f"/backoffice/segments/{sid}/export.csv", params={"full": "1"})
    assert [ln.split(";")[0] for ln in full.text.splitlines()[1:]] == [str(yes), str(no)]
    r = await web.post(f"/backoffice/segments/{sid}/webhook", data={"csrf_token": token})
    assert r.status_code == 303

    # A campaign priced for the segment: a tier and a segment at once is refused.
    [v] = await make_variants(db, [2000])
    start = utcnow().astimezone(TZ) - timedelta(hours=1)
    base = {"csrf_token": token, "name": f"Segmentti {uuid.uuid4().hex[:6]}",
            "kind": "percent", "percent": "10", "variant_codes": str(v["sku"]),
            "start_date": start.date().isoformat(), "start_time": start.strftime("%H:%M")}
    form = await web.get("/backoffice/campaigns/new")
    assert f'<option value="{sid}">{name}</option>' in form.text
    r = await web.post("/backoffice/campaigns", data={**base, "segment_id": str(sid),
                                                      "min_tier": "gold"})
    assert r.status_code == 422 and text_of(r.text, "error-segment_id")
    r = await web.post("/backoffice/campaigns", data={**base, "segment_id": "999999"})
    assert r.status_code == 422 and text_of(r.text, "error-segment_id")
    r = await web.post("/backoffice/campaigns", data={**base, "segment_id": str(sid)})
    assert r.status_code == 303, r.text
    async with db.reader() as s:
        campaign = await s.scalar(select(Campaign).where(Campaign.name == base["name"]))
    assert campaign is not None and campaign.segment_id == sid
    edit = await web.get(f"/backoffice/campaigns/{campaign.id}")
    assert f'<option value="{sid}" selected>' in edit.text

    # In use: not deleted, said why; once the campaign has ended, deleted.
    r = await web.post(f"/backoffice/segments/{sid}/delete", data={"csrf_token": token})
    assert r.status_code == 409 and text_of(r.text, "error-form").startswith("Käynnissä")
    async with db.uow() as uow:
        await end_campaign(uow, SYSTEM, campaign.id)
        await uow.commit()
    r = await web.post(f"/backoffice/segments/{sid}/delete", data={"csrf_token": token})
    assert r.status_code == 303
    assert (await web.get(f"/backoffice/segments/{sid}")).status_code == 404
