"""The runs table's API on both backends: paging, sorting, search and filters, metric columns,
health, and the run's name / tags / notes changed with PATCH."""

from __future__ import annotations

import uuid

import pytest

from tests.support.web import insert_alert, wire


def _run(client, name, project="p", tags=None, run_id=None):
    run_id = run_id or uuid.uuid4().hex[:12]
    body = {"id": run_id, "name": name, "project": project, "config": {"lr": 0.1}}
    if tags is not None:
        body["tags"] = tags
    r = client.post("/api/v1/runs", json=body)
    assert r.status_code == 201, r.text
    return run_id


def _batch(client, run_id, scalars):
    body = {
        "batch_id": uuid.uuid4().hex,
        "scalars": {
            k: {"steps": list(st), "values": [wire(float(v)) for v in vs]}
            for k, (st, vs) in scalars.items()
        },
    }
    r = client.post(f"/api/v1/runs/{run_id}/batches", json=body)
    assert r.status_code == 200, r.text


def _ids(resp):
    assert resp.status_code == 200, resp.text
    return [r["id"] for r in resp.json()]


def test_without_parameters_the_list_is_as_before_plus_the_new_fields(client):
    a = _run(client, "first")
    b = _run(client, "second", tags=["baseline", "seed-1"])
    r = client.get("/api/v1/runs")
    assert _ids(r) == [b, a]
    assert r.headers["X-Total-Count"] == "2"
    first = r.json()[0]
    for k in ("id", "project", "name", "status", "created_at"):
        assert k in first
    assert first["tags"] == ["baseline", "seed-1"] and first["notes"] == ""
    assert first["last_step"] is None and first["health"] == "ok"
    assert first["open_alerts"] == 0 and first["duration_s"] >= 0


def test_pages_cover_every_run_once_in_order_and_the_total_counts_the_matches(client):
    ids = [_run(client, f"run-{i:02d}", project="a" if i % 3 else "b") for i in range(23)]
    pages = [
        _ids(client.get("/api/v1/runs", params={"limit": 10, "offset": o})) for o in (0, 10, 20)
    ]
    assert [len(p) for p in pages] == [10, 10, 3]
    assert sum(pages, []) == ids[::-1]
    r = client.get("/api/v1/runs", params={"project": "b", "limit": 2})
    assert r.headers["X-Total-Count"] == str(len(ids[::3])) and len(r.json()) == 2
    # an offset past the end is an empty page, not an error
    r = client.get("/api/v1/runs", params={"offset": 100})
    assert r.json() == [] and r.headers["X-Total-Count"] == "23"


def test_sort_by_name_step_duration_and_health(client, db_url):
    c = _run(client, "charlie")
    a = _run(client, "alpha")
    b = _run(client, "bravo")
    d = _run(client, "delta")  # no points
    # keys no diagnosis rule reads, so that the only alerts are the ones inserted below
    _batch(client, a, {"custom/x": (range(1, 301), [1.0] * 300)})
    _batch(client, b, {"custom/x": (range(1, 11), [1.0] * 10), "custom/y": ([500], [2.0])})
    _batch(client, c, {"custom/x": (range(1, 51), [1.0] * 50)})
    by = lambda **p: _ids(client.get("/api/v1/runs", params=p))  # noqa: E731
    assert by(sort="name") == [a, b, c, d]
    assert by(sort="name", order="desc") == [d, c, b, a]
    # step: the highest step of any series, most advanced first; runs without points last
    assert by(sort="step") == [b, a, c, d]
    assert by(sort="step", order="asc") == [c, a, b, d]
    steps = {r["id"]: r["last_step"] for r in client.get("/api/v1/runs").json()}
    assert steps == {a: 300, b: 500, c: 50, d: None}
    insert_alert(
        db_url, c, rule="plateau", severity="warning", step=5, message="m", remedy="r", evidence={}
    )
    insert_alert(
        db_url,
        a,
        rule="non_finite",
        severity="critical",
        step=9,
        message="m",
        remedy="r",
        evidence={},
    )
    insert_alert(
        db_url, a, rule="plateau", severity="warning", step=7, message="m", remedy="r", evidence={}
    )
    insert_alert(
        db_url, d, rule="early_stop", severity="info", step=3, message="m", remedy="r", evidence={}
    )
    insert_alert(
        db_url, b, rule="overfitting", severity="critical", step=3, message="m", remedy="r",
        evidence={}, status="resolved",
    )  # fmt: skip
    assert by(sort="health")[:2] == [a, c]
    rows = {r["id"]: r for r in client.get("/api/v1/runs").json()}
    assert (rows[a]["health"], rows[a]["alert_rule"], rows[a]["open_alerts"]) == (
        "critical",
        "non_finite",
        2,
    )
    assert rows[b]["health"] == "ok" and rows[d]["health"] == "info"
    assert set(by(health="problem")) == {a, c}
    assert by(health="critical") == [a]
    assert set(by(health="ok")) == {b, d}
    client.post(f"/api/v1/runs/{b}/finish", json={"status": "crashed"})
    assert by(health="ok") == [d]  # a crash is not healthy, even without alerts
    client.post(f"/api/v1/runs/{d}/finish", json={})
    dur = client.get("/api/v1/runs", params={"sort": "duration"}).json()
    secs = [r["duration_s"] for r in dur]
    assert secs == sorted(secs, reverse=True)


def test_search_by_name_project_tag_and_id(client):
    a = _run(client, "ResNet-50 lr=0.1", project="vision", tags=["baseline"])
    b = _run(client, "bert 100%_done", project="nlp", tags=["ab", "sweep-3"])
    c = _run(client, "resnet-18", project="vision", tags=["a"])
    by = lambda **p: set(_ids(client.get("/api/v1/runs", params=p)))  # noqa: E731
    assert by(q="resnet") == {a, c}  # case-insensitive, anywhere in the name
    assert by(q="NLP") == {b}  # the project
    assert by(q="sweep") == {b}  # a tag
    assert by(q=a[:6]) == {a}  # the id
    assert by(q="100%_") == {b}  # % and _ are plain characters
    assert by(q="0%x") == set()
    assert by(tag="a") == {c}  # a tag filter is exact: "a" is not "ab"
    assert by(tag="ab") == {b}
    assert by(tag="AB") == set()  # and case-sensitive
    assert by(q="SWEEP-3") == {b}  # while search is not
    assert by(q="resnet", project="vision", tag="baseline") == {a}
    r = client.get("/api/v1/runs", params={"q": "resnet", "limit": 1})
    assert r.headers["X-Total-Count"] == "2"


def test_metric_columns_and_sorting_by_them(client):
    a, b, c, d = (_run(client, n) for n in ("alpha", "bravo", "charlie", "delta"))
    _batch(client, a, {"val/loss": ([1, 2, 3], [1.0, 0.5, 0.7]), "val/accuracy": ([3], [0.8])})
    _batch(client, b, {"val/loss": ([1, 2, 3], [0.9, 0.4, 0.45]), "val/accuracy": ([3], [0.9])})
    # c: the last value is NaN, the best ignores it
    _batch(client, c, {"val/loss": ([1, 2], [0.6, float("nan")]), "val/accuracy": ([3], [0.7])})
    # a long series over several blocks: the last value comes from the last block
    _batch(client, c, {"val/accuracy": (range(10, 5010), [0.1] * 4999 + [0.75])})
    params = {"metric": ["best:val/loss", "last:val/loss", "best:val/accuracy"]}
    rows = {r["id"]: r["metrics"] for r in client.get("/api/v1/runs", params=params).json()}
    assert rows[a] == {"best:val/loss": 0.5, "last:val/loss": 0.7, "best:val/accuracy": 0.8}
    assert rows[b] == {"best:val/loss": 0.4, "last:val/loss": 0.45, "best:val/accuracy": 0.9}
    assert rows[c] == {"best:val/loss": 0.6, "last:val/loss": "NaN", "best:val/accuracy": 0.75}
    assert rows[d] == {"best:val/loss": None, "last:val/loss": None, "best:val/accuracy": None}
    last_acc = client.get("/api/v1/runs", params={"metric": "last:val/accuracy"}).json()
    assert {r["id"]: r["metrics"]["last:val/accuracy"] for r in last_acc}[c] == 0.75
    by = lambda **p: _ids(client.get("/api/v1/runs", params=p))  # noqa: E731
    # the best first by default (lowest loss, highest accuracy); runs without the key last
    assert by(sort="best:val/loss") == [b, a, c, d]
    assert by(sort="best:val/loss", order="desc") == [c, a, b, d]
    assert by(sort="max:val/accuracy") == [b, a, c, d]
    # NaN sorts with the missing values, after the others, newest first
    assert by(sort="last:val/loss") == [b, a, d, c]
    assert by(sort="best:val/loss", limit=2, offset=1) == [a, c]
    r = client.get("/api/v1/runs", params={"sort": "best:val/loss", "q": "lph"})
    assert _ids(r) == [a] and r.headers["X-Total-Count"] == "1"


@pytest.mark.parametrize(
    "params, says",
    [
        ({"sort": "size"}, "created_at|name|project|status|step|duration|health"),
        ({"metric": "median:val/loss"}, "(min|max|last|best):"),
        ({"metric": "best:"}, "(min|max|last|best):"),
        ({"status": "paused"}, "status"),
        ({"health": "meh"}, "health"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"q": "a\x00b"}, "q"),
        ({"tag": "a\x00"}, "tag"),
        ({"sort": "best:val\x00loss"}, "sort"),
        ({"metric": "last:\x01"}, "metric"),
    ],
)
def test_bad_parameters_get_a_4xx_that_says_why(client, params, says):
    _run(client, "x")
    r = client.get("/api/v1/runs", params=params)
    # a NUL in any query parameter is refused (400) before the route; the rest are 422
    want = 400 if any("\x00" in str(v) for v in params.values()) else 422
    assert r.status_code == want and says in r.text, r.text
    assert client.get("/api/v1/runs").status_code == 200


def test_patch_renames_and_sets_tags_and_notes_and_still_merges_config(client):
    a = _run(client, "old name", tags=["x"])
    r = client.patch(f"/api/v1/runs/{a}", json={"name": "new name"})
    assert r.status_code == 200 and r.json()["name"] == "new name"
    assert r.json()["tags"] == ["x"] and r.json()["config"] == {"lr": 0.1}
    r = client.patch(
        f"/api/v1/runs/{a}", json={"tags": [" b ", "a", "b", ""], "notes": "lr too high?"}
    )
    assert r.json()["tags"] == ["b", "a"] and r.json()["notes"] == "lr too high?"
    r = client.patch(f"/api/v1/runs/{a}", json={"config": {"wd": 0.01}})
    assert r.json()["config"] == {"lr": 0.1, "wd": 0.01}
    assert r.json()["name"] == "new name" and r.json()["tags"] == ["b", "a"]
    listed = client.get("/api/v1/runs", params={"tag": "a"}).json()
    assert [(x["id"], x["notes"]) for x in listed] == [(a, "lr too high?")]
    assert client.get(f"/api/v1/runs/{a}").json()["notes"] == "lr too high?"
    for bad in ({"name": ""}, {"tags": ["a\nb"]}, {"tags": ["t" * 65]}, {"tags": "a"}):
        r = client.patch(f"/api/v1/runs/{a}", json=bad)
        assert r.status_code == 422, (bad, r.text)
    assert client.patch("/api/v1/runs/nope", json={"name": "n"}).status_code == 404
    assert client.get(f"/api/v1/runs/{a}").json()["name"] == "new name"


def test_deleted_runs_leave_the_table(client):
    a, b = _run(client, "same"), _run(client, "same")
    assert client.delete(f"/api/v1/runs/{a}").status_code == 204
    r = client.get("/api/v1/runs", params={"q": "same"})
    assert _ids(r) == [b] and r.headers["X-Total-Count"] == "1"
