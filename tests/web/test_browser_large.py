"""A run with a 1,000,000-point series: the page asks for a reduction, draws a min/max band in
which a one-step spike is visible, marks a NaN, and fetches the zoomed range in more detail."""

from __future__ import annotations

import math

import pytest

from tests.support.web import chart_ready, create_run, open_page, send_points, trace, trace_ready

pytestmark = pytest.mark.browser

N = 1_000_000
SPIKE_STEP, SPIKE = 654_321, 1e4
NAN_STEP = 250_000


def _loss(step: int) -> float:
    if step == SPIKE_STEP:
        return SPIKE
    if step == NAN_STEP:
        return math.nan
    return 1.0 + 0.5 * math.sin(step / 5000.0)


def test_million_points_reduced_spike_visible_zoom_fetches_detail(server, browser):
    run_id = create_run(server.url, "long run", "big")
    send_points(server.url, run_id, "train/loss", ((s, _loss(s)) for s in range(1, N + 1)))

    requests: list[str] = []
    page, watch = open_page(browser, "about:blank")
    page.on(
        "request", lambda r: requests.append(r.url) if "/series?key=train%2Floss" in r.url else None
    )
    page.goto(f"{server.url}/runs/{run_id}")
    chart_ready(page, "chart-loss", timeout=60_000)
    trace_ready(page, "chart-loss", "line", "train/loss")  # the run's real alerts may draw first
    assert any("max_points=2000" in u for u in requests), requests
    assert not any("max_points" not in u and "after=" not in u for u in requests), requests

    line = trace(page, "chart-loss", "line", "train/loss")
    assert line is not None and 1000 <= len(line["x"]) <= 2100  # reduced, not a million
    # the live tail starts after the last step the reduction covers, not its last bucket's start
    assert all(f"after={N}" in u for u in requests if "after=" in u), requests
    band = page.evaluate(
        "() => document.getElementById('chart-loss').data"
        ".filter(t => t.meta && t.meta.role === 'band').map(t => Array.from(t.y))"
    )
    assert len(band) == 2 and max(v for v in band[0] if v is not None) == SPIKE
    marks = trace(page, "chart-loss", "nonfinite", "train/loss")
    assert marks is not None and any(x <= NAN_STEP < x + 600 for x in marks["x"]), marks["x"][:5]
    assert page.locator("[data-stat='train-loss'] .stat-value").inner_text() != ""

    # zoom around the spike: the range is fetched with start/end and shows single steps
    page.evaluate(
        "([a, b]) => Plotly.relayout('chart-loss', {'xaxis.range': [a, b]})",
        [SPIKE_STEP - 400, SPIKE_STEP + 400],
    )
    page.wait_for_function(
        "(s) => (document.getElementById('chart-loss').data || []).some(t => t.meta &&"
        " t.meta.role === 'line' && Array.from(t.x).includes(s))",
        arg=SPIKE_STEP,
        timeout=30_000,
    )
    detail = [u for u in requests if "start=" in u and "end=" in u]
    assert detail, requests
    line = trace(page, "chart-loss", "line", "train/loss")
    i = line["x"].index(SPIKE_STEP)
    assert line["y"][i] == SPIKE and line["x"][i + 1] == SPIKE_STEP + 1
    assert len(line["x"]) <= 2 * 2100  # overview outside the range + detail inside
    y = page.evaluate("() => document.getElementById('chart-loss').layout.yaxis")
    top = 10 ** y["range"][1] if y["type"] == "log" else y["range"][1]
    assert top >= SPIKE  # the y range fits what is visible, spike included
    assert f"x0={SPIKE_STEP - 400}" in page.url and "x1=" in page.url
    watch.assert_clean()
