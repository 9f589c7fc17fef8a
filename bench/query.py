"""Read benchmark: how fast a long series comes back, reduced, zoomed, whole, exported.

Starts ``fitscope serve`` on 127.0.0.1 with a fresh database, stores one series of
``--points`` points (a single one-step spike planted in it), then times each
query ``--repeat`` times.  "server" is the handler's own time from the
``Server-Timing`` header (database read + reduction + JSON encoding); "client"
adds HTTP and JSON parsing in this process.  Medians are printed.

    python -m bench.query                         # 1,000,000 points, SQLite
    python -m bench.query --points 10000000
    python -m bench.query --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson

from bench._common import database
from fitscope.protocol import KEYS, batch_body, paths
from tests.support.servers import ServerProcess

KEY = KEYS.GRAD_NORM_TOTAL


def fill(base: str, run_id: str, n: int, spike_at: int, per: int = 200_000) -> float:
    """Store n points (steps 1..n) in batches of ``per``; returns seconds taken."""
    httpx.post(f"{base}{paths.RUNS}", json={"id": run_id, "name": run_id}).raise_for_status()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with httpx.Client(timeout=120) as c:
        for i in range(0, n, per):
            m = min(per, n - i)
            vals = rng.normal(1.0, 0.01, m)
            if i <= spike_at - 1 < i + m:
                vals[spike_at - 1 - i] = 50.0
            scalars = {KEY: {"steps": list(range(i + 1, i + m + 1)), "values": vals.tolist()}}
            body = batch_body(f"{run_id}-{i}", scalars, [])
            c.post(
                f"{base}{paths.batches(run_id)}",
                content=gzip.compress(orjson.dumps(body), 1),
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            ).raise_for_status()
    return time.perf_counter() - t0


def server_ms(resp: httpx.Response) -> float:
    parts = resp.headers.get("server-timing", "")
    return sum(float(p.split("dur=")[1]) for p in parts.split(",") if "dur=" in p)


def timed(c: httpx.Client, url: str, params: dict, repeat: int) -> tuple[float, float, dict]:
    srv, cli = [], []
    body: dict = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = c.get(url, params=params)
        body = r.json()
        cli.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        srv.append(server_ms(r))
    return statistics.median(srv), statistics.median(cli), body


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    with database(args.db, tmp) as db:
        bench(args, db, tmp)


def bench(args: argparse.Namespace, db: str, tmp: Path) -> None:
    n = args.points
    server = ServerProcess(db, tmp).start(timeout=60)
    port = server.port
    base = f"http://127.0.0.1:{port}"
    spike = int(n * 0.6123) + 1
    try:
        took = fill(base, "q", n, spike)
        print(f"database   {db.split('://')[0]}; stored {n:,} points in {took:.1f} s")
        print(f"load avg   {os.getloadavg()[0]:.2f} (2 cores, shared)")
        url = base + paths.series("q")
        print(f"{'query':44s} {'server ms':>10s} {'client ms':>10s}  check")
        with httpx.Client(timeout=300) as c:
            for mp in (500, 1000, 2000, 4000):
                s, cl, body = timed(c, url, {"key": KEY, "max_points": mp}, args.repeat)
                i = int(np.searchsorted(body["steps"], spike, side="right")) - 1
                ok = body["max"][i] == 50.0
                print(
                    f"{'reduced to ' + str(mp):44s} {s:10.1f} {cl:10.1f}  spike {'found' if ok else 'LOST'}"
                )
            for width, cap in ((1_000, None), (10_000, None), (100_000, 1000)):
                p = {"key": KEY, "start": spike - width // 2, "end": spike + width // 2 - 1}
                if cap:
                    p["max_points"] = cap
                s, cl, body = timed(c, url, p, args.repeat)
                label = f"zoom {width:,} steps" + (f" reduced to {cap}" if cap else " full detail")
                print(f"{label:44s} {s:10.1f} {cl:10.1f}  {len(body['steps']):,} points")
            if n <= 2_000_000:
                s, cl, body = timed(c, url, {"key": KEY}, max(1, args.repeat // 2))
                print(
                    f"{'whole series, every point':44s} {s:10.1f} {cl:10.1f}  {len(body['steps']):,} points"
                )
            t0 = time.perf_counter()
            size = 0
            with c.stream(
                "GET", base + paths.export("q"), params={"key": KEY, "format": "csv"}
            ) as r:
                for chunk in r.iter_bytes():
                    size += len(chunk)
            ms = (time.perf_counter() - t0) * 1000
            print(f"{'export CSV (streamed)':44s} {'':10s} {ms:10.1f}  {size / 1e6:.1f} MB")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
