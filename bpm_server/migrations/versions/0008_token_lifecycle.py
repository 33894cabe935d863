"""token lifecycle: name, expiry, last use, who revoked

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:30:00

"""
import sqlalchemy as sa
from alembic import op

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('expires_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', bpm_server.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('revoked_by', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_column('revoked_by')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('name')
