"""web ui: out-of-office substitutes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:00:00

"""
import sqlalchemy as sa
from alembic import op

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('substitute',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('substitute_id', sa.String(length=36), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
    sa.Column('cancelled_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_substitute_user_id_user_account')),
    sa.ForeignKeyConstraint(['substitute_id'], ['user_account.id'],
                            name=op.f('fk_substitute_substitute_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_substitute'))
    )
    with op.batch_alter_table('substitute', schema=None) as batch_op:
        batch_op.create_index('ix_substitute_user_period', ['user_id', 'starts_on', 'ends_on'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('substitute', schema=None) as batch_op:
        batch_op.drop_index('ix_substitute_user_period')
    op.drop_table('substitute')
