"""The run and compare pages as a daily tool: x axis in steps, time or epochs; free zoom on both
axes; metrics grouped by key prefix with a layout that survives a reload; an alerts panel that
grows with its content, root cause first; compare with any number of charts, same-named runs
told apart, per-run toggles and grouping. Data sent through the API (fast); screenshots of each
page in light and dark go to the artifacts folder."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import ServerProcess
from tests.support.web import (
    chart_ready,
    create_run,
    finish,
    insert_alert,
    open_page,
    post_batch,
    screenshot,
)

pytestmark = pytest.mark.browser

T0 = 1_750_000_000.0  # the training process's clock at the start
N = 400


def _send(url: str, run_id: str, scale: float = 1.0) -> None:
    steps = list(range(1, N + 1))
    evals = list(range(40, N + 1, 40))
    walls = list(range(20, N + 1, 20))
    post_batch(
        url,
        run_id,
        {
            "train/loss": (steps, [scale * 2.0 * math.exp(-s / 60) + 0.004 for s in steps]),
            "val/loss": (evals, [scale * (1.1 + 0.001 * (s - 200) ** 2 / 100) for s in evals]),
            "val/accuracy": (evals, [min(0.95, 0.3 + s / 500) for s in evals]),
            "grad_norm/total": (steps, [10 ** (-3 + 4 * s / N) for s in steps]),
            "grad_norm/0.weight": (steps, [10 ** (-3 + 3 * s / N) for s in steps]),
            "grad_norm/2.weight": (steps, [10 ** (-2 + 2 * s / N) for s in steps]),
            "param_norm/total": (steps, [5 + s / 100 for s in steps]),
            "param_norm/0.weight": (steps, [3 + s / 200 for s in steps]),
            "lr/0": (steps, [1e-3] * N),
            "wd/0": (steps, [1e-4] * N),  # constant: never a default chart
            "mine/score": (steps, [math.sin(s / 30) for s in steps]),
            "epoch": (steps, [s / 40 for s in steps]),
            "time/wall": (walls, [T0 + 0.5 * s for s in walls]),  # 0.5 s per step
        },
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("dash")
    srv = ServerProcess(f"sqlite:///{tmp / 'fitscope.db'}", tmp).start()
    try:
        cfg = {"fitscope": {"started_at": T0}}
        a = create_run(srv.url, "alpha", "lab", {"lr": 1e-3, "seed": 1, **cfg})
        b = create_run(srv.url, "alpha", "lab", {"lr": 1e-3, "seed": 2, **cfg})
        c = create_run(srv.url, "beta", "lab", {"lr": 3e-3, "seed": 1, **cfg})
        for rid, scale in ((a, 1.0), (b, 1.1), (c, 0.8)):
            _send(srv.url, rid, scale)
        finish(srv.url, a)
        finish(srv.url, b)  # c stays running: its "ran" ticks
        cause = insert_alert(
            srv.db_url,
            a,
            rule="exploding_gradients",
            severity="critical",
            step=300,
            onset_step=250,
            message="Gradient norm grew by orders of magnitude",
            remedy="Clip gradients.",
            evidence={"series": ["grad_norm/total"], "start_step": 250, "end_step": 300},
        )
        effect = insert_alert(
            srv.db_url,
            a,
            rule="non_finite",
            severity="critical",
            step=310,
            message="Training loss became NaN",
            remedy="Lower the learning rate.",
            evidence={
                "series": ["train/loss"],
                "start_step": 310,
                "end_step": 310,
                "caused_by": {"rule": "exploding_gradients", "alert_id": cause, "step": 250},
            },
        )
        over = insert_alert(
            srv.db_url,
            a,
            rule="overfitting",
            severity="warning",
            step=390,
            onset_step=60,
            message="Validation loss rose while training loss kept falling",
            remedy="Stop early.",
            evidence={
                "series": ["val/loss", "train/loss"],
                "start_step": 60,
                "end_step": 390,
                "gl": 12.5,
                "train_drop": 0.31,
                "best": {"val_loss": 1.1, "step": 200},
            },
        )
        yield {"srv": srv, "url": srv.url, "a": a, "b": b, "c": c, "alerts": (cause, effect, over)}
    finally:
        srv.stop()


def _line(page: Any, chart: str, key: str) -> dict:
    return page.evaluate(
        """([id, key]) => { const t = document.getElementById(id).data.find(
             t => t.meta && t.meta.role === 'line' && t.meta.key === key);
           return {x: Array.from(t.x), steps: Array.from(t.customdata), ht: t.hovertemplate}; }""",
        [chart, key],
    )


def _layout(page: Any, chart: str, path: str) -> Any:
    return page.evaluate(f"() => document.getElementById('{chart}').layout.{path}")


def test_x_axis_switches_between_step_time_and_epoch(site, chromium):
    page, watch = open_page(chromium, f"{site['url']}/runs/{site['a']}")
    chart_ready(page, "chart-loss")
    page.wait_for_function(
        "() => !document.querySelector('#xmode option[value=relative]').disabled"
    )
    line = _line(page, "chart-loss", "train/loss")
    assert line["x"][:3] == [1, 2, 3] and "(step %{customdata})" in line["ht"]  # no (x, y) tuples
    page.select_option("#xmode", "relative")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.xaxis.title.text.startsWith('time since start')"
    )
    line = _line(page, "chart-loss", "train/loss")
    i = line["steps"].index(200)
    assert _layout(page, "chart-loss", "xaxis.title.text") == "time since start (min)"
    assert line["x"][i] == pytest.approx(100 / 60)  # step 200 is 100 s after the start
    page.select_option("#xmode", "wall")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.xaxis.type === 'date'"
    )
    page.select_option("#xmode", "epoch")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.xaxis.title.text === 'epoch'"
    )
    line = _line(page, "chart-loss", "train/loss")
    assert line["x"][line["steps"].index(200)] == pytest.approx(5.0)
    assert _layout(page, "chart-layers", "xaxis.title.text") == "epoch"
    # zooming in epochs zooms the shared step range; the URL keeps the mode
    page.evaluate("() => Plotly.relayout('chart-loss', {'xaxis.range': [2, 4]})")
    page.wait_for_function("() => new URLSearchParams(location.search).get('x0') !== null")
    assert "x=epoch" in page.url and "x0=80" in page.url and "x1=160" in page.url
    page.reload()
    chart_ready(page, "chart-loss")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.xaxis.title.text === 'epoch'"
    )
    # run start and duration by the training clock, not the upload time
    when = page.locator("#run-when").inner_text()
    assert "ran 3m 20s" in when, when
    started = page.locator("#config tr[data-key='started_at'] td").inner_text()
    assert "e+" not in started and "2025" in started, started  # a date, not 1.75e+9
    watch.assert_clean()


def test_y_zoom_box_and_reset(site, chromium):
    page, watch = open_page(chromium, f"{site['url']}/runs/{site['a']}")
    chart_ready(page, "chart-loss")
    assert not _layout(page, "chart-loss", "yaxis.fixedrange")
    page.locator("#chart-loss").scroll_into_view_if_needed()
    div = page.locator("#chart-loss").bounding_box()
    size = page.evaluate(
        "() => { const s = document.getElementById('chart-loss')._fullLayout._size; return [s.l, s.t, s.w, s.h]; }"
    )
    box = {"x": div["x"] + size[0], "y": div["y"] + size[1], "width": size[2], "height": size[3]}
    # a real mouse drag: a box in the lower left quarter zooms both axes
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.6)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.95, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => document.getElementById('chart-loss').layout.yaxis.autorange === false"
    )
    page.wait_for_function("() => document.querySelector('#card-loss.y-zoomed')")
    y = _layout(page, "chart-loss", "yaxis.range")
    x = _layout(page, "chart-loss", "xaxis.range")
    assert x[1] < N * 0.6 and y[1] < 1.0  # both axes zoomed in
    # the y zoom survives a redraw (smoothing), and "reset y" gives it back
    page.fill("#smoothing", "0.5")
    page.dispatch_event("#smoothing", "input")
    page.wait_for_function(
        "() => document.getElementById('chart-loss').data.some(t => t.meta && t.meta.role === 'smooth')"
    )
    assert _layout(page, "chart-loss", "yaxis.range") == pytest.approx(y)
    # sparse validation points are not smoothed by default
    assert not page.evaluate(
        "() => document.getElementById('chart-loss').data.some(t => t.meta && t.meta.role === 'smooth' && t.meta.key === 'val/loss')"
    )
    page.click("[data-yreset='loss']")
    page.wait_for_function("() => !document.querySelector('#card-loss.y-zoomed')")
    # log axes tick at whole decades (no stacked minor digits)
    assert _layout(page, "chart-grad", "yaxis.type") == "log"
    assert _layout(page, "chart-grad", "yaxis.dtick") == 1
    labels = page.locator("#chart-grad .ytick text").all_text_contents()
    assert labels and all(t.startswith("10") or t == "1" for t in labels), labels
    # the shown data as CSV
    with page.expect_download() as dl:
        page.click("[data-csv='loss']")
    text = dl.value.path().read_text().splitlines()
    rows = [r.split(",") for r in text[1:] if r.startswith("train/loss,")]
    r0, r1 = (
        int(v)
        for v in page.evaluate(
            "() => [new URLSearchParams(location.search).get('x0'), new URLSearchParams(location.search).get('x1')]"
        )
    )
    assert text[0] == "key,step,x,value" and rows and all(r0 <= int(r[1]) <= r1 for r in rows)
    watch.assert_clean()


def test_metric_groups_and_layout_persistence(site, chromium):
    url = f"{site['url']}/runs/{site['a']}"
    page, watch = open_page(chromium, url)
    page.locator("details.group-box[data-group='train']").wait_for()
    groups = page.locator("details.group-box").evaluate_all("(g) => g.map(x => x.dataset.group)")
    assert groups == ["train", "val", "grad_norm", "param_norm", "lr", "wd", "mine", "other"]
    assert "time" not in groups  # the clock is an axis, not a metric
    # the constant weight decay is not drawn; its card says its value
    page.wait_for_function(
        "() => document.querySelector(\"[data-key='wd/0'].empty .const-value\")?.textContent.includes('1.00e-4')"
    )
    chart_ready(page, "chart-k-mine_2fscore")
    chart_ready(page, "chart-k-param_norm_2ftotal")
    # a group opened and closed with the mouse: the URL follows
    page.click("details.group-box[data-group='val'] > summary")
    page.wait_for_function("() => new URLSearchParams(location.search).get('closed') === 'val'")
    page.click("details.group-box[data-group='val'] > summary")
    page.wait_for_function("() => !new URLSearchParams(location.search).get('closed')")
    # close a group and add a chart in the same moment: the groups are rebuilt (open, as the
    # layout had them) before the closed box's toggle event comes; the click still holds
    page.evaluate(
        """() => {
        document.querySelector("details.group-box[data-group='mine'] > summary").click();
        const add = document.querySelector("select[data-add-group='grad_norm']");
        add.value = "grad_norm/0.weight";
        add.dispatchEvent(new Event("change", { bubbles: true }));
    }"""
    )
    chart_ready(page, "chart-k-grad_norm_2f0_2eweight")
    page.evaluate("() => new Promise((r) => setTimeout(r, 200))")  # any late toggle event
    assert page.locator("details.group-box[data-group='mine']").get_attribute("open") is None
    # remove a chart
    page.click("button[data-remove='param_norm/total']")
    page.wait_for_function("() => !document.querySelector(\"[data-key='param_norm/total']\")")
    assert "closed=mine" in page.url and "add=grad_norm" in page.url
    # a plain link to the run (no layout in it) gets the same layout back from local storage
    page.goto(url)
    chart_ready(page, "chart-k-grad_norm_2f0_2eweight")
    assert page.locator("details.group-box[data-group='mine']").get_attribute("open") not in (
        "",
        "open",
    )
    assert page.locator("[data-key='param_norm/total']").count() == 0
    # and so does a reload of the URL
    page.reload()
    chart_ready(page, "chart-k-grad_norm_2f0_2eweight")
    # heatmap rows with complete data have no "no data" columns
    chart_ready(page, "chart-layers")
    # (wait for every layer's series to arrive; holes from bucketing would stay)
    page.wait_for_function(
        """() => { const d = document.getElementById('chart-layers').data[0];
             return d.y.length === 2 && d.z.flat().every(v => v !== null); }""",
        timeout=15_000,
    )
    linked = page.url  # the layout travels in the link (a new browser has no local storage)
    for dark in (False, True):
        p2, w2 = open_page(chromium, linked, dark=dark)
        chart_ready(p2, "chart-loss")
        chart_ready(p2, "chart-k-grad_norm_2f0_2eweight")
        screenshot(p2, f"run-groups-{'dark' if dark else 'light'}")
        w2.assert_clean()
    watch.assert_clean()


def test_alerts_panel_grows_root_cause_first(site, chromium):
    cause, effect, over = site["alerts"]
    for dark in (False, True):
        page, watch = open_page(
            chromium, f"{site['url']}/runs/{site['a']}", dark=dark, width=1440, height=900
        )
        page.locator(f"[data-alert-id='{over}']").wait_for()
        chart_ready(page, "chart-loss")
        # no nested scroll: the panel and its list are as tall as their content
        nested = page.evaluate(
            """() => [...document.querySelectorAll('.side > .panel:first-child, #alerts')]
                 .filter(e => e.scrollHeight > e.clientHeight + 1).length"""
        )
        assert nested == 0
        screenshot(page, f"run-alerts-{'dark' if dark else 'light'}")
        watch.assert_clean()
    ids = page.locator("#alerts > .alert").evaluate_all(
        "(n) => n.map(x => Number(x.dataset.alertId))"
    )
    assert ids.index(cause) < ids.index(effect)  # the root cause leads
    # the headline names the root cause (not the NaN it led to), with its effect as a link
    headline = page.locator("#health-line").inner_text()
    assert headline.startswith("Gradient norm grew by orders of magnitude"), headline
    assert "It led to: non_finite." in headline and "Training loss became NaN" not in headline
    link = page.locator(f"[data-alert-id='{cause}'] .caused-by a[data-goto='{effect}']")
    assert "Training loss became NaN" in link.inner_text()
    link.click()
    page.locator(f".alert.selected[data-alert-id='{effect}']").wait_for()
    assert (
        page.locator(f"[data-alert-id='{effect}'] .cause-link a[data-goto='{cause}']").count() == 1
    )
    # evidence in words, not internal names or raw JSON
    ev = page.locator(f"[data-alert-id='{over}'] .evidence").inner_text()
    # (the server's evidence_labels, the same words as the terminal and the webhook)
    assert "generalisation loss (above the best) 12.5" in ev, ev
    assert "training loss drop since the best 0.31" in ev, ev
    assert "{" not in ev and "caused_by" not in page.locator("#alerts").inner_text()
    # clicking a long alert zooms to where it began, not to its whole range
    page.locator(f"[data-alert-id='{over}']").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('x0') !== null")
    x0 = int(page.evaluate("() => new URLSearchParams(location.search).get('x0')"))
    x1 = int(page.evaluate("() => new URLSearchParams(location.search).get('x1')"))
    assert x0 <= 60 <= x1 and x1 - x0 < (390 - 60) / 2


def test_ran_ticks_on_a_live_run(site, chromium):
    live = create_run(site["url"], "live", "lab", {"fitscope": {"started_at": time.time()}})
    post_batch(site["url"], live, {"train/loss": ([1, 2], [1.0, 0.9])})
    page, watch = open_page(chromium, f"{site['url']}/runs/{live}")
    page.wait_for_function("() => document.getElementById('run-when').textContent.includes('ran')")
    first = page.locator("#run-when").inner_text()
    page.wait_for_function(
        "(t) => document.getElementById('run-when').textContent !== t", arg=first, timeout=5000
    )
    watch.assert_clean()


def test_compare_three_runs_two_share_a_name(site, chromium):
    ids = f"{site['a']},{site['b']},{site['c']}"
    for dark in (False, True):
        page, watch = open_page(chromium, f"{site['url']}/compare?runs={ids}", dark=dark)
        chart_ready(page, "chart-a")
        chart_ready(page, "chart-b")
        page.wait_for_function(
            "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'line').length === 3"
        )
        names = page.evaluate(
            "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'line').map(t => t.name)"
        )
        assert names == [f"alpha · {site['a'][:6]}", f"alpha · {site['b'][:6]}", "beta"]
        legend = page.locator("#legend li a").all_text_contents()
        assert len(set(legend)) == 3
        screenshot(page, f"compare-three-{'dark' if dark else 'light'}")
        watch.assert_clean()
    # any number of charts
    page.click("#add-pane")
    chart_ready(page, "chart-c")
    page.select_option("#key-c", "mine/score")
    page.wait_for_function(
        "() => document.getElementById('chart-c').data.some(t => t.meta.key === 'mine/score')"
    )
    assert "c=mine" in page.url
    # a run toggled off leaves every chart
    page.uncheck(f"input[data-run-toggle='{site['b']}']")
    page.wait_for_function(
        "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'line').length === 2"
    )
    page.check(f"input[data-run-toggle='{site['b']}']")
    # grouped by a config key: a mean line per value, with its min/max band
    page.select_option("#group-by", "lr")
    page.wait_for_function(
        "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'mean').length === 2"
    )
    means = page.evaluate(
        "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'mean').map(t => t.name)"
    )
    assert means == ["lr=0.001 (2 runs)", "lr=0.003 (1 run)"]
    got = page.evaluate(
        """() => { const d = document.getElementById('chart-a').data;
             const m = d.find(t => t.meta.role === 'mean'); const b = d.filter(t => t.meta.role === 'band');
             return [m.x[0], m.y[0], b[0].y[0], b[1].y[0]]; }"""
    )
    step, mean, hi, lo = got
    e = 2.0 * math.exp(-step / 60)
    assert mean == pytest.approx((1.0 + 1.1) / 2 * e + 0.004, rel=1e-9)
    assert hi == pytest.approx(1.1 * e + 0.004) and lo == pytest.approx(e + 0.004)
    assert "group=lr" in page.url
    # the x axis by each run's own clock
    page.select_option("#xmode", "relative")
    page.wait_for_function(
        "() => document.getElementById('chart-a').layout.xaxis.title.text === 'time since start (min)'"
    )
    page.select_option("#group-by", "")
    page.wait_for_function(
        "() => document.getElementById('chart-a').data.filter(t => t.meta.role === 'line').length === 3"
    )
    beta = page.evaluate(
        """() => { const t = document.getElementById('chart-a').data.find(
             t => t.meta.role === 'line' && t.name === 'beta'); return [t.customdata[199], t.x[199]]; }"""
    )
    assert beta[0] == 200 and beta[1] == pytest.approx(100 / 60)
    watch.assert_clean()
