"""In a real browser, while a real run trains: the curves grow, an alert appears without a reload,
and clicking it (or Enter on it) zooms every step chart to its evidence."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.support.web import PageWatch, chart_ready, insert_alert, trace, x_range

pytestmark = pytest.mark.browser

SLOW_TRAIN = """
import time, torch
from torch import nn
import fitscope
torch.set_num_threads(1)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
crit = nn.CrossEntropyLoss()
run = fitscope.watch(model, opt, crit, project="live", name="<b>slow</b> run", interval=0.2)
x, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
for step in range(900):
    opt.zero_grad(); crit(model(x), y).backward(); opt.step()
    time.sleep(0.02)
    if step % 50 == 49:
        model.eval()
        with torch.no_grad():
            crit(model(x), y)
        model.train()
run.finish()
"""


def _points(page) -> int:  # noqa: ANN001
    t = trace(page, "chart-loss", "line", "train/loss")
    return len(t["x"]) if t else 0


def test_run_page_live_curves_alert_and_zoom(server, browser, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_TRAIN)
    env = dict(os.environ, FITSCOPE_URL=server.url, FITSCOPE_DIR=str(tmp_path / "client"))
    proc = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.monotonic() + 30
        runs: list = []
        while not runs and time.monotonic() < deadline:
            runs = server.api("/api/v1/runs")  # type: ignore[assignment]
            time.sleep(0.1)
        assert runs, "the run never appeared"
        run_id = runs[0]["id"]
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        watch = PageWatch(page)
        page.goto(f"{server.url}/")
        link = page.get_by_role("link", name="<b>slow</b> run")
        link.wait_for(timeout=10_000)  # the name is text, not markup
        link.click()
        page.wait_for_url(f"**/runs/{run_id}")
        chart_ready(page, "chart-loss")

        # the curves grow without a reload (the page may open before the first point arrives)
        grows = (
            "(n) => (document.getElementById('chart-loss').data || []).some("
            "t => t.meta && t.meta.key === 'train/loss' && t.meta.role === 'line' && t.x.length > n)"
        )
        page.wait_for_function(grows, arg=0, timeout=10_000)
        first = _points(page)
        assert first > 0
        page.wait_for_function(grows, arg=first, timeout=10_000)
        for chart in ("chart-grad", "chart-lr"):
            assert page.evaluate(f"() => document.getElementById('{chart}').data.length") >= 1
        assert page.locator("#run-name").inner_text() == "<b>slow</b> run"

        # an alert raised now shows up on the open page, in the panel and on the loss chart
        last = max(server.api(f"/api/v1/runs/{run_id}/series", key="train/loss")["steps"])  # type: ignore[index]
        start, end = max(1, last - 60), last - 20
        alert_id = insert_alert(
            server.db_url,
            run_id,
            rule="exploding_gradients",
            severity="critical",
            step=end,
            onset_step=start,
            message="Gradient norm grew 40x in 40 steps",
            remedy="Clip gradients or lower the learning rate.",
            evidence={"series": ["grad_norm/total"], "start_step": start, "end_step": end},
        )
        item = page.locator(f"[data-alert-id='{alert_id}']")
        item.wait_for(timeout=10_000)
        assert "Gradient norm grew 40x" in item.inner_text()
        assert page.locator("#health").inner_text().startswith("critical")
        page.wait_for_function(
            "(id) => (document.getElementById('chart-loss').data || []).some("
            "t => t.meta && t.meta.role === 'alerts' && Array.from(t.customdata).includes(id))",
            arg=alert_id,
            timeout=5_000,
        )

        # clicking it zooms all step charts to the evidence range (with some context)
        item.click()
        page.wait_for_function("() => new URL(location.href).searchParams.has('x0')")
        for chart in ("chart-loss", "chart-grad", "chart-lr"):
            page.wait_for_function(
                f"() => document.getElementById('{chart}').layout.xaxis.autorange === false"
            )
            r = x_range(page, chart)
            assert r is not None and r[0] <= start and r[1] >= end, (chart, r)
            assert r[1] - r[0] < (end - start) * 2 + 10, (chart, r)
        assert page.locator("#card-grad").get_attribute("class").split().count("evidence") == 1
        url = page.evaluate("() => location.search")
        assert f"alert={alert_id}" in url

        # keyboard: Enter on the focused alert toggles the zoom off again
        item.focus()
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.getElementById('chart-loss').layout.xaxis.autorange === true"
        )
        assert page.evaluate("() => performance.getEntriesByType('navigation').length") == 1
        watch.assert_clean()
    finally:
        proc.terminate()
        proc.wait(10)
