"""Full-resolution export of a series or a whole run, streamed (CSV or JSON lines)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from fitscope.protocol import API_PREFIX, encode_float

from ..db import Database
from ..storage import alerts as alert_store
from ..storage import histograms as hist_store
from ..storage import points
from ..storage import runs as run_store
from ..storage.blocks import Block
from ..walltime import WallClock
from .deps import DbDep, RunId
from .serialize import alert_json, run_detail

router = APIRouter(prefix=f"{API_PREFIX}/runs", tags=["export"])
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")
PAGE = 64  # blocks (up to ~130k points) read per database round trip


def _num(x: float) -> str:
    if x - x == 0:  # finite (NaN and the infinities give NaN)
        return repr(x)
    return f'"{encode_float(x)}"'


def _csv_num(x: float) -> str:
    return _num(x).strip('"')


def _csv_field(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()


def _times(clock: WallClock | None, b: Block) -> list:
    return [None] * len(b.steps) if clock is None else clock.at(b.steps).tolist()


def _point_lines(fmt: str, pre: str, b: Block, clock: WallClock | None) -> str:
    steps, values, times = b.steps.tolist(), b.values.tolist(), _times(clock, b)
    if fmt == "csv":
        return "".join(
            f"{pre}{st},{_csv_num(v)},{'' if t is None else repr(t)}\n"
            for st, v, t in zip(steps, values, times, strict=True)
        )
    return "".join(
        f'{pre}{st},"value":{_num(v)},"time":{"null" if t is None else repr(t)}}}\n'
        for st, v, t in zip(steps, values, times, strict=True)
    )


def _blocks(db: Database, sid: int) -> Iterator[Block]:
    after = None
    while True:
        with db.session() as s:
            page = points.iter_blocks(s, sid, after, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].first_step


def _lines(
    db: Database, run_id: str, series: list, hists: list, fmt: str, head: dict | None
) -> Iterator[bytes]:
    with db.session() as s:
        clock = WallClock.of_run(s, run_id)
    if fmt == "csv":
        yield b"key,step,value,time\n"
    elif head is not None:
        yield orjson.dumps({"type": "run", **head}) + b"\n"
    for sid, key in series:
        if fmt == "csv":
            pre = _csv_field(key) + ","
        else:
            pre = '{"type":"point","key":' + orjson.dumps(key).decode() + ',"step":'
        for b in _blocks(db, sid):
            yield _point_lines(fmt, pre, b, clock).encode()
    if fmt == "jsonl" and head is not None:
        with db.session() as s:
            for sid, key in hists:
                for step, data in hist_store.read(s, sid):
                    yield (
                        orjson.dumps({"type": "histogram", "key": key, "step": step, **data})
                        + b"\n"
                    )
            for a in alert_store.list_alerts(s, run_id):
                yield (orjson.dumps({"type": "alert", **alert_json(a)}) + b"\n")


@router.get(
    "/{run_id}/export",
    summary="Every point of a run or of one series, streamed as CSV or JSON lines",
    description="`format=jsonl` (default): a `run` line, then one `point` line per point "
    "(`key`, `step`, `value`, `time`), then `histogram` and `alert` lines. `format=csv`: "
    "`key,step,value,time` rows of the scalar series. `time` is the step's Unix time in "
    "seconds, interpolated from the hook's `time/wall` series (empty/null without it). With `key`, only that series' points. "
    "Non-finite values are `NaN`, `Infinity`, `-Infinity`.",
    response_class=StreamingResponse,
)
def export(
    run_id: RunId,
    db: DbDep,
    format: Literal["jsonl", "csv"] = Query(default="jsonl"),
    key: str | None = Query(default=None, min_length=1, max_length=250),
) -> StreamingResponse:
    with db.session() as s:
        head = run_detail(run_store.get_run(s, run_id)).model_dump(mode="json")
        if key is not None:
            sid = points.series_id(s, run_id, key)
            series = [] if sid is None else [(sid, key)]
            hists: list = []
        else:
            series = points.run_series(s, run_id, "scalar")
            hists = points.run_series(s, run_id, "histogram")
    name = run_id if key is None else f"{run_id}-{_SAFE.sub('_', key)}"
    media = "text/csv" if format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        _lines(db, run_id, series, hists, format, None if key is not None else head),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}.{format}"'},
    )
