"""Barcode checks (EAN-8, UPC-A, EAN-13, GTIN-14) via python-stdnum."""

from __future__ import annotations

from stdnum import ean as stdnum_ean
from stdnum.exceptions import ValidationError as StdnumError

from saumaton.core.errors import ValidationFailed


def clean_ean(value: str, field: str = "ean") -> str:
    """Return the digits of a valid EAN/GTIN or raise `invalid_ean`."""
    try:
        return str(stdnum_ean.validate(value))
    except StdnumError as exc:
        raise ValidationFailed(
            f"'{value}' is not a valid EAN/GTIN barcode ({str(exc).lower()})",
            code="invalid_ean", field=field,
        ) from exc
