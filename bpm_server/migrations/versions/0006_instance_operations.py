"""instance operations: suspension (held timers), cancellation reason

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:00:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('suspended_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('held_timers', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                          'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('cancel_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_column('cancel_reason')
        batch_op.drop_column('cancelled_by')
        batch_op.drop_column('held_timers')
        batch_op.drop_column('suspended_by')
        batch_op.drop_column('suspended_at')
