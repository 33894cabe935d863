"""integrations: webhook deliveries, messages, outbound calls, incidents, integration log

Revision ID: 0003
Revises: 0002

ERP contract-signed events (unique per event id), message subscriptions and
received messages (unique per message id), service-task calls with their
attempts and incidents, outbound notification deliveries, and the
integration log.
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def _at() -> bpm_server.database.UTCDateTime:
    return bpm_server.database.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('erp_event',
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('contract_no', sa.String(length=64), nullable=False),
    sa.Column('account_id', sa.String(length=100), nullable=False),
    sa.Column('process_instance_id', sa.String(length=36), nullable=True),
    sa.Column('received_at', _at(), nullable=False),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_erp_event'))
    )
    with op.batch_alter_table('erp_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erp_event_contract_no'), ['contract_no'], unique=False)

    op.create_table('outbound_call',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('process_instance_id', sa.String(length=36), nullable=False),
    sa.Column('engine_task_id', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('system', sa.String(length=50), nullable=False),
    sa.Column('operation', sa.String(length=100), nullable=False),
    sa.Column('params', _json(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', _at(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('response', _json(), nullable=True),
    sa.Column('created_at', _at(), nullable=False),
    sa.Column('updated_at', _at(), nullable=False),
    sa.Column('completed_at', _at(), nullable=True),
    sa.Column('incident_at', _at(), nullable=True),
    sa.Column('retried_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_call')),
    sa.UniqueConstraint('process_instance_id', 'engine_task_id',
                        name=op.f('uq_outbound_call_process_instance_id_engine_task_id'))
    )
    with op.batch_alter_table('outbound_call', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_call_process_instance_id'), ['process_instance_id'],
                              unique=False)
        batch_op.create_index('ix_outbound_call_state', ['state', 'incident_at'], unique=False)

    op.create_table('message_subscription',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('process_instance_id', sa.String(length=36), nullable=False),
    sa.Column('engine_task_id', sa.String(length=36), nullable=False),
    sa.Column('element_id', sa.String(length=200), nullable=False),
    sa.Column('message_name', sa.String(length=200), nullable=False),
    sa.Column('correlation_key', sa.String(length=1000), nullable=False),
    sa.Column('correlation', _json(), nullable=False),
    sa.Column('created_at', _at(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_subscription')),
    sa.UniqueConstraint('process_instance_id', 'engine_task_id',
                        name=op.f('uq_message_subscription_process_instance_id_engine_task_id'))
    )
    with op.batch_alter_table('message_subscription', schema=None) as batch_op:
        batch_op.create_index('ix_message_subscription_match', ['message_name', 'correlation_key'], unique=False)

    op.create_table('received_message',
    sa.Column('message_id', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('process_instance_id', sa.String(length=36), nullable=True),
    sa.Column('element_id', sa.String(length=200), nullable=True),
    sa.Column('received_at', _at(), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_received_message'))
    )

    op.create_table('notification_delivery',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('notification_id', sa.String(length=36), nullable=True),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('notice', _json(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', _at(), nullable=False),
    sa.Column('sent_at', _at(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_delivery'))
    )
    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.create_index('ix_notification_delivery_state', ['state', 'created_at'], unique=False)

    op.create_table('integration_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', _at(), nullable=False),
    sa.Column('direction', sa.String(length=10), nullable=False),
    sa.Column('system', sa.String(length=50), nullable=False),
    sa.Column('endpoint', sa.String(length=500), nullable=False),
    sa.Column('operation', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=50), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.Column('payload', _json(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('reference', sa.String(length=200), nullable=True),
    sa.Column('process_instance_id', sa.String(length=36), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_log'))
    )
    with op.batch_alter_table('integration_log', schema=None) as batch_op:
        batch_op.create_index('ix_integration_log_at', ['at'], unique=False)
        batch_op.create_index('ix_integration_log_instance', ['process_instance_id'], unique=False)
        batch_op.create_index('ix_integration_log_system', ['system', 'at'], unique=False)


def downgrade() -> None:
    for table, indexes in (
            ('integration_log', ['ix_integration_log_system', 'ix_integration_log_instance', 'ix_integration_log_at']),
            ('notification_delivery', ['ix_notification_delivery_state']),
            ('received_message', []),
            ('message_subscription', ['ix_message_subscription_match']),
            ('outbound_call', ['ix_outbound_call_state', 'ix_outbound_call_process_instance_id']),
            ('erp_event', ['ix_erp_event_contract_no'])):
        if indexes:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for name in indexes:
                    batch_op.drop_index(name)
        op.drop_table(table)
