"""runs table: tags, notes and the last step of each run; indexes for sorting and paging

``last_step`` is filled from the stored points; ``ix_series_key`` serves metric columns
(one key across all runs).

Revision ID: 0004_runs_table
Revises: 0003_diagnosis_state
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_runs_table"
down_revision = "0003_run_error"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("tags", sa.Text(), nullable=False, server_default="[]"))
    op.add_column("runs", sa.Column("notes", sa.Text(), nullable=False, server_default=""))
    op.add_column("runs", sa.Column("last_step", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE runs SET last_step = (SELECT MAX(b.last_step) FROM series s "
        "JOIN point_blocks b ON b.series_id = s.id WHERE s.run_id = runs.id)"
    )
    op.create_index("ix_runs_name", "runs", ["name", "created_at"])
    op.create_index("ix_runs_status", "runs", ["status", "created_at"])
    op.create_index("ix_runs_last_step", "runs", ["last_step"])
    op.create_index("ix_series_key", "series", ["key", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_series_key", table_name="series")
    op.drop_index("ix_runs_last_step", table_name="runs")
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_name", table_name="runs")
    # plain ALTER TABLE (SQLite >= 3.35): a batch copy of ``runs`` would drop the table that
    # every other table references with ON DELETE CASCADE
    for col in ("last_step", "notes", "tags"):
        op.execute(f"ALTER TABLE runs DROP COLUMN {col}")
