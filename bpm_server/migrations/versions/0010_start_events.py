"""start events: timer rows of a model version (timer start events); one message subscription per
message of a waiting element (an event-based gateway waits for several)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 11:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_UNIQUE = 'uq_message_subscription_process_instance_id_engine_task_id'
NEW_UNIQUE = 'uq_message_subscription_wait'  # the convention's name exceeds PostgreSQL's 63 characters


def upgrade() -> None:
    with op.batch_alter_table('timer', schema=None) as batch_op:
        batch_op.alter_column('process_instance_id', existing_type=sa.String(length=36), nullable=True)
        batch_op.add_column(sa.Column('version_id', sa.String(length=36), nullable=True))
        batch_op.create_index('ix_timer_version', ['version_id'], unique=False)
    with op.batch_alter_table('message_subscription', schema=None) as batch_op:
        batch_op.drop_constraint(OLD_UNIQUE, type_='unique')
        batch_op.create_unique_constraint(NEW_UNIQUE, ['process_instance_id', 'engine_task_id', 'message_name'])


def downgrade() -> None:
    with op.batch_alter_table('message_subscription', schema=None) as batch_op:
        batch_op.drop_constraint(NEW_UNIQUE, type_='unique')
        batch_op.create_unique_constraint(OLD_UNIQUE, ['process_instance_id', 'engine_task_id'])
    with op.batch_alter_table('timer', schema=None) as batch_op:
        batch_op.drop_index('ix_timer_version')
        batch_op.drop_column('version_id')
        batch_op.alter_column('process_instance_id', existing_type=sa.String(length=36), nullable=False)
