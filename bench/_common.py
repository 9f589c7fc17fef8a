"""Helpers shared by the benchmarks: a real server subprocess, CPU time, percentiles."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: str, data_dir: Path, port: int, workers: int = 1) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "fitscope.cli", "serve", "--port", str(port), "--db", db]
    if workers != 1:
        cmd += ["--workers", str(workers)]
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, env=dict(os.environ, FITSCOPE_DIR=str(data_dir)), stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds of a process and its children (the server's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def percentiles(xs: list[float], ps: tuple[int, ...]) -> list[float]:
    if not xs:
        return [float("nan")] * len(ps)
    s = sorted(xs)
    return [s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] for p in ps]


@contextlib.contextmanager
def database(url: str | None, tmp: Path) -> Iterator[str]:
    """A fresh database for one benchmark: an SQLite file in ``tmp``, or for a PostgreSQL
    server URL a new database on it (dropped afterwards)."""
    if not url:
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    if not url.startswith("postgresql"):
        yield url
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"fitscope_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
