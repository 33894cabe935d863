"""departments named in English too: department.name_en (name is the Chinese name)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 18:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('department') as batch:
        batch.add_column(sa.Column('name_en', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('department') as batch:
        batch.drop_column('name_en')
