"""Load test: many runs streaming into one server on loopback, bounded in count and time.

    python bench/load.py [--runs 32] [--seconds 60] [--rate 2] [--points 1000] [--db URL]

Starts a real server (uvicorn subprocess, fresh SQLite file unless --db), then
--runs sender threads each post --rate batches/s of --points points (gzip JSON,
like the hook) for --seconds, while a prober reads the dashboard's endpoints.
Prints points/s, ingest latency p50/p99, dashboard latency p50/p99, server CPU,
and checks that every point was stored exactly once. Talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

KEYS = ["train/loss", "grad_norm/total", "lr/0", "grad_norm/fc1", "grad_norm/fc2"]


@dataclass
class LoadResult:
    runs: int
    seconds: float
    points_sent: int
    points_stored: int
    requests: int
    errors: int
    ingest_ms: list[float] = field(default_factory=list)
    dashboard_ms: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0

    def pct(self, xs: list[float], q: float) -> float:
        if not xs:
            return float("nan")
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))]

    def report(self) -> str:
        return "\n".join(
            [
                f"runs {self.runs}, {self.seconds:.1f} s, {self.requests} ingest requests, {self.errors} errors",
                f"points sent {self.points_sent}, stored {self.points_stored} "
                f"({self.points_sent - self.points_stored} lost), {self.points_sent / self.seconds:,.0f} points/s",
                f"ingest latency p50 {self.pct(self.ingest_ms, 0.5):.1f} ms, p99 {self.pct(self.ingest_ms, 0.99):.1f} ms",
                f"dashboard latency p50 {self.pct(self.dashboard_ms, 0.5):.1f} ms, "
                f"p99 {self.pct(self.dashboard_ms, 0.99):.1f} ms ({len(self.dashboard_ms)} reads)",
                f"server CPU {self.server_cpu_s:.1f} s = {100 * self.server_cpu_s / self.seconds:.0f}% of one core",
            ]
        )


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    gz: bool = False,
) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if gz:
        headers["Content-Encoding"] = "gzip"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r.read()


def _sender(
    port: int,
    run_id: str,
    stop_at: float,
    rate: float,
    points: int,
    out: dict,
    lock: threading.Lock,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    _request(
        conn,
        "POST",
        "/api/v1/runs",
        json.dumps({"id": run_id, "name": f"load-{run_id[:6]}", "project": "load"}).encode(),
    )
    per_key = max(1, points // len(KEYS))
    step = 0
    sent = requests = errors = 0
    lat: list[float] = []
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        steps = list(range(step, step + per_key))
        step += per_key
        body = {
            "batch_id": uuid.uuid4().hex,
            "scalars": {
                k: {"steps": steps, "values": [random.random() for _ in steps]} for k in KEYS
            },
        }
        payload = gzip.compress(json.dumps(body).encode(), 1)
        for _attempt in range(20):  # retried like the hook: same batch id, so stored once
            try:
                status, _ = _request(
                    conn, "POST", f"/api/v1/runs/{run_id}/batches", payload, gz=True
                )
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            if status == 200:
                break
            errors += 1
            time.sleep(0.2)
        lat.append((time.monotonic() - t0) * 1000)
        requests += 1
        sent += per_key * len(KEYS)
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))
    _request(conn, "POST", f"/api/v1/runs/{run_id}/finish", b"{}")
    conn.close()
    with lock:
        out["sent"] += sent
        out["requests"] += requests
        out["errors"] += errors
        out["lat"].extend(lat)


def _prober(port: int, run_ids: list[str], stop_at: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        _request(conn, "GET", "/api/v1/runs")
        _request(
            conn,
            "GET",
            f"/api/v1/runs/{random.choice(run_ids)}/series?key=train/loss&max_points=1000",
        )
        out.append((time.monotonic() - t0) * 1000)
        time.sleep(0.25)
    conn.close()


def run_load(
    runs: int,
    seconds: float,
    rate: float,
    points: int,
    db_url: str | None = None,
    workdir: Path | None = None,
) -> LoadResult:
    """Start a server, stream into it, check every point arrived once; always stops the server."""
    tmp = Path(workdir or tempfile.mkdtemp(prefix="fitscope-load-"))
    db_url = db_url or f"sqlite:///{tmp / 'load.db'}"
    port = free_port()
    env = dict(os.environ, FITSCOPE_DIR=str(tmp))
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "fitscope.cli", "serve", "--port", str(port), "--db", db_url],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_healthy(port, server)
        cpu0 = _cpu_seconds(server.pid)
        run_ids = [uuid.uuid4().hex for _ in range(runs)]
        stop_at = time.monotonic() + seconds
        out: dict = {"sent": 0, "requests": 0, "errors": 0, "lat": []}
        lock = threading.Lock()
        dash: list[float] = []
        t0 = time.monotonic()
        threads = [
            threading.Thread(target=_sender, args=(port, r, stop_at, rate, points, out, lock))
            for r in run_ids
        ]
        threads.append(threading.Thread(target=_prober, args=(port, run_ids, stop_at, dash)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 120)
        elapsed = time.monotonic() - t0
        cpu = _cpu_seconds(server.pid) - cpu0
        stored = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for r in run_ids:
            status, body = _request(conn, "GET", f"/api/v1/runs/{r}/keys")
            if status == 200:
                stored += sum(k["count"] for k in json.loads(body))
        conn.close()
        return LoadResult(
            runs,
            elapsed,
            out["sent"],
            stored,
            out["requests"],
            out["errors"],
            out["lat"],
            dash,
            cpu,
        )
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            if _request(conn, "GET", "/api/v1/health")[0] == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--rate", type=float, default=2.0, help="batches per second per run")
    p.add_argument("--points", type=int, default=1000, help="points per batch")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    a = p.parse_args()
    result = run_load(a.runs, a.seconds, a.rate, a.points, a.db)
    print(result.report())
    print(
        "median dashboard read",
        f"{statistics.median(result.dashboard_ms):.1f} ms" if result.dashboard_ms else "n/a",
    )
    sys.exit(0 if result.points_stored == result.points_sent else 1)


if __name__ == "__main__":
    main()
