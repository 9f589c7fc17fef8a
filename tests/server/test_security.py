"""Security: headers on every answer, token auth for reads and writes, safe defaults for binding;
and its edges (issue 16): DNS rebinding (Host, Origin), public paths matched after
normalisation, a lockout on wrong tokens, no secret in the serve banner."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest

from tests.support.hook import run_script
from tests.support.servers import ServerProcess, free_port

TOKEN = "s3cret-token-for-tests-0123456789"


def test_every_answer_carries_security_headers(client):
    for path in (
        "/",
        "/runs/x",
        "/static/style.css",
        "/api/v1/runs",
        "/api/v1/runs/nope",
        "/nowhere",
    ):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert "access-control-allow-origin" not in r.headers


def test_no_cors_and_writes_must_be_json(client):
    r = client.options(
        "/api/v1/runs",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    r = client.post(
        "/api/v1/runs",
        content=b'{"id": "x", "name": "csrf"}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    assert client.get("/api/v1/runs").json() == []


def test_docs_are_not_served_from_a_cdn(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200


@pytest.fixture
def secured(sqlite_url, tmp_path):
    srv = ServerProcess(sqlite_url, tmp_path, env={"FITSCOPE_TOKEN": TOKEN}).start()
    try:
        yield srv
    finally:
        srv.stop()


def test_token_guards_reads_and_writes(secured):
    url = secured.url
    assert httpx.get(f"{url}/api/v1/health").status_code == 200  # health stays public (for probes)
    for bad in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        assert httpx.get(f"{url}/api/v1/runs", headers=bad).status_code == 401
        r = httpx.post(f"{url}/api/v1/runs", json={"id": "a", "name": "n"}, headers=bad)
        assert r.status_code == 401
        assert TOKEN not in r.text
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (
        httpx.post(f"{url}/api/v1/runs", json={"id": "a", "name": "n"}, headers=good).status_code
        == 201
    )
    assert [r["id"] for r in httpx.get(f"{url}/api/v1/runs", headers=good).json()] == ["a"]
    page = httpx.get(f"{url}/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"


def test_browser_login_sets_a_session_cookie_not_the_token(secured):
    with httpx.Client(base_url=secured.url) as c:
        r = c.post(
            "/login",
            content=b"token=wrong",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.headers["location"] == "/login?failed=1"
        assert c.get("/api/v1/runs").status_code == 401
        r = c.post(
            "/login",
            content=f"token={TOKEN}".encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert TOKEN not in cookie
        assert c.get("/api/v1/runs").status_code == 200
        assert c.get("/").status_code == 200
    assert TOKEN not in secured.log.read_text()


def test_hook_sends_the_token_and_keeps_data_when_it_is_wrong(secured, tmp_path):
    code = (
        "import fitscope\nrun = fitscope.init(name='tok')\n"
        "for i in range(5):\n    run.log({'x': float(i)})\nrun.finish()\n"
    )
    wrong = run_script(code, tmp_path, secured.url, FITSCOPE_TOKEN="nope")
    assert wrong.returncode == 0
    assert "FITSCOPE_TOKEN" in wrong.stderr and "fitscope sync" in wrong.stderr
    ok = run_script(code, tmp_path, secured.url, FITSCOPE_TOKEN=TOKEN)
    assert ok.returncode == 0, ok.stderr
    good = {"Authorization": f"Bearer {TOKEN}"}
    # the next run (another token identity) leaves what the first one spooled to sync
    runs = httpx.get(f"{secured.url}/api/v1/runs", headers=good).json()
    assert len(runs) == 1
    sync = subprocess.run(
        [sys.executable, "-m", "fitscope.cli", "sync"],
        capture_output=True,
        text=True,
        env={
            **__import__("os").environ,
            "FITSCOPE_URL": secured.url,
            "FITSCOPE_DIR": str(tmp_path / "client"),
            "FITSCOPE_TOKEN": TOKEN,
        },
    )
    assert sync.returncode == 0, sync.stderr
    runs = httpx.get(f"{secured.url}/api/v1/runs", headers=good).json()
    assert len(runs) == 2
    for r in runs:
        s = httpx.get(
            f"{secured.url}/api/v1/runs/{r['id']}/series", params={"key": "x"}, headers=good
        ).json()
        assert s["values"] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_serving_beyond_loopback_needs_a_token(tmp_path):
    env = {**__import__("os").environ, "FITSCOPE_DIR": str(tmp_path)}
    env.pop("FITSCOPE_TOKEN", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "fitscope.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode != 0
    assert "FITSCOPE_TOKEN" in r.stderr and "--insecure-no-auth" in r.stderr


def test_exposure_rules():
    from fitscope_server.cli import check_exposure, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    check_exposure("127.0.0.1", None, False)
    check_exposure("0.0.0.0", "tok", False)
    with pytest.raises(SystemExit):
        check_exposure("0.0.0.0", None, False)
    check_exposure("0.0.0.0", None, True)  # loud, but allowed


# -- edges (issue 16) ------------------------------------------------------------------------------
def test_a_rebinding_page_can_neither_read_nor_delete(server):
    url = server.url
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
    port = server.port
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
