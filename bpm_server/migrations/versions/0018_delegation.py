"""委托: delegations for a period and a scope replace the out-of-office substitutes;
a task remembers on whose behalf its assignee holds it; 加签 to a group (会签 / 或签)

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-04 01:30:00

"""
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database
from bpm_server.sla.calendar import DEFAULT_TIME_ZONE

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0016'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_AT = bpm_server.database.UTCDateTime(timezone=True)


def _zone() -> ZoneInfo:
    # A substitute's days were whole days of the business calendar's zone; the
    # shipped calendar's zone is the only one deployments have used.
    return ZoneInfo(DEFAULT_TIME_ZONE)


def upgrade() -> None:
    delegation = op.create_table(
        'delegation',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('delegator_id', sa.String(length=36), nullable=False),
        sa.Column('delegate_id', sa.String(length=36), nullable=False),
        sa.Column('starts_at', _AT, nullable=False),
        sa.Column('ends_at', _AT, nullable=False),
        sa.Column('process_model_ids', _JSON, nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('cancelled_at', _AT, nullable=True),
        sa.ForeignKeyConstraint(['delegator_id'], ['user_account.id'],
                                name=op.f('fk_delegation_delegator_id_user_account')),
        sa.ForeignKeyConstraint(['delegate_id'], ['user_account.id'],
                                name=op.f('fk_delegation_delegate_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delegation')),
    )
    with op.batch_alter_table('delegation', schema=None) as batch_op:
        batch_op.create_index('ix_delegation_delegator_period', ['delegator_id', 'starts_at', 'ends_at'],
                              unique=False)
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('on_behalf_of_id', sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column('sign_mode', sa.String(length=3), nullable=True))
        batch_op.create_foreign_key(op.f('fk_human_task_on_behalf_of_id_user_account'), 'user_account',
                                    ['on_behalf_of_id'], ['id'])

    # Every substitute becomes a delegation of all work, from the first day's midnight
    # to the midnight after the last day.
    zone = _zone()
    substitute = sa.table('substitute', sa.column('id'), sa.column('user_id'), sa.column('substitute_id'),
                          sa.column('starts_on', sa.Date()), sa.column('ends_on', sa.Date()),
                          sa.column('reason'), sa.column('created_by'), sa.column('created_at', _AT),
                          sa.column('cancelled_at', _AT))
    rows = op.get_bind().execute(sa.select(substitute)).mappings().all()
    if rows:
        op.bulk_insert(delegation, [{
            'id': row['id'], 'delegator_id': row['user_id'], 'delegate_id': row['substitute_id'],
            'starts_at': datetime.combine(row['starts_on'], time(), zone),
            'ends_at': datetime.combine(row['ends_on'] + timedelta(days=1), time(), zone),
            'process_model_ids': [], 'reason': row['reason'], 'created_by': row['created_by'],
            'created_at': row['created_at'], 'cancelled_at': row['cancelled_at']} for row in rows])
    with op.batch_alter_table('substitute', schema=None) as batch_op:
        batch_op.drop_index('ix_substitute_user_period')
    op.drop_table('substitute')


def downgrade() -> None:
    op.create_table(
        'substitute',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('substitute_id', sa.String(length=36), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('cancelled_at', _AT, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_substitute_user_id_user_account')),
        sa.ForeignKeyConstraint(['substitute_id'], ['user_account.id'],
                                name=op.f('fk_substitute_substitute_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_substitute')),
    )
    with op.batch_alter_table('substitute', schema=None) as batch_op:
        batch_op.create_index('ix_substitute_user_period', ['user_id', 'starts_on', 'ends_on'], unique=False)
    # Only whole-work delegations have a substitute's shape; scoped ones are dropped.
    zone = _zone()
    delegation = sa.table('delegation', sa.column('id'), sa.column('delegator_id'), sa.column('delegate_id'),
                          sa.column('starts_at', _AT), sa.column('ends_at', _AT),
                          sa.column('process_model_ids', _JSON), sa.column('reason'), sa.column('created_by'),
                          sa.column('created_at', _AT), sa.column('cancelled_at', _AT))
    rows = [r for r in op.get_bind().execute(sa.select(delegation)).mappings().all() if not r['process_model_ids']]
    if rows:
        op.bulk_insert(sa.table('substitute', sa.column('id'), sa.column('user_id'), sa.column('substitute_id'),
                                sa.column('starts_on', sa.Date()), sa.column('ends_on', sa.Date()),
                                sa.column('reason'), sa.column('created_by'), sa.column('created_at', _AT),
                                sa.column('cancelled_at', _AT)), [{
            'id': r['id'], 'user_id': r['delegator_id'], 'substitute_id': r['delegate_id'],
            'starts_on': r['starts_at'].astimezone(zone).date(),
            'ends_on': (r['ends_at'] - timedelta(microseconds=1)).astimezone(zone).date(),
            'reason': r['reason'], 'created_by': r['created_by'], 'created_at': r['created_at'],
            'cancelled_at': r['cancelled_at']} for r in rows])
    with op.batch_alter_table('human_task', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_human_task_on_behalf_of_id_user_account'), type_='foreignkey')
        batch_op.drop_column('on_behalf_of_id')
        batch_op.drop_column('sign_mode')
    with op.batch_alter_table('delegation', schema=None) as batch_op:
        batch_op.drop_index('ix_delegation_delegator_period')
    op.drop_table('delegation')
