"""Paytrail signatures against the vectors Paytrail publishes
(see ../shared/reference/paytrail-and-finland.md §1.4)."""

from __future__ import annotations

from datetime import UTC, datetime

from saumaton.payments.paytrail.signing import request_headers, sign, signing_string, verify

SECRET = "SAIPPUAKAUPPIAS"

V1_HEADERS = {
    "checkout-account": "375917",
    "checkout-algorithm": "sha256",
    "checkout-method": "POST",
    "checkout-nonce": "564635208570151",
    "checkout-timestamp": "2018-07-06T10:01:31.904Z",
    "content-type": "application/json; charset=utf-8",  # not signed
}
V1_BODY = (
    '{"stamp":"unique-identifier-for-merchant","reference":"3759170","amount":1525,'
    '"currency":"EUR","language":"FI","items":[{"unitPrice":1525,"units":1,'
    '"vatPercentage":25.5,"productCode":"#1234","deliveryDate":"2018-09-01"}],'
    '"customer":{"email":"test.customer@example.com"},"redirectUrls":{"success":'
    '"https://ecom.example.com/cart/success","cancel":"https://ecom.example.com/cart/cancel"}}'
)
V4_HEADERS = {
    "checkout-account": "375917",
    "checkout-method": "GET",
    "checkout-algorithm": "sha256",
    "checkout-timestamp": "2018-07-05T11:19:25.950Z",
    "checkout-nonce": "123456",
}


def test_published_post_vector() -> None:
    assert sign(V1_HEADERS, V1_BODY, SECRET) == (
        "9a4a7735279de4c99268e4566a5526ae887e73e6e58f2918cb2309ccac366129")


def test_published_get_vectors() -> None:
    assert sign(V4_HEADERS, "", SECRET) == (
        "e2070810cb0d8795534cf0c2b983a3dee0858990cd073869ce23437c59f98776")
    assert sign(V4_HEADERS, '{"data":"test"}', SECRET) == (
        "73b1e55ebcf42dab90507f7dd53cddb7d2076ebcc61f67f27c9b9f4c94471a67")


def test_signing_string_sorts_checkout_keys_and_ends_with_the_body() -> None:
    s = signing_string({"checkout-b": "2", "Checkout-A": "1", "signature": "x",
                        "platform-name": "saumaton"}, "")
    assert s == "checkout-a:1\ncheckout-b:2\n"


def redirect_params() -> dict[str, str]:
    params = {
        "checkout-account": "375917", "checkout-algorithm": "sha256",
        "checkout-amount": "3999", "checkout-stamp": "order-42-1", "checkout-reference": "42",
        "checkout-transaction-id": "4b300af6-9a22-11e8-9184-abb6de7fd2d0",
        "checkout-status": "ok", "checkout-provider": "nordea",
    }
    params["signature"] = sign(params, "", SECRET)
    return params


def test_redirect_signature_verifies_and_tampering_is_caught() -> None:
    params = redirect_params()
    sig = params.pop("signature")
    assert verify(params, "", sig, SECRET)
    assert verify(params, "", sig.upper(), SECRET)
    for key, value in (("checkout-status", "fail"), ("checkout-amount", "1")):
        assert not verify({**params, key: value}, "", sig, SECRET), key
    # a parameter Paytrail adds later is signed too: dropping it breaks the check
    extra = {**params, "checkout-new-field": "x"}
    extra_sig = sign(extra, "", SECRET)
    assert verify(extra, "", extra_sig, SECRET)
    assert not verify(params, "", extra_sig, SECRET)
    assert not verify(params, "", sig, "WRONG-SECRET")
    assert not verify(params, "", None, SECRET)
    assert not verify(params, "", "", SECRET)
    assert not verify({**params, "checkout-algorithm": "md5"}, "", sig, SECRET)


def test_sha512_is_supported() -> None:
    params = {**redirect_params(), "checkout-algorithm": "sha512"}
    params.pop("signature")
    sig = sign(params, "", SECRET, "sha512")
    assert len(sig) == 128 and verify(params, "", sig, SECRET)


def test_request_headers_are_signed_over_the_exact_body() -> None:
    ts = datetime(2018, 7, 6, 10, 1, 31, 904000, tzinfo=UTC)
    h = request_headers("375917", SECRET, "post", V1_BODY, nonce="564635208570151",
                        timestamp=ts)
    assert h["checkout-timestamp"] == "2018-07-06T10:01:31.904Z"
    assert h["checkout-method"] == "POST"
    assert h["signature"] == (
        "9a4a7735279de4c99268e4566a5526ae887e73e6e58f2918cb2309ccac366129")
    assert h["content-type"] == "application/json; charset=utf-8"
    g = request_headers("375917", SECRET, "GET", transaction_id="abc")
    assert "content-type" not in g and g["checkout-transaction-id"] == "abc"
    assert verify(g, "", g["signature"], SECRET)
