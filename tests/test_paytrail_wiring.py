"""Without merchant credentials the app serves the Paytrail simulator itself and
its client talks to it over real HTTP; with credentials the real API is used."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx

from saumaton.config import Settings
from saumaton.payments.paytrail.client import PaytrailClient, PaytrailConfig
from tests.support import Server


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
