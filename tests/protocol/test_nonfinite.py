"""NaN and ±Inf are data: they survive hook -> wire -> server -> database -> read API."""

from __future__ import annotations

import gzip
import json
import math

from fitscope.protocol import decode_float, encode_float

VALUES = [1.0, float("nan"), float("inf"), -float("inf"), -0.5, 1e308, 5e-324]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_wire_encoding_round_trip():
    for v in VALUES:
        assert _same(decode_float(encode_float(v)), v)
    assert json.dumps([encode_float(v) for v in VALUES], allow_nan=False)


def test_http_round_trip_through_the_database(client):
    client.post("/api/v1/runs", json={"id": "nf1", "name": "nonfinite"}).raise_for_status()
    body = {
        "batch_id": "b1",
        "scalars": {
            "train/loss": {
                "steps": list(range(len(VALUES))),
                "values": [encode_float(v) for v in VALUES],
            }
        },
    }
    r = client.post(
        "/api/v1/runs/nf1/batches",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == len(VALUES)
    got = client.get("/api/v1/runs/nf1/series", params={"key": "train/loss"}).json()
    assert got["steps"] == list(range(len(VALUES)))
    decoded = [decode_float(v) for v in got["values"]]
    assert all(_same(a, b) for a, b in zip(decoded, VALUES, strict=True))
    assert got["values"][1:4] == ["NaN", "Infinity", "-Infinity"]


def test_reduced_series_keeps_nonfinite_visible(client):
    client.post("/api/v1/runs", json={"id": "nf2", "name": "nonfinite"}).raise_for_status()
    values = [0.1] * 100
    values[40] = float("nan")
    values[70] = float("inf")
    body = {
        "batch_id": "b1",
        "scalars": {"k": {"steps": list(range(100)), "values": [encode_float(v) for v in values]}},
    }
    client.post("/api/v1/runs/nf2/batches", json=body).raise_for_status()
    got = client.get("/api/v1/runs/nf2/series", params={"key": "k", "max_points": 10}).json()
    assert got["reduced"] and len(got["steps"]) == 10
    assert got["values"][4] == "NaN"
    assert got["max"][7] == "Infinity"


def test_hook_logs_nonfinite_values(server, tmp_path):
    from tests.support.hook import run_script

    proc = run_script(
        "import fitscope\n"
        "run = fitscope.init(project='nf', name='log')\n"
        "for i, v in enumerate([1.0, float('nan'), float('inf'), -float('inf')]):\n"
        "    run.log({'x': v}, step=i)\n"
        "run.finish()\n",
        tmp_path,
        server.url,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = server.api("/api/v1/runs")[0]["id"]
    got = server.api(f"/api/v1/runs/{run_id}/series", key="x")
    assert got["values"] == [1.0, "NaN", "Infinity", "-Infinity"]
