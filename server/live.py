"""Waking the live streams when something changes, in this process and across processes.

Every write that matters records an event row (``storage/events.py``).  Streams
sleep on an ``asyncio.Event`` per subscription and, when woken, read the event
rows after their cursor.  What wakes them:

- in this process: ``Database.on_commit`` calls :meth:`Hub.wake` after each commit;
- other processes on PostgreSQL: ``LISTEN`` on the channel that each recording
  transaction ``pg_notify``\\ s (delivered at commit), one connection per process;
- other processes on SQLite (no notifications there): a short poll, ``live_poll_s``.

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
ALL = "*"  # subscription key of the run-list streams


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
        for rid in [*run_ids, ALL]:
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
                hub.wake(list(hub._waiters))
                async for note in conn.notifies():
                    hub.wake([note.payload])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: log, wait, reconnect
            log.warning("fitscope: LISTEN connection lost (%s); reconnecting", exc)
        finally:
            hub.listening = False
        await asyncio.sleep(retry_s)


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


async def sweeper(db: Database, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.crash_check_s)
        try:
            await run_in_threadpool(sweep_once, db, settings)
        except Exception as exc:  # noqa: BLE001 - a busy database now is no reason to stop
            log.warning("fitscope: crash check failed: %s", exc)


@contextlib.asynccontextmanager
async def running(db: Database, settings: Settings, hub: Hub) -> AsyncIterator[None]:
    """Start the hub and its background tasks for the app's lifetime."""
    hub.bind(asyncio.get_running_loop())
    db.on_commit.append(hub.wake)
    tasks = [asyncio.create_task(sweeper(db, settings))]
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
