"""Diagnosis through the server: stored with the batch, served by /alerts, pushed in the reply,
per-run and server-wide overrides, and the webhook (against a local HTTP server)."""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fitscope.protocol import encode_float

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def _run(client: TestClient, run_id: str, rules: dict | None = None) -> None:
    fs: dict = {"num_classes": 4, "optimizer": {"class": "SGD", "param_groups": [{"lr": 0.1}]}}
    if rules is not None:
        fs["rules"] = rules
    r = client.post("/api/v1/runs", json={"id": run_id, "name": "n", "config": {"fitscope": fs}})
    assert r.status_code in (200, 201), r.text


def _batch(client: TestClient, run_id: str, bid: str, start: int, losses: list[float]) -> dict:
    steps = list(range(start, start + len(losses)))
    body = {
        "batch_id": bid,
        "scalars": {
            "train/loss": {"steps": steps, "values": [encode_float(v) for v in losses]},
            "grad_norm/total": {"steps": steps, "values": [encode_float(v) for v in losses]},
            "lr/0": {"steps": steps, "values": [0.1] * len(steps)},
        },
    }
    r = client.post(f"/api/v1/runs/{run_id}/batches", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_nan_run_gets_one_alert_served_and_pushed(client: TestClient) -> None:
    _run(client, "r1")
    _batch(client, "r1", "b1", 1, [1.0] * 100)
    reply = _batch(client, "r1", "b2", 101, [math.nan] * 100)
    assert [a["rule"] for a in reply["alerts"]] == ["non_finite"]
    for i in range(3):
        _batch(client, "r1", f"b{i + 3}", 201 + 100 * i, [math.nan] * 100)
    _batch(client, "r1", "b3", 201, [math.nan] * 100)  # a resent batch is not diagnosed twice
    alerts = client.get("/api/v1/runs/r1/alerts").json()
    assert len(alerts) == 1
    a = alerts[0]
    assert (a["rule"], a["severity"], a["status"], a["step"], a["onset_step"]) == (
        "non_finite",
        "critical",
        "open",
        101,
        101,
    )
    assert "400 non-finite" in a["message"] and a["remedy"]
    assert a["evidence"]["series"][0] == "train/loss" and a["evidence"]["start_step"] == 101
    assert a["evidence"]["end_step"] == 500


def test_per_run_rules_switch_a_rule_off(client: TestClient) -> None:
    _run(client, "r2", rules={"non_finite": False})
    _batch(client, "r2", "b1", 1, [math.nan] * 50)
    assert client.get("/api/v1/runs/r2/alerts").json() == []


def test_server_wide_rules_and_a_failing_rule_loses_no_points(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app
    from fitscope_server.diagnosis import BY_ID

    app = create_app(Settings(db_url=sqlite_url, dir=tmp_path, rules={"non_finite": False}))
    with TestClient(app) as c:
        _run(c, "r3")
        _batch(c, "r3", "b1", 1, [math.nan] * 50)
        assert c.get("/api/v1/runs/r3/alerts").json() == []
        _run(c, "r4", rules={"non_finite": True})  # the run's own rules win
        _batch(c, "r4", "b1", 1, [math.nan] * 50)
        assert [a["rule"] for a in c.get("/api/v1/runs/r4/alerts").json()] == ["non_finite"]

        def boom(ctx, p):  # type: ignore[no-untyped-def]
            raise RuntimeError("rule bug")

        monkeypatch.setattr(BY_ID["divergence"], "check", boom)
        _run(c, "r5")
        _batch(c, "r5", "b1", 1, [1.0] * 50)
        keys = {k["key"]: k["count"] for k in c.get("/api/v1/runs/r5/keys").json()}
        assert keys["train/loss"] == 50


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict]]]:
    _Hook.received = []
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/hook", _Hook.received
    finally:
        srv.shutdown()
        srv.server_close()


def test_webhook_posts_each_new_warning_once(
    sqlite_url: str, tmp_path: Path, webhook_server: tuple[str, list[dict]]
) -> None:
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    url, received = webhook_server
    settings = Settings(
        db_url=sqlite_url, dir=tmp_path, webhook_url=url, public_url="http://dash.example:7007"
    )
    app = create_app(settings)
    with TestClient(app) as c:
        _run(c, "w1")
        _batch(c, "w1", "b1", 1, [1.0] * 60)
        for i in range(3):
            _batch(c, "w1", f"n{i}", 61 + 40 * i, [math.nan] * 40)
        assert app.state.diagnoser.webhook.flush(10)
    assert len(received) == 1
    msg = received[0]
    assert "non_finite" in msg["text"] and "critical" in msg["text"]
    assert "http://dash.example:7007/runs/w1" in msg["text"]
    assert msg["fitscope"]["rule"] == "non_finite" and msg["fitscope"]["step"] == 61


def test_webhook_failure_is_counted_not_raised() -> None:
    from fitscope_server.diagnosis import Webhook

    def refuse(url: str, body: bytes, timeout: float) -> int:
        raise ConnectionRefusedError("nobody listens")

    hook = Webhook("http://127.0.0.1:9/x", post=refuse)
    hook.send(
        [
            {
                "run_id": "r",
                "run_name": "n",
                "rule": "x",
                "severity": "warning",
                "step": 1,
                "message": "m",
                "remedy": "r",
            }
        ]
    )
    assert hook.flush(5)
    assert (hook.sent, hook.failed) == (0, 1)
    hook.close()


def test_settings_read_rules_and_webhook_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fitscope_server import Settings

    monkeypatch.setenv("FITSCOPE_RULES", '{"plateau": false, "overfitting": {"gl_warn": 0.1}}')
    monkeypatch.setenv("FITSCOPE_WEBHOOK_URL", "http://127.0.0.1:1/hook")
    s = Settings()
    assert s.rules == {"plateau": False, "overfitting": {"gl_warn": 0.1}}
    assert s.webhook_url == "http://127.0.0.1:1/hook" and s.diagnosis is True


def test_webhook_posts_again_when_an_alert_escalates(
    sqlite_url: str, tmp_path: Path, webhook_server: tuple[str, list[dict]]
) -> None:
    from fastapi.testclient import TestClient

    from fitscope_server import Settings, create_app

    url, received = webhook_server
    app = create_app(Settings(db_url=sqlite_url, dir=tmp_path, webhook_url=url))
    decay = [0.2 + 1.2 * math.exp(-i / 30) for i in range(200)]
    with TestClient(app) as c:
        _run(c, "e1")
        for i in range(4):
            _batch(c, "e1", f"d{i}", 1 + 50 * i, decay[50 * i : 50 * (i + 1)])
        _batch(c, "e1", "w", 201, [0.55] * 40)  # about 2.7x the best level: warning
        _batch(c, "e1", "c", 241, [1.3] * 80)  # 6x: critical
        assert app.state.diagnoser.webhook.flush(10)
    notes = [m["fitscope"] for m in received if m["fitscope"]["rule"] == "divergence"]
    assert [n["severity"] for n in notes] == ["warning", "critical"], notes
    assert notes[1]["escalated"] and "(escalated)" in received[-1]["text"]
    assert notes[0]["id"] == notes[1]["id"]
    assert "evidence_labels" in notes[0] and notes[0]["evidence_labels"]["start_step"]
