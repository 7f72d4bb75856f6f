"""Exact money: integer cents, VAT-inclusive consumer prices.

Rounding rule used everywhere: half away from zero, on integers only.
"""

from __future__ import annotations


def div_round(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half away from zero, exactly."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    sign = -1 if numerator < 0 else 1
    q, r = divmod(abs(numerator), denominator)
    if 2 * r >= denominator:
        q += 1
    return sign * q


def vat_included(gross_cents: int, rate_bp: int) -> int:
    """VAT contained in a VAT-inclusive amount; rate in basis points (2550 = 25.5 %)."""
    return div_round(gross_cents * rate_bp, 10000 + rate_bp)


def percent_of(amount_cents: int, bp: int) -> int:
    """amount × bp / 10000, rounded (bp: basis points, 1500 = 15 %)."""
    return div_round(amount_cents * bp, 10000)


def round_cash(cents: int) -> int:
    """Round a cash payment to 5 cents per Act 890/2000 § 1.

    Endings 1–2 go down and 8–9 up to a multiple of 10; 3–4 up and 6–7 down to
    a multiple of 5. Payments of 1 or 2 cents are not rounded. Negative amounts
    (cash refunds) are rounded symmetrically.
    """
    if cents < 0:
        return -round_cash(-cents)
    if cents < 3:
        return cents
    r = cents % 5
    return cents - r if r <= 2 else cents + 5 - r


def format_rate(rate_bp: int) -> str:
    """2550 -> '25.5', 1000 -> '10'."""
    whole, frac = divmod(rate_bp, 100)
    return str(whole) if frac == 0 else f"{whole}.{frac:02d}".rstrip("0")
