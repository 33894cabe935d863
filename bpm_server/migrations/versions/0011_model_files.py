"""multi-file models: the BPMN and DMN files of a version; the versions of other models an instance called

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 11:30:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for a one-file version (its diagram is bpmn_xml); else file name -> text, bpmn_xml included.
    with op.batch_alter_table('process_model_version') as batch:
        batch.add_column(sa.Column('files', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                                   'postgresql'), nullable=True))
    # Process id of another model -> the version id the instance called (its current one at the call).
    with op.batch_alter_table('process_instance') as batch:
        batch.add_column(sa.Column('called_versions', sa.JSON().with_variant(
            postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('process_instance') as batch:
        batch.drop_column('called_versions')
    with op.batch_alter_table('process_model_version') as batch:
        batch.drop_column('files')
