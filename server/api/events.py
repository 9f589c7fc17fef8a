"""Live push: server-sent events for one run and for the run list.

``GET /api/v1/runs/{id}/events`` sends ``points`` {"series": {key: {steps, values}}},
``histograms`` (one histogram per event), ``alerts`` [AlertOut] (new or changed),
``run`` RunOut (on connect and at every status change) and ``deleted`` {"id"}.
``GET /api/v1/events/runs`` sends ``runs`` [RunOut] (new or changed runs) and
``deleted`` {"id"}.  Each event carries an ``id``; reconnecting with
``Last-Event-ID`` (browsers do it by themselves) or ``?since=ID`` resumes after
it, as long as the events are retained (``event_retention_s``).  Without either,
a stream starts with what happens after it connects (``?since=0``: from the
oldest retained event).  Floats are wire-encoded as everywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from fitscope.protocol import API_PREFIX

from ..db import Database, DatabaseBusy
from ..jsonout import dumps, wire
from ..live import ALL, Hub
from ..storage import alerts as alert_store
from ..storage import events, points
from ..storage import histograms as hist_store
from ..storage import runs as run_store
from ..storage.errors import RunNotFound
from .deps import WORKER, DbDep, RunId, SettingsDep
from .serialize import alert_json, run_out

router = APIRouter(prefix=API_PREFIX, tags=["live"])

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing an idle stream
BUSY_RETRY_S = 1.0  # a read that found the database busy is tried again after this
BATCH = 200  # events read per round
MAX_EVENT_ID = 2**63 - 1
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Fitscope-Worker": WORKER}

Fetch = Callable[[int], tuple[list[bytes], int, bool, bool]]


def _sse(kind: str, data: object, event_id: int | None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: ".encode() + dumps(data) + b"\n\n"


def _groups(rows: list[tuple[int, str, dict]]) -> list[tuple[str, list[tuple[int, dict]]]]:
    """Consecutive events of one kind, so that e.g. ten batches make one ``points`` event."""
    out: list[tuple[str, list[tuple[int, dict]]]] = []
    for i, kind, data in rows:
        if out and out[-1][0] == kind:
            out[-1][1].append((i, data))
        else:
            out.append((kind, [(i, data)]))
    return out


def run_messages(db: Database, run_id: str, cursor: int) -> tuple[list[bytes], int, bool, bool]:
    """(messages, new cursor, run deleted, more waiting) for one run after ``cursor``."""
    msgs: list[bytes] = []
    with db.session() as s:
        rows = events.for_run(s, run_id, cursor, BATCH)
        for kind, items in _groups(rows):
            last = items[-1][0]
            if kind == "deleted":
                msgs.append(_sse("deleted", {"id": run_id}, last))
                return msgs, last, True, False
            try:
                msgs.extend(_materialize(s, run_id, kind, items, last))
            except RunNotFound:  # deleted meanwhile: its own event follows
                continue
    cursor = rows[-1][0] if rows else cursor
    return msgs, cursor, False, len(rows) == BATCH


def _materialize(s, run_id: str, kind: str, items: list, last: int) -> list[bytes]:  # type: ignore[no-untyped-def]
    if kind == "points":
        spans: dict[str, list[int]] = {}
        for _, data in items:
            for key, (lo, hi) in data["ranges"].items():
                span = spans.setdefault(key, [lo, hi])
                span[0], span[1] = min(span[0], lo), max(span[1], hi)
        series = {}
        for key, (lo, hi) in spans.items():
            st, va = points.read_arrays(s, run_id, key, lo, hi)
            series[key] = {"steps": st, "values": wire(va)}
        return [_sse("points", {"series": series}, last)]
    if kind == "histograms":
        seen = list(dict.fromkeys((k, st) for _, data in items for k, st in data["items"]))
        out = []
        for key, step in seen:
            sid = points.series_id(s, run_id, key, "histogram")
            for hstep, hdata in hist_store.read(s, sid, step=step) if sid else []:
                out.append((key, hstep, hdata))
        return [
            _sse("histograms", {"key": k, "step": st, **d}, last if n == len(out) - 1 else None)
            for n, (k, st, d) in enumerate(out)
        ]
    if kind == "alerts":
        ids = sorted({i for _, data in items for i in data["ids"]})
        return [_sse("alerts", [alert_json(a) for a in alert_store.by_ids(s, run_id, ids)], last)]
    if kind == "run":
        row = run_store.get_run(s, run_id)
        return [_sse("run", run_out(row).model_dump(mode="json"), last)]
    return []


def list_messages(db: Database, cursor: int) -> tuple[list[bytes], int, bool, bool]:
    """(messages, new cursor, False, more waiting) for the run list after ``cursor``."""
    with db.session() as s:
        rows = events.for_run_list(s, cursor, BATCH)
        if not rows:
            return [], cursor, False, False
        last = rows[-1][0]
        latest: dict[str, str] = {}
        for _, run_id, kind in rows:
            latest.pop(run_id, None)
            latest[run_id] = kind
        changed, gone = [], []
        for run_id, kind in latest.items():
            if kind == "deleted":
                gone.append(run_id)
                continue
            try:
                changed.append(run_out(run_store.get_run(s, run_id)).model_dump(mode="json"))
            except RunNotFound:
                gone.append(run_id)
    msgs = []
    if changed:
        msgs.append(_sse("runs", changed, None if gone else last))
    msgs.extend(
        _sse("deleted", {"id": r}, last if n == len(gone) - 1 else None) for n, r in enumerate(gone)
    )
    return msgs, last, False, len(rows) == BATCH


def _cursor(db: Database, since: int | None, last_event_id: str | None) -> int:
    if since is not None:
        return since
    if last_event_id and last_event_id.strip().isdigit():
        digits = last_event_id.strip()
        if len(digits) > 19 or int(digits) > MAX_EVENT_ID:
            raise HTTPException(400, f"Last-Event-ID is not an event id (over {MAX_EVENT_ID})")
        return int(digits)
    with db.session() as s:
        return events.last_id(s)


async def _follow(
    fetch: Fetch, hub: Hub, topic: str, cursor: int, first: list[bytes]
) -> AsyncIterator[bytes]:
    """Send what changed after ``cursor`` each time ``topic`` is woken (see ``live.py``: one
    change feed per process wakes the streams of the runs that changed; no stream polls)."""
    yield b"retry: 1000\n\n"
    for m in first:
        yield m
    sent = time.monotonic()
    with hub.subscribe(topic) as woken:
        woken.set()  # read once: something may have happened since the cursor
        while True:
            try:
                await asyncio.wait_for(woken.wait(), KEEPALIVE_S)
            except asyncio.TimeoutError:
                pass
            if not woken.is_set():
                yield b": keepalive\n\n"
                sent = time.monotonic()
                continue
            woken.clear()  # before reading: a wake-up during the read is not lost
            try:
                msgs, cursor, done, more = await run_in_threadpool(fetch, cursor)
            except DatabaseBusy:
                await asyncio.sleep(BUSY_RETRY_S)
                woken.set()
                continue
            for m in msgs:
                yield m
            if msgs:
                sent = time.monotonic()
            if done:
                return
            if more:
                woken.set()
            elif time.monotonic() - sent > KEEPALIVE_S:
                yield b": keepalive\n\n"
                sent = time.monotonic()


def _check_capacity(hub: Hub, limit: int) -> None:
    if hub.subscribers() >= limit:
        raise HTTPException(
            503,
            f"this server process has {limit} live streams open (FITSCOPE_MAX_STREAMS); "
            "retry later",
            headers={"Retry-After": "5"},
        )


def _initial_run(db: Database, run_id: str, cursor: int) -> list[bytes]:
    with db.session() as s:
        row = run_store.get_run(s, run_id)  # RunNotFound -> 404 before the stream starts
        return [_sse("run", run_out(row).model_dump(mode="json"), cursor)]


@router.get(
    "/runs/{run_id}/events",
    summary="Live stream of a run (server-sent events)",
    description="Events `points`, `histograms`, `alerts`, `run` (RunOut, with `error`), "
    "`deleted`; resume with `Last-Event-ID` or `?since=` (an id over 2^63-1 is a 400). "
    "Past `FITSCOPE_MAX_STREAMS` open streams in the server process: 503 + Retry-After.",
    response_class=StreamingResponse,
)
async def run_events(
    run_id: RunId,
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    since: int | None = Query(
        default=None, ge=0, le=MAX_EVENT_ID, description="resume after this event id"
    ),
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    _check_capacity(hub, settings.max_streams)
    cursor = await run_in_threadpool(_cursor, db, since, last_event_id)
    first = await run_in_threadpool(_initial_run, db, run_id, cursor)

    def fetch(c: int) -> tuple[list[bytes], int, bool, bool]:
        return run_messages(db, run_id, c)

    stream = _follow(fetch, hub, run_id, cursor, first)
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)


@router.get(
    "/events/runs",
    summary="Live stream of the run list (server-sent events)",
    description="Events `runs` [RunOut] for new or changed runs and `deleted` {id}; resume with "
    "`Last-Event-ID` or `?since=` (an id over 2^63-1 is a 400). Past `FITSCOPE_MAX_STREAMS` "
    "open streams in the server process: 503 + Retry-After.",
    response_class=StreamingResponse,
)
async def runs_events(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    since: int | None = Query(
        default=None, ge=0, le=MAX_EVENT_ID, description="resume after this event id"
    ),
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    _check_capacity(hub, settings.max_streams)
    cursor = await run_in_threadpool(_cursor, db, since, last_event_id)

    def fetch(c: int) -> tuple[list[bytes], int, bool, bool]:
        return list_messages(db, c)

    stream = _follow(fetch, hub, ALL, cursor, [])
    return StreamingResponse(stream, media_type="text/event-stream", headers=HEADERS)
