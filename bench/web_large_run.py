"""How the run page copes with a 1,000,000-point series (run by hand, prints numbers).

    python -m bench.web_large_run [--points 1000000]

Starts a server on a fresh SQLite file, sends one series through the ingest API, opens the
run page in headless Chromium and reports: time until the loss chart is drawn, points drawn,
bytes of series data fetched, the longest main-thread task while loading and while zooming,
and how long a zoom takes until the detailed range is drawn. The longest task while loading
includes Plotly.js compiling itself (compare with ``--points 1000``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

from fitscope.protocol import KEYS, paths
from tests.support.servers import ServerProcess
from tests.support.web import CHROMIUM_ARGS, chromium_path, create_run, send_points

LONG_TASKS = """
window.__long = [];
new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); })
  .observe({ type: "longtask", buffered: true });
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1_000_000)
    args = p.parse_args()
    n = args.points
    spike = n * 2 // 3

    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="fitscope-bench-"))
    srv = ServerProcess(f"sqlite:///{tmp / 'bench.db'}", tmp).start()
    try:
        run_id = create_run(srv.url, "bench", "bench")
        t0 = time.perf_counter()
        values = (
            (s, 1e4 if s == spike else 1.0 + 0.5 * math.sin(s / 5000)) for s in range(1, n + 1)
        )
        send_points(srv.url, run_id, KEYS.TRAIN_LOSS, values)
        print(f"ingest {n:,} points through the API: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        srv.api(paths.series(run_id), key=KEYS.TRAIN_LOSS, max_points=2000)
        print(f"server: reduced series answered in {time.perf_counter() - t0:.2f} s")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.add_init_script(LONG_TASKS)
            sizes: list[int] = []
            page.on(
                "response",
                lambda r: sizes.append(len(r.body())) if "/series?" in r.url else None,
            )
            t0 = time.perf_counter()
            page.goto(f"{srv.url}/runs/{run_id}")
            page.wait_for_function(
                "() => (document.getElementById('chart-loss').data || []).some(t => t.meta && t.meta.role === 'line')",
                timeout=120_000,
            )
            first = time.perf_counter() - t0
            drawn = page.evaluate(
                "() => document.getElementById('chart-loss').data.reduce((a, t) => a + (t.x ? t.x.length : 0), 0)"
            )
            load_long = max(page.evaluate("() => window.__long") or [0])
            page.evaluate("() => { window.__long = []; }")
            t0 = time.perf_counter()
            page.evaluate(
                "([a, b]) => Plotly.relayout('chart-loss', {'xaxis.range': [a, b]})",
                [spike - 400, spike + 400],
            )
            page.wait_for_function(
                "(s) => document.getElementById('chart-loss').data.some(t => t.meta && t.meta.role === 'line' && Array.from(t.x).includes(s))",
                arg=spike,
                timeout=120_000,
            )
            zoom = time.perf_counter() - t0
            zoom_long = max(page.evaluate("() => window.__long") or [0])
            browser.close()
        print(f"loss chart drawn after        {first:.2f} s")
        print(f"points drawn (all traces)     {drawn:,} for a {n:,}-point series")
        print(f"series bytes fetched          {sum(sizes):,} in {len(sizes)} responses")
        print(
            f"longest main-thread task      {load_long:.0f} ms while loading, {zoom_long:.0f} ms while zooming"
        )
        print(f"zoom to detail drawn          {zoom:.2f} s")
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
