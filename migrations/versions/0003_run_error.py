"""run error: why a run ended (the exception type and message its client sent)

Revision ID: 0003_run_error
Revises: 0003_diagnosis_state
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_run_error"
down_revision = "0003_diagnosis_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("error")
