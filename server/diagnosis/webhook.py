"""Optional notification: a Slack-compatible JSON POST for each new warning or critical alert.

Only the URL configured on the server (``FITSCOPE_WEBHOOK_URL``) is ever called; runs cannot
choose where the server sends requests. Posting happens on a background thread after the
batch is committed, so a slow or failing webhook never delays or fails ingest.
"""

from __future__ import annotations

import logging
import queue
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

import orjson

log = logging.getLogger("fitscope.webhook")

ICON = {"warning": ":warning:", "critical": ":rotating_light:"}
MAX_PENDING = 1000  # bounded: notifications beyond this are dropped and counted


def slack_payload(alert: dict[str, Any], run_url: str | None = None) -> dict[str, Any]:
    """The JSON body: Slack's ``text`` (also read by Mattermost, Teams' Slack mode, Discord's
    ``/slack`` endpoint) plus the alert itself under ``fitscope`` for other receivers."""
    where = f" <{run_url}|open run>" if run_url else ""
    up = " (escalated)" if alert.get("escalated") else ""
    text = (
        f"{ICON.get(alert['severity'], '')} fitscope {alert['severity']}{up}: *{alert['rule']}* "
        f"in run {alert['run_name']!r} at step {alert['step']:,}: {alert['message']}{where}\n"
        f"Remedy: {alert['remedy']}"
    )
    return {"text": text, "fitscope": alert}


def _post(url: str, body: bytes, timeout: float) -> int:
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured URL only)
        return int(resp.status)


class Webhook:
    """Posts alerts to ``url`` from one background thread (started on first use)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        public_url: str | None = None,
        post: Callable[[str, bytes, float], int] = _post,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.public_url = public_url.rstrip("/") if public_url else None
        self._post = post
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    def send(self, alerts: list[dict[str, Any]]) -> None:
        for a in alerts:
            try:
                self._queue.put_nowait(a)
            except queue.Full:
                self.dropped += 1
        if alerts:
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="fitscope-webhook", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            run_url = f"{self.public_url}/runs/{alert['run_id']}" if self.public_url else None
            body = orjson.dumps(slack_payload(alert, run_url))
            try:
                status = self._post(self.url, body, self.timeout)
                if 200 <= status < 300:
                    self.sent += 1
                else:
                    self.failed += 1
                    log.warning("webhook answered HTTP %s", status)
            except Exception as exc:  # a broken webhook must not stop the next one
                self.failed += 1
                log.warning("webhook failed: %s: %s", type(exc).__name__, exc)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was posted (for tests and shutdown)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(self.timeout + 1)
