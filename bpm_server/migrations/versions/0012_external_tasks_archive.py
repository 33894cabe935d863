"""external tasks; archived process models

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 11:40:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'external_task',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('process_instance_id', sa.String(length=36), nullable=False),
        sa.Column('process_model_id', sa.String(length=100), nullable=False),
        sa.Column('engine_task_id', sa.String(length=36), nullable=False),
        sa.Column('element_id', sa.String(length=200), nullable=False),
        sa.Column('topic', sa.String(length=200), nullable=False),
        sa.Column('variables', _json(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('worker_id', sa.String(length=200), nullable=True),
        sa.Column('locked_until', bpm_server.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column('available_at', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('retries', sa.Integer(), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('created_at', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('completed_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column('incident_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('process_instance_id', 'engine_task_id'),
    )
    op.create_index('ix_external_task_fetch', 'external_task', ['state', 'topic', 'available_at'])
    op.create_index('ix_external_task_instance', 'external_task', ['process_instance_id'])
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archived_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('archived_by', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_model', schema=None) as batch_op:
        batch_op.drop_column('archived_by')
        batch_op.drop_column('archived_at')
    op.drop_index('ix_external_task_instance', table_name='external_task')
    op.drop_index('ix_external_task_fetch', table_name='external_task')
    op.drop_table('external_task')
