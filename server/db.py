"""Engine creation and the one transactional session helper."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from .storage.points import SeriesCache


class DatabaseBusy(Exception):
    """The database is locked or unreachable for now; the client should retry."""


def _dbapi_errors(engine: Engine) -> tuple[type[BaseException], ...]:
    """The driver's own "operational" errors: code that runs statements on the raw DBAPI
    connection (the block writer) sees these, not SQLAlchemy's wrappers."""
    mod = engine.dialect.dbapi
    found = [getattr(mod, name, None) for name in ("OperationalError", "InterfaceError")]
    return tuple(e for e in found if isinstance(e, type) and issubclass(e, BaseException))


def make_engine(url: str, busy_timeout: float = 5.0) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            u, connect_args={"timeout": busy_timeout, "check_same_thread": False}
        )
        busy_ms = int(busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # let SQLAlchemy's "begin" event below emit BEGIN, not pysqlite's own guesswork
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            # read blocks through the OS page cache without copying each page in
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # a writer takes the write lock up front: a deferred transaction that reads and
            # then writes fails at once with "database is locked" when another wrote between
            opts = conn.get_execution_options()
            immediate = opts.get("fitscope_write", False)
            if immediate:
                # what is left of the write's whole wait (queue + lock) for SQLite's busy wait
                ms = int(opts.get("fitscope_busy_ms", busy_ms))
                conn.exec_driver_sql(f"PRAGMA busy_timeout={max(1, ms)}")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(u, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    def __init__(self, url: str, busy_timeout: float = 5.0) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time; queueing our own threads on a lock is fairer and
        # quicker than SQLite's sleeping busy handler (other processes still use the latter)
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.busy_timeout = busy_timeout
        self._driver_errors = _dbapi_errors(self.engine)
        # when the database was last unreachable (or this process started): runs without a
        # heartbeat are not marked crashed until a heartbeat timeout after it
        self.last_outage = time.monotonic()
        self.cache = SeriesCache()  # series ids this process has written to
        # called after a commit with the ids of the runs it changed (the live streams' wake-up)
        self.on_commit: list[Callable[[set[str]], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Commit on success, roll back on error; a locked database becomes ``DatabaseBusy``."""
        with self._session(self.sessions) as s:
            yield s

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A session for a transaction that writes: on SQLite it holds the write lock from its
        first statement (``BEGIN IMMEDIATE``), with this process's writers queued in order."""
        if self._write_lock is None:
            with self._session(self.sessions) as s:
                yield s
            return
        # the whole wait (queued behind this process's other writers, then SQLite's busy wait
        # for other processes) stays within busy_timeout, so that the client gets its 503 (and
        # retries) before its own timeout
        deadline = time.monotonic() + self.busy_timeout
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise DatabaseBusy(f"another write held the database for {self.busy_timeout:g} s")
        try:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise DatabaseBusy(f"another write held the database for {self.busy_timeout:g} s")
            bind = self.engine.execution_options(fitscope_write=True, fitscope_busy_ms=left_ms)
            with self._session(sessionmaker(bind, expire_on_commit=False)) as s:
                yield s
        finally:
            self._write_lock.release()

    @contextmanager
    def _session(self, factory: sessionmaker) -> Iterator[Session]:
        s = factory()
        try:
            yield s
            s.commit()
        except (OperationalError, InterfaceError) as exc:
            # locked (SQLite), restarted or unreachable (PostgreSQL): the client should retry
            if self.dialect != "sqlite":
                _invalidate(s)
            self._rollback(s)
            self.last_outage = time.monotonic()
            raise DatabaseBusy(str(exc.orig)[:200]) from exc
        except DBAPIError as exc:
            self._rollback(s)
            if exc.connection_invalidated:
                self.last_outage = time.monotonic()
                raise DatabaseBusy(str(exc.orig)[:200]) from exc
            raise
        except self._driver_errors as exc:
            # e.g. psycopg's AdminShutdown when PostgreSQL drops the connection mid-write: the
            # connection is discarded, not reset (a reset of a dead one only logs a traceback)
            _invalidate(s)
            self._rollback(s)
            self.last_outage = time.monotonic()
            raise DatabaseBusy(str(exc)[:200]) from exc
        except BaseException:
            self._rollback(s)
            raise
        finally:
            changed = s.info.pop("fitscope_changed", None)
            s.close()
        if changed:
            for notify in self.on_commit:
                notify(changed)

    def _rollback(self, s: Session) -> None:
        _rollback(s)
        # ids cached by the rolled-back transaction (new series) may not exist: forget them
        self.cache.clear()

    def dispose(self) -> None:
        self.engine.dispose()


def _invalidate(s: Session) -> None:
    """Have the pool discard the session's connection instead of resetting it."""
    try:
        s.connection().invalidate()
    except Exception:  # noqa: BLE001 - already gone: nothing to discard
        pass


def _rollback(s: Session) -> None:
    """Roll back, even on a connection the database has already dropped."""
    try:
        s.rollback()
    except DBAPIError:
        s.invalidate()
