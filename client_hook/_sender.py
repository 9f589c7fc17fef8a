"""The background sender: all of the hook's I/O happens on its two threads.

The training thread only appends to an in-memory list and sets an event; it never
waits on the disk or the network.

* The *writer* thread turns what was recorded into messages and writes each one to the
  disk spool (write-ahead) before anything is sent, so a flushed message survives the
  process being killed, whatever the server is doing.
* The *network* thread sends the spooled messages of the run one at a time, in order
  (a message is retried until it is delivered or refused for good; nothing overtakes
  it), and removes each file once the server has acknowledged it.

Each message has an id, so a resend after an unclear failure is stored once by the
server.  A message the server refuses for good (a 4xx other than 401/403/408/409/429)
is set aside in ``spool/rejected`` with the reason and reported; it never blocks the
messages behind it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ._console import say, say_once
from ._messages import Message, destination, headers
from ._spool import REJECTED, RunLock, Spool
from ._transport import Transport

RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
AUTH_FAILED = {401, 403}
TOKEN_HINT = "set FITSCOPE_TOKEN to the server's token; the data stays in the spool"
FINAL_RETRY_S = 0.25  # within the exit window, retry this often whatever the backoff was

OK, RETRY, REFUSED = "ok", "retry", "refused"


@dataclass
class _Entry:
    """A message on its way: its spool file (None if the disk would not take it) and, while
    the backlog is short, the message itself (else it is read back from the file)."""

    path: Path | None
    msg: Message | None
    kind: str = field(default="control")


def classify(status: int) -> str:
    if 200 <= status < 300 or status == 409:
        return OK
    if status in RETRYABLE or status in AUTH_FAILED or status >= 500:
        return RETRY
    return REFUSED


def refused_keys(body: bytes) -> dict[str, str]:
    """The keys a 2xx answer says it refused (``{"refused": {key: why}}``), if any."""
    try:
        reply = json.loads(body)
    except ValueError:
        return {}
    refused = reply.get("refused") if isinstance(reply, dict) else None
    if not isinstance(refused, dict):
        return {}
    return {str(k): str(v) for k, v in refused.items()}


def report_refused(run_id: str, refused: dict[str, str]) -> None:
    for key, why in refused.items():
        say_once(
            f"refused-key-{run_id}-{key}",
            f"server refused key {key!r} ({why}); its values are not stored, the rest is",
        )


class Sender:
    def __init__(
        self,
        run_id: str,
        transport: Transport,
        spool: Spool,
        *,
        token: str | None = None,
        url: str = "",
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
        self.dest = destination(url, token)
        self._collect = collect
        self._on_reply = on_reply
        self._heartbeat = heartbeat
        self._interval = interval
        self._heartbeat_every = heartbeat_every
        self._max_queue = max_queue
        self._max_backoff = max_backoff
        self._clock = clock
        self._inbox: deque[Message] = deque()  # from the training thread
        self._outbox: deque[_Entry] = deque()  # spooled, in order, for the network thread
        self._lock = threading.Lock()
        # one collect at a time: the writer thread's and finish()'s would otherwise decode
        # blocks side by side (the decoder carries learning rates from block to block) and
        # queue their batches out of order
        self._collect_lock = threading.Lock()
        self._wake = threading.Event()
        self._net_wake = threading.Event()
        self._stop = threading.Event()
        self._written = threading.Event()  # the writer has handed over its last message
        self._thread: threading.Thread | None = None
        self._net: threading.Thread | None = None
        self._run_lock: RunLock | None = None
        self._deadline = float("inf")
        self._offline_until = 0.0
        self._backoff = 0.5
        self._last_sent = clock()
        self._replayed_others = False
        self._next_replay = 0.0
        self._not_ours: set[str] = set()  # spooled runs meant for another server or token
        self._auth_failed = False
        self.sent = 0
        self.rejected = 0  # messages the server refused for good (set aside in spool/rejected)
        self.rejected_points = 0
        self.dropped = 0  # messages that could neither be sent nor spooled
        self.dropped_points = 0

    # -- training-thread side -------------------------------------------------
    def start(self) -> None:
        self._run_lock = self._spool.claim(self.run_id)
        self._thread = threading.Thread(target=self._loop, name="fitscope-writer", daemon=True)
        self._net = threading.Thread(target=self._net_loop, name="fitscope-sender", daemon=True)
        self._thread.start()
        self._net.start()

    def submit(self, msg: Message) -> None:
        """Queue a message; never blocks."""
        with self._lock:
            self._inbox.append(msg)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def close(self, timeout: float = 5.0) -> int:
        """Deliver what is pending within ``timeout`` seconds; the rest stays in the spool.

        Returns how many messages of this run are left in the spool.  Returns within about
        ``timeout`` seconds whatever the server does (a request in flight is cut at the
        deadline).
        """
        self._deadline = self._clock() + timeout
        if hasattr(self._transport, "deadline"):
            self._transport.deadline = time.monotonic() + timeout  # type: ignore[attr-defined]
        self._offline_until = min(self._offline_until, self._clock())  # retry at once
        self._stop.set()
        self._wake.set()
        self._net_wake.set()
        for t in (self._thread, self._net):
            if t is not None:
                t.join(max(0.0, self._deadline - self._clock()) + 0.2)
        if self._thread is None or self._thread.is_alive():
            self._write_inbox()  # never started, or stuck: write what we have ourselves
        self._transport.close()
        with self._lock:
            unspooled = [e for e in self._outbox if e.path is None and e.kind != "heartbeat"]
        for e in unspooled:
            self._drop(e.msg)
        left = self._spool.count(self.run_id)
        if self._run_lock is not None and (self._net is None or not self._net.is_alive()):
            if not left:
                self._spool.prune(self.run_id)
            self._run_lock.release(drop=left == 0)
        return left

    def collect_now(self) -> None:
        """Queue the batches of everything recorded so far, in order (the writer thread
        every interval; ``finish()`` once more on the training thread)."""
        if self._collect is None:
            return
        with self._collect_lock:
            for msg in self._collect():
                self.submit(msg)

    # -- writer thread ----------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                self.collect_now()
                self._heartbeat_if_idle()
            except Exception as exc:  # never die silently, never raise into training
                say_once(
                    f"sender-bug-{self.run_id}",
                    f"sender error ({type(exc).__name__}: {exc}); what was recorded so far is kept",
                )
            self._write_inbox()
            if stopping:
                self._written.set()
                self._net_wake.set()
                return

    def _heartbeat_if_idle(self) -> None:
        if self._heartbeat is None or self._clock() - self._last_sent < self._heartbeat_every:
            return
        with self._lock:
            idle = not self._outbox and not self._inbox
        if idle and self._clock() >= self._offline_until:
            with self._lock:
                self._outbox.append(_Entry(None, self._heartbeat(), "heartbeat"))
            self._net_wake.set()

    def _write_inbox(self) -> None:
        """Spool every queued message (write-ahead), then hand it to the network thread."""
        while True:
            with self._lock:
                if not self._inbox:
                    return
                msg = self._inbox.popleft()
            path: Path | None = None
            try:
                path = self._spool.put(self.run_id, msg, self.dest)
            except OSError as exc:
                say_once(
                    f"spool-unusable-{self.run_id}",
                    f"cannot write the spool ({exc}); data that cannot be sent is dropped "
                    "and counted",
                )
            except Exception as exc:  # a message that cannot be encoded at all
                say_once(
                    f"unencodable-{self.run_id}",
                    f"a message could not be encoded ({type(exc).__name__}: {exc}); dropped "
                    "and counted",
                )
                self._drop(msg)
                continue
            with self._lock:
                if path is None and not self._outbox_room():
                    self._drop(msg)
                    continue
                # the backlog beyond max_queue waits on disk only, not in memory
                keep = path is None or len(self._outbox) < self._max_queue
                self._outbox.append(_Entry(path, msg if keep else None, msg.kind))
            self._net_wake.set()

    def _outbox_room(self) -> bool:
        return sum(e.path is None for e in self._outbox) < self._max_queue

    def _drop(self, msg: Message | None) -> None:
        self.dropped += 1
        self.dropped_points += msg.n_points() if msg is not None else 0

    # -- network thread -----------------------------------------------------------
    def _final(self) -> bool:
        return self._stop.is_set()

    def _net_loop(self) -> None:
        try:
            self._deliver()
        except Exception as exc:  # never die silently: everything unsent is on disk
            say_once(
                f"sender-bug-net-{self.run_id}",
                f"sender error ({type(exc).__name__}: {exc}); data is kept in the spool",
            )

    def _deliver(self) -> None:
        while True:
            final = self._final()
            if final and self._clock() >= self._deadline:
                return
            with self._lock:
                head = self._outbox[0] if self._outbox else None
            if head is None:
                if final and self._written.is_set():
                    if not self._auth_failed:
                        self._replay_older_runs()
                    return
                now = self._clock()
                if not final and not self._replayed_others and now >= self._next_replay:
                    self._next_replay = now + 10.0
                    if now >= self._offline_until:
                        self._replay_older_runs()
                self._net_wake.wait(self._interval)
                self._net_wake.clear()
                continue
            wait = self._offline_until - self._clock()
            if final:
                wait = min(wait, self._deadline - self._clock())
            if wait > 0:
                if head.kind == "heartbeat":
                    self._pop(head)  # stale by the time it could be sent
                    continue
                self._net_wake.wait(wait)
                self._net_wake.clear()
                continue
            msg = head.msg or (self._spool.load(head.path) if head.path else None)
            if msg is None:  # its file is gone or unreadable: nothing left to send
                self._pop(head)
                continue
            outcome = self._send(msg)
            if outcome == RETRY:
                continue
            if head.path is not None:
                if outcome == OK:
                    Spool.remove(head.path)
                else:
                    self._set_aside(head.path, msg)
            self._pop(head)

    def _pop(self, head: _Entry) -> None:
        with self._lock:
            if self._outbox and self._outbox[0] is head:
                self._outbox.popleft()

    def _set_aside(self, path: Path, msg: Message) -> None:
        try:
            where = self._spool.reject(path, self._last_refusal)
        except OSError:
            Spool.remove(path)
            where = None
        self.rejected_points += msg.n_points()
        say_once(
            f"set-aside-{self.run_id}",
            f"server refused a message for good ({self._last_refusal}); "
            + (f"kept in {where.parent} and not retried" if where else "it is dropped")
            + "; the other messages are still sent",
        )

    _last_refusal = ""

    def _replay_older_runs(self) -> None:
        """Deliver what dead processes left in the spool for this same server and token.

        A run whose directory is locked belongs to a live process (or a running sync) and is
        left alone.  Each run's messages go in order; a run stops at its first failure.
        While training, our own messages go first: the replay yields to them and resumes
        later.
        """
        for run_id in self._spool.runs_oldest_first():
            if run_id == self.run_id or run_id in self._not_ours:
                continue
            lock = self._spool.claim(run_id)
            if lock is None:
                continue
            left = 1
            try:
                self._spool.clean_tmp(run_id)
                for path, spooled in self._spool.read(run_id):
                    if spooled.dest != self.dest:
                        self._not_ours.add(run_id)
                        break
                    if self._stop_replay():
                        return
                    outcome = self._send(spooled)
                    if outcome == RETRY:
                        return
                    if outcome == OK:
                        Spool.remove(path)
                    else:
                        self._set_aside(path, spooled)
                left = self._spool.count(run_id)
                if not left:
                    self._spool.prune(run_id)
            finally:
                lock.release(drop=left == 0)
        self._replayed_others = True

    def _stop_replay(self) -> bool:
        if self._final():
            return self._clock() >= self._deadline
        with self._lock:
            return bool(self._outbox)  # our own data first

    def _send(self, msg: Message) -> str:
        """OK when the server has the message, REFUSED when it refused it for good, else RETRY."""
        try:
            resp = self._transport.request(msg.method, msg.path, msg.body(), self._headers)
        except Exception as exc:  # OSError from the network; anything else from a broken transport
            self._go_offline(f"cannot reach the server ({type(exc).__name__}: {exc})")
            return RETRY
        outcome = classify(resp.status)
        if outcome == OK:
            self._auth_failed = False
            self._backoff = 0.5
            self._offline_until = 0.0
            self._last_sent = self._clock()
            self.sent += 1
            if resp.body:
                report_refused(self.run_id, refused_keys(resp.body))
            if self._on_reply is not None and resp.body:
                try:
                    self._on_reply(msg, json.loads(resp.body))
                except Exception:  # a reply we cannot read changes nothing about delivery
                    pass
            return OK
        if resp.status in AUTH_FAILED:
            # a wrong or missing token: keep the data until the user fixes it and syncs
            self._auth_failed = True
            self._go_offline(f"server refused our token ({resp.status}); {TOKEN_HINT}")
            return RETRY
        if outcome == RETRY:
            self._go_offline(f"server answered {resp.status}")
            return RETRY
        # a 4xx other than the retryable ones: resending would fail the same way
        self.rejected += 1
        detail = resp.body[:300].decode(errors="replace")
        self._last_refusal = f"{msg.method} {msg.path} -> {resp.status}: {detail}"
        return REFUSED

    def _go_offline(self, why: str) -> None:
        # within the exit window, try again soon: the server may be back any moment
        delay = min(self._backoff, FINAL_RETRY_S) if self._final() else self._backoff
        self._offline_until = self._clock() + delay
        self._backoff = min(self._backoff * 2, self._max_backoff)
        say_once(
            f"offline-{self.run_id}", f"{why}; keeping data on disk and retrying in the background"
        )


# -- fitscope sync ------------------------------------------------------------------------


@dataclass
class SyncReport:
    sent: int = 0
    rejected: int = 0
    left: int = 0
    unreachable: dict[str, str] = field(default_factory=dict)  # url -> why
    busy: list[str] = field(default_factory=list)  # runs another process holds
    skipped: dict[str, int] = field(default_factory=dict)  # url -> entries not for --url


def sync_spool(
    spool: Spool,
    connect: Callable[[str], Transport],
    token: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    only: str | None = None,
    redirect: bool = False,
    default_url: str = "",
) -> SyncReport:
    """Send every spooled message to its own server, oldest first across runs.

    ``only``: send only the messages meant for that server (the others are left);
    with ``redirect``, send every message to ``only`` instead, whatever it was meant for.
    Messages spooled without a destination (older versions) go to ``only`` or
    ``default_url``.  A run held by another process is skipped; a run whose message
    cannot be delivered now stops there (its order is kept) and the others go on; an
    unreachable server stops everything meant for it; a message refused for good is set
    aside in ``spool/rejected``.
    """
    report = SyncReport()
    only = only.rstrip("/") if only else None
    locks = {}
    for run_id in spool.runs():
        lock = spool.claim(run_id)
        if lock is None:
            report.busy.append(run_id)
            say(f"run {run_id} is being delivered by another process (a live run or sync); skipped")
            continue
        locks[run_id] = lock
        spool.clean_tmp(run_id)
    files = [p for p in spool.files() if p.parent.name in locks]
    h = headers(token)
    transports: dict[str, Transport] = {}
    stalled: set[str] = set()  # runs whose next message must wait (order within a run)
    refused_in: dict[str, int] = {}
    try:
        for i, path in enumerate(files):
            if progress:
                progress(i, len(files))
            run_id = path.parent.name
            if run_id in stalled:
                continue
            msg = spool.load(path)
            if msg is None:
                continue
            url = (msg.dest or {}).get("url") or only or default_url
            if only and redirect:
                url = only
            elif only and url.rstrip("/") != only:
                report.skipped[url] = report.skipped.get(url, 0) + 1
                stalled.add(run_id)
                continue
            if url in report.unreachable:
                continue
            if url not in transports:
                transports[url] = connect(url)
            try:
                resp = transports[url].request(msg.method, msg.path, msg.body(), h)
            except OSError as exc:
                report.unreachable[url] = f"cannot reach the server: {exc}"
                continue
            outcome = classify(resp.status)
            if outcome == OK:
                report.sent += 1
                Spool.remove(path)
                report_refused(run_id, refused_keys(resp.body))
            elif resp.status in AUTH_FAILED:
                report.unreachable[url] = f"server refused our token ({resp.status}); {TOKEN_HINT}"
            elif outcome == RETRY:
                stalled.add(run_id)
                say(f"run {run_id}: server at {url} answered {resp.status}; kept for a later sync")
            else:
                report.rejected += 1
                why = f"{msg.method} {msg.path} -> {resp.status}: "
                why += resp.body[:200].decode(errors="replace")
                try:
                    where = str(spool.reject(path, why))
                except OSError:
                    where = str(path)
                refused_in[run_id] = refused_in.get(run_id, 0) + 1
                if refused_in[run_id] == 1:  # the first one with its reason; then a count
                    say(f"server at {url} refused a message for good ({why}); set aside as {where}")
        if progress:
            progress(len(files), len(files))
        for run_id, n in refused_in.items():
            if n > 1:
                say(
                    f"run {run_id}: {n} message(s) refused for good, set aside in {spool.root / REJECTED / run_id}"
                )
    finally:
        for t in transports.values():
            t.close()
        for run_id, lock in locks.items():
            n = spool.count(run_id)
            report.left += n  # a run another process holds is its business, not left here
            if not n:
                spool.prune(run_id)
            lock.release(drop=not n)
    return report
