"""A real ``fitscope serve`` subprocess on a free loopback port, and a fresh PostgreSQL
database, for the tests and the benchmarks alike.

No pytest here: the benchmarks (``python -m bench.<name>``) start their servers with it too,
so there is one way to start, wait for and stop a server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str = "fitscope_test") -> Iterator[str]:
    """A new database on the PostgreSQL server of ``admin_url``, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def backends_terminated(
    db_url: str, every: float, only_active: bool = False
) -> Iterator[list[int]]:
    """While inside: a thread ends every connection to ``db_url``'s PostgreSQL database each
    ``every`` seconds (only those running a statement with ``only_active``); yields the list
    of how many it ended each time."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    dbname = make_url(db_url).database
    admin = create_engine(make_url(db_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    sql = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = :d AND pid <> pg_backend_pid()"
        + (" AND state = 'active'" if only_active else "")
    )
    stop = threading.Event()
    killed: list[int] = []

    def killer() -> None:
        while not stop.is_set():
            with admin.connect() as c:
                n = c.execute(sql, {"d": dbname}).scalar()
            killed.append(int(n or 0))
            time.sleep(every)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        yield killed
    finally:
        stop.set()
        t.join(5)
        admin.dispose()


class ServerProcess:
    """``fitscope serve`` on ``db_url`` with its data in ``data_dir`` (its log too); extra
    ``args`` (``--workers 2``) and ``env`` (``FITSCOPE_...`` settings) are passed on.

    ``start()`` returns once ``/api/v1/health`` answers; ``stop()`` (or leaving a ``with``
    block) terminates it, and kills it if it does not exit.
    """

    def __init__(
        self,
        db_url: str,
        data_dir: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.db_url = db_url
        self.dir = data_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = data_dir / f"server-{self.port}.log"
        self.env = env or {}
        self.args = args or []

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = dict(os.environ, FITSCOPE_DIR=str(self.dir), **self.env)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fitscope.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    "--db",
                    self.db_url,
                    *self.args,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server was not started"
        return self.proc.pid

    def __enter__(self) -> ServerProcess:
        return self if self.proc else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        r.raise_for_status()
        return r.json()
