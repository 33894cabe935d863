"""multi-file models: the BPMN and DMN files of a version

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02 11:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for a one-file version (its diagram is bpmn_xml); else file name -> text, bpmn_xml included.
    with op.batch_alter_table('process_model_version') as batch:
        batch.add_column(sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                   'postgresql'), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_model_version') as batch:
        batch.drop_column('files')
