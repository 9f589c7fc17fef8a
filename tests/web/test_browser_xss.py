"""Every user-supplied string is shown as text: run names, projects, config keys and values,
metric keys and alert messages that look like HTML render literally and run no script."""

from __future__ import annotations

import httpx
import pytest

from tests.support.web import chart_ready, create_run, insert_alert, open_page, post_batch, trace

pytestmark = pytest.mark.browser

NAME = "<img src=x onerror=alert(1)>"
PROJECT = "<script>alert(2)</script>"
KEY = "custom/<b>bold</b><img src=x onerror=alert(3)>"
LAYER = "<i>l</i><svg onload=alert(4)>"
MESSAGE = "<img src=x onerror=alert(5)> loss went up"


def test_markup_in_user_strings_is_text(server, browser):
    config = {"<b>lr</b>": "<img src=x onerror=alert(6)>", "fitscope": {"layers": {LAYER: 10}}}
    run_id = create_run(server.url, NAME, PROJECT, config)
    other = create_run(server.url, "plain", PROJECT, {"<b>lr</b>": 0.1})
    steps = list(range(1, 51))
    post_batch(
        server.url,
        run_id,
        {
            "train/loss": (steps, [1.0 / s for s in steps]),
            KEY: (steps, [float(s) for s in steps]),
            f"grad_norm/{LAYER}": (steps, [0.1] * 50),
        },
    )
    post_batch(server.url, other, {"train/loss": (steps, [2.0 / s for s in steps])})
    insert_alert(
        server.db_url,
        run_id,
        rule="divergence",
        severity="warning",
        step=40,
        message=MESSAGE,
        remedy="<a href=javascript:alert(7)>click</a>",
        evidence={
            "series": ["train/loss"],
            "start_step": 30,
            "end_step": 40,
            "<i>x</i>": "<b>y</b>",
        },
    )

    tag, notes = "<b>t</b><img src=x onerror=alert(8)>", "<img src=x onerror=alert(9)> n"
    httpx.patch(
        f"{server.url}/api/v1/runs/{run_id}", json={"tags": [tag], "notes": notes}
    ).raise_for_status()
    page, watch = open_page(browser, f"{server.url}/")
    link = page.get_by_role("link", name=NAME)
    link.wait_for(timeout=10_000)
    row = page.locator(f"tr[data-run-id='{run_id}']")
    assert row.locator("td.project").inner_text() == PROJECT
    assert row.locator(".tags .tag").inner_text() == tag
    assert row.locator(".notes").inner_text() == notes
    page.locator(f"tr[data-run-id='{run_id}'] .health").filter(has_text="warning").wait_for()

    page.goto(f"{server.url}/runs/{run_id}")
    chart_ready(page, "chart-loss")
    assert page.locator("#run-name").inner_text() == NAME
    assert page.locator("#crumb-project").inner_text() == PROJECT
    page.locator("#alerts .alert-msg").filter(has_text=MESSAGE).wait_for()
    assert "<a href=javascript:alert(7)>click</a>" in page.locator("#alerts .remedy").inner_text()
    assert "<b>y</b>" in page.locator("#alerts .evidence").inner_text()
    config_text = page.locator("#config").inner_text()
    assert "<b>lr</b>" in config_text and "<img src=x onerror=alert(6)>" in config_text
    # the key's own chart, in its prefix's group: its title and Plotly's legend show it literally
    # (entity-escaped, not markup)
    page.wait_for_function(
        "(k) => [...document.querySelectorAll('section.card[data-key]')].some(c => c.dataset.key === k)",
        arg=KEY,
    )
    chart = page.evaluate(
        "(k) => [...document.querySelectorAll('section.card[data-key]')]"
        ".find(c => c.dataset.key === k).querySelector('.chart').id",
        KEY,
    )
    chart_ready(page, chart)
    assert trace(page, chart, "line", KEY) is not None
    assert page.locator(f"#card-{chart[len('chart-') :]} h3").inner_text() == KEY
    legend = page.locator(f"#{chart} .legendtext").first.text_content()
    assert legend == KEY
    assert "<i>x</i>" in page.locator("#alerts .evidence").inner_text()
    chart_ready(page, "chart-layers")
    ticks = page.locator("#chart-layers .ytick text").all_text_contents()
    assert LAYER in ticks

    page.goto(f"{server.url}/compare?runs={run_id},{other}")
    chart_ready(page, "chart-a")
    assert NAME in page.locator("#legend").inner_text()
    assert NAME in page.locator("#chart-a .legendtext").all_text_contents()
    assert "<b>lr</b>" in page.locator("#config").inner_text()

    # nothing the strings asked for exists in the DOM, and no script ran
    assert page.locator("img[src='x']").count() == 0
    page.wait_for_timeout(300)
    watch.assert_clean()
