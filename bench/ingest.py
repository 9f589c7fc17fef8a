"""Ingest benchmark: points/s over HTTP into a real fitscope server, with request latencies.

Starts ``fitscope serve`` as a subprocess on 127.0.0.1 with a fresh database,
creates ``--runs`` runs and sends pre-built gzip batches from one thread per run
for ``--seconds`` seconds (bodies are built before the clock starts, so the
senders cost little CPU).  Then, in the same process, it measures the raw SQLite
floor: ``executemany`` of (series_id, step, value) rows into a WITHOUT ROWID
table in WAL mode, one transaction per batch, and prints the HTTP rate as a
ratio of it.

    python -m bench.ingest                       # 8 runs, 20 s, SQLite
    python -m bench.ingest --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import random
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

from bench._common import cpu_seconds, database, percentiles
from fitscope.protocol import NAN, batch_body, paths
from tests.support.servers import ServerProcess


def make_bodies(run: int, n_batches: int, keys: int, steps: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed + run)
    out = []
    for b in range(n_batches):
        first = b * steps + 1
        step_list = list(range(first, first + steps))
        scalars = {}
        for k in range(keys):
            vals: list[float | str] = rng.normal(1.0, 0.1, steps).tolist()
            if k == 0 and b % 7 == 3:
                vals[steps // 2] = NAN
            scalars[f"bench/key{k:02d}"] = {"steps": step_list, "values": vals}
        body = orjson.dumps(batch_body(f"r{run}-b{b}", scalars, []))
        out.append(gzip.compress(body, compresslevel=1))
    return out


def sender(
    port: int,
    run_id: str,
    bodies: list[bytes],
    stop_at: float,
    lat: list[float],
    sent: list[int],
    errors: list[str],
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for body in bodies:
        if time.perf_counter() >= stop_at:
            break
        t0 = time.perf_counter()
        conn.request("POST", paths.batches(run_id), body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        lat.append(time.perf_counter() - t0)
        if resp.status != 200:
            errors.append(f"{resp.status} {data[:200]!r}")
            break
        sent.append(orjson.loads(data)["stored"])
    conn.close()


def raw_sqlite_floor(path: Path, total: int, batch: int) -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        "CREATE TABLE points (series_id INTEGER, step INTEGER, value REAL,"
        " PRIMARY KEY (series_id, step)) WITHOUT ROWID"
    )
    rng = random.Random(0)
    rows_per_batch = [(k, s, rng.random()) for k in range(20) for s in range(batch // 20)]
    t0 = time.perf_counter()
    done, b = 0, 0
    while done < total:
        off = b * (batch // 20)
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO points VALUES (?, ?, ?)", ((k, s + off, v) for k, s, v in rows_per_batch)
        )
        con.execute("COMMIT")
        done += len(rows_per_batch)
        b += 1
    dt = time.perf_counter() - t0
    con.close()
    return done / dt


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--keys", type=int, default=20, help="series per run")
    ap.add_argument("--steps", type=int, default=1000, help="steps per key per batch")
    ap.add_argument(
        "--max-rate", type=float, default=2_000_000, help="points/s the pre-built bodies can cover"
    )
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: a fresh SQLite file)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--raw-points", type=int, default=2_000_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    with database(args.db, tmp) as db:
        bench(args, db, tmp)


def bench(args: argparse.Namespace, db: str, tmp: Path) -> None:

    per_batch = args.keys * args.steps
    n_batches = max(2, int(args.max_rate * args.seconds / per_batch / args.runs) + 1)
    print(f"building {n_batches} batches x {args.runs} runs of {per_batch} points ...", flush=True)
    bodies = [make_bodies(r, n_batches, args.keys, args.steps, 0) for r in range(args.runs)]
    srv = ServerProcess(db, tmp, args=["--workers", str(args.workers)]).start(timeout=60)
    port = srv.port
    try:
        import httpx

        base = f"http://127.0.0.1:{port}"
        run_ids = []
        for r in range(args.runs):
            rid = f"bench{r}"
            httpx.post(
                f"{base}{paths.RUNS}", json={"id": rid, "name": rid, "project": "bench"}
            ).raise_for_status()
            run_ids.append(rid)
        load0 = os.getloadavg()
        cpu0 = cpu_seconds(srv.pid)
        lat: list[float] = []
        sent: list[int] = []
        errors: list[str] = []
        t0 = time.perf_counter()
        stop_at = t0 + args.seconds
        threads = [
            threading.Thread(
                target=sender, args=(port, run_ids[r], bodies[r], stop_at, lat, sent, errors)
            )
            for r in range(args.runs)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(srv.pid) - cpu0
        load1 = os.getloadavg()
        if errors:
            print("errors:", errors[:3])
        total = sum(sent)
        p50, p95, p99 = percentiles(lat, (50, 95, 99))
        rate = total / wall
        print(f"database        {db.split('://')[0]}  workers={args.workers}")
        print(
            f"sent            {total:,} points in {len(lat)} requests of {per_batch:,} points over {wall:.1f} s"
        )
        print(f"ingest          {rate:,.0f} points/s over HTTP ({args.runs} concurrent runs)")
        print(
            f"latency         p50 {p50 * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms  p99 {p99 * 1000:.1f} ms per request"
        )
        print(
            f"server cpu      {cpu:.1f} s over {wall:.1f} s wall ({cpu / wall * 100:.0f}% of one core)"
        )
        print(f"load average    {load0[0]:.2f} before, {load1[0]:.2f} after (2 cores, shared)")
        # check what was stored, through the API
        keys = httpx.get(f"{base}{paths.keys(run_ids[0])}", timeout=60).json()
        print(f"stored check    run 0 key00 has {keys[0]['count']:,} points")
    finally:
        srv.stop()
    raw = raw_sqlite_floor(tmp / "raw.db", args.raw_points, per_batch)
    print(
        f"raw sqlite      {raw:,.0f} points/s (executemany, one transaction per {per_batch:,} rows)"
    )
    print(f"ratio           HTTP ingest = {rate / raw:.2f} x raw SQLite inserts")


if __name__ == "__main__":
    main()
