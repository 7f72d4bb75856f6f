"""The Paytrail simulator's own HTTP: its query encoding (as httpx's), its callbacks
over its own kept connections (the client itself: tests/test_paytrail_http1.py), and
the simulator as a plain ASGI app mounted in another app."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from saumaton.payments.paytrail.signing import request_headers, verify
from saumaton.payments.paytrail.simulator import (
    PaytrailSimulator,
    create_simulator,
    encode_query,
    with_params,
)
from tests.support import Scripted, scripted_servers

ACCOUNT, SECRET = "375917", "SAIPPUAKAUPPIAS"


@pytest.mark.parametrize("url", [
    "http://shop.test/callback/success",
    "http://shop.test/return?order=5&token=a%20b",
    "http://shop.test/return?x=1&checkout-status=old&x=2",
    "https://shop.test:8443/a/b?",
    "http://shop.test/p#top",
    "http://shop.test",
])
def test_query_merged_as_httpx_merges_it(url: str) -> None:
    params = {"checkout-account": "375917", "checkout-status": "ok",
              "checkout-stamp": "order 12/ä&x=y", "checkout-reference": "3759170",
              "signature": "ab" * 32, "empty": "", "~kept_.-": "a+b"}
    assert with_params(url, params) == str(httpx.URL(url).copy_merge_params(params))
    assert with_params(url, params, encode_query(params)) == with_params(url, params)


def create_body(stamp: str, callback: str) -> str:
    return json.dumps({
        "stamp": stamp, "reference": "42", "amount": 1990, "currency": "EUR",
        "language": "FI",
        "items": [{"unitPrice": 1990, "units": 1, "vatPercentage": 25.5,
                   "productCode": "SKU"}],
        "customer": {"email": "a@example.fi"},
        "redirectUrls": {"success": "http://shop.test/back?o=1",
                         "cancel": "http://shop.test/back?o=1"},
        "callbackUrls": {"success": f"{callback}/callback/success",
                         "cancel": f"{callback}/callback/cancel"}})


async def test_mounted_simulator_calls_back_over_its_own_connections() -> None:
    """Mounted under a path as the shop mounts it, no httpx client given: the
    callbacks go over HTTP through one kept connection, signed like the redirect."""
    async with scripted_servers() as serve:
        p = await serve(lambda n, req: (b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
                                        False))
        await _call_back_mounted(p, p.url.removesuffix("/base"))


async def _call_back_mounted(p: Scripted, base: str) -> None:
    sim = create_simulator({ACCOUNT: SECRET}, "http://shop.test/paytrail-sim")
    assert isinstance(sim, PaytrailSimulator)
    shop = FastAPI()
    shop.mount("/paytrail-sim", sim)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=shop),
                                 base_url="http://shop.test") as http:
        raw = create_body("mounted-1", base)
        r = await http.post("/paytrail-sim/payments", content=raw.encode(),
                            headers=request_headers(ACCOUNT, SECRET, "POST", raw))
        assert r.status_code == 201, r.text
        tid = r.json()["transactionId"]
        page = await http.get(f"/paytrail-sim/pay/{tid}?callbacks=3")
        assert f'formaction="{tid}/success?callbacks=3"' in page.text
        r = await http.post(f"/paytrail-sim/pay/{tid}/success?callbacks=3",
                            data={"provider": "creditcard"})
        assert r.status_code == 303
        assert (await http.get("/paytrail-sim/nowhere")).status_code == 404
        assert (await http.delete("/paytrail-sim/payments")).status_code == 405
    state = sim.state.simulator
    await asyncio.wait_for(asyncio.gather(*state.tasks), timeout=10)
    assert state.callback_log == [(f"{base}/callback/success", 200)] * 3
    assert p.connections == 1
    redirect = dict(parse_qsl(urlsplit(r.headers["location"]).query))
    assert redirect["o"] == "1" and redirect["checkout-provider"] == "creditcard"
    for sent in p.requests:
        target = sent.split(b" ")[1].decode()
        params = dict(parse_qsl(urlsplit(target).query))
        assert verify(params, "", params["signature"], SECRET)
        assert params == {k: v for k, v in redirect.items() if k != "o"}
    await sim.outbound.aclose()


async def test_lifespan_and_bad_query() -> None:
    sim = create_simulator({ACCOUNT: SECRET}, "http://paytrail.test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim),
                                 base_url="http://paytrail.test") as http:
        r = await http.post("/pay/x/success?callbacks=many")
        assert r.status_code == 400 and r.json()["status"] == "error"
        assert r.headers["request-id"]
    sent: list[dict[str, str]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    await sim({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete",
                                         "lifespan.shutdown.complete"]


async def test_docs_answer_200_for_readiness_polls() -> None:
    sim = create_simulator({ACCOUNT: SECRET}, "http://paytrail.test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim),
                                 base_url="http://paytrail.test") as http:
        r = await http.get("/docs")
        assert r.status_code == 200 and "POST /payments" in r.text


async def test_multipart_form_chooses_the_provider() -> None:
    """Browsers send the page's form URL-encoded; a multipart one is read too."""
    sim = create_simulator({ACCOUNT: SECRET}, "http://paytrail.test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim),
                                 base_url="http://paytrail.test") as http:
        raw = json.loads(create_body("multipart-1", "http://shop.test"))
        del raw["callbackUrls"]
        text = json.dumps(raw)
        r = await http.post("/payments", content=text.encode(),
                            headers=request_headers(ACCOUNT, SECRET, "POST", text))
        tid = r.json()["transactionId"]
        r = await http.post(f"/pay/{tid}/success", data={"provider": "osuuspankki"},
                            files={"note": ("a.txt", b"x")})
        assert r.status_code == 303
        params = dict(parse_qsl(urlsplit(r.headers["location"]).query))
        assert params["checkout-provider"] == "osuuspankki"
        assert verify(params, "", params["signature"], SECRET)


async def test_times_are_written_as_paytrail_writes_them() -> None:
    sim = create_simulator({ACCOUNT: SECRET}, "http://paytrail.test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim),
                                 base_url="http://paytrail.test") as http:
        text = create_body("times-1", "http://shop.test")
        r = await http.post("/payments", content=text.encode(),
                            headers=request_headers(ACCOUNT, SECRET, "POST", text))
        tid = r.json()["transactionId"]
        assert (await http.post(f"/pay/{tid}/success?callbacks=0")).status_code == 303
        r = await http.get(f"/payments/{tid}", headers=request_headers(
            ACCOUNT, SECRET, "GET", transaction_id=tid))
        data = r.json()
    before = datetime.now(UTC) - timedelta(seconds=5)
    for key in ("createdAt", "paidAt"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", data[key]), data[key]
        at = datetime.fromisoformat(data[key].replace("Z", "+00:00"))
        assert before < at <= datetime.now(UTC)
