"""diagnosis state: the diagnosis engine's per-run state

Revision ID: 0003_diagnosis_state
Revises: 0002_point_blocks_and_events
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_diagnosis_state"
down_revision = "0002_point_blocks_and_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diagnosis_state",
        sa.Column(
            "run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("diagnosis_state")
