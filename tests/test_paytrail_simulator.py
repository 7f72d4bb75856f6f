"""The Paytrail simulator speaks Paytrail's signed HTTP contract (no database)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from saumaton.payments.paytrail.signing import request_headers, verify
from saumaton.payments.paytrail.simulator import create_simulator

ACCOUNT, SECRET = "375917", "SAIPPUAKAUPPIAS"
PUBLIC = "http://paytrail.test"
SHOP = "http://shop.test"


@dataclass
class Receiver:
    calls: list[dict[str, str]] = field(default_factory=list)
    expected: int = 1
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/callback/{kind}")
        async def callback(kind: str, request: Request) -> PlainTextResponse:
            self.calls.append({"kind": kind, **dict(request.query_params)})
            if len(self.calls) >= self.expected:
                self.done.set()
            return PlainTextResponse("ok")

        return app

    async def wait(self, expected: int) -> None:
        self.expected = expected
        if len(self.calls) >= expected:
            return
        await asyncio.wait_for(self.done.wait(), timeout=5)


@dataclass
class Sim:
    client: httpx.AsyncClient
    receiver: Receiver


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app()),
                                 base_url=SHOP) as callback_client:
        app = create_simulator({ACCOUNT: SECRET}, PUBLIC, http_client=callback_client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=PUBLIC) as client:
            yield Sim(client, receiver)


_counter = 0


def body(amount: int = 1525, *, callbacks: bool = True, **extra: Any) -> dict[str, Any]:
    global _counter
    _counter += 1
    data: dict[str, Any] = {
        "stamp": f"stamp-{_counter}", "reference": "3759170", "amount": amount,
        "currency": "EUR", "language": "FI",
        "items": [{"unitPrice": 1525, "units": 1, "vatPercentage": 25.5,
                   "productCode": "#1234"}],
        "customer": {"email": "test.customer@example.com"},
        "redirectUrls": {"success": f"{SHOP}/success", "cancel": f"{SHOP}/cancel?x=1"},
    }
    if callbacks:
        data["callbackUrls"] = {"success": f"{SHOP}/callback/success",
                                "cancel": f"{SHOP}/callback/cancel"}
    data.update(extra)
    return data


def dump(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


async def post(client: httpx.AsyncClient, path: str, raw: str, *, secret: str = SECRET,
               transaction_id: str | None = None, signed_raw: str | None = None
               ) -> httpx.Response:
    headers = request_headers(ACCOUNT, secret, "POST", raw if signed_raw is None else signed_raw,
                              transaction_id=transaction_id)
    headers["content-type"] = "application/json; charset=utf-8"
    return await client.post(path, content=raw.encode(), headers=headers)


def response_verifies(r: httpx.Response) -> bool:
    params = {k: v for k, v in r.headers.items() if k.lower().startswith("checkout-")}
    return verify(params, r.content.decode(), r.headers.get("signature"), SECRET)


async def create(sim: Sim, **kwargs: Any) -> str:
    r = await post(sim.client, "/payments", dump(body(**kwargs)))
    assert r.status_code == 201, r.text
    return str(r.json()["transactionId"])


async def status_of(sim: Sim, transaction_id: str) -> dict[str, Any]:
    headers = request_headers(ACCOUNT, SECRET, "GET", transaction_id=transaction_id)
    r = await sim.client.get(f"/payments/{transaction_id}", headers=headers)
    assert r.status_code == 200, r.text
    assert response_verifies(r)
    data: dict[str, Any] = r.json()
    return data


def query(location: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(location).query))


async def test_signed_create_returns_signed_201(sim: Sim) -> None:
    r = await post(sim.client, "/payments", dump(body()))
    assert r.status_code == 201, r.text
    data = r.json()
    assert data["href"] == f"{PUBLIC}/pay/{data['transactionId']}"
    assert data["reference"] == "3759170"
    assert data["providers"] and data["providers"][0]["url"] == data["href"]
    assert r.headers["checkout-transaction-id"] == data["transactionId"]
    assert r.headers["checkout-account"] == ACCOUNT
    assert r.headers["request-id"]
    assert response_verifies(r)
    tampered = r.content.decode().replace("3759170", "3759171")
    params = {k: v for k, v in r.headers.items() if k.startswith("checkout-")}
    assert not verify(params, tampered, r.headers["signature"], SECRET)


async def test_sha512_create(sim: Sim) -> None:
    raw = dump(body())
    headers = request_headers(ACCOUNT, SECRET, "POST", raw, algorithm="sha512")
    r = await sim.client.post("/payments", content=raw.encode(), headers=headers)
    assert r.status_code == 201, r.text
    assert r.headers["checkout-algorithm"] == "sha512"
    assert response_verifies(r)


async def test_unsigned_wrong_secret_and_tampered_are_401(sim: Sim) -> None:
    raw = dump(body())
    r = await sim.client.post("/payments", content=raw.encode(),
                              headers={"content-type": "application/json"})
    assert r.status_code == 401
    assert r.json()["status"] == "error" and r.json()["message"]
    r = await post(sim.client, "/payments", raw, secret="WRONG")
    assert r.status_code == 401
    r = await post(sim.client, "/payments", raw.replace("1525", "1526"), signed_raw=raw)
    assert r.status_code == 401
    headers = request_headers("999999", SECRET, "POST", raw)
    r = await sim.client.post("/payments", content=raw.encode(), headers=headers)
    assert r.status_code == 401


async def test_reused_nonce_is_401(sim: Sim) -> None:
    raw = dump(body())
    headers = request_headers(ACCOUNT, SECRET, "POST", raw)
    assert (await sim.client.post("/payments", content=raw, headers=headers)).status_code == 201
    assert (await sim.client.post("/payments", content=raw, headers=headers)).status_code == 401


@pytest.mark.parametrize("change", [
    {"amount": 1500},
    {"currency": "SEK"},
    {"language": "DE"},
    {"items": []},
    {"customer": {}},
    {"redirectUrls": {"success": "https://x"}},
    {"items": [{"unitPrice": 1525, "units": 1, "vatPercentage": "25.5", "productCode": "a"}]},
    {"items": [{"unitPrice": 1525, "units": 1, "vatPercentage": 101, "productCode": "a"}]},
])
async def test_bad_body_is_400(sim: Sim, change: dict[str, Any]) -> None:
    r = await post(sim.client, "/payments", dump(body(**change)))
    assert r.status_code == 400, r.text
    assert r.json()["status"] == "error"


async def test_invalid_json_missing_field_and_duplicate_stamp_are_400(sim: Sim) -> None:
    assert (await post(sim.client, "/payments", "{not json")).status_code == 400
    data = body()
    del data["stamp"]
    assert (await post(sim.client, "/payments", dump(data))).status_code == 400
    data = body()
    assert (await post(sim.client, "/payments", dump(data))).status_code == 201
    r = await post(sim.client, "/payments", dump(data))
    assert r.status_code == 400 and "stamp" in r.json()["message"]


async def test_status_new_then_ok_and_signed_redirect(sim: Sim) -> None:
    tid = await create(sim)
    assert (await status_of(sim, tid))["status"] == "new"
    page = await sim.client.get(f"/pay/{tid}")
    assert page.status_code == 200 and "15,25" in page.text
    assert f'formaction="{tid}/success"' in page.text  # relative: works when mounted
    r = await sim.client.post(f"/pay/{tid}/success")
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(f"{SHOP}/success?")
    params = query(location)
    assert params["checkout-status"] == "ok"
    assert params["checkout-transaction-id"] == tid
    assert params["checkout-amount"] == "1525"
    assert verify(params, "", params["signature"], SECRET)
    tampered = {**params, "checkout-amount": "1"}
    assert not verify(tampered, "", tampered["signature"], SECRET)
    data = await status_of(sim, tid)
    assert data["status"] == "ok" and data["provider"] == "nordea"
    await sim.receiver.wait(1)
    assert sim.receiver.calls[0]["kind"] == "success"


async def test_unknown_payment_is_404(sim: Sim) -> None:
    tid = "00000000-0000-0000-0000-000000000000"
    headers = request_headers(ACCOUNT, SECRET, "GET", transaction_id=tid)
    assert (await sim.client.get(f"/payments/{tid}", headers=headers)).status_code == 404
    assert (await sim.client.get(f"/pay/{tid}")).status_code == 404


async def test_get_requires_signature(sim: Sim) -> None:
    tid = await create(sim)
    headers = request_headers(ACCOUNT, "WRONG", "GET", transaction_id=tid)
    assert (await sim.client.get(f"/payments/{tid}", headers=headers)).status_code == 401


async def test_cancel_redirects_to_cancel_with_fail(sim: Sim) -> None:
    tid = await create(sim)
    r = await sim.client.post(f"/pay/{tid}/cancel")
    assert r.status_code == 303
    location = r.headers["location"]
    assert location.startswith(f"{SHOP}/cancel?")
    params = query(location)
    assert params["x"] == "1"
    assert params["checkout-status"] == "fail"
    assert verify(params, "", params["signature"], SECRET)
    assert (await status_of(sim, tid))["status"] == "fail"
    await sim.receiver.wait(1)
    assert sim.receiver.calls[0]["kind"] == "cancel"
    assert sim.receiver.calls[0]["checkout-status"] == "fail"


async def test_three_identical_signed_callbacks(sim: Sim) -> None:
    tid = await create(sim)
    r = await sim.client.post(f"/pay/{tid}/success", params={"callbacks": 3})
    assert r.status_code == 303
    await sim.receiver.wait(3)
    calls = sim.receiver.calls
    assert len(calls) == 3
    assert calls[0] == calls[1] == calls[2]
    params = {k: v for k, v in calls[0].items() if k != "kind"}
    assert params["checkout-transaction-id"] == tid
    assert verify(params, "", params["signature"], SECRET)
    assert params == {k: v for k, v in query(r.headers["location"]).items()}


async def test_failing_callback_does_not_break_redirect() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as broken:
        app = create_simulator({ACCOUNT: SECRET}, PUBLIC, http_client=broken)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url=PUBLIC) as client:
            r = await post(client, "/payments", dump(body()))
            tid = r.json()["transactionId"]
            r = await client.post(f"/pay/{tid}/success")
            assert r.status_code == 303
            state = app.state.simulator
            await asyncio.wait_for(asyncio.gather(*state.tasks), timeout=5)
            assert state.callback_log and isinstance(state.callback_log[0][1], str)


async def test_refunds(sim: Sim) -> None:
    refund = {"amount": 1000, "refundStamp": "r-1", "refundReference": "r-1",
              "callbackUrls": {"success": f"{SHOP}/refund/ok", "cancel": f"{SHOP}/refund/no"}}
    unpaid = await create(sim, callbacks=False)
    r = await post(sim.client, f"/payments/{unpaid}/refund", dump(refund), transaction_id=unpaid)
    assert r.status_code == 400

    tid = await create(sim, callbacks=False)
    assert (await sim.client.post(f"/pay/{tid}/success")).status_code == 303
    r = await post(sim.client, f"/payments/{tid}/refund", dump(refund), transaction_id=tid)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "ok" and r.json()["transactionId"] != tid
    assert response_verifies(r)
    over = {**refund, "amount": 526, "refundStamp": "r-2"}
    r = await post(sim.client, f"/payments/{tid}/refund", dump(over), transaction_id=tid)
    assert r.status_code == 400
    rest = {**refund, "amount": 525, "refundStamp": "r-3"}
    r = await post(sim.client, f"/payments/{tid}/refund", dump(rest), transaction_id=tid)
    assert r.status_code == 201
    r = await post(sim.client, f"/payments/{tid}/refund", dump(refund))
    assert r.status_code == 401  # no checkout-transaction-id header


async def test_callback_delay_is_scheduled(sim: Sim) -> None:
    tid = await create(sim, callbackDelay=1)
    r = await sim.client.post(f"/pay/{tid}/success")
    assert r.status_code == 303
    assert sim.receiver.calls == []
    await sim.receiver.wait(1)
    assert sim.receiver.calls[0]["checkout-transaction-id"] == tid
