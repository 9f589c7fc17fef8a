"""Shared fixtures: fresh databases, a real server on a free port, optional PostgreSQL and Chromium.

Tests that need PostgreSQL or Chromium skip on a machine without them, except
under ``CI=true``, where a missing dependency fails the test instead.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "FITSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REPO = Path(__file__).resolve().parent.parent


def need(ok: bool, why: str) -> None:
    """Skip (or, in CI, fail) a test whose outside dependency is missing."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fitscope.db'}"


def _pg_available() -> str | None:
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine, text

        eng = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    why = _pg_available()
    need(why is None, why or "")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"fitscope_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """An in-process client of a freshly migrated app."""
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    app = create_app(Settings(db_url=db_url, dir=tmp_path))
    with TestClient(app) as c:
        yield c


class ServerProcess:
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
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

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

    def api(self, path: str, **params: object) -> object:
        r = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        r.raise_for_status()
        return r.json()


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real fitscope server (uvicorn in a subprocess) on a free port with a fresh SQLite file."""
    srv = ServerProcess(sqlite_url, tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


def run_script(
    code: str, tmp_path: Path, url: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """Run a training script in a fresh interpreter, as a user would."""
    script = tmp_path / f"train_{uuid.uuid4().hex[:6]}.py"
    script.write_text(code)
    # a loaded CI machine can be slow: let finish() wait rather than spool
    full_env = dict(
        os.environ,
        FITSCOPE_URL=url,
        FITSCOPE_DIR=str(tmp_path / "client"),
        FITSCOPE_FINISH_TIMEOUT="60",
    )
    full_env.update(env)
    return subprocess.run(
        [sys.executable, str(script)], env=full_env, capture_output=True, text=True, timeout=timeout
    )


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def launched_chromium() -> Iterator[Any]:
    """Headless Debian Chromium under Playwright (skips, or fails under CI=true, without it)."""
    exe = chromium_path()
    need(exe is not None, "Chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with launched_chromium() as b:
        yield b
