"""Webhooks in the back office and the API, against the in-process app whose own worker
delivers to a real local receiver."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from saumaton.config import Settings
from saumaton.core.errors import ValidationFailed
from saumaton.outbound_webhooks.services import check_url
from saumaton.outbound_webhooks.topics import TOPICS
from tests.support import Shop, csrf_of, eventually, staff_login, text_of
from tests.webhook_receiver import Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


def _received(receiver: Receiver, n: int) -> Any:
    async def check() -> bool:
        return len(receiver.accepted) >= n or sum(receiver.accepted.values()) >= n
    return check


async def test_owner_manages_a_webhook_in_the_back_office(
        web: httpx.AsyncClient, shop: Shop, receiver: Receiver) -> None:
    await staff_login(web, shop, "owner")
    page = (await web.get("/backoffice/webhooks")).text
    assert 'href="/backoffice/webhooks"' in page  # in the navigation
    form = (await web.get("/backoffice/webhooks/new")).text
    assert "onclick" not in form and "javascript:" not in form
    csrf = csrf_of(form)
    # Every mistake at once, next to its field; nothing created.
    r = await web.post("/backoffice/webhooks", data={
        "csrf_token": csrf, "url": "ftp://example.com/x", "description": "x" * 201})
    assert r.status_code == 422
    assert text_of(r.text, "error-url") and text_of(r.text, "error-topics")
    assert text_of(r.text, "error-description")
    assert 'value="ftp://example.com/x"' in r.text
    # Created: the secret is shown once.
    r = await web.post("/backoffice/webhooks", data={
        "csrf_token": csrf, "url": receiver.url, "description": "Kirjanpito",
        "topics": ["webhook.nope"], "enabled": "on"})
    assert r.status_code == 422 and text_of(r.text, "error-topics")
    r = await web.post("/backoffice/webhooks", data={
        "csrf_token": csrf, "url": receiver.url, "description": "Kirjanpito",
        "topics": ["order.paid", "stock.changed"], "enabled": "on"})
    assert r.status_code == 201, r.text
    secret = text_of(r.text, "secret")
    assert secret.startswith("whsec_")
    m = re.search(r'action="/backoffice/webhooks/(\d+)/test"', r.text)
    assert m
    sub_id = int(m[1])
    detail = (await web.get(f"/backoffice/webhooks/{sub_id}")).text
    assert secret not in detail and 'data-testid="secret"' not in detail
    assert 'value="order.paid" checked' in detail
    # A test event reaches the receiver, signed with that secret, and shows in the log.
    r = await web.post(f"/backoffice/webhooks/{sub_id}/test", data={"csrf_token": csrf})
    assert r.status_code == 303
    await eventually(_received(receiver, 1), within=10, what="the test event is delivered")
    [got] = receiver.requests
    assert Webhook(secret).verify(got.body, got.headers)["type"] == "webhook.test"

    async def logged() -> str:
        page = (await web.get(f"/backoffice/webhooks/{sub_id}")).text
        return page if "HTTP 200" in page else ""
    page = await eventually(logged, within=10, what="the log shows the answer")
    m = re.search(r'action="/backoffice/webhooks/\d+/deliveries/(\d+)/again"', page)
    assert m and " ms" in page
    # Send again: the same webhook-id once more.
    r = await web.post(f"/backoffice/webhooks/{sub_id}/deliveries/{m[1]}/again",
                       data={"csrf_token": csrf})
    assert r.status_code == 303
    await eventually(_received(receiver, 2), within=10, what="sent again")
    assert receiver.accepted == {got.webhook_id: 2}
    # A new secret replaces the old one.
    r = await web.post(f"/backoffice/webhooks/{sub_id}/secret", data={"csrf_token": csrf})
    assert text_of(r.text, "secret") not in ("", secret)
    # Edit: errors keep the typed values; a good edit saves.
    r = await web.post(f"/backoffice/webhooks/{sub_id}", data={
        "csrf_token": csrf, "url": "not a url", "topics": "order.*"})
    assert r.status_code == 422 and text_of(r.text, "error-url")
    r = await web.post(f"/backoffice/webhooks/{sub_id}", data={
        "csrf_token": csrf, "url": receiver.url, "topics": "order.*"})
    assert r.status_code == 303
    page = (await web.get(f"/backoffice/webhooks/{sub_id}")).text
    assert 'value="order.*" checked' in page and text_of(page, "disabled-reason")
    # Off, then deleted.
    r = await web.post(f"/backoffice/webhooks/{sub_id}/delete", data={"csrf_token": csrf})
    assert r.status_code == 303
    assert (await web.get(f"/backoffice/webhooks/{sub_id}")).status_code == 404


@pytest.mark.parametrize("who", ["manager", "cashier1", "finance"])
async def test_only_owners_see_webhooks(web: httpx.AsyncClient, shop: Shop, who: str) -> None:
    await staff_login(web, shop, who)
    assert (await web.get("/backoffice/webhooks")).status_code == 403
    r = await web.get("/api/v1/webhooks", headers=shop.auth(who))
    assert r.status_code == 403


async def test_api_crud_deliveries_and_redeliver(
        client: httpx.AsyncClient, shop: Shop, receiver: Receiver) -> None:
    auth = shop.auth("owner")
    bad = [{"url": "ftp://x.example/", "topics": ["order.*"]},
           {"url": receiver.url, "topics": ["orders.*"]},
           {"url": receiver.url, "topics": []},
           {"url": receiver.url, "topics": ["order.*"], "secret": "mine"},
           {"url": "http://user:pw@example.com/", "topics": ["*"]},
           {"url": receiver.url + "x" * 2000, "topics": ["*"]},
           {"url": receiver.url, "topics": ["*"], "enabled": 1},
           {"url": receiver.url, "topics": ["*"], "enabled": "true"},
           {"url": receiver.url, "topics": "*"},
           {"url": receiver.url, "topics": ["*"], "description": "\x00"}]
    for body in bad:
        r = await client.post("/api/v1/webhooks", headers=auth, json=body)
        assert r.status_code == 422, (body, r.text)
    r = await client.post("/api/v1/webhooks", headers=auth, json={
        "url": receiver.url, "topics": ["customer.*"], "description": "CRM"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_")
    assert r.headers["location"] == f"/api/v1/webhooks/{created['id']}"
    one = (await client.get(f"/api/v1/webhooks/{created['id']}", headers=auth)).json()
    assert "secret" not in one and one["topics"] == ["customer.*"]
    r = await client.post("/api/v1/webhooks", headers=auth, json={
        "url": receiver.url, "topics": ["giftcard.changed"], "enabled": False})
    second = r.json()
    r = await client.post(f"/api/v1/webhooks/{second['id']}/test", headers=auth)
    assert r.status_code == 409 and r.json()["code"] == "webhook_disabled"
    page = (await client.get("/api/v1/webhooks?limit=1", headers=auth)).json()
    seen = [w["id"] for w in page["items"]]
    while page["next_cursor"]:
        page = (await client.get(f"/api/v1/webhooks?limit=1&cursor={page['next_cursor']}",
                                 headers=auth)).json()
        seen += [w["id"] for w in page["items"]]
    assert created["id"] in seen and second["id"] in seen and len(seen) == len(set(seen))
    r = await client.put(f"/api/v1/webhooks/{created['id']}", headers=auth, json={
        "url": receiver.url, "topics": ["customer.created", "order.paid"], "enabled": True})
    assert r.status_code == 200 and r.json()["topics"] == ["customer.created", "order.paid"]
    # A customer is created through the API: the receiver gets it.
    r = await client.post("/api/v1/customers", headers=auth, json={
        "first_name": "Veera", "last_name": "Webhook", "email": "veera.webhook@example.com"})
    assert r.status_code in (200, 201), r.text
    await eventually(_received(receiver, 1), within=10, what="customer.created delivered")
    body = Webhook(created["secret"]).verify(receiver.requests[0].body,
                                             receiver.requests[0].headers)
    assert body["type"] == "customer.created" and body["data"]["customer_id"] == r.json()["id"]
    async def logged() -> Any:
        log = (await client.get(f"/api/v1/webhooks/{created['id']}/deliveries",
                                headers=auth)).json()
        return log if log["items"][0]["status"] == "delivered" else None
    [d] = (await eventually(logged, within=10, what="the log says delivered"))["items"]
    assert d["last_status_code"] == 200 and d["attempts"] == 1
    r = await client.post(
        f"/api/v1/webhooks/{second['id']}/deliveries/{d['id']}/redeliver", headers=auth)
    assert r.status_code == 404  # not this subscription's delivery
    r = await client.post(
        f"/api/v1/webhooks/{created['id']}/deliveries/{d['id']}/redeliver", headers=auth)
    assert r.status_code == 202 and r.json()["webhook_id"] == d["webhook_id"]
    await eventually(_received(receiver, 2), within=10, what="redelivered")
    assert receiver.accepted == {d["webhook_id"]: 2}
    r = await client.get(f"/api/v1/webhooks/{created['id']}/deliveries?cursor=bad!",
                         headers=auth)
    assert r.status_code == 422
    r = await client.get("/api/v1/webhooks?cursor=eyJpZCI6IngifQ", headers=auth)  # {"id":"x"}
    assert r.status_code == 422 and r.json()["code"] == "invalid_cursor"
    r = await client.post(f"/api/v1/webhooks/{created['id']}/test", headers=auth)
    assert r.status_code == 202 and r.json() == {"subscription_id": created["id"],
                                                 "topic": "webhook.test"}
    await eventually(_received(receiver, 3), within=10, what="the test event")
    r = await client.post(f"/api/v1/webhooks/{created['id']}/secret", headers=auth)
    assert r.json()["secret"] != created["secret"]
    for sub in (created, second):
        r = await client.delete(f"/api/v1/webhooks/{sub['id']}", headers=auth)
        assert r.status_code == 204
    assert (await client.get(f"/api/v1/webhooks/{created['id']}",
                             headers=auth)).status_code == 404


def test_production_requires_https() -> None:
    prod = Settings(env="production", secret_key="x" * 40)
    with pytest.raises(ValidationFailed) as e:
        check_url("http://erp.example.com/hook", prod)
    assert e.value.code == "webhook_url_not_https"
    check_url("https://erp.example.com/hook", prod)
    check_url("http://127.0.0.1:9000/hook", Settings(secret_key="x" * 40))


def test_the_topic_list_covers_the_outbox() -> None:
    """Every topic the code emits is offered or deliberately internal."""
    from saumaton.outbound_webhooks.topics import INTERNAL
    from tests.support import ROOT

    emitted: set[str] = set()
    for path in (ROOT / "saumaton").rglob("*.py"):
        text = path.read_text()
        emitted |= set(re.findall(r'emit\(\s*"([a-z_]+\.[a-z_.]+)"', text))
        emitted |= set(re.findall(r'_emit\(uow, "([a-z_]+\.[a-z_]+)"', text))
        emitted |= set(re.findall(r'^[A-Z_]*TOPIC = "([a-z_]+\.[a-z_]+)"', text, re.M))
    emitted -= {"webhook.test", "webhook.wake", "webhook.subscriptions"}
    missing = {t for t in emitted if t not in TOPICS and not t.startswith(INTERNAL)}
    assert not missing, missing
    assert {"order.paid", "stock.changed", "customer.created", "refund.ok"} <= set(TOPICS)
