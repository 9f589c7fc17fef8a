"""Helpers for the browser tests: runs and points sent through the API, alerts written straight
into the test server's database as the diagnosis would (a boundary these tests own), pages
opened with watchers for dialogs, CSP violations, errors and remote requests, and the
screenshots folder (``artifacts/screenshots``, or ``$FITSCOPE_ARTIFACTS/screenshots``)."""

from __future__ import annotations

import math
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from tests.support.servers import REPO


def artifacts_dir() -> Path:
    base = Path(os.environ.get("FITSCOPE_ARTIFACTS") or REPO / "artifacts")
    out = base / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def screenshot(page: Any, name: str) -> None:
    """The whole page as ``<artifacts>/screenshots/<name>.png``, once Plotly's transitions end."""
    page.wait_for_timeout(400)
    page.screenshot(path=str(artifacts_dir() / f"{name}.png"), full_page=True)


def wire(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def create_run(url: str, name: str, project: str = "default", config: dict | None = None) -> str:
    run_id = uuid.uuid4().hex[:16]
    r = httpx.post(
        f"{url}/api/v1/runs",
        json={"id": run_id, "project": project, "name": name, "config": config or {}},
        timeout=10,
    )
    r.raise_for_status()
    return run_id


def post_batch(
    url: str,
    run_id: str,
    scalars: dict[str, tuple[list[int], list[float]]] | None = None,
    histograms: list[dict] | None = None,
) -> dict:
    body = {
        "batch_id": uuid.uuid4().hex,
        "scalars": {
            k: {"steps": list(s), "values": [wire(float(v)) for v in vs]}
            for k, (s, vs) in (scalars or {}).items()
        },
        "histograms": histograms or [],
    }
    r = httpx.post(f"{url}/api/v1/runs/{run_id}/batches", json=body, timeout=30)
    r.raise_for_status()
    return r.json()


def finish(url: str, run_id: str) -> None:
    httpx.post(f"{url}/api/v1/runs/{run_id}/finish", json={}, timeout=10).raise_for_status()


@contextmanager
def db_session(db_url: str) -> Iterator[Any]:
    from fitscope_server.db import Database

    db = Database(db_url)
    try:
        with db.session() as s:
            yield s
    finally:
        db.dispose()


def insert_alert(
    db_url: str,
    run_id: str,
    *,
    rule: str,
    severity: str,
    step: int,
    message: str,
    remedy: str,
    evidence: dict,
    onset_step: int | None = None,
    status: str = "open",
) -> int:
    """Write an alert row as the diagnosis does (tests own this boundary)."""
    from fitscope_server.models import AlertRow

    now = datetime.now(timezone.utc)
    with db_session(db_url) as s:
        row = AlertRow(
            run_id=run_id,
            rule=rule,
            severity=severity,
            step=step,
            onset_step=onset_step,
            message=message,
            remedy=remedy,
            evidence=orjson.dumps(evidence).decode(),
            status=status,
            created_at=now,
            updated_at=now,
        )
        s.add(row)
        s.flush()
        return int(row.id)


def send_points(url: str, run_id: str, key: str, points: Iterable[tuple[int, float]]) -> None:
    """Send a long scalar series through the ingest API in large batches."""
    chunk: list[tuple[int, float]] = []
    for p in points:
        chunk.append(p)
        if len(chunk) == 200_000:
            post_batch(url, run_id, {key: ([s for s, _ in chunk], [v for _, v in chunk])})
            chunk = []
    if chunk:
        post_batch(url, run_id, {key: ([s for s, _ in chunk], [v for _, v in chunk])})


class PageWatch:
    """Collects what must never happen on a page: dialogs (a script ran), CSP violations,
    uncaught errors, and requests to any other host (the dashboard works offline)."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.csp: list[str] = []
        self.errors: list[str] = []
        self.remote: list[str] = []
        page.on("dialog", self._dialog)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", self._request)

    def _request(self, r: Any) -> None:
        host = urlsplit(r.url).hostname
        if r.url.startswith(("http:", "https:", "ws:", "wss:")) and host != "127.0.0.1":
            self.remote.append(r.url)

    def _dialog(self, d: Any) -> None:
        self.dialogs.append(d.message)
        d.dismiss()

    def _console(self, m: Any) -> None:
        if "Content Security Policy" in m.text:
            self.csp.append(m.text)

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"a script ran: {self.dialogs}"
        assert self.csp == [], self.csp
        assert self.errors == [], self.errors
        assert self.remote == [], f"requests left the machine: {self.remote}"


def open_page(browser: Any, url: str, dark: bool = False, width: int = 1440, height: int = 1000):  # noqa: ANN201
    ctx = browser.new_context(
        viewport={"width": width, "height": height}, color_scheme="dark" if dark else "light"
    )
    page = ctx.new_page()
    watch = PageWatch(page)
    page.goto(url)
    return page, watch


def chart_ready(page: Any, chart_id: str, timeout: float = 20_000) -> None:
    page.wait_for_function(
        f"() => {{ const d = document.getElementById('{chart_id}'); return d && d.data && d.data.length > 0; }}",
        timeout=timeout,
    )


def trace_ready(page: Any, chart_id: str, role: str, key: str, timeout: float = 60_000) -> None:
    """Wait for a chart's trace of this role and key (alert markers may come first)."""
    page.wait_for_function(
        """([id, role, key]) => (document.getElementById(id).data || [])
            .some(t => t.meta && t.meta.role === role && t.meta.key === key)""",
        arg=[chart_id, role, key],
        timeout=timeout,
    )


def trace(page: Any, chart_id: str, role: str, key: str | None = None) -> dict | None:
    """The first trace of a chart with this meta role (and key), as plain data."""
    return page.evaluate(
        """([id, role, key]) => {
            const d = document.getElementById(id).data || [];
            const t = d.find(t => t.meta && t.meta.role === role && (key === null || t.meta.key === key));
            return t ? {x: Array.from(t.x || []), y: Array.from(t.y || []), name: t.name,
                        text: t.text ? Array.from(t.text) : null} : null;
        }""",
        [chart_id, role, key],
    )


def x_range(page: Any, chart_id: str) -> list[float] | None:
    return page.evaluate(
        f"() => {{ const l = document.getElementById('{chart_id}').layout;"
        " return l && l.xaxis && l.xaxis.autorange === false ? l.xaxis.range.map(Number) : null; }"
    )


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
