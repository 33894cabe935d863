"""integrations: webhook deliveries, messages, outbound calls, incidents, integration log

Revision ID: 0003
Revises: 0002

Reserved for the ERP and notification integrations; it creates nothing yet,
so later revisions can already chain onto it.
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
