"""Without merchant credentials the app serves the Paytrail simulator itself and
its client talks to it over real HTTP; with credentials the real API is used."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from saumaton.config import Settings
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig, PaytrailError
from tests.support import Server, free_port


def test_settings_choose_simulator_or_real_paytrail() -> None:
    sim = Settings(port=8123, public_url="")
    assert sim.paytrail_simulated()
    assert sim.paytrail() == ("375917", "SAIPPUAKAUPPIAS",
                              "http://127.0.0.1:8123/paytrail-sim")
    real = Settings(paytrail_account="123456", paytrail_secret="s3cret")
    assert not real.paytrail_simulated()
    assert real.paytrail() == ("123456", "s3cret", "https://services.paytrail.com")


async def test_running_server_hosts_the_simulator(server: Server) -> None:
    base = server.base_url + "/paytrail-sim"
    async with httpx.AsyncClient(base_url=base) as http:
        client = PaytrailClient(PaytrailConfig("375917", "SAIPPUAKAUPPIAS", base), http)
        payment = await client.create_payment({
            "stamp": f"wiring-{server.port}", "reference": "1", "amount": 3999,
            "currency": "EUR", "language": "EN",
            "items": [{"unitPrice": 3999, "units": 1, "vatPercentage": 25.5,
                       "productCode": "KI-SILK-01"}],
            "customer": {"email": "shopper@example.fi"},
            "redirectUrls": {"success": "https://shop.example/ok",
                             "cancel": "https://shop.example/cancel"}})
        assert payment["href"].startswith(base + "/pay/")
        page = await http.get(payment["href"])
        assert page.status_code == 200 and "39" in page.text
        back = await http.post(payment["href"] + "/cancel")
        assert back.status_code == 303
        params = dict(parse_qsl(urlsplit(back.headers["location"]).query))
        assert params["checkout-status"] == "fail" and client.verify_return(params)
        status = await client.get_payment(payment["transactionId"])
        assert status["status"] == "fail"
        # an unsigned request to the simulator is refused like Paytrail refuses it
        assert (await http.post("/payments", json={})).status_code == 401


async def test_the_client_of_its_own_talks_to_the_simulator_over_http(server: Server) -> None:
    """No httpx client given: the client's own connection pool signs, sends and checks
    the answers (a wrong secret's answer is refused, an unreachable host is said so)."""
    base = server.base_url + "/paytrail-sim"
    client = PaytrailClient(PaytrailConfig("375917", "SAIPPUAKAUPPIAS", base))
    try:
        for n in range(2):  # the second request reuses the kept-alive connection
            payment = await client.create_payment({
                "stamp": f"own-{server.port}-{n}", "reference": "2", "amount": 1250,
                "currency": "EUR", "language": "FI",
                "items": [{"unitPrice": 1250, "units": 1, "vatPercentage": 25.5,
                           "productCode": "KI-SILK-01", "description": "Meikkivoide ä"}],
                "customer": {"email": "shopper@example.fi"},
                "redirectUrls": {"success": "https://shop.example/ok",
                                 "cancel": "https://shop.example/cancel"}})
            assert payment["href"].startswith(base + "/pay/")
            status = await client.get_payment(payment["transactionId"])
            assert status["status"] == "new" and status["amount"] == 1250
    finally:
        await client.aclose()
    wrong = PaytrailClient(PaytrailConfig("375917", "WRONG", base))
    try:
        with pytest.raises(PaytrailError) as exc:
            await wrong.get_payment(payment["transactionId"])
        assert exc.value.code == "paytrail_bad_signature"
    finally:
        await wrong.aclose()
    gone = PaytrailClient(PaytrailConfig("375917", "SAIPPUAKAUPPIAS",
                                         f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(PaytrailError) as exc:
            await gone.get_payment("x")
        assert exc.value.code == "paytrail_unreachable"
    finally:
        await gone.aclose()
