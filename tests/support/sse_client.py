"""A small server-sent-events reader for tests: a background thread parses the stream
into (id, event, data) tuples that a test waits for with a timeout."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass

import httpx


@dataclass
class Event:
    id: str | None
    event: str
    data: object


class SSEStream:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self.headers: dict[str, str] = {}
        self.status: int | None = None
        self._ready = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._thread = threading.Thread(target=self._run, args=(url, headers or {}), daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise TimeoutError(f"no answer from {url}")

    def _run(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as resp:
                self.status = resp.status_code
                self.headers = dict(resp.headers)
                self._ready.set()
                ev_id, kind = None, "message"
                data: list[str] = []
                for line in resp.iter_lines():
                    if line == "":
                        if data:
                            self.events.put(Event(ev_id, kind, json.loads("\n".join(data))))
                        ev_id, kind, data = None, "message", []
                    elif line.startswith(":"):
                        continue
                    else:
                        field, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if field == "id":
                            ev_id = value
                        elif field == "event":
                            kind = value
                        elif field == "data":
                            data.append(value)
        except Exception:  # noqa: BLE001 - closed by the test or by the server: stream over
            pass
        finally:
            self._ready.set()

    def next(self, kind: str | None = None, timeout: float = 15.0) -> Event:
        """The next event (of ``kind``, skipping others)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind or 'event'} within {timeout} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if kind is None or ev.event == kind:
                return ev

    def until(self, kind: str, pred, timeout: float = 15.0) -> Event:  # type: ignore[no-untyped-def]
        """The first event of ``kind`` for which ``pred(data)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next(kind, max(0.01, deadline - time.monotonic()))
            if pred(ev.data):
                return ev

    def close(self) -> None:
        self._client.close()
