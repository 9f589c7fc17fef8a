"""Security edges (issue 16): DNS rebinding (Host, Origin), public paths matched after
normalisation, a lockout on wrong tokens, no secret in the serve banner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest

from tests.support.servers import ServerProcess, free_port

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def open_server(sqlite_url, tmp_path):
    """The default: loopback, no token."""
    srv = ServerProcess(sqlite_url, tmp_path).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def secured(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path, env={"FITSCOPE_TOKEN": TOKEN}).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_rebinding_page_can_neither_read_nor_delete(open_server):
    url = open_server.url
    httpx.post(f"{url}/api/v1/runs", json={"id": "v", "name": "victim"}).raise_for_status()
    evil = {"Host": "rebind.attacker.example"}
    r = httpx.get(f"{url}/api/v1/runs", headers=evil)
    assert r.status_code == 400 and "FITSCOPE_ALLOWED_HOSTS" in r.json()["detail"]
    r = httpx.delete(
        f"{url}/api/v1/runs/v", headers={**evil, "Origin": "http://rebind.attacker.example"}
    )
    assert r.status_code == 400
    assert httpx.get(f"{url}/", headers=evil).status_code == 400
    # a page on another origin writing to the right host name
    port = open_server.port
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        assert httpx.delete(f"{url}/api/v1/runs/v", headers=headers).status_code == 403, headers
        r = httpx.post(f"{url}/api/v1/runs/v/heartbeat", headers=headers)
        assert r.status_code == 403, headers
    # loopback names, IP addresses and the same origin are fine
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", "app.localhost"):
        assert httpx.get(f"{url}/api/v1/runs", headers={"Host": host}).status_code == 200, host
    same = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    assert httpx.post(f"{url}/api/v1/runs/v/heartbeat", headers=same).status_code == 204
    assert httpx.delete(f"{url}/api/v1/runs/v", headers=same).status_code == 204


def test_allowed_hosts_and_the_public_host_are_accepted(sqlite_url, tmp_path):
    env = {
        "FITSCOPE_ALLOWED_HOSTS": "fitscope.example, other.example",
        "FITSCOPE_PUBLIC_URL": "https://dash.example/",
    }
    srv = ServerProcess(sqlite_url, tmp_path, env=env).start()
    try:
        for host, status in (
            ("fitscope.example", 200),
            ("other.example:8080", 200),
            ("dash.example", 200),
            ("evil.example", 400),
        ):
            r = httpx.get(f"{srv.url}/api/v1/runs", headers={"Host": host})
            assert r.status_code == status, host
        # a proxy may rewrite Host: an Origin of a configured name is same-site
        r = httpx.post(
            f"{srv.url}/api/v1/runs",
            json={"id": "p", "name": "n"},
            headers={"Origin": "https://dash.example"},
        )
        assert r.status_code == 201
    finally:
        srv.stop()


def _raw_get(port: int, path: str) -> int:
    """A request line sent as is (an HTTP client would normalise the path itself)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        head = s.recv(200).decode("latin-1")
    return int(head.split()[1])


def test_public_paths_are_matched_after_dot_segments_are_resolved(secured):
    port = secured.port
    assert _raw_get(port, "/static/style.css") == 200
    for path in (
        "/static/style.css/../run.js",
        "/static/style.css/../run.html",
        "/static/login.css/../index.html",
        "/static/./run.js",
        "/static//run.js",
    ):
        assert _raw_get(port, path) in (303, 404), path
    for path in ("/api/v1/health/../runs", "/login/../api/v1/runs"):
        assert _raw_get(port, path) in (401, 404), path


def test_wrong_tokens_lock_the_address_out(secured):
    url = secured.url
    wrong = {"Authorization": "Bearer guess"}
    statuses = [httpx.get(f"{url}/api/v1/runs", headers=wrong).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429], statuses
    r = httpx.get(f"{url}/api/v1/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # even the right one
    assert TOKEN not in r.text
    assert httpx.get(f"{url}/api/v1/health").status_code == 200  # probes still work


def test_wrong_logins_lock_the_address_out(secured):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(base_url=secured.url) as c:
        got = [
            c.post("/login", content=b"token=guess", headers=form).status_code for _ in range(11)
        ]
        assert got[:10] == [303] * 10 and got[10] == 429, got
        r = c.post("/login", content=f"token={TOKEN}".encode(), headers=form)
        assert r.status_code == 429 and "set-cookie" not in r.headers


def test_the_lockout_memory_is_bounded():
    from fitscope_server.throttle import Throttle

    t = Throttle(max_failures=3, max_clients=100)
    for i in range(10_000):
        t.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(t) == 100
    for _ in range(3):
        t.failed("192.0.2.1")
    assert t.locked("192.0.2.1") > 0 and t.locked("192.0.2.2") == 0


def test_the_serve_banner_does_not_show_the_database_password(tmp_path):
    secret = "Sup3rSecretPW"
    env = {**os.environ, "FITSCOPE_DIR": str(tmp_path)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fitscope.cli",
            "serve",
            "--port",
            str(free_port()),
            "--db",
            f"postgresql+psycopg://fitscope:{secret}@127.0.0.1:1/nowhere",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    out = r.stdout + r.stderr
    assert "fitscope: dashboard at" in out and "127.0.0.1:1/nowhere" in out
    assert secret not in out, out[-2000:]
