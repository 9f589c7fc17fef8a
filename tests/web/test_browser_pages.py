"""The dashboard's pages on two real training runs, one healthy and one that overfits and then
blows up: runs list, run pages, compare page, deep links, theme, keyboard. Saves screenshots of
each page in light and dark to the artifacts folder."""

from __future__ import annotations

import concurrent.futures
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.hook import run_script
from tests.support.servers import ServerProcess
from tests.support.web import (
    chart_ready,
    create_run,
    finish,
    insert_alert,
    open_page,
    post_batch,
    screenshot,
    trace,
    x_range,
)

pytestmark = pytest.mark.browser

COMMON = """
import torch
from torch import nn
import fitscope
from fitscope.demo import make_data
torch.set_num_threads(1)  # two runs train side by side
torch.manual_seed(0)
(xtr, ytr), (xva, yva) = make_data(n=1600)
"""

HEALTHY = (
    COMMON
    + """
model = nn.Sequential(nn.Linear(20, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 5))
opt = torch.optim.AdamW([
    {"params": list(model[0].parameters()) + list(model[2].parameters()), "lr": 3e-3},
    {"params": model[4].parameters(), "lr": 1e-3},
], weight_decay=1e-2)
steps = 10 * 15
sched = torch.optim.lr_scheduler.LambdaLR(
    opt, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + __import__("math").cos(3.14159 * s / steps)))
crit = nn.CrossEntropyLoss()
run = fitscope.watch(model, opt, crit, project="vision", name="mlp-baseline",
                     config={"lr": 3e-3, "batch_size": 64, "epochs": 10, "warmup": 20, "hidden": 128})
for epoch in range(10):
    model.train()
    for i in range(0, 960, 64):
        opt.zero_grad()
        crit(model(xtr[i:i + 64]), ytr[i:i + 64]).backward()
        opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        for i in range(0, 640, 320):
            crit(model(xva[i:i + 320]), yva[i:i + 320])
run.finish()
print("RUN", run.id)
"""
)

FAULTY = (
    COMMON
    + """
xtr, ytr = xtr[:160], ytr[:160]   # far too little data for this model: it memorises
model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 5))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
crit = nn.CrossEntropyLoss()
run = fitscope.watch(model, opt, crit, project="vision", name="mlp-wide-overfit",
                     config={"lr": 0.05, "batch_size": 16, "epochs": 24, "hidden": 256})
for epoch in range(24):
    if epoch == 20:
        for g in opt.param_groups:
            g["lr"] = 8.0                 # a bad schedule step: the run blows up
    model.train()
    for i in range(0, 160, 16):
        opt.zero_grad()
        crit(model(xtr[i:i + 16]), ytr[i:i + 16]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for i in range(0, 640, 320):
            crit(model(xva[i:i + 320]), yva[i:i + 320])
run.finish()
print("RUN", run.id)
"""
)

BLOWUP_STEP = 201  # the first step with the learning rate at 8.0 (20 epochs x 10 steps, + 1)


def _train(code: str, tmp: Path, url: str) -> str:
    proc = run_script(code, tmp, url, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split("RUN")[-1].strip()


def _series(srv: ServerProcess, run_id: str, key: str) -> tuple[list[int], list[Any]]:
    d: Any = srv.api(f"/api/v1/runs/{run_id}/series", key=key)
    return d["steps"], d["values"]


def _diagnose(srv: ServerProcess, run_id: str) -> list[int]:
    """Alerts for the faulty run as the diagnosis writes them, with evidence from its real data."""
    steps, val = _series(srv, run_id, "val/loss")
    finite = [(v, s) for s, v in zip(steps, val, strict=True) if isinstance(v, float)]
    best_val, best_step = min(finite)
    lsteps, loss = _series(srv, run_id, "train/loss")
    first_nan = next(s for s, v in zip(lsteps, loss, strict=True) if not isinstance(v, float))
    ids = [
        insert_alert(
            srv.db_url,
            run_id,
            rule="overfitting",
            severity="warning",
            step=BLOWUP_STEP - 1,
            onset_step=best_step,
            message=f"Validation loss rose from {best_val:.3f} while training loss kept falling",
            remedy="Stop at the best validation step, add data augmentation or weight decay, or use a smaller model.",
            evidence={
                "series": ["val/loss", "train/loss"],
                "start_step": best_step,
                "end_step": BLOWUP_STEP - 1,
                "best_val_loss": best_val,
            },
        ),
        insert_alert(
            srv.db_url,
            run_id,
            rule="exploding_gradients",
            severity="critical",
            step=first_nan - 1,
            onset_step=BLOWUP_STEP,
            message="Gradient norm grew by orders of magnitude within a few steps",
            remedy="Lower the learning rate (it jumped to 8.0), or clip gradients with max_norm=1.0.",
            evidence={
                "series": ["grad_norm/total", "grad_norm/4", "lr/0"],
                "start_step": BLOWUP_STEP,
                "end_step": first_nan - 1,
            },
        ),
        insert_alert(
            srv.db_url,
            run_id,
            rule="non_finite",
            severity="critical",
            step=first_nan,
            message="Training loss became NaN",
            remedy="Find the step before: lower the learning rate, check inputs for NaN, use gradient clipping.",
            evidence={"series": ["train/loss"], "start_step": first_nan, "end_step": first_nan},
        ),
    ]
    return ids


def _other_project(srv: ServerProcess) -> list[str]:
    """Two more runs in a second project, sent through the API: one with a warning that has
    finished, one that crashed (so the list shows grouping and every status)."""
    steps = list(range(1, 401))
    a = create_run(srv.url, "bert-small lr=3e-4", "nlp", {"lr": 3e-4})
    post_batch(srv.url, a, {"train/loss": (steps, [3.0 / (1 + s / 80) for s in steps])})
    finish(srv.url, a)
    insert_alert(
        srv.db_url,
        a,
        rule="plateau",
        severity="warning",
        step=400,
        onset_step=250,
        message="Training loss has not improved for 150 steps",
        remedy="Lower the learning rate on plateau, or stop.",
        evidence={"series": ["train/loss"], "start_step": 250, "end_step": 400},
    )
    b = create_run(srv.url, "bert-small lr=3e-3", "nlp", {"lr": 3e-3})
    post_batch(srv.url, b, {"train/loss": (steps[:120], [3.0 / (1 + s / 40) for s in steps[:120]])})
    httpx.post(f"{srv.url}/api/v1/runs/{b}/finish", json={"status": "crashed"}).raise_for_status()
    return [a, b]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("pages")
    srv = ServerProcess(f"sqlite:///{tmp / 'fitscope.db'}", tmp).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            h = pool.submit(_train, HEALTHY, tmp, srv.url)
            f = pool.submit(_train, FAULTY, tmp, srv.url)
            healthy, faulty = h.result(), f.result()
        alerts = _diagnose(srv, faulty)
        others = _other_project(srv)
        yield {
            "srv": srv,
            "url": srv.url,
            "healthy": healthy,
            "faulty": faulty,
            "alerts": alerts,
            "others": others,
        }
    finally:
        srv.stop()


def _run_ready(page: Any) -> None:
    for chart in ("chart-loss", "chart-acc", "chart-grad", "chart-layers", "chart-conf"):
        chart_ready(page, chart)
    page.wait_for_function("() => document.querySelector('#health:not(.unknown)')")


def test_runs_list(site, chromium):
    for dark in (False, True):
        page, watch = open_page(chromium, f"{site['url']}/", dark=dark)
        row = page.locator(f"tr[data-run-id='{site['faulty']}']")
        row.locator(".health.critical").wait_for(timeout=10_000)
        page.locator(f"tr[data-run-id='{site['healthy']}'] .health:is(.ok, .info)").wait_for()
        projects = page.locator("#table tbody td.project").all_inner_texts()
        assert sorted(set(projects)) == ["nlp", "vision"]
        page.locator(f"tr[data-run-id='{site['others'][1]}'] .status.crashed").wait_for()
        # the table's columns come from the real training: last step and validation loss
        assert row.locator("td.step").inner_text() == str(24 * 10)
        assert row.locator("td.metric[data-col='best:val/loss']").inner_text() not in ("", "–")
        screenshot(page, f"runs-list-{'dark' if dark else 'light'}")
        watch.assert_clean()
    # search, filter and sort; the state is in the URL
    page.fill("#q", "overfit")
    page.wait_for_function("() => document.querySelectorAll('#table tbody tr').length === 1")
    assert "q=overfit" in page.url
    page.fill("#q", "")
    page.wait_for_function("() => document.querySelectorAll('#table tbody tr').length === 4")
    page.select_option("#health-filter", "ok")
    page.wait_for_function("() => document.querySelectorAll('#table tbody tr').length === 1")
    assert page.locator("#table tbody tr").get_attribute("data-run-id") == site["healthy"]
    page.select_option("#health-filter", "")
    page.select_option("#project", "vision")
    page.click("#table th button[data-sort='health']")
    # the project filter draws its two rows before the sorted answer comes: wait for the sort
    page.wait_for_function(
        """(id) => { const r = document.querySelectorAll('#table tbody tr');
                     return r.length === 2 && r[0].dataset.runId === id; }""",
        arg=site["faulty"],
    )
    assert "project=vision" in page.url and "sort=health" in page.url
    # pick two runs to compare
    assert page.locator("#compare").is_disabled()
    for rid in (site["healthy"], site["faulty"]):
        page.locator(f"input[data-pick='{rid}']").check()
    page.click("#compare")
    page.wait_for_url("**/compare?runs=*")
    assert set(page.url.split("runs=")[1].split("&")[0].split(",")) == {
        site["healthy"],
        site["faulty"],
    }


def test_healthy_run_page(site, chromium):
    rid = site["healthy"]
    for dark in (False, True):
        page, watch = open_page(chromium, f"{site['url']}/runs/{rid}", dark=dark, height=1100)
        _run_ready(page)
        # no warning or critical (once the diagnosis runs, an info note would be fair)
        assert page.locator("#health").get_attribute("class").split()[1] in ("ok", "info")
        screenshot(page, f"run-healthy-{'dark' if dark else 'light'}")
        watch.assert_clean()

    # ECE shown is exact: sum over bins |correct - conf_sum| / N of the latest evaluation
    hs: Any = site["srv"].api(f"/api/v1/runs/{rid}/histograms", key="val/confidence")
    last = hs["histograms"][-1]
    ece = sum(abs(c - s) for c, s in zip(last["correct"], last["conf_sum"], strict=True)) / sum(
        last["counts"]
    )
    shown = page.locator("[data-stat='ece'] .stat-value").inner_text()
    assert shown == f"{ece * 100:.1f}%", (shown, ece)
    assert page.locator("#calib-ece").inner_text() == f"ECE {ece * 100:.1f}%"
    exact = page.evaluate("async (h) => (await import('/static/calibration.js')).ece(h)", last)
    assert math.isclose(exact, ece, rel_tol=1e-12)

    # per-layer heatmap rows in model order; one learning-rate line per parameter group
    rows = page.evaluate("() => Array.from(document.getElementById('chart-layers').data[0].y)")
    assert rows == ["0", "2", "4"]
    lrs = page.evaluate(
        "() => document.getElementById('chart-lr').data.filter(t => t.meta.role === 'line')"
        ".map(t => t.meta.key)"
    )
    assert lrs == ["lr/0", "lr/1"]

    # smoothing adds a smoothed line; log scale switches the axis; both go into the URL
    page.fill("#smoothing", "0.8")
    page.dispatch_event("#smoothing", "input")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').data.some(t => t.meta && t.meta.role === 'smooth')"
    )
    page.check("input[data-log='loss']")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.yaxis.type === 'log'"
    )
    assert "smooth=0.8" in page.url and "log=loss" in page.url

    # a deep link restores chart, range and controls
    page.goto(f"{site['url']}/runs/{rid}?chart=grad&x0=40&x1=90&log=grad,loss&smooth=0.5")
    chart_ready(page, "chart-grad")
    page.wait_for_function("() => document.activeElement.id === 'card-grad'")
    for chart in ("chart-grad", "chart-loss", "chart-layers"):
        page.wait_for_function(
            f"() => document.getElementById('{chart}').layout.xaxis.autorange === false"
        )
        assert x_range(page, chart) == [40, 90]
    assert page.locator("input[data-log='loss']").is_checked()
    assert page.input_value("#smoothing") == "0.5"


def test_faulty_run_page(site, chromium):
    rid = site["faulty"]
    for dark in (False, True):
        page, watch = open_page(chromium, f"{site['url']}/runs/{rid}", dark=dark, height=1100)
        _run_ready(page)
        assert page.locator("#health").inner_text().startswith("critical")
        for aid in site["alerts"]:
            page.locator(f"#alerts .alert[data-alert-id='{aid}']").wait_for()
        # open alerts the most severe first (the diagnosis may add more), except that a root
        # cause comes before the alerts it caused
        items = page.locator("#alerts > .alert")
        order = [int(items.nth(i).get_attribute("data-alert-id")) for i in range(items.count())]
        sev = [items.nth(i).get_attribute("class").split()[1] for i in range(items.count())]
        assert sev[0] == "critical"
        shown: Any = site["srv"].api(f"/api/v1/runs/{rid}/alerts")
        for a in shown:
            cause = (a["evidence"].get("caused_by") or {}).get("alert_id")
            if a["status"] == "open" and cause in order and a["id"] in order:
                assert order.index(cause) < order.index(a["id"])
        rank = {"critical": 3, "warning": 2, "info": 1}
        cause_of = {a["id"]: (a["evidence"].get("caused_by") or {}).get("alert_id") for a in shown}
        level = dict(zip(order, (rank[x] for x in sev), strict=True))
        roots = [
            max([level[i]] + [level[e] for e in order if cause_of.get(e) == i])
            for i in order
            if cause_of.get(i) not in order
        ]  # a root ranks as its most severe effect
        assert sorted(roots, reverse=True) == roots
        # the NaN loss is a visible marker, not a gap
        marks = trace(page, "chart-loss", "nonfinite", "train/loss")
        assert marks is not None and len(marks["x"]) > 0
        assert page.locator("[data-stat='train-loss']").get_attribute("class") == "stat bad"
        screenshot(page, f"run-faulty-{'dark' if dark else 'light'}")
        watch.assert_clean()

    # keyboard: Tab reaches the alerts, Enter zooms to the evidence, highlighting its charts
    page.locator("#config-filter").focus()
    page.keyboard.press("Shift+Tab")
    for _ in range(6):
        if page.evaluate("() => document.activeElement.classList.contains('alert')"):
            break
        page.keyboard.press("Shift+Tab")
    focused = page.evaluate("() => document.activeElement.dataset.alertId")
    assert focused is not None
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('chart-grad').layout.xaxis.autorange === false"
    )
    alerts: Any = site["srv"].api(f"/api/v1/runs/{rid}/alerts")
    ev = next(a for a in alerts if str(a["id"]) == focused)["evidence"]
    began = next(a for a in alerts if str(a["id"]) == focused)["onset_step"] or ev["start_step"]
    began = min(max(began, ev["start_step"]), ev["end_step"])
    r = x_range(page, "chart-loss")
    assert r is not None and r[0] <= began <= r[1]  # where the condition began
    screenshot(page, "run-faulty-zoomed-dark")
    # clicking another alert selects it instead; the charts holding its evidence are marked
    crit = site["alerts"][1]
    page.locator(f"[data-alert-id='{crit}']").click()
    page.locator(f".alert.selected[data-alert-id='{crit}']").wait_for()
    page.locator("#card-layers.evidence").wait_for()
    assert page.locator(".alert.selected").count() == 1

    # from the five-second view to the evidence: the health line's link selects the worst alert
    page.goto(f"{site['url']}/runs/{rid}")
    page.click("#show-evidence")
    worst = page.locator("#alerts .alert").first.get_attribute("data-alert-id")
    page.locator(f".alert.selected[data-alert-id='{worst}']").wait_for()
    assert page.evaluate("() => document.activeElement.dataset.alertId") == worst
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.xaxis.autorange === false"
    )


def test_compare_page(site, chromium):
    ids = f"{site['healthy']},{site['faulty']}"
    for dark in (False, True):
        page, watch = open_page(chromium, f"{site['url']}/compare?runs={ids}", dark=dark)
        chart_ready(page, "chart-a")
        chart_ready(page, "chart-b")
        page.locator("#summary table").wait_for()
        lines = page.evaluate(
            "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'line')"
            ".map(t => t.name)"
        )
        assert lines == ["mlp-baseline", "mlp-wide-overfit"]
        screenshot(page, f"compare-{'dark' if dark else 'light'}")
        watch.assert_clean()
    diff = page.locator("#config tr.diff th").all_text_contents()
    assert "lr" in diff and "batch_size" in diff and "fitscope.optimizer.class" in diff
    assert "fitscope.parameters" in diff
    same = page.locator("#config tbody tr:not(.diff)").count()
    page.check("#only-diff")
    page.wait_for_function("() => !document.querySelector('#config tbody tr:not(.diff)')")
    assert same > 0
    # a different key, and zoom shared by both charts
    page.select_option("#key-a", "grad_norm/total")
    page.wait_for_function(
        "() => document.getElementById('chart-a').data.some(t => t.meta.key === 'grad_norm/total')"
    )
    page.evaluate("() => Plotly.relayout('chart-a', {'xaxis.range': [10, 60]})")
    page.wait_for_function(
        "() => document.getElementById('chart-b').layout.xaxis.autorange === false"
    )
    assert x_range(page, "chart-b") == [10, 60]
    assert "a=grad_norm%2Ftotal" in page.url or "a=grad_norm/total" in page.url


def test_theme_toggle_persists(site, chromium):
    page, watch = open_page(chromium, f"{site['url']}/runs/{site['healthy']}")
    chart_ready(page, "chart-loss")
    light = page.evaluate("() => document.getElementById('chart-loss').layout.paper_bgcolor")
    page.click("[data-theme-toggle]")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    page.wait_for_function(
        "(c) => document.getElementById('chart-loss').layout.paper_bgcolor !== c", arg=light
    )
    page.reload()
    chart_ready(page, "chart-loss")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(15, 17, 21)"
    watch.assert_clean()


def test_push_stream_is_used_when_the_server_has_one(site, chromium):
    """Events in the format the server pushes (BRIEF "Live push") reach the charts and panel."""
    rid = site["healthy"]
    steps, _ = _series(site["srv"], rid, "train/loss")
    nxt = steps[-1] + 1000
    alert = {
        "id": 987654,
        "rule": "plateau",
        "severity": "info",
        "status": "open",
        "step": nxt,
        "onset_step": None,
        "message": "pushed alert",
        "remedy": "",
        "evidence": {"series": ["train/loss"], "start_step": nxt - 10, "end_step": nxt},
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }
    points = {"series": {"train/loss": {"steps": [nxt], "values": ["NaN"]}}}
    body = f"event: points\ndata: {json.dumps(points)}\n\nevent: alerts\ndata: {json.dumps([alert])}\n\n"
    page, watch = open_page(chromium, "about:blank")
    page.route(
        f"**/api/v1/runs/{rid}/events*",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=body
        ),
    )
    # the run is finished, so the page would not subscribe: present it as running
    page.route(
        f"**/api/v1/runs/{rid}",
        lambda route: route.fulfill(
            response=route.fetch(), json={**route.fetch().json(), "status": "running"}
        ),
    )
    page.goto(f"{site['url']}/runs/{rid}")
    page.locator("[data-alert-id='987654']").wait_for(timeout=10_000)
    page.wait_for_function(
        "(s) => (document.getElementById('chart-loss').data || []).some(t => t.meta &&"
        " t.meta.role === 'nonfinite' && Array.from(t.x).includes(s))",
        arg=nxt,
    )
    watch.assert_clean()
