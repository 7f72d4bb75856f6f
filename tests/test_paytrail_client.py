"""The Paytrail client against the local simulator (same HTTP contract and
signature checks as Paytrail), and its refusal of answers not signed right."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig, PaytrailError
from saumaton.payments.paytrail.simulator import create_simulator

ACCOUNT, SECRET = "375917", "SAIPPUAKAUPPIAS"
SIM = "http://paytrail.test"


def body(stamp: str, amount: int = 3999) -> dict[str, object]:
    return {"stamp": stamp, "reference": "42", "amount": amount, "currency": "EUR",
            "language": "FI",
            "items": [{"unitPrice": amount, "units": 1, "vatPercentage": 25.5,
                       "productCode": "KI-SILK-01"}],
            "customer": {"email": "shopper@example.fi"},
            "redirectUrls": {"success": "https://shop.example/ok",
                             "cancel": "https://shop.example/cancel"}}


@pytest.fixture
async def sim_http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_simulator({ACCOUNT: SECRET}, SIM)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=SIM) as http:
        yield http


async def test_create_pay_and_read_back(sim_http: httpx.AsyncClient) -> None:
    client = PaytrailClient(PaytrailConfig(ACCOUNT, SECRET, SIM), sim_http)
    created = await client.create_payment(body("order-42-1"))
    tid = created["transactionId"]
    assert created["href"].startswith(SIM)
    assert (await client.get_payment(tid))["status"] == "new"
    # the shopper pays on the simulator's page; the browser comes back signed
    r = await sim_http.post(f"/pay/{tid}/success")
    assert r.status_code == 303
    back = urlsplit(r.headers["location"])
    params = dict(parse_qsl(back.query))
    assert back.path == "/ok" and params["checkout-status"] == "ok"
    assert client.verify_return(params)
    assert not client.verify_return({**params, "checkout-amount": "1"})
    assert not client.verify_return({**params, "checkout-account": "695861"})
    assert (await client.get_payment(tid))["status"] == "ok"
    refund = await client.refund(tid, {"amount": 1000, "refundStamp": "r-1",
                                       "refundReference": "42",
                                       "callbackUrls": {"success": "https://shop.example/r",
                                                        "cancel": "https://shop.example/r"}})
    assert refund["status"] in ("ok", "pending")


async def test_wrong_secret_is_refused_by_the_simulator(sim_http: httpx.AsyncClient) -> None:
    client = PaytrailClient(PaytrailConfig(ACCOUNT, "WRONG", SIM), sim_http)
    with pytest.raises(PaytrailError) as exc:
        await client.create_payment(body("order-43-1"))
    # the 401 is signed with the real secret, which this client cannot verify
    assert exc.value.code in ("paytrail_bad_signature", "paytrail_refused")


async def test_an_answer_with_a_bad_signature_is_not_trusted() -> None:
    def forged(request: httpx.Request) -> httpx.Response:
        content = json.dumps({"transactionId": "x", "href": "https://evil.example"})
        return httpx.Response(201, content=content, headers={
            "checkout-account": ACCOUNT, "checkout-algorithm": "sha256",
            "signature": "0" * 64, "content-type": "application/json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(forged),
                                 base_url=SIM) as http:
        client = PaytrailClient(PaytrailConfig(ACCOUNT, SECRET, SIM), http)
        with pytest.raises(PaytrailError) as exc:
            await client.create_payment(body("order-44-1"))
    assert exc.value.code == "paytrail_bad_signature"
