"""several clocks per stage and instance: named clocks, the breach log's clock kind

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 01:30:00

"""
import sqlalchemy as sa
from alembic import op

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_AT = bpm_server.database.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'sla_named_clock',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('process_instance_id', sa.String(length=36), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=True),
        sa.Column('length', sa.String(length=50), nullable=False),
        sa.Column('total_seconds', sa.Integer(), nullable=False),
        sa.Column('warn_seconds', sa.Integer(), nullable=True),
        sa.Column('policy', sa.String(length=100), nullable=True),
        sa.Column('consumed_seconds', sa.Integer(), nullable=False),
        sa.Column('running_since', _AT, nullable=True),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('started_at', _AT, nullable=False),
        sa.Column('due_at', _AT, nullable=True),
        sa.Column('warn_at', _AT, nullable=True),
        sa.Column('breached_at', _AT, nullable=True),
        sa.Column('breach_id', sa.String(length=36), nullable=True),
        sa.Column('stopped_at', _AT, nullable=True),
        sa.Column('stopped_by', sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_named_clock')),
    )
    op.create_index('ix_named_clock_instance', 'sla_named_clock', ['process_instance_id'])
    op.create_index('ix_named_clock_task', 'sla_named_clock', ['task_id'])
    # A plain ADD COLUMN (no batch copy on SQLite): the table keeps its append-only
    # triggers, and old rows get NULL, which the chain hash leaves out.
    op.add_column('sla_breach_log', sa.Column('clock_kind', sa.String(length=20), nullable=True))


def downgrade() -> None:
    op.drop_column('sla_breach_log', 'clock_kind')
    op.drop_index('ix_named_clock_task', table_name='sla_named_clock')
    op.drop_index('ix_named_clock_instance', table_name='sla_named_clock')
    op.drop_table('sla_named_clock')
