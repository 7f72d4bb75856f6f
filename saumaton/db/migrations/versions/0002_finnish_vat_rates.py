"""Finnish VAT classes and their dated rates (reference data).

Rates in basis points. Sources: HE 61/2024 vp (24 -> 25.5 on 2024-09-01),
HE 141/2024 vp (books, medicines etc. 10 -> 14 on 2025-01-01),
HE 93/2025 vp (14 -> 13.5 on 2026-01-01).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASSES = [
    ("standard", "General rate"),
    ("food", "Reduced: foodstuffs, restaurant and catering"),
    ("books_medicines", "Reduced: books, medicines, passenger transport, culture, sport"),
    ("newspapers", "Reduced: newspapers and periodicals"),
    ("zero", "Zero rate / exempt"),
]
RATES = [
    ("standard", 2400, date(2013, 1, 1), date(2024, 9, 1)),
    ("standard", 2550, date(2024, 9, 1), None),
    ("food", 1400, date(2013, 1, 1), date(2026, 1, 1)),
    ("food", 1350, date(2026, 1, 1), None),
    ("books_medicines", 1000, date(2013, 1, 1), date(2025, 1, 1)),
    ("books_medicines", 1400, date(2025, 1, 1), date(2026, 1, 1)),
    ("books_medicines", 1350, date(2026, 1, 1), None),
    ("newspapers", 1000, date(2013, 1, 1), None),
    ("zero", 0, date(2013, 1, 1), None),
]


def upgrade() -> None:
    classes = sa.table("vat_classes", sa.column("code", sa.String), sa.column("name", sa.String))
    rates = sa.table(
        "vat_rates", sa.column("vat_class_code", sa.String), sa.column("rate_bp", sa.Integer),
        sa.column("valid_from", sa.Date), sa.column("valid_to", sa.Date),
    )
    op.bulk_insert(classes, [{"code": c, "name": n} for c, n in CLASSES])
    op.bulk_insert(rates, [
        {"vat_class_code": c, "rate_bp": r, "valid_from": f, "valid_to": t}
        for c, r, f, t in RATES
    ])


def downgrade() -> None:
    op.execute("DELETE FROM vat_rates")
    op.execute("DELETE FROM vat_classes")
