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


# Plain ALTER TABLE, not batch mode: SQLite adds and drops a plain column in place (3.35+),
# while batch mode would copy and drop the department table, which users' rows refer to.
def upgrade() -> None:
    op.add_column('department', sa.Column('name_en', sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column('department', 'name_en')
