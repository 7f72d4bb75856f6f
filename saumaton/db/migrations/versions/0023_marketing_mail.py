"""Marketing mail: the customer whose consent is checked when a queued mail is sent
(status 'suppressed' when it is off by then) and the one-click unsubscribe URL for
the List-Unsubscribe header (docs/mail.md).

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('list_unsubscribe', sa.Text(), server_default='',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_outgoing_mail_customer_id'), ['customer_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_customer_id'))
        batch_op.drop_column('list_unsubscribe')
        batch_op.drop_column('customer_id')
