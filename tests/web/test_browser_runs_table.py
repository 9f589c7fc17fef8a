"""The runs table in headless Chromium: server-side paging, sorting and search, metric columns,
same-named runs told apart, tags / notes / rename from the UI, delete with a confirmation.
Saves screenshots of the page in light and dark."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.servers import ServerProcess
from tests.support.web import artifacts_dir, create_run, finish, insert_alert, open_page, post_batch

pytestmark = pytest.mark.browser

SWEEP = 56  # with the 5 runs below: 61 runs, two pages of 50


def _val(url: str, run_id: str, losses: list[float], accs: list[float]) -> None:
    steps = [100 * (i + 1) for i in range(len(losses))]
    post_batch(url, run_id, {"val/loss": (steps, losses), "val/accuracy": (steps, accs)})


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("runs-table")
    srv = ServerProcess(f"sqlite:///{tmp / 'fitscope.db'}", tmp).start()
    url = srv.url
    try:
        sweep = []
        for i in range(SWEEP):
            rid = create_run(url, f"sweep-{i:02d}", "sweep", {"lr": 10 ** (-1 - i % 4)})
            _val(url, rid, [1.0 + i / 100, 0.9 + i / 100], [0.5, 0.5 + i / 200])
            if i % 2:
                finish(url, rid)
            sweep.append(rid)
        # two runs with the same name, as running the demo twice gives
        demo_old = create_run(url, "demo-mlp", "demo")
        _val(url, demo_old, [0.8, 0.5, 0.62], [0.7, 0.8, 0.79])
        finish(url, demo_old)
        demo_new = create_run(url, "demo-mlp", "demo")
        _val(url, demo_new, [0.7, 0.31], [0.75, 0.91])
        httpx.patch(
            f"{url}/api/v1/runs/{demo_new}",
            json={"tags": ["baseline", "seed-1"], "notes": "the one to beat"},
        ).raise_for_status()
        bad = create_run(url, "wide-overfit", "vision")
        _val(url, bad, [0.9, 1.4], [0.6, 0.55])
        insert_alert(
            srv.db_url,
            bad,
            rule="overfitting",
            severity="critical",
            step=200,
            message="Validation loss rose",
            remedy="Stop early.",
            evidence={},
        )
        victim = create_run(url, "to-delete", "vision")
        editable = create_run(url, "to-rename", "vision")
        yield {
            "srv": srv,
            "url": url,
            "sweep": sweep,
            "demo": (demo_old, demo_new),
            "bad": bad,
            "victim": victim,
            "editable": editable,
            "total": SWEEP + 5,
        }
    finally:
        srv.stop()


def _rows(page: Any) -> list[str]:
    return page.locator("#table tbody tr").evaluate_all("(rs) => rs.map(r => r.dataset.runId)")


def _wait_rows(page: Any, n: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('#table tbody tr').length === n", arg=n, timeout=10_000
    )


def _wait_first(page: Any, run_id: str) -> None:
    page.wait_for_function(
        "(id) => { const r = document.querySelector('#table tbody tr');"
        " return r && r.dataset.runId === id; }",
        arg=run_id,
        timeout=10_000,
    )


def _api_ids(site: dict, **params: Any) -> list[str]:
    return [r["id"] for r in site["srv"].api("/api/v1/runs", **params)]  # type: ignore[union-attr]


def test_table_columns_and_screenshots_in_light_and_dark(site, chromium):
    old, new = site["demo"]
    for dark in (False, True):
        page, watch = open_page(chromium, f"{site['url']}/?q=demo-mlp", dark=dark, height=700)
        _wait_rows(page, 2)
        assert _rows(page) == [new, old]
        # same-named runs are told apart by their short id
        ids = page.locator("#table tbody code.rid").all_inner_texts()
        assert ids == [new[:8], old[:8]]
        row = page.locator(f"tr[data-run-id='{new}']")
        assert row.locator("td.step").inner_text() == "200"
        assert row.locator("td.metric[data-col='best:val/loss']").inner_text() == "0.31"
        assert row.locator("td.metric[data-col='last:val/accuracy']").inner_text() == "0.91"
        assert row.locator(".tags .tag").all_inner_texts() == ["baseline", "seed-1"]
        assert row.locator(".notes").inner_text() == "the one to beat"
        orow = page.locator(f"tr[data-run-id='{old}']")
        assert orow.locator("td.metric[data-col='best:val/loss']").inner_text() == "0.5"
        assert orow.locator("td.metric[data-col='last:val/accuracy']").inner_text() == "0.79"
        assert page.locator("#summary").inner_text() == "2 runs match"
        assert page.locator(".health.ok").count() == 2
        # nothing spills out of the table at a common width
        assert page.evaluate(
            "() => { const w = document.querySelector('.table-wrap');"
            " return w.scrollWidth <= w.clientWidth; }"
        )
        page.goto(f"{site['url']}/")
        _wait_rows(page, 50)
        page.locator(f"tr[data-run-id='{site['bad']}'] .health.critical").wait_for()
        page.wait_for_timeout(300)
        page.screenshot(
            path=str(artifacts_dir() / f"runs-table-{'dark' if dark else 'light'}.png"),
            full_page=False,
        )
        watch.assert_clean()
        page.context.close()


def test_paging_sorting_and_search_happen_on_the_server(site, chromium):
    page, watch = open_page(chromium, f"{site['url']}/")
    _wait_rows(page, 50)
    newest = _api_ids(site)
    assert _rows(page) == newest[:50]
    assert page.locator("#summary").inner_text() == f"{site['total']} runs"
    assert page.locator("#range").inner_text() == f"1–50 of {site['total']}"
    page.click("#next")
    _wait_rows(page, site["total"] - 50)
    assert _rows(page) == newest[50:]
    assert "page=2" in page.url and page.locator("#next").is_disabled()
    page.click("#prev")
    _wait_rows(page, 50)
    # sort by a header: name ascending, then descending; the sort is in the URL
    page.click("#table th button[data-sort='name']")
    _wait_first(page, _api_ids(site, sort="name")[0])
    assert _rows(page) == _api_ids(site, sort="name", limit=50)
    assert "sort=name" in page.url
    assert page.locator("th[aria-sort='ascending'] button[data-sort='name']").count() == 1
    page.click("#table th button[data-sort='name']")
    _wait_first(page, _api_ids(site, sort="name", order="desc")[0])
    assert "order=desc" in page.url
    # sort by a metric column: the best validation loss first
    page.click("#table th button[data-sort='best:val/loss']")
    _wait_first(page, site["demo"][1])
    assert _rows(page)[:3] == _api_ids(site, sort="best:val/loss", limit=3)
    # sort by health: the run with a critical alert first
    page.click("#table th button[data-sort='health']")
    _wait_first(page, site["bad"])
    # search by name (server-side), one match: "1 run"
    page.fill("#q", "wide-over")
    _wait_rows(page, 1)
    assert page.locator("#summary").inner_text() == "1 run matches"
    assert "q=wide-over" in page.url
    # a tag: click it to filter
    page.fill("#q", "demo")
    _wait_rows(page, 2)
    page.locator(f"tr[data-run-id='{site['demo'][1]}'] button.tag[data-tag='seed-1']").click()
    _wait_rows(page, 1)
    assert "tag=seed-1" in page.url and page.locator("#tag-chip").is_visible()
    page.click("#tag-clear")
    _wait_rows(page, 2)
    # a deep link restores the view
    page.goto(f"{site['url']}/?project=sweep&sort=step&order=asc&n=25")
    _wait_rows(page, 25)
    assert page.locator("#project").input_value() == "sweep"
    assert page.locator("#range").inner_text() == f"1–25 of {SWEEP}"
    watch.assert_clean()
    page.context.close()


def test_metric_columns_can_be_added_and_removed(site, chromium):
    page, watch = open_page(chromium, f"{site['url']}/?q=demo-mlp")
    _wait_rows(page, 2)
    page.select_option("#col-agg", "max")
    page.fill("#col-key", "val/loss")
    page.click("#col-add")
    cell = page.locator(f"tr[data-run-id='{site['demo'][0]}'] td[data-col='max:val/loss']")
    cell.wait_for()
    assert cell.inner_text() == "0.8"
    assert "col=max%3Aval%2Floss" in page.url
    # the choice is kept for the next visit
    page.goto(f"{site['url']}/?q=demo-mlp")
    cell.wait_for()
    page.click("th button[data-remove-col='max:val/loss']")
    page.wait_for_function("() => !document.querySelector(\"td[data-col='max:val/loss']\")")
    watch.assert_clean()
    page.context.close()


def test_rename_tags_and_notes_from_the_ui(site, chromium):
    rid = site["editable"]
    page, watch = open_page(chromium, f"{site['url']}/?q=to-rename")
    _wait_rows(page, 1)
    page.click(f"button[data-edit='{rid}']")
    assert page.locator("#edit-dialog").is_visible()
    assert page.locator("#edit-name").input_value() == "to-rename"
    page.fill("#edit-name", "renamed <b>run</b>")
    page.fill("#edit-tags", "ablation,  lr-sweep , ablation")
    page.fill("#edit-notes", "dropout off")
    page.screenshot(path=str(artifacts_dir() / "runs-table-edit-light.png"))
    page.click("#edit-save")
    page.locator("#edit-dialog").wait_for(state="hidden")
    run: Any = site["srv"].api(f"/api/v1/runs/{rid}")
    assert (run["name"], run["tags"], run["notes"]) == (
        "renamed <b>run</b>",
        ["ablation", "lr-sweep"],
        "dropout off",
    )
    page.fill("#q", "ablation")  # tags are searchable
    _wait_rows(page, 1)
    row = page.locator(f"tr[data-run-id='{rid}']")
    assert row.locator("td.name a").inner_text() == "renamed <b>run</b>"  # text, not markup
    assert row.locator(".tags .tag").all_inner_texts() == ["ablation", "lr-sweep"]
    # a name the server refuses: the dialog says so and stays open
    page.click(f"button[data-edit='{rid}']")
    page.fill("#edit-name", "x" * 201)
    page.evaluate("() => document.getElementById('edit-name').removeAttribute('maxlength')")
    page.fill("#edit-name", "x" * 201)
    page.click("#edit-save")
    page.locator("#edit-error").wait_for()
    assert "Not saved" in page.locator("#edit-error").inner_text()
    page.click("#edit-cancel")
    assert site["srv"].api(f"/api/v1/runs/{rid}")["name"] == "renamed <b>run</b>"  # type: ignore[index]
    watch.assert_clean()
    page.context.close()


def test_delete_asks_first_and_cancel_keeps_the_run(site, chromium):
    rid = site["victim"]
    page, watch = open_page(chromium, f"{site['url']}/?q=to-delete")
    _wait_rows(page, 1)
    page.click(f"button[data-delete='{rid}']")
    assert page.locator("#delete-dialog").is_visible()
    assert rid[:8] in page.locator("#delete-what").inner_text()
    page.screenshot(path=str(artifacts_dir() / "runs-table-delete-light.png"))
    page.click("#delete-cancel")
    page.locator("#delete-dialog").wait_for(state="hidden")
    assert httpx.get(f"{site['url']}/api/v1/runs/{rid}").status_code == 200
    page.keyboard.press("Escape")
    page.click(f"button[data-delete='{rid}']")
    page.click("#delete-confirm")
    _wait_rows(page, 0)
    assert httpx.get(f"{site['url']}/api/v1/runs/{rid}").status_code == 404
    assert page.locator("#no-match").is_visible()
    watch.assert_clean()
    page.context.close()


def test_a_run_deleted_elsewhere_leaves_the_open_table(site, chromium):
    rid = create_run(site["url"], "short-lived", "vision")
    page, watch = open_page(chromium, f"{site['url']}/?q=short-lived")
    _wait_rows(page, 1)
    httpx.delete(f"{site['url']}/api/v1/runs/{rid}").raise_for_status()
    _wait_rows(page, 0)
    watch.assert_clean()
    page.context.close()
