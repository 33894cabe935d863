"""accounts as records: fields, signals, rule versions and firings, health history, settings

Revision ID: 0015
Revises: 0017
Create Date: 2026-12-02 14:10:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0017'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_AT = bpm_server.database.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('account') as batch:
        batch.add_column(sa.Column('industry', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('contacts', _JSON, nullable=True))
        batch.add_column(sa.Column('contract_value', sa.Float(), nullable=True))
        batch.add_column(sa.Column('relationship_start', sa.Date(), nullable=True))
        batch.add_column(sa.Column('growth_potential', sa.Integer(), nullable=True))
    op.create_table(
        'account_signal',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('signal_id', sa.String(length=200), nullable=False),
        sa.Column('account_id', sa.String(length=100), sa.ForeignKey('account.id'), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('at', _AT, nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('recorded_by', sa.String(length=100), nullable=False),
        sa.Column('recorded_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('signal_id'),
    )
    op.create_index('ix_account_signal_account_at', 'account_signal', ['account_id', 'at'])
    op.create_table(
        'account_rule_version',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('rule_id', sa.String(length=100), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=300), nullable=False),
        sa.Column('dmn', sa.LargeBinary(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('rule_id', 'version'),
    )
    op.create_index('ix_account_rule_version_rule_id', 'account_rule_version', ['rule_id'])
    op.create_table(
        'account_rule_firing',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=100), sa.ForeignKey('account.id'), nullable=False),
        sa.Column('rule_id', sa.String(length=100), nullable=False),
        sa.Column('rule_version', sa.Integer(), nullable=False),
        sa.Column('process_model_id', sa.String(length=100), nullable=False),
        sa.Column('priority', sa.String(length=20), nullable=False),
        sa.Column('facts', _JSON, nullable=False),
        sa.Column('inputs', _JSON, nullable=False),
        sa.Column('trigger', sa.String(length=200), nullable=False),
        sa.Column('fired_at', _AT, nullable=False),
        sa.Column('process_instance_id', sa.String(length=36), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_account_rule_firing_open', 'account_rule_firing', ['account_id', 'rule_id'])
    op.create_table(
        'account_health',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=100), sa.ForeignKey('account.id'), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('components', _JSON, nullable=False),
        sa.Column('computed_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'day'),
    )
    op.create_table(
        'account_setting',
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('value', _JSON, nullable=False),
        sa.Column('updated_by', sa.String(length=100), nullable=False),
        sa.Column('updated_at', _AT, nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('account_setting')
    op.drop_table('account_health')
    op.drop_index('ix_account_rule_firing_open', 'account_rule_firing')
    op.drop_table('account_rule_firing')
    op.drop_index('ix_account_rule_version_rule_id', 'account_rule_version')
    op.drop_table('account_rule_version')
    op.drop_index('ix_account_signal_account_at', 'account_signal')
    op.drop_table('account_signal')
    with op.batch_alter_table('account') as batch:
        for column in ('growth_potential', 'relationship_start', 'contract_value', 'contacts', 'industry'):
            batch.drop_column(column)
