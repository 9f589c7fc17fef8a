"""The runs table: filter, sort and page the runs on the server, with the columns the
dashboard shows (last step, health, duration, metric columns), and the user's own
name / tags / notes of a run.

Sorting by a stored column (created, name, project, status, step, duration, health) is
one SQL query with LIMIT/OFFSET on an index; sorting by a metric column reads that
metric's value for every run that has it (one row per run: min/max from the block
summaries, the last value as the last 8 bytes of the series' last block) and sorts
the filtered ids in Python, which stays well under a second at 10,000 runs.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, DateTime, and_, case, func, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import KeyedColumnElement

from ..models import AlertRow, PointBlockRow, RunRow, SeriesRow
from . import events
from .runs import as_utc, get_run, utcnow

Agg = Literal["min", "max", "last"]
SORTS = ("created_at", "name", "project", "status", "step", "duration", "health")
HEALTH_FILTERS = ("problem", "critical", "warning", "ok")
SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}
MAX_TAGS = 32
MAX_TAG_LEN = 64
MAX_NOTES = 10_000
# metrics where a higher value is better: "best" is their max, everything else's min
_HIGHER_IS_BETTER = re.compile(
    r"(acc|accuracy|auc|auroc|f1|precision|recall|iou|map|bleu|rouge|score|top\d*|r2)$",
    re.IGNORECASE,
)


def higher_is_better(key: str) -> bool:
    last = re.split(r"[/._-]", key.rstrip("/"))[-1]
    return bool(_HIGHER_IS_BETTER.search(last))


@dataclass(frozen=True)
class Metric:
    """A metric column: ``AGG:KEY`` with AGG one of min, max, last, best."""

    spec: str
    key: str
    agg: Agg

    @classmethod
    def parse(cls, spec: str) -> Metric:
        agg, sep, key = spec.partition(":")
        if not sep or not key or agg not in ("min", "max", "last", "best"):
            raise ValueError(
                f"metric column {spec!r}: expected AGG:KEY with AGG one of min, max, last, best "
                "(e.g. best:val/loss)"
            )
        if len(key) > 250 or any(ord(c) < 32 for c in key):
            raise ValueError(f"metric column {spec[:40]!r}: the key has a control character")
        if agg == "best":
            agg = "max" if higher_is_better(key) else "min"
        return cls(spec, key, agg)  # type: ignore[arg-type]

    @property
    def ascending(self) -> bool:
        """The direction that puts the best runs first."""
        if self.agg == "last":
            return not higher_is_better(self.key)
        return self.agg == "min"


@dataclass
class RunQuery:
    project: str | None = None
    status: str | None = None
    q: str | None = None
    tag: str | None = None
    health: str | None = None
    sort: str = "created_at"
    order: Literal["asc", "desc"] | None = None
    limit: int = 1000
    offset: int = 0
    metrics: list[Metric] = field(default_factory=list)

    def sort_metric(self) -> Metric | None:
        if self.sort in SORTS:
            return None
        return Metric.parse(self.sort)

    def descending(self) -> bool:
        if self.order is not None:
            return self.order == "desc"
        m = self.sort_metric()
        if m is not None:
            return not m.ascending
        return self.sort in ("created_at", "health", "step", "duration")


@dataclass
class TableRow:
    run: RunRow
    health: str  # ok | info | warning | critical
    alert_rule: str | None
    open_alerts: int
    duration_s: float | None
    metrics: dict[str, float | None]


# -- tags and notes ----------------------------------------------------------------------
def load_tags(text: str | None) -> list[str]:
    try:
        tags = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(t) for t in tags] if isinstance(tags, list) else []


def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, non-empty, unique (first kept), at most MAX_TAGS; ValueError says why not."""
    out: list[str] = []
    for t in tags:
        t = str(t).strip()
        if not t:
            continue
        if len(t) > MAX_TAG_LEN:
            raise ValueError(f"tag {t[:20]!r}… is longer than {MAX_TAG_LEN} characters")
        if any(ord(c) < 32 for c in t):
            raise ValueError(f"tag {t!r} has a control character")
        if t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise ValueError(f"{len(out)} tags: at most {MAX_TAGS}")
    return out


def dump_tags(tags: list[str]) -> str:
    return json.dumps(tags, ensure_ascii=False)


def set_meta(
    s: Session,
    run_id: str,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    notes: str | None = None,
) -> RunRow:
    """Rename a run and/or replace its tags or notes (None leaves a field as it is)."""
    row = get_run(s, run_id)
    if name is not None:
        row.name = name
    if tags is not None:
        row.tags = dump_tags(clean_tags(tags))
    if notes is not None:
        row.notes = notes
    if name is not None or tags is not None or notes is not None:
        row.updated_at = utcnow()
        s.flush()
        events.record(s, run_id, "run")  # other open run lists show the change
    return row


def note_steps(s: Session, run_id: str, ranges: dict[str, tuple[int, int]]) -> None:
    """Keep ``runs.last_step`` at the highest step stored (called with a batch's step ranges)."""
    if not ranges:
        return
    top = max(last for _, last in ranges.values())
    s.execute(
        update(RunRow)
        .where(RunRow.id == run_id, or_(RunRow.last_step.is_(None), RunRow.last_step < top))
        .values(last_step=top)
    )


# -- the query ---------------------------------------------------------------------------
def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _health_rank() -> Any:
    rank = case((AlertRow.severity == "critical", 3), (AlertRow.severity == "warning", 2), else_=1)
    return (
        select(func.coalesce(func.max(rank), 0))
        .where(AlertRow.run_id == RunRow.id, AlertRow.status == "open")
        .correlate(RunRow)
        .scalar_subquery()
    )


def _duration(dialect: str) -> Any:
    """Seconds from start to finish; a running run's to now (as ``duration_s``)."""
    now = utcnow()
    now_param = literal(now.replace(tzinfo=None) if dialect == "sqlite" else now, DateTime(True))
    end = case(
        (RunRow.status == "running", now_param),
        else_=func.coalesce(RunRow.finished_at, RunRow.heartbeat_at),
    )
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(RunRow.created_at)) * 86400.0
    return func.extract("epoch", end - RunRow.created_at)


def _filters(rq: RunQuery, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if rq.project:
        where.append(RunRow.project == rq.project)
    if rq.status:
        where.append(RunRow.status == rq.status)
    if rq.tag:
        # the tag as its JSON string, quotes included, in the stored list: exact and case-sensitive
        needle = json.dumps(rq.tag, ensure_ascii=False)
        find = func.instr if dialect == "sqlite" else func.strpos
        where.append(find(RunRow.tags, needle) > 0)
    if rq.q:
        # SQLite's LIKE ignores ASCII case by itself (no lower() per row); PostgreSQL's ILIKE
        pat = _like(rq.q.strip() if dialect == "sqlite" else rq.q.strip().lower())
        cols = (RunRow.name, RunRow.project, RunRow.id, RunRow.tags)
        if dialect == "sqlite":
            where.append(or_(*(c.like(pat, escape="\\") for c in cols)))
        else:
            where.append(or_(*(c.ilike(pat, escape="\\") for c in cols)))
    if rq.health:
        rank = _health_rank()
        if rq.health == "problem":
            where.append(rank >= 2)
        elif rq.health == "ok":  # info alerts are notes, not problems; a crash is not healthy
            where.append(and_(rank <= 1, RunRow.status != "crashed"))
        else:
            where.append(rank == SEVERITY_RANK[rq.health])
    return where


def _order(rq: RunQuery, dialect: str) -> list[Any]:
    desc = rq.descending()
    col: Any = {
        "created_at": RunRow.created_at,
        "name": RunRow.name,
        "project": RunRow.project,
        "status": RunRow.status,
        "step": RunRow.last_step,
    }.get(rq.sort)
    if rq.sort == "duration":
        col = _duration(dialect)
    elif rq.sort == "health":
        col = _health_rank()
    out: list[Any] = [col.is_(None)] if rq.sort == "step" else []  # runs without points last
    out.append(col.desc() if desc else col.asc())
    if rq.sort != "created_at":
        out.append(RunRow.created_at.desc())
    out.append(RunRow.id)
    return out


def query(s: Session, rq: RunQuery) -> tuple[list[TableRow], int]:
    """One page of the runs table and the number of runs that match the filters."""
    dialect = s.get_bind().dialect.name
    where = _filters(rq, dialect)
    total = s.execute(select(func.count()).select_from(RunRow).where(*where)).scalar_one()
    metric = rq.sort_metric()
    if metric is None:
        q = select(RunRow).where(*where).order_by(*_order(rq, dialect))
        rows = list(s.scalars(q.limit(rq.limit).offset(rq.offset)))
    else:
        ids = list(
            s.scalars(select(RunRow.id).where(*where).order_by(RunRow.created_at.desc(), RunRow.id))
        )
        values = metric_values(s, metric)
        have = [i for i in ids if values.get(i) is not None and not math.isnan(values[i])]  # type: ignore[arg-type]
        rest = [i for i in ids if values.get(i) is None or math.isnan(values[i])]  # type: ignore[arg-type]
        have.sort(key=lambda i: values[i], reverse=rq.descending())  # type: ignore[arg-type,return-value]
        page = (have + rest)[rq.offset : rq.offset + rq.limit]
        by_id = {r.id: r for r in s.scalars(select(RunRow).where(RunRow.id.in_(page)))}
        rows = [by_id[i] for i in page if i in by_id]
    return decorate(s, rows, rq.metrics), total


def decorate(s: Session, rows: list[RunRow], metrics: list[Metric]) -> list[TableRow]:
    """The table's computed columns for these runs."""
    ids = [r.id for r in rows]
    health = worst_open_alerts(s, ids)
    values = {m.spec: metric_values(s, m, ids) for m in metrics}
    now = utcnow()
    out = []
    for r in rows:
        level, rule, n = health.get(r.id, ("ok", None, 0))
        out.append(
            TableRow(
                run=r,
                health=level,
                alert_rule=rule,
                open_alerts=n,
                duration_s=duration_s(r, now),
                metrics={spec: v.get(r.id) for spec, v in values.items()},
            )
        )
    return out


def duration_s(r: RunRow, now: datetime) -> float | None:
    end = r.finished_at or (now if r.status == "running" else r.heartbeat_at)
    if end is None or r.created_at is None:
        return None
    return max(0.0, (as_utc(end) - as_utc(r.created_at)).total_seconds())


def worst_open_alerts(s: Session, ids: list[str]) -> dict[str, tuple[str, str, int]]:
    """run id -> (severity of its worst open alert, that alert's rule, open alerts)."""
    if not ids:
        return {}
    q = select(AlertRow.run_id, AlertRow.rule, AlertRow.severity, AlertRow.step, AlertRow.id).where(
        AlertRow.run_id.in_(ids), AlertRow.status == "open"
    )
    best: dict[str, tuple] = {}
    count: dict[str, int] = {}
    for run_id, rule, sev, step, aid in s.execute(q):
        count[run_id] = count.get(run_id, 0) + 1
        rank = (SEVERITY_RANK.get(sev, 0), step, aid)
        if run_id not in best or rank > best[run_id][0]:
            best[run_id] = (rank, sev, rule)
    return {i: (b[1], b[2], count[i]) for i, b in best.items()}


def metric_values(s: Session, m: Metric, ids: list[str] | None = None) -> dict[str, float | None]:
    """run id -> the metric's value (min / max of its non-NaN points, or its last point), for
    the runs in ``ids`` (all runs when None) that have the key."""
    if ids is not None and not ids:
        return {}
    sr, pb = SeriesRow, PointBlockRow
    cond: list[ColumnElement[bool]] = [sr.key == m.key, sr.kind == "scalar"]
    if ids is not None:
        cond.append(sr.run_id.in_(ids))
    if m.agg in ("min", "max"):
        agg = func.min(pb.vmin) if m.agg == "min" else func.max(pb.vmax)
        q = select(sr.run_id, agg).join(pb, pb.series_id == sr.id).where(*cond)
        return {i: (None if v is None else float(v)) for i, v in s.execute(q.group_by(sr.run_id))}
    last_first = (
        select(func.max(pb.first_step)).where(pb.series_id == sr.id).correlate(sr).scalar_subquery()
    )
    tail: KeyedColumnElement[Any] | Any
    if s.get_bind().dialect.name == "sqlite":
        tail = func.substr(pb.vals, -8)
    else:
        tail = func.substring(pb.vals, func.octet_length(pb.vals) - 7)
    q = (
        select(sr.run_id, tail)
        .join(pb, pb.series_id == sr.id)
        .where(*cond, pb.first_step == last_first)
    )
    out: dict[str, float | None] = {}
    for run_id, raw in s.execute(q):
        b = bytes(raw) if isinstance(raw, bytes | bytearray | memoryview) else b""
        out[run_id] = struct.unpack("<d", b)[0] if len(b) == 8 else None
    return out
