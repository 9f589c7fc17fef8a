"""Engine creation and the one transactional session helper."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


class DatabaseBusy(Exception):
    """The database is locked or unreachable for now; the client should retry."""


def make_engine(url: str, busy_timeout: float = 15.0) -> Engine:
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
            immediate = conn.get_execution_options().get("fitscope_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine
    return create_engine(u, pool_pre_ping=True, pool_size=10, max_overflow=20)


class Database:
    def __init__(self, url: str, busy_timeout: float = 15.0) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(fitscope_write=True), expire_on_commit=False
        )
        # SQLite has one writer at a time; queueing our own threads on a lock is fairer and
        # quicker than SQLite's sleeping busy handler (other processes still use the latter)
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None
        self.cache: dict = {}  # storage-level caches (series ids), cleared when runs go
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
        with self._write_lock, self._session(self._writer) as s:
            yield s

    @contextmanager
    def _session(self, factory: sessionmaker) -> Iterator[Session]:
        s = factory()
        try:
            yield s
            s.commit()
        except (OperationalError, InterfaceError) as exc:
            # locked (SQLite), restarted or unreachable (PostgreSQL): the client should retry
            _rollback(s)
            raise DatabaseBusy(str(exc.orig)[:200]) from exc
        except DBAPIError as exc:
            _rollback(s)
            if exc.connection_invalidated:
                raise DatabaseBusy(str(exc.orig)[:200]) from exc
            raise
        except BaseException:
            _rollback(s)
            raise
        finally:
            changed = s.info.pop("fitscope_changed", None)
            s.close()
        if changed:
            for notify in self.on_commit:
                notify(changed)

    def dispose(self) -> None:
        self.engine.dispose()


def _rollback(s: Session) -> None:
    """Roll back, even on a connection the database has already dropped."""
    try:
        s.rollback()
    except DBAPIError:
        s.invalidate()
