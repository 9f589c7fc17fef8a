"""Security: headers on every answer, token auth for reads and writes, safe defaults for binding."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from conftest import ServerProcess, free_port, run_script

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
