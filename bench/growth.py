"""Cost growth: how ingest and reads scale with points per run and with the number of runs.

Part 1 stores one series of 1k, 10k, 100k, 1M (and with ``--big`` 10M) points in
fresh runs of one server and times the ingest (HTTP, one sender, batches of up
to 100k points) and reads (server-side ms from ``Server-Timing``).
Part 2 grows a second server's database to 1, 10, 100, 1,000 runs (each with
10 series of 1,000 points) and times the run list, a new run's ingest, and a
reduced read.

    python -m bench.growth            # SQLite
    python -m bench.growth --big      # adds the 10M-point series (minutes)
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
from bench.query import server_ms
from fitscope.protocol import batch_body, paths
from tests.support.servers import ServerProcess

H = {"Content-Type": "application/json", "Content-Encoding": "gzip"}


def post_series(c: httpx.Client, run: str, key: str, first: int, n: int, per: int) -> float:
    rng = np.random.default_rng(first)
    t0 = time.perf_counter()
    for i in range(0, n, per):
        m = min(per, n - i)
        body = batch_body(
            f"{run}-{key}-{first + i}",
            {
                key: {
                    "steps": list(range(first + i, first + i + m)),
                    "values": rng.normal(1, 0.1, m).tolist(),
                }
            },
            [],
        )
        c.post(
            paths.batches(run), content=gzip.compress(orjson.dumps(body), 1), headers=H
        ).raise_for_status()
    return time.perf_counter() - t0


def med_server(c: httpx.Client, path: str, params: dict, k: int = 5) -> float:
    return statistics.median(server_ms(c.get(path, params=params)) for _ in range(k))


def med_client(c: httpx.Client, path: str, params: dict | None = None, k: int = 5) -> float:
    out = []
    for _ in range(k):
        t0 = time.perf_counter()
        c.get(path, params=params).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def points_per_run(base: str, sizes: list[int]) -> None:
    print("points per run (one series; ingest over HTTP, reads server-side ms)")
    print(
        f"{'points':>10s} {'ingest pts/s':>13s} {'reduce->1000':>13s} {'zoom 1k full':>13s} {'tail 100':>9s} {'keys':>7s}"
    )
    with httpx.Client(base_url=base, timeout=600) as c:
        for n in sizes:
            run = f"p{n}"
            c.post(paths.RUNS, json={"id": run, "name": run}).raise_for_status()
            took = post_series(c, run, "loss", 1, n, min(n, 100_000))
            path = paths.series(run)
            red = med_server(c, path, {"key": "loss", "max_points": 1000})
            mid = n // 2
            zoom = med_server(c, path, {"key": "loss", "start": mid, "end": mid + 999})
            tail = med_server(c, path, {"key": "loss", "after": n - 100})
            keys = med_client(c, paths.keys(run))
            print(
                f"{n:>10,} {n / took:>13,.0f} {red:>13.1f} {zoom:>13.1f} {tail:>9.1f} {keys:>7.1f}"
            )


def number_of_runs(base: str, counts: list[int]) -> None:
    print(
        "number of runs (each 10 series x 1,000 points; list and ingest client ms, read server ms)"
    )
    print(f"{'runs':>6s} {'GET /runs':>10s} {'ingest 10k pts':>15s} {'reduce->100':>12s}")
    have = 0
    with httpx.Client(base_url=base, timeout=600) as c:
        for target in counts:
            while have < target:
                run = f"r{have}"
                c.post(paths.RUNS, json={"id": run, "name": run}).raise_for_status()
                scalars = {
                    f"k{k}": {"steps": list(range(1, 1001)), "values": [float(k)] * 1000}
                    for k in range(10)
                }
                body = gzip.compress(orjson.dumps(batch_body(f"{run}-0", scalars, [])), 1)
                c.post(paths.batches(run), content=body, headers=H).raise_for_status()
                have += 1
            lst = med_client(c, paths.RUNS)
            probe = f"probe{target}"
            c.post(paths.RUNS, json={"id": probe, "name": probe}).raise_for_status()
            t0 = time.perf_counter()
            post_series(c, probe, "loss", 1, 10_000, 10_000)
            ing = (time.perf_counter() - t0) * 1000
            c.delete(paths.run(probe)).raise_for_status()
            red = med_server(c, paths.series("r0"), {"key": "k3", "max_points": 100})
            print(f"{target:>6,} {lst:>10.1f} {ing:>15.1f} {red:>12.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--big", action="store_true", help="also a 10,000,000-point series")
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: fresh SQLite files)")
    args = ap.parse_args()
    sizes = [1_000, 10_000, 100_000, 1_000_000] + ([10_000_000] if args.big else [])
    print(f"load avg {os.getloadavg()[0]:.2f} (2 cores, shared)")
    for part, arg in ((points_per_run, sizes), (number_of_runs, [1, 10, 100, 1000])):
        tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
        with database(args.db, tmp) as db:
            srv = ServerProcess(db, tmp).start(timeout=60)
            port = srv.port
            try:
                part(f"http://127.0.0.1:{port}", arg)
            finally:
                srv.stop()
    print(f"load avg {os.getloadavg()[0]:.2f} (2 cores, shared)")


if __name__ == "__main__":
    main()
