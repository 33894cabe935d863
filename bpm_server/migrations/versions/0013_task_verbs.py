"""task verbs: actions, copies, comments, attachments; signer rows; notification params

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 11:00:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_AT = bpm_server.database.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('human_task') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=20), server_default='stage', nullable=False))
        batch.add_column(sa.Column('parent_task_id', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('waiting_on_id', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('after_signers', _JSON, nullable=True))
    with op.batch_alter_table('notification') as batch:
        batch.add_column(sa.Column('params', _JSON, nullable=True))
    op.create_table(
        'task_action',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('process_instance_id', sa.String(length=36), sa.ForeignKey('process_instance.id'), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('verb', sa.String(length=30), nullable=False),
        sa.Column('actor_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=False),
        sa.Column('target_user_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=True),
        sa.Column('to_stage', sa.String(length=200), nullable=True),
        sa.Column('new_task_id', sa.String(length=36), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('created_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_task_action_instance', 'task_action', ['process_instance_id', 'created_at'])
    op.create_index('ix_task_action_task_verb', 'task_action', ['task_id', 'verb', 'actor_id', 'created_at'])
    op.create_table(
        'task_cc',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('task_id', sa.String(length=36), sa.ForeignKey('human_task.id'), nullable=False),
        sa.Column('user_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=False),
        sa.Column('by_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('read_at', _AT, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'user_id', name='uq_task_cc_task_user'),
    )
    op.create_index('ix_task_cc_user', 'task_cc', ['user_id', 'created_at'])
    op.create_table(
        'task_comment',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('process_instance_id', sa.String(length=36), sa.ForeignKey('process_instance.id'), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('author_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_task_comment_instance', 'task_comment', ['process_instance_id', 'created_at'])
    op.create_table(
        'task_attachment',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('process_instance_id', sa.String(length=36), sa.ForeignKey('process_instance.id'), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=True),
        sa.Column('uploaded_by_id', sa.String(length=36), sa.ForeignKey('user_account.id'), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_task_attachment_instance', 'task_attachment', ['process_instance_id', 'created_at'])


def downgrade() -> None:
    for table in ('task_attachment', 'task_comment', 'task_cc', 'task_action'):
        op.drop_table(table)
    with op.batch_alter_table('notification') as batch:
        batch.drop_column('params')
    with op.batch_alter_table('human_task') as batch:
        for column in ('after_signers', 'waiting_on_id', 'parent_task_id', 'kind'):
            batch.drop_column(column)
