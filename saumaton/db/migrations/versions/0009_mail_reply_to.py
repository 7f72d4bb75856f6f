"""A Reply-To for queued mail (the shop's copy of an offline chat message answers the
visitor; an agent's e-mailed answer comes back to the service address), and an index on
the mail's reference (the service desk shows which answers went by e-mail).

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outgoing_mail", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reply_to", sa.String(length=320), nullable=False,
                                      server_default=""))
        batch_op.create_index("ix_outgoing_mail_reference", ["reference"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outgoing_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_outgoing_mail_reference")
        batch_op.drop_column("reply_to")
