"""Histograms (e.g. ``val/confidence``): one row per key and step, stored as JSON."""

from __future__ import annotations

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from fitscope.protocol import encode_float

from ..decode import Histogram
from ..models import HistogramRow
from .upsert import insert_for


def store(s: Session, ids: dict[str, int], hists: list[Histogram]) -> list[tuple[str, int]]:
    """Write histograms (a step written again is replaced); returns their (key, step)."""
    stmt = insert_for(s.get_bind().dialect.name, HistogramRow.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["series_id", "step"], set_={"data": stmt.excluded.data}
    )
    latest: dict[tuple[int, int], dict] = {}  # one row per (series, step): the last one sent
    for h in hists:
        latest[(ids[h.key], h.step)] = {
            "series_id": ids[h.key],
            "step": h.step,
            "data": _json(h.data),
        }
    s.execute(stmt, list(latest.values()))
    return [(h.key, h.step) for h in hists]


def _json(data: dict) -> str:
    return orjson.dumps({k: [encode_float(x) for x in v] for k, v in data.items()}).decode()


def read(
    s: Session,
    sid: int,
    after: int | None = None,
    step: int | None = None,
    latest: bool = False,
) -> list[tuple[int, dict]]:
    """(step, data) of a histogram series in step order; data stays wire-encoded.

    ``after``: only steps after it; ``step``: only that step; ``latest``: only the newest."""
    q = select(HistogramRow.step, HistogramRow.data).where(HistogramRow.series_id == sid)
    if after is not None:
        q = q.where(HistogramRow.step > after)
    if step is not None:
        q = q.where(HistogramRow.step == step)
    q = q.order_by(HistogramRow.step.desc()).limit(1) if latest else q.order_by(HistogramRow.step)
    return [(st, orjson.loads(data)) for st, data in s.execute(q)]
