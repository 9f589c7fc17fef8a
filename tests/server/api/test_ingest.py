"""The ingest and read API on both backends: idempotent batches, clear 4xx for bad input."""

from __future__ import annotations

import gzip
import json

import pytest


def _run(client, run_id="r1"):
    r = client.post(
        "/api/v1/runs", json={"id": run_id, "name": "api", "project": "p", "config": {"lr": 0.1}}
    )
    assert r.status_code == 201, r.text
    return run_id


def test_create_is_idempotent_and_lists_newest_first(client):
    _run(client, "a")
    assert client.post("/api/v1/runs", json={"id": "a", "name": "again"}).status_code == 200
    _run(client, "b")
    runs = client.get("/api/v1/runs").json()
    assert [r["id"] for r in runs] == ["b", "a"]
    assert runs[1]["name"] == "api" and runs[1]["status"] == "running"
    assert client.get("/api/v1/runs/a").json()["config"] == {"lr": 0.1}


def test_a_resent_batch_is_stored_once(client):
    _run(client)
    body = {
        "batch_id": "same",
        "scalars": {"train/loss": {"steps": [1, 2, 3], "values": [3.0, 2.0, 1.0]}},
    }
    first = client.post("/api/v1/runs/r1/batches", json=body).json()
    again = client.post("/api/v1/runs/r1/batches", json=body).json()
    assert (first["stored"], first["duplicate"]) == (3, False)
    assert (again["stored"], again["duplicate"]) == (0, True)
    keys = client.get("/api/v1/runs/r1/keys").json()
    assert keys == [{"key": "train/loss", "kind": "scalar", "count": 3}]


def test_finish_and_heartbeat(client):
    _run(client)
    assert client.post("/api/v1/runs/r1/heartbeat").status_code == 204
    assert client.post("/api/v1/runs/r1/finish", json={}).json()["status"] == "finished"
    assert client.get("/api/v1/runs").json()[0]["status"] == "finished"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"{not json", 400, "not valid JSON"),
        (json.dumps({"scalars": {}}).encode(), 422, "batch_id"),
        (
            json.dumps(
                {"batch_id": "x", "scalars": {"k": {"steps": [1, 2], "values": [1.0]}}}
            ).encode(),
            422,
            "2 steps but 1 values",
        ),
        (
            json.dumps(
                {"batch_id": "x", "scalars": {"k": {"steps": [1], "values": ["lots"]}}}
            ).encode(),
            422,
            "expected a number",
        ),
        (
            json.dumps(
                {"batch_id": "x", "scalars": {"k": {"steps": [-1], "values": [1]}}}
            ).encode(),
            422,
            "out of range",
        ),
        (
            json.dumps({"batch_id": "x", "scalars": {"": {"steps": [1], "values": [1]}}}).encode(),
            422,
            "key",
        ),
    ],
)
def test_malformed_batches_are_rejected_and_nothing_is_stored(client, body, status, says):
    _run(client)
    r = client.post(
        "/api/v1/runs/r1/batches", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert client.get("/api/v1/runs/r1/keys").json() == []
    assert client.get("/api/v1/health").status_code == 200


def test_unknown_run_and_bad_gzip(client):
    body = {"batch_id": "x", "scalars": {}}
    assert client.post("/api/v1/runs/nope/batches", json=body).status_code == 404
    _run(client)
    r = client.post(
        "/api/v1/runs/r1/batches",
        content=b"garbage",
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "gzip" in r.json()["detail"]
    bomb = gzip.compress(b" " * (40 * 1024 * 1024))
    r = client.post(
        "/api/v1/runs/r1/batches",
        content=bomb,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 413


def test_health_and_openapi(client):
    h = client.get("/api/v1/health").json()
    assert h["status"] == "ok"
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/keys",
        "/api/v1/runs/{run_id}/series",
        "/api/v1/runs/{run_id}/alerts",
        "/api/v1/runs/{run_id}/batches",
    ):
        assert path in spec["paths"], path
    assert "BatchIn" in spec["components"]["schemas"]


def test_web_pages_and_local_plotly(client):
    assert "Runs" in client.get("/").text
    assert client.get("/runs/abc").status_code == 200
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000


def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(client):
    _run(client)
    huge = "x" * 100_000
    assert client.post("/api/v1/runs", json={"id": "h", "name": huge}).status_code == 422
    assert client.post("/api/v1/runs", json={"id": "bad id!", "name": "n"}).status_code == 422
    big_key = {"batch_id": "k", "scalars": {"k" * 300: {"steps": [1], "values": [1.0]}}}
    r = client.post("/api/v1/runs/r1/batches", json=big_key)
    assert r.status_code == 422 and "key" in r.json()["detail"]
    oversized = b'{"batch_id": "o", "scalars": {}, "pad": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    r = client.post(
        "/api/v1/runs/r1/batches", content=oversized, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413
    for path in (
        "/api/v1/runs/nope",
        "/api/v1/runs/nope/keys",
        "/api/v1/runs/nope/alerts",
        "/api/v1/runs/nope/series?key=k",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get("/api/v1/health").status_code == 200


def test_out_of_order_batches_are_stored_in_step_order(client):
    _run(client)
    late = {"batch_id": "late", "scalars": {"x": {"steps": [4, 5, 6], "values": [4, 5, 6]}}}
    early = {"batch_id": "early", "scalars": {"x": {"steps": [1, 2, 3], "values": [1, 2, 3]}}}
    assert client.post("/api/v1/runs/r1/batches", json=late).status_code == 200
    assert client.post("/api/v1/runs/r1/batches", json=early).status_code == 200
    assert client.post("/api/v1/runs/r1/batches", json=late).json()["duplicate"] is True
    got = client.get("/api/v1/runs/r1/series", params={"key": "x"}).json()
    assert got["steps"] == [1, 2, 3, 4, 5, 6] and got["values"] == [1, 2, 3, 4, 5, 6]
