"""The background sender: all of the hook's I/O happens on this thread.

The training thread only appends to an in-memory queue and sets an event; it
never waits on the network.  Messages go to the server in order; when it cannot
be reached they go to the disk spool and are replayed, oldest first, once it is
back.  Each message has an id, so a resend after an unclear failure is stored
once by the server.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ._console import say, say_once
from ._messages import Message, headers
from ._spool import Spool
from ._transport import Transport

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
AUTH_FAILED = {401, 403}
TOKEN_HINT = "set FITSCOPE_TOKEN to the server's token; the data stays in the spool"


class Sender:
    def __init__(
        self,
        run_id: str,
        transport: Transport,
        spool: Spool,
        *,
        token: str | None = None,
        collect: Callable[[], list[Message]] | None = None,
        on_reply: Callable[[Message, dict], None] | None = None,
        heartbeat: Callable[[], Message] | None = None,
        interval: float = 1.0,
        heartbeat_every: float = 10.0,
        max_queue: int = 512,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run_id = run_id
        self._transport = transport
        self._spool = spool
        self._headers = headers(token)
        self._collect = collect
        self._on_reply = on_reply
        self._heartbeat = heartbeat
        self._interval = interval
        self._heartbeat_every = heartbeat_every
        self._max_queue = max_queue
        self._max_backoff = max_backoff
        self._clock = clock
        self._queue: deque[Message] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offline_until = 0.0
        self._backoff = 0.5
        self._last_sent = clock()
        self.sent = 0
        self._started_at = time.time()
        self._replayed_others = False
        self._auth_failed = False
        self.rejected = 0
        self.dropped = 0  # messages that could neither be sent nor spooled
        self.dropped_points = 0

    # -- training-thread side -------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="fitscope-sender", daemon=True)
        self._thread.start()

    def submit(self, msg: Message) -> None:
        """Queue a message; never blocks. Overflow goes to the spool."""
        with self._lock:
            self._queue.append(msg)
            overflow = len(self._queue) > self._max_queue
        if overflow:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float = 5.0) -> int:
        """Deliver what is pending within ``timeout`` seconds; spool the rest.

        Returns how many messages of this run are left in the spool.
        """
        self._deadline = self._clock() + timeout
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout + 1.0)
        if self._thread is None or self._thread.is_alive():
            # the sender is stuck in a slow request: keep everything on disk
            # (a message that still arrives later is stored once: ids dedupe)
            self._spill_all()
        self._transport.close()
        return self._spool.count(self.run_id)

    # -- sender-thread side ---------------------------------------------------
    _deadline = float("inf")

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                self._gather()
                self._pump(final=stopping)
            except Exception as exc:  # never die silently, never raise into training
                say_once(
                    f"sender-bug-{self.run_id}",
                    f"sender error ({type(exc).__name__}: {exc}); data is kept in the spool",
                )
                self._spill_all()
            if stopping:
                self._finish_delivery()
                return

    def _finish_delivery(self) -> None:
        """At close: keep retrying (capped backoff) until all is delivered or the deadline passes."""
        while True:
            with self._lock:
                pending = bool(self._queue)
            if not pending and not self._spool.count(self.run_id):
                # ours is delivered: spend what is left of the deadline on earlier runs' spool
                if not self._replayed_others and not self._auth_failed:
                    self._replay_older_runs(final=True)
                return
            wait = min(self._backoff, self._deadline - self._clock())
            if wait <= 0 or self._auth_failed:  # waiting will not fix a wrong token
                self._spill_all()
                return
            time.sleep(wait)
            try:
                self._pump(final=True)
            except Exception:
                self._spill_all()
                return

    def _gather(self) -> None:
        if self._collect is not None:
            for msg in self._collect():
                self.submit(msg)
        if self._heartbeat is not None and self._clock() - self._last_sent >= self._heartbeat_every:
            with self._lock:
                idle = not self._queue
            if idle:
                self.submit(self._heartbeat())

    def _pump(self, final: bool) -> None:
        now = self._clock()
        if now < self._offline_until and not final:
            self._spill_overflow()
            return
        # replay older spooled messages first, so order is kept
        if not self._replayed_others and not final:
            self._replay_older_runs()
        for path, spooled in self._spool.read(self.run_id):
            if self._past_deadline(final) or not self._send(spooled):
                if not final:
                    self._spill_overflow()
                return
            Spool.remove(path)
        while True:
            with self._lock:
                head = self._queue[0] if self._queue else None
            if head is None or self._past_deadline(final):
                return
            if not self._send(head):
                # unreachable: keep everything on disk until it is back
                self._spill_all()
                return
            with self._lock:
                if self._queue and self._queue[0] is head:
                    self._queue.popleft()

    def _replay_older_runs(self, final: bool = False) -> None:
        """Deliver what earlier processes left in the spool (the server stores each message once).

        While training this happens before our own messages, so order is kept; a run that
        finishes before its first send does it after its own messages, within the deadline.
        """
        for run_id in self._spool.runs():
            if run_id == self.run_id:
                continue
            for path, spooled in self._spool.read(run_id):
                if spooled.created >= self._started_at or self._past_deadline(final):
                    break
                if self._stop.is_set() and not final:
                    return
                if not self._send(spooled):
                    return
                Spool.remove(path)
        self._replayed_others = True

    def _past_deadline(self, final: bool) -> bool:
        return final and self._clock() > self._deadline

    def _send(self, msg: Message) -> bool:
        """True when the server has the message (or refused it for good)."""
        try:
            resp = self._transport.request(msg.method, msg.path, msg.body(), self._headers)
        except Exception as exc:  # OSError from the network; anything else from a broken transport
            self._go_offline(f"cannot reach the server ({type(exc).__name__}: {exc})")
            return False
        if 200 <= resp.status < 300 or resp.status == 409:
            self._auth_failed = False
            self._backoff = 0.5
            self._offline_until = 0.0
            self._last_sent = self._clock()
            self.sent += 1
            if self._on_reply is not None and resp.body:
                try:
                    self._on_reply(msg, json.loads(resp.body))
                except Exception:  # a reply we cannot read changes nothing about delivery
                    pass
            return True
        if resp.status in RETRYABLE:
            self._go_offline(f"server answered {resp.status}")
            return False
        if resp.status in AUTH_FAILED:
            # a wrong or missing token: keep the data until the user fixes it and syncs
            self._auth_failed = True
            self._go_offline(f"server refused our token ({resp.status}); {TOKEN_HINT}")
            return False
        # a 4xx other than the retryable ones: resending would fail the same way
        self.rejected += 1
        detail = resp.body[:300].decode(errors="replace")
        say_once(
            f"rejected-{self.run_id}-{resp.status}",
            f"server rejected data ({resp.status}): {detail}",
        )
        return True

    def _go_offline(self, why: str) -> None:
        self._offline_until = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, self._max_backoff)
        say_once(
            f"offline-{self.run_id}", f"{why}; keeping data on disk and retrying in the background"
        )

    def _spill_overflow(self) -> None:
        with self._lock:
            n = len(self._queue)
        if n > self._max_queue // 2:
            self._spill_all()

    def _spill_all(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                msg = self._queue.popleft()
            if msg.kind == "heartbeat":
                continue  # stale by the time it could be replayed
            try:
                self._spool.put(self.run_id, msg)
            except OSError as exc:
                self.dropped += 1
                self.dropped_points += msg.n_points()
                say_once(
                    f"spool-unusable-{self.run_id}",
                    f"cannot write the spool ({exc}); data that cannot be sent is dropped and counted",
                )


def sync_spool(
    spool: Spool,
    transport: Transport,
    token: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, int]:
    """Send every spooled message, oldest first. Returns (sent, rejected, left)."""
    files = spool.files()
    sent = rejected = 0
    h = headers(token)
    for i, (path, msg) in enumerate(spool.read()):
        try:
            resp = transport.request(msg.method, msg.path, msg.body(), h)
        except OSError as exc:
            say(f"cannot reach the server: {exc}")
            break
        if 200 <= resp.status < 300 or resp.status == 409:
            sent += 1
            Spool.remove(path)
        elif resp.status in RETRYABLE:
            say(f"server answered {resp.status}; try again later")
            break
        elif resp.status in AUTH_FAILED:
            say(f"server refused our token ({resp.status}); {TOKEN_HINT}")
            break
        else:
            rejected += 1
            say(
                f"server rejected {Path(path).name} ({resp.status}): {resp.body[:200].decode(errors='replace')}"
            )
            path.rename(path.with_suffix(".rejected"))
        if progress:
            progress(i + 1, len(files))
    return sent, rejected, spool.count()
