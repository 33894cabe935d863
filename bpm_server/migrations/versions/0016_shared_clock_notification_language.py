"""the test clock in the database (one time for every process); the language of each person's notifications

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 14:10:00

"""
import sqlalchemy as sa
from alembic import op

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'test_clock',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('moment', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_test_clock')),
    )
    op.create_table(
        'notification_preference',
        sa.Column('user_id', sa.String(length=36), sa.ForeignKey('user_account.id',
                  name=op.f('fk_notification_preference_user_id_user_account')), nullable=False),
        sa.Column('locale', sa.String(length=10), nullable=False),
        sa.Column('updated_at', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preference')),
    )


def downgrade() -> None:
    op.drop_table('notification_preference')
    op.drop_table('test_clock')
