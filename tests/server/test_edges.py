"""Server edges under bad input: partial acceptance of batches, runs that cannot poison the
store, status rules, malformed query inputs, late data and the diagnosis (issue 16)."""

from __future__ import annotations

import gzip
import json
import math
import time

import pytest
import torch
from torch import nn

from fitscope.protocol import encode_float

JSON = {"Content-Type": "application/json"}


def _run(client, run_id: str = "r1", **extra) -> None:
    r = client.post("/api/v1/runs", json={"id": run_id, "name": run_id, **extra})
    assert r.status_code in (200, 201), r.text


def _post(client, run_id: str, raw: bytes | str, **headers: str):
    body = raw.encode() if isinstance(raw, str) else raw
    return client.post(f"/api/v1/runs/{run_id}/batches", content=body, headers={**JSON, **headers})


def _count(client, run_id: str, key: str) -> int:
    return len(client.get(f"/api/v1/runs/{run_id}/series", params={"key": key}).json()["steps"])


# -- A: partial acceptance ---------------------------------------------------------------------


def test_a_batch_with_bad_keys_stores_every_good_one_and_names_the_rest(client):
    _run(client)
    client.post(
        "/api/v1/runs/r1/batches",
        json={
            "batch_id": "h",
            "histograms": [{"key": "h", "step": 1, "edges": [0, 1], "counts": [1]}],
        },
    )
    good = {"steps": list(range(500)), "values": [float(i) for i in range(500)]}
    one = '{"steps": [1], "values": [1.0]}'
    bad_keys = {
        "a\\tb": "control character U+0009",
        "nul\\u0000": "control character U+0000",
        "k" * 251: "251 characters",
        "\\udcff lone": "lone surrogate U+DCFF",
        "": "empty",
    }
    parts = [f'"train/loss": {json.dumps(good)}']
    parts += [f'"{k}": {one}' for k in bad_keys]
    parts += ['"h": ' + one, '"mismatch": {"steps": [1, 2], "values": [1.0]}']
    hist_bad = '{"key": "hist/bad", "step": 1, "edges": [0], "counts": [1]}'
    body = (
        '{"batch_id": "b1", "scalars": {'
        + ", ".join(parts)
        + '}, "histograms": ['
        + hist_bad
        + "]}"
    )
    r = _post(client, "r1", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["stored"] == 500
    refused = out["refused"]
    decoded = {
        json.loads(f'"{k}"').encode("utf-8", "backslashreplace").decode(): why
        for k, why in bad_keys.items()
    }
    for key, why in decoded.items():
        assert key in refused and why in refused[key], (key, refused)
    assert "histogram series" in refused["h"]
    assert "2 steps but 1 values" in refused["mismatch"]
    assert "hist/bad" in refused
    assert len(refused) == len(bad_keys) + 3
    assert _count(client, "r1", "train/loss") == 500
    keys = {k["key"] for k in client.get("/api/v1/runs/r1/keys").json()}
    assert keys == {"train/loss", "h"}
    # the same batch again: acknowledged once, nothing stored twice
    assert _post(client, "r1", body).json()["duplicate"] is True
    assert _count(client, "r1", "train/loss") == 500


def test_a_batch_with_nothing_acceptable_is_a_4xx_that_says_why(client):
    _run(client)
    r = _post(
        client, "r1", '{"batch_id": "b", "scalars": {"a\\tb": {"steps": [1], "values": [1]}}}'
    )
    assert r.status_code == 422
    assert "control character" in r.json()["detail"] and "a\tb" in r.json()["refused"]
    for body, status in (
        ("[1, 2]", 422),
        ('{"batch_id": "no spaces", "scalars": {}}', 422),
        ('{"batch_id": "b", "scalars": [1]}', 422),
        ('{"batch_id": "b", "scalars": {}, "histograms": {}}', 422),
        ("{not json", 400),
    ):
        r = _post(client, "r1", body)
        assert r.status_code == status and r.json()["detail"], (body, r.text)
    assert client.get("/api/v1/runs/r1/keys").json() == []


def test_a_batch_whose_every_key_names_a_series_of_the_other_kind_is_a_422(client):
    _run(client)
    hist = (
        '{"batch_id": "h", "histograms": [{"key": "h", "step": 1, "edges": [0, 1], "counts": [1]}]}'
    )
    assert _post(client, "r1", hist).status_code == 200
    r = _post(client, "r1", '{"batch_id": "s", "scalars": {"h": {"steps": [1], "values": [1]}}}')
    assert r.status_code == 422, r.text
    why = "key 'h' is a histogram series, it cannot take scalar data"
    assert r.json() == {
        "detail": f"nothing in the batch could be stored: {why}",
        "refused": {"h": why},
    }
    # nothing was kept of it, not even its batch id
    ok = '{"batch_id": "s", "scalars": {"k": {"steps": [1], "values": [1]}}}'
    assert _post(client, "r1", ok).json()["duplicate"] is False


def test_every_gzip_member_is_decoded_and_trailing_junk_is_refused(client):
    _run(client)
    body = b'{"batch_id": "g", "scalars": {"x": {"steps": [1, 2], "values": [1, 2]}}}'
    two = gzip.compress(body[:20]) + gzip.compress(body[20:])
    r = _post(client, "r1", two, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["stored"] == 2, r.text
    for tail in (b"junk", b"\x00" * 5, gzip.compress(b"x")[:8]):
        r = _post(client, "r1", gzip.compress(body) + tail, **{"Content-Encoding": "gzip"})
        assert r.status_code == 400 and "gzip" in r.json()["detail"], (tail, r.text)
    assert _count(client, "r1", "x") == 2


# -- B: no poison --------------------------------------------------------------------------------


def _deep(n: int) -> str:
    return '{"d": ' + "[" * n + "]" * n + "}"


POISON = [
    ('{"id": "p1", "name": "nul\\u0000name"}', "NUL"),
    ('{"id": "p2", "name": "lone \\udcff"}', "unicode"),
    ('{"id": "p3", "name": "n", "project": "p\\u0000"}', "NUL"),
    ('{"id": "p4", "name": "n", "config": ' + _deep(300) + "}", "nested deeper"),
    ('{"id": "p5", "name": "n", "config": {"k\\u0000": 1}}', "NUL"),
    ('{"id": "p6", "name": "n", "config": {"k": "\\ud800"}}', "surrogate"),
    ('{"id": "p7", "name": "n", "config": {"k": "' + "x" * (1100 * 1024) + '"}}', "bytes"),
    ('{"id": "p8", "name": "n", "argv": ["a\\u0000"]}', "NUL"),
]


@pytest.mark.parametrize(("body", "says"), POISON)
def test_a_poison_run_is_refused_at_creation_and_nothing_is_saved(client, body, says):
    r = client.post("/api/v1/runs", content=body.encode(), headers=JSON)
    assert r.status_code == 422, r.text[:300]
    assert says in json.dumps(r.json()["detail"]), r.text[:300]
    rid = json.loads(body)["id"]
    assert client.get(f"/api/v1/runs/{rid}").status_code == 404
    assert client.get("/api/v1/runs").status_code == 200


def test_a_poison_config_patch_is_refused_and_the_run_stays_readable(client):
    _run(client, config={"lr": 0.1})
    for body in (
        '{"config": ' + _deep(300) + "}",
        '{"config": {"k": "\\udcff"}}',
        '{"config": {"k": "' + "x" * (1100 * 1024) + '"}}',
    ):
        r = client.patch("/api/v1/runs/r1", content=body.encode(), headers=JSON)
        assert r.status_code == 422, r.text[:300]
    # each part small, the merged config too large
    for i in range(3):
        half = {"config": {f"k{i}": "x" * (400 * 1024)}}
        last = client.patch("/api/v1/runs/r1", json=half)
    assert last.status_code == 422 and "merged config" in last.json()["detail"]
    got = client.get("/api/v1/runs/r1")
    assert got.status_code == 200
    assert set(got.json()["config"]) == {"lr", "k0", "k1"}
    assert client.get("/api/v1/runs/r1/export").status_code == 200
    # a config nested to the limit and non-finite numbers are kept
    ok = client.post(
        "/api/v1/runs",
        content=b'{"id": "r2", "name": "n", "config": {"nan": NaN, "d": '
        + b"[" * 60
        + b"]" * 60
        + b"}}",
        headers=JSON,
    )
    assert ok.status_code == 201, ok.text
    assert client.get("/api/v1/runs/r2").json()["config"]["nan"] == "NaN"


# -- C: status ---------------------------------------------------------------------------------


def test_finish_with_an_error_is_shown_and_late_data_does_not_revive_the_run(client):
    _run(client)
    r = client.post(
        "/api/v1/runs/r1/finish",
        json={"status": "crashed", "error": {"type": "ValueError", "message": "bad shape"}},
    )
    assert r.status_code == 200 and r.json()["error"] == {
        "type": "ValueError",
        "message": "bad shape",
    }
    batch = {"batch_id": "late", "scalars": {"x": {"steps": [1, 2], "values": [1, 2]}}}
    assert client.post("/api/v1/runs/r1/batches", json=batch).json()["stored"] == 2
    assert client.post("/api/v1/runs/r1/heartbeat").status_code == 204
    run = client.get("/api/v1/runs/r1").json()
    assert run["status"] == "crashed" and run["error"]["type"] == "ValueError"
    listed = [x for x in client.get("/api/v1/runs").json() if x["id"] == "r1"][0]
    assert listed["error"] == {"type": "ValueError", "message": "bad shape"}
    _run(client, "r2")
    client.post("/api/v1/runs/r2/finish", json={"status": "finished"})
    client.post("/api/v1/runs/r2/batches", json=batch)
    client.post("/api/v1/runs/r2/heartbeat")
    run2 = client.get("/api/v1/runs/r2").json()
    assert run2["status"] == "finished" and run2["error"] is None
    assert (
        client.post(
            "/api/v1/runs/r2/finish", json={"status": "crashed", "error": {"type": "X"}}
        ).status_code
        == 422
    )


def test_a_run_crashed_by_the_timeout_comes_back_with_a_heartbeat(db_url, tmp_path):
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    app = create_app(Settings(db_url=db_url, dir=tmp_path, heartbeat_timeout=0.5))
    with TestClient(app) as client:
        _run(client)
        time.sleep(1.2)
        assert client.get("/api/v1/runs/r1").json()["status"] == "crashed"
        assert client.post("/api/v1/runs/r1/heartbeat").status_code == 204
        assert client.get("/api/v1/runs/r1").json()["status"] == "running"


# -- D: malformed query input ------------------------------------------------------------------


def test_malformed_query_parameters_and_headers_are_4xx(client):
    _run(client)
    client.post(
        "/api/v1/runs/r1/batches",
        json={
            "batch_id": "b",
            "scalars": {"k": {"steps": [1], "values": [1]}},
            "histograms": [{"key": "h", "step": 1, "edges": [0, 1], "counts": [1]}],
        },
    )
    big = [str(2**63), str(10**30)]
    for name in ("start", "end", "after"):
        for v in big:
            r = client.get("/api/v1/runs/r1/series", params={"key": "k", name: v})
            assert r.status_code == 422, (name, v, r.text)
    r = client.get(
        "/api/v1/runs/r1/series", params={"key": "k", "start": str(10**30), "max_points": 100}
    )
    assert r.status_code == 422
    for name in ("step", "after"):
        r = client.get("/api/v1/runs/r1/histograms", params={"key": "h", name: str(10**30)})
        assert r.status_code == 422, r.text
    for path in ("/api/v1/runs/r1/events", "/api/v1/events/runs"):
        r = client.get(path, headers={"Last-Event-ID": "9" * 5000})
        assert r.status_code == 400 and "Last-Event-ID" in r.json()["detail"]
        assert client.get(path, params={"since": str(2**63)}).status_code == 422
    for path, params in (
        ("/api/v1/runs", {"project": "p\x00"}),
        ("/api/v1/runs/r1/series", {"key": "k\x00"}),
        ("/api/v1/runs/r1/export", {"key": "k\x00"}),
    ):
        r = client.get(path, params=params)
        assert r.status_code == 400 and "NUL" in r.json()["detail"], (path, r.text)
    assert client.get("/api/v1/health").status_code == 200


# -- E: late data and the diagnosis ------------------------------------------------------------


def _diverging_run(n: int = 132, blow_at: int = 25) -> dict[str, tuple[list[int], list]]:
    """A real small regression trained with SGD whose learning rate is raised 50x at
    ``blow_at``: the loss diverges, then becomes Inf and NaN."""
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    cols: dict[str, tuple[list[int], list]] = {
        k: ([], []) for k in ("train/loss", "grad_norm/total", "lr/group0")
    }
    for step in range(1, n + 1):
        if step == blow_at:
            opt.param_groups[0]["lr"] = 0.5
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))
        opt.step()
        for k, v in (
            ("train/loss", loss.item()),
            ("grad_norm/total", gn.item()),
            ("lr/group0", opt.param_groups[0]["lr"]),
        ):
            cols[k][0].append(step)
            cols[k][1].append(v if math.isfinite(v) else encode_float(v))
    return cols


def test_late_batches_get_the_same_alerts_as_batches_in_order(client):
    cols = _diverging_run()

    def part(lo: int, hi: int) -> dict:
        return {
            k: {
                "steps": [s for s in st if lo <= s <= hi],
                "values": [v for s, v in zip(st, va, strict=True) if lo <= s <= hi],
            }
            for k, (st, va) in cols.items()
        }

    got = {}
    for rid, order in (("ordered", [(1, 110), (111, 132)]), ("late", [(111, 132), (1, 110)])):
        _run(client, rid)
        for lo, hi in order:
            r = client.post(
                f"/api/v1/runs/{rid}/batches", json={"batch_id": f"b{lo}", "scalars": part(lo, hi)}
            )
            assert r.status_code == 200, r.text
        alerts = client.get(f"/api/v1/runs/{rid}/alerts").json()
        got[rid] = sorted((a["rule"], a["step"], a["status"]) for a in alerts)
    rules = {a[0] for a in got["ordered"]}
    assert {"divergence", "non_finite"} <= rules, got["ordered"]  # the run really blew up
    assert got["late"] == got["ordered"]
    # the late run's first NaN is at its real step, not at the first step that arrived
    assert ("non_finite", 111, "open") not in got["late"]
