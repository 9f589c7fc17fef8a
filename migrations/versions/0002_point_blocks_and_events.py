"""points stored in compact blocks; an events table feeding the live streams

Moves every point of the ``points`` table (one row per point) into
``point_blocks`` (one row per up to 2,048 consecutive points of a series, steps
and values as packed arrays plus a summary), and adds ``events``.  The
downgrade expands the blocks back into rows.

Revision ID: 0002_point_blocks_and_events
Revises: 0001_initial_schema
Create Date: 2026-11-24
"""

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0002_point_blocks_and_events"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BLOCK_POINTS = 2048  # as server/storage/blocks.py at the time of this revision
I8, F8 = np.dtype("<i8"), np.dtype("<f8")


def upgrade() -> None:
    op.create_table(
        "point_blocks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "series_id",
            sa.Integer(),
            sa.ForeignKey("series.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("steps", sa.LargeBinary(), nullable=False),
        sa.Column("vals", sa.LargeBinary(), nullable=False),
        sa.Column("vmin", sa.Double(), nullable=True),
        sa.Column("vmax", sa.Double(), nullable=True),
        sa.Column("vsum", sa.Double(), nullable=False),
        sa.Column("nfinite", sa.Integer(), nullable=False),
        sa.Column("nnan", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("series_id", "first_step", name="uq_point_blocks_series_first"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_run", "events", ["run_id", "id"])
    op.create_index("ix_events_created_at", "events", ["created_at"])
    _points_to_blocks(op.get_bind())
    op.drop_table("points")


def _points_to_blocks(conn: sa.Connection) -> None:
    blocks = sa.table(
        "point_blocks",
        *(
            sa.column(c)
            for c in (
                "series_id",
                "first_step",
                "last_step",
                "n",
                "steps",
                "vals",
                "vmin",
                "vmax",
                "vsum",
                "nfinite",
                "nnan",
                "chunks",
            )
        ),
    )
    series_ids = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT series_id FROM points"))]
    for sid in series_ids:
        rows = conn.execute(
            sa.text("SELECT step, value FROM points WHERE series_id = :s ORDER BY step"), {"s": sid}
        ).all()
        steps = np.array([r[0] for r in rows], dtype=I8)
        vals = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=F8)
        out = []
        for a in range(0, len(steps), BLOCK_POINTS):
            s, v = steps[a : a + BLOCK_POINTS], vals[a : a + BLOCK_POINTS]
            nan, fin = np.isnan(v), np.isfinite(v)
            ok = v[~nan]
            out.append(
                {
                    "series_id": sid,
                    "first_step": int(s[0]),
                    "last_step": int(s[-1]),
                    "n": len(s),
                    # empty: dense, every step from first to last
                    "steps": b"" if int(s[-1]) - int(s[0]) == len(s) - 1 else s.tobytes(),
                    "vals": v.tobytes(),
                    "vmin": float(ok.min()) if len(ok) else None,
                    "vmax": float(ok.max()) if len(ok) else None,
                    "vsum": float(v[fin].sum()),
                    "nfinite": int(fin.sum()),
                    "nnan": int(nan.sum()),
                    "chunks": _chunks(s, v, nan, fin),
                }
            )
        conn.execute(sa.insert(blocks), out)


CHUNK_POINTS = 64
CHUNK_DTYPE = np.dtype(
    [
        ("first", "<i8"),
        ("n", "<i4"),
        ("lo", "<f8"),
        ("hi", "<f8"),
        ("sum", "<f8"),
        ("nfinite", "<i4"),
        ("nnan", "<i4"),
    ]
)


def _chunks(s: np.ndarray, v: np.ndarray, nan: np.ndarray, fin: np.ndarray) -> bytes:
    starts = np.arange(0, len(s), CHUNK_POINTS)
    rec = np.empty(len(starts), dtype=CHUNK_DTYPE)
    rec["first"] = s[starts]
    rec["n"] = np.diff(np.append(starts, len(s)))
    rec["lo"] = np.minimum.reduceat(np.where(nan, np.inf, v), starts)
    rec["hi"] = np.maximum.reduceat(np.where(nan, -np.inf, v), starts)
    rec["sum"] = np.add.reduceat(np.where(fin, v, 0.0), starts)
    rec["nfinite"] = np.add.reduceat(fin.astype(np.int32), starts)
    rec["nnan"] = np.add.reduceat(nan.astype(np.int32), starts)
    return rec.tobytes()


def downgrade() -> None:
    op.create_table(
        "points",
        sa.Column(
            "series_id",
            sa.Integer(),
            sa.ForeignKey("series.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.BigInteger(), primary_key=True),
        sa.Column("value", sa.Double(), nullable=True),
        sqlite_with_rowid=False,
    )
    conn = op.get_bind()
    points = sa.table("points", sa.column("series_id"), sa.column("step"), sa.column("value"))
    for sid, first, steps, vals in conn.execute(
        sa.text(
            "SELECT series_id, first_step, steps, vals FROM point_blocks "
            "ORDER BY series_id, first_step"
        )
    ).all():
        v = np.frombuffer(vals, dtype=F8)
        s = np.frombuffer(steps, dtype=I8) if steps else np.arange(first, first + len(v))
        conn.execute(
            sa.insert(points),
            [
                {"series_id": sid, "step": int(a), "value": None if b != b else float(b)}
                for a, b in zip(s.tolist(), v.tolist(), strict=True)
            ],
        )
    op.drop_index("ix_events_created_at", table_name="events")
    op.drop_index("ix_events_run", table_name="events")
    op.drop_table("events")
    op.drop_table("point_blocks")
