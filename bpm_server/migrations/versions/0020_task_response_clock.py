"""human_task.response_clock: a stage whose response clock may still be running

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 18:40:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Claim, transfer and comment read this flag instead of querying sla_named_clock on
    # every call: most stages have no response clock (issue 19, statements per claim).
    with op.batch_alter_table('human_task') as batch:
        batch.add_column(sa.Column('response_clock', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE human_task SET response_clock = true WHERE id IN (SELECT task_id FROM sla_named_clock"
               " WHERE kind = 'response' AND state <> 'stopped' AND task_id IS NOT NULL)")


def downgrade() -> None:
    with op.batch_alter_table('human_task') as batch:
        batch.drop_column('response_clock')
