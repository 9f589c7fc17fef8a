"""fitscope.protocol: the float codec, paths and message bodies the hook, the importers and the
server agree on, and the protocol version every client sends and the server checks."""

from __future__ import annotations

import json
import math
import threading
import typing
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import fitscope
from fitscope import _messages, protocol
from fitscope._api import ApiClient, ApiError
from fitscope._messages import Message
from fitscope._settings import ClientSettings
from fitscope.protocol import (
    API_PREFIX,
    KEYS,
    NON_FINITE,
    PREFIXES,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    batch_body,
    config_patch_body,
    create_run_body,
    decode_float,
    encode_float,
    finish_body,
    json_safe,
    paths,
    split_key,
)
from tests.support.servers import ServerProcess


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# -- floats ------------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [0.0, -0.0, 1.5, -2e300, 5e-324, math.nan, math.inf, -math.inf])
def test_floats_round_trip_through_strict_json(x: float) -> None:
    text = json.dumps(encode_float(x), allow_nan=False)
    back = decode_float(json.loads(text))
    assert _same(back, x) and math.copysign(1, back) == math.copysign(1, x)


def test_non_finite_floats_are_the_three_strings_and_the_type_says_so() -> None:
    assert [encode_float(x) for x in (math.nan, math.inf, -math.inf)] == list(NON_FINITE)
    assert set(typing.get_args(protocol.NonFinite)) == set(NON_FINITE)
    assert encode_float(2.5) == 2.5 and decode_float(3) == 3.0


@pytest.mark.parametrize("bad", [True, None, "nan", "inf", "1.0", [], {}])
def test_decode_refuses_what_is_not_a_number(bad: object) -> None:
    with pytest.raises(ValueError):
        decode_float(bad)


def test_json_safe_encodes_nested_values_for_strict_json() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    doc: dict[Any, Any] = {
        "lr": 1e-3,
        "bad": [math.nan, (math.inf, -math.inf)],
        1: {"deep": {"x": math.nan}},
        "flags": [True, None, "s", 7],
        "obj": Thing(),
    }
    safe = json_safe(doc)
    assert safe == {
        "lr": 1e-3,
        "bad": ["NaN", ["Infinity", "-Infinity"]],
        "1": {"deep": {"x": "NaN"}},
        "flags": [True, None, "s", 7],
        "obj": "<thing>",
    }
    json.dumps(safe, allow_nan=False)  # strict JSON carries it
    assert doc["bad"][0] != doc["bad"][0]  # the original is untouched


def test_json_safe_stops_at_depth_20_with_a_repr() -> None:
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["n"] = {}
        node = node["n"]
    safe = json_safe(deep)
    json.dumps(safe, allow_nan=False)
    for _ in range(21):
        safe = safe["n"]
    assert isinstance(safe, str) and safe.startswith("{")
    loop: list = []
    loop.append(loop)  # a self-referencing list ends too
    json.dumps(json_safe(loop))


# -- keys and paths ----------------------------------------------------------------------------
def test_keys_belong_to_their_families() -> None:
    assert KEYS.TRAIN_LOSS == split_key("train", "loss") and KEYS.TRAIN_LOSS.startswith(
        PREFIXES.TRAIN
    )
    assert KEYS.VAL_LOSS == split_key("val", "loss") and KEYS.VAL_LOSS.startswith(PREFIXES.VAL)
    assert KEYS.GRAD_NORM_TOTAL.startswith(PREFIXES.GRAD_NORM)
    assert KEYS.PARAM_NORM_TOTAL.startswith(PREFIXES.PARAM_NORM)
    assert KEYS.UPDATE_RATIO_TOTAL.startswith(PREFIXES.UPDATE_RATIO)
    assert KEYS.LR_FIRST.startswith(PREFIXES.LR)


def _route_paths(tmp_path: Path) -> set[tuple[str, str]]:
    """``(method, path template)`` of every API route of the real app."""
    from fitscope_server import Settings, create_app

    app = create_app(Settings(dir=tmp_path))
    doc = app.openapi()
    return {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}


def test_paths_name_every_route_of_the_server(tmp_path: Path) -> None:
    routes = _route_paths(tmp_path)
    rid = "{run_id}"
    used = {
        ("GET", paths.HEALTH),
        ("GET", paths.RUNS),
        ("POST", paths.RUNS),
        ("GET", paths.EVENTS),
        ("GET", paths.PROJECTS),
        ("GET", paths.ALL_KEYS),
        ("GET", paths.run(rid)),
        ("PATCH", paths.run(rid)),
        ("DELETE", paths.run(rid)),
        ("POST", paths.batches(rid)),
        ("POST", paths.finish(rid)),
        ("POST", paths.heartbeat(rid)),
        ("GET", paths.alerts(rid)),
        ("GET", paths.series(rid)),
        ("GET", paths.histograms(rid)),
        ("GET", paths.keys(rid)),
        ("GET", paths.export(rid)),
        ("GET", paths.run_events(rid)),
    }
    assert used == routes, (used - routes, routes - used)  # and every route has its path
    assert all(p.startswith(API_PREFIX + "/") for _, p in used)
    assert paths.batches("abc") == "/api/v1/runs/abc/batches"  # the wire path itself


# -- message bodies ----------------------------------------------------------------------------
def test_builders_make_bodies_the_server_schemas_accept() -> None:
    from fitscope_server.schemas import BatchIn, FinishIn, RunIn, RunPatchIn

    create = create_run_body("r1", "p", "n", json_safe({"x": math.nan}), host="h", tags=["t"])
    assert create == {
        "id": "r1",
        "project": "p",
        "name": "n",
        "config": {"x": "NaN"},
        "host": "h",
        "tags": ["t"],
    }
    RunIn.model_validate(create)
    assert create_run_body("r1", "p", "n", {}) == {
        "id": "r1",
        "project": "p",
        "name": "n",
        "config": {},
    }
    scalars = {KEYS.TRAIN_LOSS: {"steps": [1, 2], "values": [0.5, encode_float(math.nan)]}}
    batch = batch_body("b-1", scalars, [])
    assert batch == {"batch_id": "b-1", "scalars": scalars, "histograms": []}
    BatchIn.model_validate(batch)
    assert finish_body() == {"status": "finished"}
    crashed = finish_body("crashed", {"type": "ValueError", "message": "boom"})
    assert crashed == {"status": "crashed", "error": {"type": "ValueError", "message": "boom"}}
    FinishIn.model_validate(crashed)
    RunPatchIn.model_validate(config_patch_body({"world_size": 1}))


class _Recorder(BaseHTTPRequestHandler):
    """A server that answers every request with ``{}`` and keeps what it was sent."""

    seen: list[tuple[str, str, dict[str, str]]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path, dict(self.headers)))
        body = b"[]" if self.command == "GET" else b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list]]:
    seen: list[tuple[str, str, dict[str, str]]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def _versions(seen: list[tuple[str, str, dict[str, str]]]) -> set[str | None]:
    return {
        next((v for k, v in h.items() if k.lower() == PROTOCOL_HEADER.lower()), None)
        for _, _, h in seen
    }


def test_the_hook_sends_the_protocol_version_and_the_builders_bodies(
    recorder: tuple[str, list], tmp_path: Path
) -> None:
    url, seen = recorder
    run = fitscope.init(
        project="p",
        name="n",
        settings=ClientSettings(url=url, dir=tmp_path),
        interval=0.05,
    )
    run.log({KEYS.TRAIN_LOSS: 1.0})
    run.finish(timeout=10)
    methods = [(m, p) for m, p, _ in seen if m != "POST" or not p.endswith("/heartbeat")]
    assert methods[0] == ("POST", paths.RUNS)
    assert ("POST", paths.batches(run.id)) in methods
    assert methods[-1] == ("POST", paths.finish(run.id))
    assert _versions(seen) == {str(PROTOCOL_VERSION)}


def test_the_cli_client_sends_the_protocol_version(recorder: tuple[str, list]) -> None:
    url, seen = recorder
    api = ApiClient(url, token="t")
    api.get(paths.RUNS)
    api.call("PATCH", paths.run("r1"), {"name": "x"})
    api.send(Message("POST", paths.finish("r1"), finish_body()))
    status, _, chunks = api.stream(paths.export("r1"))
    assert status == 200 and b"".join(chunks) == b"[]"
    api.close()
    assert len(seen) == 4 and _versions(seen) == {str(PROTOCOL_VERSION)}
    assert all(h.get("Authorization") == "Bearer t" for _, _, h in seen)


# -- the server's check ------------------------------------------------------------------------
def test_the_server_refuses_a_version_it_does_not_speak_and_keeps_serving(
    server: ServerProcess,
) -> None:
    body = create_run_body("proto-1", "p", "n", {})
    future = {PROTOCOL_HEADER: str(PROTOCOL_VERSION + 1)}
    r = httpx.post(f"{server.url}{paths.RUNS}", json=body, headers=future, timeout=10)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert f"version {PROTOCOL_VERSION + 1}" in detail and f"version {PROTOCOL_VERSION}" in detail
    assert "upgrade the fitscope server" in detail
    r = httpx.get(f"{server.url}{paths.HEALTH}", headers={PROTOCOL_HEADER: "0"}, timeout=10)
    assert r.status_code == 400 and "upgrade the fitscope client" in r.json()["detail"]
    r = httpx.get(f"{server.url}{paths.RUNS}", headers={PROTOCOL_HEADER: "v1"}, timeout=10)
    assert r.status_code == 400 and "'v1'" in r.json()["detail"]
    with pytest.raises(httpx.HTTPStatusError):  # nothing was stored
        server.api(paths.run("proto-1"))

    # the version it speaks, and no header at all (curl, the browser, older clients): served
    ours = {PROTOCOL_HEADER: str(PROTOCOL_VERSION)}
    r = httpx.post(f"{server.url}{paths.RUNS}", json=body, headers=ours, timeout=10)
    assert r.status_code in (200, 201), r.text
    r = httpx.post(
        f"{server.url}{paths.finish('proto-1')}", json=finish_body(), timeout=10
    )  # no header
    assert r.status_code == 200, r.text
    assert server.api(paths.run("proto-1"))["status"] == "finished"  # type: ignore[index]


def test_a_client_of_another_version_is_told_why(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(_messages, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    api = ApiClient(server.url)
    with pytest.raises(ApiError) as err:
        api.send(Message("POST", paths.RUNS, create_run_body("proto-2", "p", "n", {})))
    assert err.value.status == 400
    assert f"version {PROTOCOL_VERSION + 1}" in err.value.detail
    assert f"speaks version {PROTOCOL_VERSION}" in err.value.detail
    api.close()
    # the server goes on serving clients of its own version
    assert server.api(paths.HEALTH)["status"] == "ok"  # type: ignore[index]


def test_a_hook_of_another_version_keeps_its_data_and_says_why(
    server: ServerProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(_messages, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    run = fitscope.init(
        project="p", name="future", settings=ClientSettings(url=server.url, dir=tmp_path)
    )
    run.log({KEYS.TRAIN_LOSS: 1.0})
    run.finish(timeout=10)  # never raises into the training code
    err = capsys.readouterr().err
    assert "refused" in err and f"version {PROTOCOL_VERSION + 1}" in err, err
    assert run.sender.rejected >= 1
    assert list((run.spool.root / "rejected").rglob("*")), "the refused messages are kept"
    with pytest.raises(httpx.HTTPStatusError):  # the server stored nothing of it
        server.api(paths.run(run.id))
