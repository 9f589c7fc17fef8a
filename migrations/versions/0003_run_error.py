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
    # a plain ADD COLUMN on both backends (no table copy)
    op.add_column("runs", sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    # not batch mode: on SQLite that copies and drops ``runs``, and dropping it would
    # cascade to every series and point (SQLite 3.35+ drops a column in place)
    op.execute("ALTER TABLE runs DROP COLUMN error")
