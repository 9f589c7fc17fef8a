"""The team server: docker-compose.yml and the Dockerfile, checked without a Docker engine.

The files are parsed and checked for what compose needs (services, healthchecks,
start order, env, ports, volumes), and the image's command is run as it is
written, with the environment compose gives it, against a fresh PostgreSQL
database.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.servers import REPO, free_port

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
_VAR = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X:?error}, $$ for a literal $."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op in (":-", "-"):
            return value if value else (arg or "")
        if op in (":?", "?") and not value:
            raise ValueError(f"{name}: {arg}")
        return value or ""

    return _VAR.sub(sub, text)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in text.splitlines():
        if line.strip().startswith("#") and not buf:
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return dockerfile_instructions(DOCKERFILE.read_text())


def image_cmd(instructions: list[tuple[str, str]]) -> list[str]:
    cmds = [json.loads(arg) for word, arg in instructions if word == "CMD"]
    assert len(cmds) == 1, "exactly one CMD, in exec (JSON) form"
    return cmds[0]


def test_compose_services_healthchecks_and_order(compose):
    services = compose["services"]
    assert set(services) == {"fitscope", "postgres"}
    pg, app = services["postgres"], services["fitscope"]

    assert pg["image"] == "postgres:15"
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])
    assert any(v.split(":")[0] == "pgdata" for v in pg["volumes"])
    assert "pgdata" in compose["volumes"]

    assert app["build"] == "." and (REPO / "Dockerfile").is_file()
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    hc = app["healthcheck"]
    assert "/api/v1/health" in " ".join(hc["test"]) and hc["retries"] >= 1
    assert [p.rsplit(":", 1)[1] for p in app["ports"]] == ["7007"]
    for svc in services.values():
        for v in svc.get("volumes", []):
            name = v.split(":")[0]
            assert name.startswith(("/", ".")) or name in compose["volumes"], v


def test_compose_environment_points_at_its_postgres(compose):
    env = compose["services"]["fitscope"]["environment"]
    pg_env = compose["services"]["postgres"]["environment"]
    url = httpx.URL(interpolate(env["FITSCOPE_DB_URL"], {}).replace("postgresql+psycopg", "http"))
    assert env["FITSCOPE_DB_URL"].startswith("postgresql+psycopg://")
    assert url.host == "postgres" and url.port == 5432
    assert url.username == pg_env["POSTGRES_USER"]
    assert url.path.lstrip("/") == pg_env["POSTGRES_DB"]
    # one password variable feeds both sides
    for pw_env in ({}, {"POSTGRES_PASSWORD": "pw-from-env"}):
        app_url = httpx.URL(interpolate(env["FITSCOPE_DB_URL"], pw_env).replace("+psycopg", ""))
        assert app_url.password == interpolate(pg_env["POSTGRES_PASSWORD"], pw_env)
    # the token comes from the environment, and compose refuses to start without one
    assert interpolate(env["FITSCOPE_TOKEN"], {"FITSCOPE_TOKEN": "s3cret"}) == "s3cret"
    with pytest.raises(ValueError, match="FITSCOPE_TOKEN"):
        interpolate(env["FITSCOPE_TOKEN"], {})


def test_dockerfile_builds_the_server_image(instructions):
    words = [w for w, _ in instructions]
    assert words[0] == "FROM" and re.match(r"python:3\.(1[0-9])", instructions[0][1])
    copies = [arg.split() for w, arg in instructions if w == "COPY"]
    sources = [src for parts in copies for src in parts[:-1]]
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: not in the repository"
    ignored = (REPO / ".dockerignore").read_text().split()
    for src in sources:
        assert src not in ignored, f"{src} is copied but excluded by .dockerignore"
    runs = " ".join(arg for w, arg in instructions if w == "RUN")
    assert 'pip install ".[server]"' in runs and "torch" not in runs
    users = [arg for w, arg in instructions if w == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("EXPOSE", "7007") in instructions
    assert any(w == "HEALTHCHECK" and "/api/v1/health" in a for w, a in instructions)
    cmd = image_cmd(instructions)
    assert cmd[:2] == ["sh", "-c"]
    upgrade, _, serve = cmd[2].partition("&&")
    assert shlex.split(upgrade) == ["fitscope", "db", "upgrade"]
    assert "fitscope serve" in serve and "--no-upgrade" in serve


def test_compose_runs_the_image_command(compose, instructions):
    """Compose spells out the image's command (for readers); the two must not drift apart."""
    command = compose["services"]["fitscope"]["command"]
    assert [interpolate(c, {}) if "$$" in c else c for c in command] == image_cmd(instructions)


@pytest.fixture(scope="module")
def image_install(instructions, tmp_path_factory) -> Path:
    """What the image's COPY and ``pip install`` produce: the copied files only, installed
    (not editable) into a folder of their own; its ``bin/`` holds the ``fitscope`` command."""
    import shutil

    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    for word, arg in instructions:
        if word == "COPY":
            *sources, dest = arg.split()
            for src in sources:
                target = app / dest if dest not in ("./", ".") else app / Path(src).name
                if (REPO / src).is_dir():
                    shutil.copytree(
                        REPO / src, target, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(REPO / src, target)
    prefix = app.parent / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    r = subprocess.run(
        [*pip, "--target", str(prefix), "."], cwd=app, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (prefix / "bin" / "fitscope").is_file()
    return prefix


def _wait_health(url: str, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"the server exited ({proc.returncode}):\n{out[-3000:]}")
        try:
            r = httpx.get(f"{url}/api/v1/health", timeout=1)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer /api/v1/health in time")


def test_image_command_migrates_then_serves_on_postgres(
    compose, instructions, image_install, postgres_url, tmp_path
):
    """The container's command, run here as it is written, with compose's environment
    (its database URL swapped for a fresh local database)."""
    app = compose["services"]["fitscope"]
    token = "compose-test-token"
    env_vars = {
        k: interpolate(str(v), {"FITSCOPE_TOKEN": token}) for k, v in app["environment"].items()
    }
    assert env_vars["FITSCOPE_DB_URL"].split("://")[0] == postgres_url.split("://")[0]
    env_vars["FITSCOPE_DB_URL"] = postgres_url
    port = free_port()
    env = {
        "PATH": os.pathsep.join([str(image_install / "bin"), os.environ.get("PATH", "")]),
        # the image's install, not this checkout's editable one
        "PYTHONPATH": str(image_install),
        "HOME": str(tmp_path),
        "FITSCOPE_DIR": str(tmp_path / "data"),
        # the command binds 0.0.0.0 in the container; here only the loopback address
        "FITSCOPE_HOST": "127.0.0.1",
        "FITSCOPE_PORT": str(port),
        **env_vars,
    }
    proc = subprocess.Popen(
        image_cmd(instructions),
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = _wait_health(f"http://127.0.0.1:{port}", proc)
        assert health["status"] == "ok" and health["database"] == "postgresql"
        # the compose healthcheck itself, aimed at this port
        check = [c.replace("7007", str(port)) for c in app["healthcheck"]["test"][1:]]
        assert subprocess.run(check, env=env, timeout=30).returncode == 0
        r = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/runs", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200 and r.json() == []
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    # the schema was migrated by `fitscope db upgrade` before `serve --no-upgrade` started
    assert "fitscope: schema at" in out, out[-2000:]
    # and it was the image's install that ran, not this checkout
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fitscope_server, fitscope_migrations as m; print(m.__file__)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(image_install)), where.stdout + where.stderr
    assert out.index("fitscope: schema at") < out.index("fitscope: dashboard at")
