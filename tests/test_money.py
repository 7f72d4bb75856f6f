"""Money arithmetic: VAT from VAT-inclusive prices, cash rounding (Act 890/2000)."""

from hypothesis import given
from hypothesis import strategies as st

from saumaton.core.money import div_round, format_rate, percent_of, round_cash, vat_included


def test_cash_rounding_follows_the_act() -> None:
    # 1–2 down to 10, 3–4 up to 5, 6–7 down to 5, 8–9 up to 10
    cases = {1001: 1000, 1002: 1000, 1003: 1005, 1004: 1005, 1005: 1005, 1006: 1005,
             1007: 1005, 1008: 1010, 1009: 1010, 1010: 1010}
    for cents, expected in cases.items():
        assert round_cash(cents) == expected, cents


def test_one_and_two_cent_payments_are_not_rounded() -> None:
    assert round_cash(1) == 1
    assert round_cash(2) == 2
    assert round_cash(0) == 0
    assert round_cash(3) == 5


@given(st.integers(min_value=3, max_value=10**9))
def test_cash_rounding_moves_at_most_two_cents_to_a_multiple_of_five(cents: int) -> None:
    r = round_cash(cents)
    assert r % 5 == 0
    assert abs(r - cents) <= 2
    assert round_cash(-cents) == -r


def test_vat_included_in_finnish_rates() -> None:
    assert vat_included(12550, 2550) == 2550  # 100.00 net + 25.50 VAT
    assert vat_included(11350, 1350) == 1350
    assert vat_included(1100, 1000) == 100
    assert vat_included(1000, 0) == 0
    assert vat_included(1990, 2550) == 404  # 19.90 * 25.5 / 125.5 = 4.0434


@given(st.integers(min_value=0, max_value=10**8), st.sampled_from([0, 1000, 1350, 2550]))
def test_vat_plus_net_is_gross(gross: int, rate: int) -> None:
    vat = vat_included(gross, rate)
    net = gross - vat
    # the net amount times the rate gives back the VAT to within half a cent
    assert abs(net * rate - vat * 10000) <= 10000 + rate


def test_rounding_helpers() -> None:
    assert div_round(5, 2) == 3
    assert div_round(-5, 2) == -3
    assert div_round(4, 3) == 1
    assert percent_of(1990, 2000) == 398
    assert format_rate(2550) == "25.5"
    assert format_rate(1000) == "10"
    assert format_rate(1350) == "13.5"
