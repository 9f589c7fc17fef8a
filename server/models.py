"""ORM models. The Alembic history in ``migrations/`` creates exactly this schema
(a test compares the two)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    __tablename__ = "runs"
    # the runs table sorts and pages on these (migration 0004_runs_table)
    __table_args__ = (
        Index("ix_runs_name", "name", "created_at"),
        Index("ix_runs_status", "status", "created_at"),
        Index("ix_runs_last_step", "last_step"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="running")
    config: Mapped[str] = mapped_column(Text, default="{}")  # JSON, non-finite floats encoded
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    tags: Mapped[str] = mapped_column(Text, default="[]", server_default="[]")  # JSON list of str
    notes: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the highest step of any of its scalar series (kept at ingest, for the runs table)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # JSON {"type", "message"} from the client's finish (an uncaught exception), else NULL
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SeriesRow(Base):
    """One named series of a run: a scalar metric or a histogram."""

    __tablename__ = "series"
    __table_args__ = (
        UniqueConstraint("run_id", "key", name="uq_series_run_key"),
        Index("ix_series_key", "key", "run_id"),  # a metric column of the runs table
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))
    kind: Mapped[str] = mapped_column(String(16))  # "scalar" | "histogram"


class PointBlockRow(Base):
    """A block of consecutive points of one scalar series (see ``storage/blocks.py``).

    ``steps``/``vals`` are little-endian int64/float64 arrays; NaN and ±Inf are stored
    as themselves.  The block's step ranges within a series never overlap.  ``vmin``/``vmax``
    are over the non-NaN values (NULL when all are NaN), ``vsum`` over the finite ones.
    """

    __tablename__ = "point_blocks"
    __table_args__ = (
        UniqueConstraint("series_id", "first_step", name="uq_point_blocks_series_first"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[int] = mapped_column(Integer, ForeignKey("series.id", ondelete="CASCADE"))
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(Integer)
    steps: Mapped[bytes] = mapped_column(LargeBinary)
    vals: Mapped[bytes] = mapped_column(LargeBinary)
    vmin: Mapped[float | None] = mapped_column(Double, nullable=True)
    vmax: Mapped[float | None] = mapped_column(Double, nullable=True)
    vsum: Mapped[float] = mapped_column(Double)
    nfinite: Mapped[int] = mapped_column(Integer)
    nnan: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[bytes] = mapped_column(LargeBinary)  # per-64-point summaries (blocks.py)


class HistogramRow(Base):
    """One histogram at one step: JSON with ``edges``, ``counts`` and optional extra per-bin arrays."""

    __tablename__ = "histograms"
    __table_args__ = {"sqlite_with_rowid": False}

    series_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("series.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    data: Mapped[str] = mapped_column(Text)


class BatchRow(Base):
    """Ids of the batches already stored, so that a resent batch is stored once."""

    __tablename__ = "batches"
    __table_args__ = {"sqlite_with_rowid": False}

    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertRow(Base):
    """A diagnosis: one row per episode, updated while it lasts."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_run", "run_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(BigInteger)
    onset_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    message: Mapped[str] = mapped_column(Text)
    remedy: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    status: Mapped[str] = mapped_column(String(16), default="open")  # "open" | "resolved"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DiagnosisStateRow(Base):
    """The diagnosis engine's bounded per-run state (JSON), saved with each batch it reflects."""

    __tablename__ = "diagnosis_state"

    run_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """The change feed behind the live streams: one row per stored batch, alert change or
    run status change.  ``data`` says what changed (keys and step ranges, alert ids), not
    the points themselves; a stream reads those from storage when it sends the event.
    ``run_id`` has no foreign key: a run's deletion is itself an event."""

    __tablename__ = "events"
    # AUTOINCREMENT: SQLite must never reuse the id of a deleted event (streams resume by id)
    __table_args__ = (Index("ix_events_run", "run_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # points | histograms | alerts | run | deleted
    data: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
