"""Waking the live streams when something changes, in this process and across processes.

Every write that matters records an event row (``storage/events.py``).  Streams
sleep on an ``asyncio.Event`` per subscription and, when woken, read the event
rows after their cursor.  A stream is woken only for its own run (run-list
streams: only for run-level changes), never polled.  What wakes them, once per
server process for all its streams:

- in this process: ``Database.on_commit`` calls :meth:`Hub.wake` after each commit;
- other processes on PostgreSQL: ``LISTEN`` on the channel that each recording
  transaction ``pg_notify``\\ s (delivered at commit), one connection per process;
- other processes on SQLite (no notifications there): :func:`feed`, one query for
  new event rows every ``live_poll_s`` while any stream is open (on PostgreSQL it
  runs every few seconds, in case a notification was lost).

Also here: the sweeper that marks runs without a heartbeat as crashed (so that
streams and lists show it without anyone asking) and prunes old events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

from sqlalchemy.engine import make_url
from starlette.concurrency import run_in_threadpool

from .db import Database
from .settings import Settings
from .storage import events, runs
from .storage.runs import utcnow

log = logging.getLogger("fitscope.live")
ALL = events.ALL  # subscription key of the run-list streams


class Hub:
    """In-process wake-ups: a set of waiting streams per run id (and ``ALL``)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.listening = False  # a PostgreSQL LISTEN connection is up

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def wake(self, run_ids: set[str] | list[str]) -> None:
        """Thread-safe: wake the streams of these runs and every run-list stream."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop shutting down
            loop.call_soon_threadsafe(self._wake, list(run_ids))

    def _wake(self, run_ids: list[str]) -> None:
        # ``ALL`` (the run-list streams) is among the ids when a run-level change happened
        for rid in run_ids:
            for ev in self._waiters.get(rid, ()):
                ev.set()

    @contextlib.contextmanager
    def subscribe(self, run_id: str) -> Iterator[asyncio.Event]:
        ev = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(ev)
        try:
            yield ev
        finally:
            subs = self._waiters.get(run_id)
            if subs is not None:
                subs.discard(ev)
                if not subs:
                    self._waiters.pop(run_id, None)

    def subscribers(self) -> int:
        return sum(len(v) for v in self._waiters.values())

    def wake_all(self) -> None:
        self.wake(list(self._waiters))


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://…`` as a plain libpq URL for psycopg."""
    u = make_url(sqlalchemy_url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


async def listen_postgres(url: str, hub: Hub, retry_s: float = 1.0) -> None:
    """Forward NOTIFYs on the events channel to ``hub`` until cancelled; reconnect on errors.

    After a reconnect every stream is woken, since notifications may have been missed."""
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {events.CHANNEL}")
                hub.listening = True
                hub.wake_all()
                async for note in conn.notifies():
                    hub.wake([note.payload])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: log, wait, reconnect
            log.warning("fitscope: LISTEN connection lost (%s); reconnecting", exc)
        finally:
            hub.listening = False
        await asyncio.sleep(retry_s)


PG_SAFETY_POLL_S = 5.0  # with LISTEN up, look for new events only in case one was missed
FEED_ROWS = 5000


def _changes(db: Database, after: int | None) -> tuple[int, set[str], bool]:
    """(newest event id, the topics to wake for events after ``after``, more waiting);
    ``after`` None: only the newest id."""
    with db.session() as s:
        if after is None:
            return events.last_id(s), set(), False
        rows = events.changes(s, after, FEED_ROWS)
    if not rows:
        return after, set(), False
    topics = {run_id for _, run_id, _ in rows}
    if any(kind in events.RUN_KINDS for _, _, kind in rows):
        topics.add(ALL)
    return rows[-1][0], topics, len(rows) == FEED_ROWS


async def feed(db: Database, hub: Hub, poll_s: float) -> None:
    """The process's one look at the change feed for writes by other processes: wakes the
    streams of the runs that changed (instead of every stream polling by itself)."""
    last: int | None = None
    while True:
        await asyncio.sleep(PG_SAFETY_POLL_S if hub.listening else poll_s)
        if not hub.subscribers():
            last = None  # nobody to wake; start from the newest event when someone comes
            continue
        try:
            if last is None:
                # streams that opened while nobody was counting: let each read from its cursor
                last, _, _ = await run_in_threadpool(_changes, db, None)
                hub.wake_all()
                continue
            more = True
            while more:
                last, topics, more = await run_in_threadpool(_changes, db, last)
                if topics:
                    hub.wake(topics)
        except Exception as exc:  # noqa: BLE001 - the database is away: try again later
            log.debug("fitscope: change feed: %s", exc)


def mark_crashed(db: Database, timeout_s: float) -> list[str]:
    """Mark runs silent for ``timeout_s`` as crashed (a write only when one is due).

    Not within ``timeout_s`` of this process's start or of the database's last outage: a
    heartbeat could not have arrived then, so silence is no sign of a crash."""
    if time.monotonic() - db.last_outage < timeout_s:
        return []
    with db.session() as s:
        due = runs.crash_due(s, timeout_s)
    if not due:
        return []
    with db.write_session() as s:
        return runs.mark_crashed(s, timeout_s)


def sweep_once(db: Database, settings: Settings) -> list[str]:
    """Mark silent runs crashed and prune old events; returns the runs marked."""
    crashed = mark_crashed(db, settings.heartbeat_timeout)
    with db.write_session() as s:
        events.prune(s, utcnow() - timedelta(seconds=settings.event_retention_s))
    return crashed


MIN_SWEEP_S = 0.05  # however short the heartbeat timeout, the sweeper does not spin


def sweep_interval(settings: Settings) -> float:
    """Seconds between sweeps: ``crash_check_s``, or a quarter of the heartbeat timeout when
    that is shorter, so a silent run shows as crashed within 1.25 timeouts.  The sweeper is
    the only place runs are marked crashed: reads never write."""
    return min(settings.crash_check_s, max(settings.heartbeat_timeout / 4, MIN_SWEEP_S))


async def sweeper(db: Database, settings: Settings) -> None:
    interval = sweep_interval(settings)
    while True:
        await asyncio.sleep(interval)
        try:
            await run_in_threadpool(sweep_once, db, settings)
        except Exception as exc:  # noqa: BLE001 - a busy database now is no reason to stop
            log.warning("fitscope: crash check failed: %s", exc)


@contextlib.asynccontextmanager
async def running(db: Database, settings: Settings, hub: Hub) -> AsyncIterator[None]:
    """Start the hub and its background tasks for the app's lifetime."""
    hub.bind(asyncio.get_running_loop())
    db.on_commit.append(hub.wake)
    tasks = [
        asyncio.create_task(sweeper(db, settings)),
        asyncio.create_task(feed(db, hub, settings.live_poll_s)),
    ]
    if db.dialect == "postgresql":
        tasks.append(asyncio.create_task(listen_postgres(libpq_url(db.url), hub)))
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        db.on_commit.remove(hub.wake)
