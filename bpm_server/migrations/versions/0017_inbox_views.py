"""inbox: saved views; the inbox halves by priority

Revision ID: 0017
Revises: 0014
Create Date: 2026-12-02 14:10:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0014'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_AT = bpm_server.database.UTCDateTime(timezone=True)


def _by_priority() -> tuple:
    # PostgreSQL reads the priority sort (highest first, then soonest due) straight
    # from the index only when the index's order and NULLS placement match it;
    # SQLite (tests, single-user installs) has no NULLS in an index.
    if op.get_bind().dialect.name == 'postgresql':
        return sa.text('priority DESC NULLS LAST'), sa.text('due_at ASC NULLS LAST')
    return sa.text('priority'), sa.text('due_at')


def upgrade() -> None:
    op.create_table(
        'inbox_view',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('owner_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('department_id', sa.String(length=64), nullable=True),
        sa.Column('filters', _JSON, nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('updated_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('owner_id', 'name', name='uq_inbox_view_owner_name'),
    )
    op.create_index('ix_inbox_view_department', 'inbox_view', ['department_id'])
    op.create_index('ix_human_task_department_priority', 'human_task',
                    [sa.text('department_id'), sa.text('state'), *_by_priority()])
    op.create_index('ix_human_task_assignee_priority', 'human_task',
                    [sa.text('assignee_id'), sa.text('state'), *_by_priority()])


def downgrade() -> None:
    op.drop_index('ix_human_task_assignee_priority', table_name='human_task')
    op.drop_index('ix_human_task_department_priority', table_name='human_task')
    op.drop_table('inbox_view')
