"""single sign-on: external logins, users without a department, sign-in failures by address

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:00:00

"""
import sqlalchemy as sa
from alembic import op

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

_AT = bpm_server.database.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'external_login',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('provider', sa.String(length=20), nullable=False),
        sa.Column('subject', sa.String(length=255), nullable=False),
        sa.Column('user_id', sa.String(length=36), nullable=False),
        sa.Column('created_at', _AT, nullable=False),
        sa.Column('last_sign_in_at', _AT, nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_external_login_user_id_user_account')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_external_login')),
        sa.UniqueConstraint('provider', 'subject', name='uq_external_login_provider_subject'),
    )
    with op.batch_alter_table('external_login') as batch:
        batch.create_index(batch.f('ix_external_login_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('user_account') as batch:
        batch.alter_column('department_id', existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table('login_failure') as batch:
        batch.create_index('ix_login_failure_remote_addr_at', ['remote_addr', 'at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('login_failure') as batch:
        batch.drop_index('ix_login_failure_remote_addr_at')
    with op.batch_alter_table('user_account') as batch:
        batch.alter_column('department_id', existing_type=sa.String(length=64), nullable=False)
    with op.batch_alter_table('external_login') as batch:
        batch.drop_index(batch.f('ix_external_login_user_id'))
    op.drop_table('external_login')
