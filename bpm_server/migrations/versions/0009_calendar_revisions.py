"""calendar revisions: imported official holiday notices

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 06:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import bpm_server.database

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'calendar_revision',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=500), nullable=False),
        sa.Column('published', sa.Date(), nullable=False),
        sa.Column('holidays', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.Column('working_days', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.Column('imported_at', bpm_server.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column('imported_by', sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('year', 'revision', name='uq_calendar_revision_year'),
    )


def downgrade() -> None:
    op.drop_table('calendar_revision')
