"""Live-push latency: from the hook's flush (its HTTP POST of a batch) to the SSE event.

Starts ``fitscope serve`` on 127.0.0.1, opens ``/api/v1/runs/{id}/events`` like the
browser does, and sends ``--batches`` batches through the hook's own transport
and message encoding (gzip JSON), ``--interval`` seconds apart; each batch's
latency is the time from just before its POST to the arrival of the ``points``
event that carries its step.  Prints p50/p95/p99/max.

    python -m bench.live                                  # SQLite, 1 worker
    python -m bench.live --workers 2 --db postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

from bench._common import database, percentiles
from fitscope._messages import Message, headers
from fitscope._transport import HTTPTransport
from fitscope.protocol import batch_body, paths
from tests.support.servers import ServerProcess


def listen(url: str, arrived: dict[int, float], ready: threading.Event, worker: list[str]) -> None:
    try:
        _listen(url, arrived, ready, worker)
    except httpx.HTTPError:
        pass  # the server stopped


def _listen(url: str, arrived: dict[int, float], ready: threading.Event, worker: list[str]) -> None:
    with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as c, c.stream("GET", url) as r:
        worker.append(r.headers.get("x-fitscope-worker", "?"))
        ready.set()
        kind = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "points":
                now = time.perf_counter()
                for s in orjson.loads(line[6:])["series"]["bench/live"]["steps"]:
                    arrived.setdefault(s, now)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between flushes")
    ap.add_argument("--keys", type=int, default=20, help="series per batch (10 steps each)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    with database(args.db, tmp) as db:
        bench(args, db, tmp)


def bench(args: argparse.Namespace, db: str, tmp: Path) -> None:
    srv = ServerProcess(db, tmp, args=["--workers", str(args.workers)]).start(timeout=60)
    port = srv.port
    base = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{base}{paths.RUNS}", json={"id": "live", "name": "live"}).raise_for_status()
        arrived: dict[int, float] = {}
        ready = threading.Event()
        worker: list[str] = []
        t = threading.Thread(
            target=listen,
            args=(base + paths.run_events("live"), arrived, ready, worker),
            daemon=True,
        )
        t.start()
        ready.wait(15)
        transport = HTTPTransport(base)
        sent: dict[int, float] = {}
        acked: list[float] = []
        for b in range(args.batches):
            first = b * 10 + 1
            steps = list(range(first, first + 10))
            scalars = {"bench/live": {"steps": steps, "values": [1.0] * 10}}
            for k in range(1, args.keys):
                scalars[f"bench/k{k}"] = {"steps": steps, "values": [0.5] * 10}
            msg = Message("POST", paths.batches("live"), {})
            msg.payload = batch_body(msg.id, scalars, [])
            body = msg.body()
            sent[steps[-1]] = time.perf_counter()
            resp = transport.request("POST", msg.path, body, headers(None))
            acked.append(time.perf_counter() - sent[steps[-1]])
            assert resp.status == 200, resp.body[:200]
            time.sleep(args.interval)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(s in arrived for s in sent):
            time.sleep(0.05)
        lat = [(arrived[s] - t0) for s, t0 in sent.items() if s in arrived]
        lost = len(sent) - len(lat)
        p50, p95, p99 = percentiles(lat, (50, 95, 99))
        print(
            f"database   {db.split('://')[0]}  workers={args.workers}  stream on worker {worker[0]}"
        )
        print(
            f"batches    {len(sent)} of {args.keys * 10} points, one every {args.interval} s; {lost} never arrived"
        )
        print(
            f"latency    flush -> SSE event: p50 {p50 * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  "
            f"p99 {p99 * 1000:.1f} ms  max {max(lat) * 1000:.1f} ms  mean {statistics.mean(lat) * 1000:.1f} ms"
        )
        a50, a95 = percentiles(acked, (50, 95))
        print(f"POST       answered in p50 {a50 * 1000:.1f} ms  p95 {a95 * 1000:.1f} ms")
        print(f"load avg   {os.getloadavg()[0]:.2f} (2 cores, shared)")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
