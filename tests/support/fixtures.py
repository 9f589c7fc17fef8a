"""The suite's pytest plugin (registered in ``tests/conftest.py``): fresh databases, the app
in-process, a real server on a free port, optional PostgreSQL and Chromium.

Tests that need PostgreSQL or Chromium skip on a machine without them, except
under ``CI=true``, where a missing dependency fails the test instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.servers import ServerProcess, fresh_database
from tests.support.web import CHROMIUM_ARGS, chromium_path

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.support.hook import AppServer

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "FITSCOPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def need(ok: bool, why: str) -> None:
    """Skip (or, in CI, fail) a test whose outside dependency is missing."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {why}")
    pytest.skip(why)


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
    with fresh_database(PG_ADMIN_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """An in-process client of a freshly migrated app."""
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    app = create_app(Settings(db_url=db_url, dir=tmp_path))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """A real fitscope server (uvicorn in a subprocess) on a free port with a fresh SQLite file."""
    srv = ServerProcess(sqlite_url, tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


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


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser for a module whose pages share a module-scoped server."""
    with launched_chromium() as b:
        yield b


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[AppServer]:
    """The real app on a fresh SQLite file, reached through an injected transport."""
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app
    from tests.support.hook import AppServer  # torch: imported only by the tests that train

    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'app.db'}", dir=tmp_path))
    with TestClient(app) as c:
        yield AppServer(c, tmp_path)
