"""Load test: many runs streaming into one server on loopback, bounded in count and time.

    python -m bench.load [--runs 32] [--seconds 60] [--rate 2] [--points 1000] [--db URL]
    python -m bench.load --streams 1000 [--writes 0] [--seconds 20] [--db URL]

Starts a real server (uvicorn subprocess, fresh SQLite file unless --db), then
--runs sender threads each post --rate batches/s of --points points (gzip JSON,
like the hook) for --seconds, while a prober reads the dashboard's endpoints.
Prints points/s, ingest latency p50/p99, dashboard latency p50/p99, server CPU,
and checks that every point was stored exactly once. Talks to 127.0.0.1 only.

With --streams: the live-stream case. Opens that many idle server-sent-event
streams (half on runs, one run each, half on the run list), then for --seconds
posts --writes small batches per second round-robin to those runs while a prober
reads /api/v1/health 20 times a second (before that, --seconds with the streams
alone measure their idle cost). Prints the server's CPU (share of one core),
health latency p50/p99/max and the events the streams received; exits 1
when a target is missed (idle: < 5 % of a core and health p99 < 50 ms; with
writes: health p99 < 100 ms) or a stream was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench._common import cpu_seconds
from fitscope.protocol import KEYS, PREFIXES, batch_body, paths
from tests.support.servers import ServerProcess

# the series each sender posts, named like the hook's
SERIES = [
    KEYS.TRAIN_LOSS,
    KEYS.GRAD_NORM_TOTAL,
    KEYS.LR_FIRST,
    f"{PREFIXES.GRAD_NORM}fc1",
    f"{PREFIXES.GRAD_NORM}fc2",
]


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
        paths.RUNS,
        json.dumps({"id": run_id, "name": f"load-{run_id[:6]}", "project": "load"}).encode(),
    )
    per_key = max(1, points // len(SERIES))
    step = 0
    sent = requests = errors = 0
    lat: list[float] = []
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        steps = list(range(step, step + per_key))
        step += per_key
        body = batch_body(
            uuid.uuid4().hex,
            {k: {"steps": steps, "values": [random.random() for _ in steps]} for k in SERIES},
            [],
        )
        payload = gzip.compress(json.dumps(body).encode(), 1)
        for _attempt in range(20):  # retried like the hook: same batch id, so stored once
            try:
                status, _ = _request(conn, "POST", paths.batches(run_id), payload, gz=True)
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
        sent += per_key * len(SERIES)
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))
    _request(conn, "POST", paths.finish(run_id), b"{}")
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
        _request(conn, "GET", paths.RUNS)
        _request(
            conn,
            "GET",
            f"{paths.series(random.choice(run_ids))}?key={KEYS.TRAIN_LOSS}&max_points=1000",
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
    with ServerProcess(db_url, tmp).start(timeout=60) as server:
        port = server.port
        cpu0 = cpu_seconds(server.pid)
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
        cpu = cpu_seconds(server.pid) - cpu0
        stored = 0
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for r in run_ids:
            status, body = _request(conn, "GET", paths.keys(r))
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


@dataclass
class StreamResult:
    streams: int
    open_streams: int
    writes_per_s: float
    seconds: float
    writes: int
    write_errors: int
    events: int
    server_cpu_s: float  # during the probes (and writes)
    idle_cpu_share: float  # before them: the open streams alone
    health_ms: list[float] = field(default_factory=list)

    def pct(self, q: float) -> float:
        return LoadResult.pct(None, self.health_ms, q)  # type: ignore[arg-type]

    @property
    def cpu_share(self) -> float:
        return self.server_cpu_s / self.seconds

    def targets(self) -> list[tuple[str, bool]]:
        p99 = self.pct(0.99)
        out = [(f"all {self.streams} streams open throughout", self.open_streams == self.streams)]
        if self.writes_per_s == 0:
            out.append(("idle streams cost < 5% of a core", self.idle_cpu_share < 0.05))
            out.append(("health p99 < 50 ms", p99 < 50))
        else:
            out.append(("health p99 < 100 ms", p99 < 100))
            out.append(("the streams received the writes", self.events >= self.writes))
        return out

    def report(self) -> str:
        lines = [
            f"{self.streams} live streams ({self.open_streams} open at the end), "
            f"{self.writes_per_s:g} writes/s for {self.seconds:.1f} s: {self.writes} writes "
            f"({self.write_errors} errors), {self.events} events received",
            f"server CPU with the streams idle: {100 * self.idle_cpu_share:.1f}% of one core; "
            f"while probed{' and written' if self.writes_per_s else ''}: "
            f"{100 * self.cpu_share:.1f}%",
            f"health latency p50 {self.pct(0.5):.1f} ms, p99 {self.pct(0.99):.1f} ms, "
            f"max {max(self.health_ms, default=float('nan')):.1f} ms ({len(self.health_ms)} reads)",
        ]
        lines += [f"  {'ok  ' if ok else 'MISS'} {what}" for what, ok in self.targets()]
        return "\n".join(lines)


async def _hold_stream(
    port: int, path: str, opened: list[int], events: list[int], stop: asyncio.Event
) -> None:
    """One idle SSE client on a raw socket: counts the events it receives until ``stop``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            return
        opened[0] += 1
        try:
            while not stop.is_set():
                read = asyncio.ensure_future(reader.read(65536))
                halt = asyncio.ensure_future(stop.wait())
                done, _ = await asyncio.wait({read, halt}, return_when=asyncio.FIRST_COMPLETED)
                halt.cancel()
                if read not in done:
                    read.cancel()
                    break
                chunk = read.result()
                if not chunk:
                    break
                events[0] += chunk.count(b"\nevent: ")
        finally:
            opened[0] -= 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _stream_clients(
    port: int, stream_paths: list[str], ready: threading.Event, stop_at: float, state: dict
) -> None:
    """Open every stream (50 at a time), signal ``ready``, hold them until ``stop_at``."""

    async def main() -> None:
        stop = asyncio.Event()
        opened, events = [0], [0]
        state["opened"], state["events"] = opened, events
        tasks = []
        for i in range(0, len(stream_paths), 50):
            tasks += [
                asyncio.ensure_future(_hold_stream(port, p, opened, events, stop))
                for p in stream_paths[i : i + 50]
            ]
            deadline = time.monotonic() + 30
            while opened[0] < min(i + 50, len(stream_paths)) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        ready.set()
        while time.monotonic() < stop_at:
            await asyncio.sleep(0.1)
        state["open_at_end"] = opened[0]
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def _health_prober(port: int, stop_at: float, out: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        _request(conn, "GET", paths.HEALTH)
        out.append((time.monotonic() - t0) * 1000)
        time.sleep(0.05)
    conn.close()


def _writer(port: int, run_ids: list[str], rate: float, stop_at: float, out: dict) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    n = 0
    next_at = time.monotonic()
    while rate > 0 and time.monotonic() < stop_at:
        rid = run_ids[n % len(run_ids)]
        steps = list(range(n * 10, n * 10 + 10))
        scalars = {KEYS.TRAIN_LOSS: {"steps": steps, "values": [1.0] * 10}}
        body = json.dumps(batch_body(f"w{n}", scalars, [])).encode()
        status, _ = _request(conn, "POST", paths.batches(rid), gzip.compress(body), gz=True)
        out["writes"] += 1
        out["errors"] += status != 200
        n += 1
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    conn.close()


def run_streams(
    streams: int,
    writes_per_s: float,
    seconds: float,
    db_url: str | None = None,
    workdir: Path | None = None,
) -> StreamResult:
    """The live-stream case; always stops the server and every client."""
    tmp = Path(workdir or tempfile.mkdtemp(prefix="fitscope-streams-"))
    db_url = db_url or f"sqlite:///{tmp / 'load.db'}"
    env = {"FITSCOPE_MAX_STREAMS": str(streams + 10)}
    with ServerProcess(db_url, tmp, env=env).start(timeout=60) as server:
        port = server.port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        run_ids = [uuid.uuid4().hex for _ in range(max(1, streams // 2))]
        for r in run_ids:
            _request(conn, "POST", paths.RUNS, json.dumps({"id": r, "name": "s"}).encode())
        conn.close()
        stream_paths = [paths.run_events(r) for r in run_ids]
        stream_paths += [paths.EVENTS] * (streams - len(stream_paths))
        ready = threading.Event()
        state: dict = {}
        open_until = time.monotonic() + 30 + streams * 0.1 + seconds
        clients = threading.Thread(
            target=_stream_clients, args=(port, stream_paths, ready, open_until, state), daemon=True
        )
        clients.start()
        ready.wait(30 + streams * 0.1)
        time.sleep(2.0)  # let the openings settle
        # phase 1: nothing but the open streams, for the idle cost
        cpu0 = cpu_seconds(server.pid)
        t0 = time.monotonic()
        time.sleep(seconds)
        idle_cpu = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        # phase 2: health probes (and writes), for latency
        events0 = state["events"][0]
        cpu0 = cpu_seconds(server.pid)
        t0 = time.monotonic()
        stop_at = t0 + seconds
        health: list[float] = []
        wout = {"writes": 0, "errors": 0}
        threads = [
            threading.Thread(target=_health_prober, args=(port, stop_at, health)),
            threading.Thread(target=_writer, args=(port, run_ids, writes_per_s, stop_at, wout)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(server.pid) - cpu0
        time.sleep(1.0)  # the last writes' events
        opened = state["opened"][0]
        events = state["events"][0] - events0
        return StreamResult(
            streams,
            opened,
            writes_per_s,
            elapsed,
            wout["writes"],
            wout["errors"],
            events,
            cpu,
            idle_cpu,
            health,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=32)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--rate", type=float, default=2.0, help="batches per second per run")
    p.add_argument("--points", type=int, default=1000, help="points per batch")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    p.add_argument(
        "--streams", type=int, default=0, help="the live-stream case: this many SSE streams"
    )
    p.add_argument("--writes", type=float, default=0.0, help="with --streams: batches per second")
    a = p.parse_args()
    if a.streams:
        res = run_streams(a.streams, a.writes, a.seconds, a.db)
        print(res.report())
        sys.exit(0 if all(ok for _, ok in res.targets()) else 1)
    result = run_load(a.runs, a.seconds, a.rate, a.points, a.db)
    print(result.report())
    print(
        "median dashboard read",
        f"{statistics.median(result.dashboard_ms):.1f} ms" if result.dashboard_ms else "n/a",
    )
    sys.exit(0 if result.points_stored == result.points_sent else 1)


if __name__ == "__main__":
    main()
