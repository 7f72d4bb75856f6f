"""Merchant-defined preference fields (seeded with shade and skin type), an index on
customer tags for the back office's tag filter, and on PostgreSQL the expression indexes
the till's name search uses (lower(name) LIKE 'abc%', in name order).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The two preferences the card offered before fields could be defined.
SEED = [
    {"key": "shade", "label": "Shade", "kind": "text", "options": [], "position": 10},
    {"key": "skin_type", "label": "Skin type", "kind": "choice",
     "options": ["normal", "dry", "oily", "combination", "sensitive"], "position": 20},
]
# (lead, then) for each index: LIKE 'abc%' on the lead and the search's order (then
# by the other name, then id) from one index range; COLLATE "C" makes both possible
# whatever the database's collation.
NAME_INDEXES = {"ix_customers_name_by_first": ("first_name", "last_name"),
                "ix_customers_name_by_last": ("last_name", "first_name")}


def upgrade() -> None:
    fields = op.create_table('preference_fields',
    sa.Column('key', sa.String(length=50), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_preference_fields'))
    )
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == "sqlite":  # naive UTC, like the app's UTCDateTime
        now = now.replace(tzinfo=None)
    op.bulk_insert(fields, [dict(row, active=True, created_at=now, updated_at=now)
                            for row in SEED])
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_tags_tag'), ['tag'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        for name, (lead, then) in NAME_INDEXES.items():
            op.execute(f'CREATE INDEX {name} ON customers ((lower({lead}) COLLATE "C"), '
                       f'(lower({then}) COLLATE "C"), id)')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in NAME_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table('customer_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_tags_tag'))

    op.drop_table('preference_fields')
