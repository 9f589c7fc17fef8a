"""A run: what ``fitscope.init`` returns and ``fitscope.watch`` attaches hooks to."""

from __future__ import annotations

import atexit
import numbers
import socket
import sys
import threading
import time
import weakref
from typing import Any

from ._console import say, say_once
from ._decode import Decoder
from ._dist import rank_and_world
from ._messages import Message, key_problem, new_id
from ._recorder import Recorder
from ._sender import Sender
from ._settings import ClientSettings
from ._spool import Spool
from ._transport import HTTPTransport, Transport
from .protocol import KEYS, config_patch_body, create_run_body, finish_body, json_safe, paths

_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()


class Run:
    """One training run, streaming to a fitscope server in the background.

    Create it with :func:`fitscope.init` or :func:`fitscope.watch`.  Nothing it
    does raises into the training loop: failures are reported once on stderr.

    In a distributed job only rank 0 sends by default; the other ranks get an
    inactive run (``run.active`` is False) whose methods do nothing.  Pass
    ``all_ranks=True`` or set ``FITSCOPE_ALL_RANKS=1`` to record every rank as a
    run of its own (named ``<name>-rank<N>``).
    """

    def __init__(
        self,
        project: str | None = None,
        name: str | None = None,
        config: dict | None = None,
        url: str | None = None,
        *,
        rules: dict | None = None,
        tags: Any = None,
        all_ranks: bool | None = None,
        transport: Transport | None = None,
        settings: ClientSettings | None = None,
        interval: float = 1.0,
        heartbeat_every: float = 10.0,
    ) -> None:
        self.settings = settings or ClientSettings.from_env(url)
        self.id = new_id()
        self.project = str(project or "default")
        self.name = str(name or time.strftime("run-%Y%m%d-%H%M%S"))
        self.config: dict = dict(config or {})
        self.tags = clean_tags(tags)
        self.url = f"{self.settings.url}/runs/{self.id}"
        self.finished = False
        self._watcher: Any = None
        self._step = 0
        self._alerts_seen: set[str] = set()
        self._lock = threading.Lock()
        self._thread_ident = threading.get_ident()  # an uncaught exception here ends the run
        self._bad_keys: set[str] = set()
        self._good_keys: set[str] = set()  # checked once, then only looked up
        self.rank, self.world_size = rank_and_world(self.settings)
        every_rank = self.settings.all_ranks if all_ranks is None else bool(all_ranks)
        self.active = self.rank == 0 or every_rank
        if every_rank and self.world_size > 1:
            self.name = f"{self.name}-rank{self.rank}"
        self.fitscope: dict = {
            "rules": json_safe(rules or {}),
            "world_size": self.world_size,
            "started_at": time.time(),  # the training process's clock (Unix seconds)
        }
        if self.world_size > 1:
            self.fitscope["rank"] = self.rank
        self.recorder = Recorder(interval=interval)
        self._decoder = Decoder(self.id)  # the sender thread's: recorded blocks -> batches
        self.spool = Spool(self.settings.spool_dir)
        self.sender = Sender(
            self.id,
            transport or HTTPTransport(self.settings.url),
            self.spool,
            token=self.settings.token,
            url=self.settings.url,
            collect=self._collect,
            on_reply=self._on_reply,
            heartbeat=self._heartbeat,
            interval=interval,
            heartbeat_every=heartbeat_every,
        )
        if not self.active:
            self.finished = True  # nothing to send, nothing to finish
            return
        self.sender.submit(self._create_message())
        self.sender.start()
        _live_runs.add(self)
        _register_atexit()
        _install_excepthooks()

    # -- public API ----------------------------------------------------------------
    def watch(self, model: Any, optimizer: Any = None, criterion: Any = None) -> Run:
        """Attach capture hooks to ``model``, ``optimizer`` and ``criterion``.

        ``criterion`` is the loss module (e.g. ``nn.CrossEntropyLoss()``); leave it
        out for a model whose output has ``.loss`` (Hugging Face style), or log
        the loss yourself with ``run.log({"train/loss": loss})`` after
        ``optimizer.step()``.
        """
        if not self.active:
            return self
        try:
            from ._watch import Watcher

            if self._watcher is not None:
                self._watcher.detach()
            self._watcher = Watcher(
                self.recorder,
                model,
                optimizer,
                criterion,
                world_size=self.world_size,
                on_facts=self._on_facts,
            )
            self._on_facts(self._watcher.facts)
        except Exception as exc:
            say_once(
                f"watch-failed-{self.id}",
                f"could not attach hooks ({type(exc).__name__}: {exc}); "
                "training continues without automatic capture",
            )
        return self

    def split(self, name: str) -> None:
        """Name the split of the evaluation pass that follows: ``run.split("test")`` stores it as
        ``test/loss``, ``test/accuracy``...; ``"train"`` gives ``train_eval/*``.  Needed only
        where fitscope cannot tell passes apart (several splits evaluated back to back with no
        ``model.eval()`` call between them), or to give a pass a name of its own."""
        if self._watcher is not None and not self.finished:
            self._watcher.name_split(name)

    @property
    def step(self) -> int:
        """The current training step: optimizer steps taken (or ``run.log`` calls without hooks)."""
        return self._watcher.step if self._watcher is not None else self._step

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        """Record values at ``step`` (default: the current training step).

        Numbers (and 1-element tensors, which are not read until the next flush)
        become points of the series named by their key.  Under ``watch``, the
        current step is the number of optimizer steps taken, so log a step's
        values after its ``optimizer.step()``.
        """
        if self.finished:
            return
        try:
            if step is None:
                if self._watcher is None:
                    self._step += 1
                step = self.step
            step = int(step)
            for key, value in data.items():
                self._log_one(str(key), step, value)
            if self._watcher is not None and KEYS.TRAIN_LOSS in data:
                self._watcher.user_logs_loss()
            if self.recorder.due():
                self._flush()
        except Exception as exc:
            say_once(
                f"log-failed-{self.id}", f"run.log ignored a value ({type(exc).__name__}: {exc})"
            )

    def _log_one(self, key: str, step: int, value: Any) -> None:
        if isinstance(value, bool) or value is None:
            return
        if key not in self._good_keys:
            if key in self._bad_keys:
                return
            problem = key_problem(key)
            if problem is not None:
                self._bad_keys.add(key)
                say(
                    f"run.log: key {key[:80]!r} {problem}; its values are skipped "
                    "(the rest is recorded)"
                )
                return
            if len(self._good_keys) < 10_000:
                self._good_keys.add(key)
        if isinstance(value, numbers.Real):
            self.recorder.scalar(key, step, float(value))
            return
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.Tensor) and value.numel() == 1:
            self.recorder.vector("scalar", key, step, value.detach().reshape(()))
            return
        say_once(
            f"log-type-{self.id}-{key}",
            f"run.log: {key!r} is a {type(value).__name__}, not a number; skipped",
        )

    def _flush(self) -> None:
        if self._watcher is not None:
            self._watcher.flush()
        else:
            self.recorder.pack()

    def finish(self, timeout: float | None = None) -> None:
        """Flush everything and mark the run finished.

        Waits at most ``timeout`` seconds (default ``FITSCOPE_FINISH_TIMEOUT``, 5 s) for the
        server; whatever is not delivered by then stays in the spool for ``fitscope sync``.
        """
        self._close("finished", self.settings.finish_timeout if timeout is None else timeout)

    def _close(self, status: str, timeout: float, error: dict | None = None) -> None:
        with self._lock:
            if self.finished:
                return
            self.finished = True
        try:
            if self._watcher is not None:
                self._watcher.detach()
            self.recorder.pack()
            self.sender.collect_now()
            self.sender.submit(Message("POST", paths.finish(self.id), finish_body(status, error)))
            left = self.sender.close(timeout)
            self._report_exit(left)
        except Exception as exc:
            say_once(f"finish-failed-{self.id}", f"finish failed ({type(exc).__name__}: {exc})")

    def _crashed(self, exc: BaseException) -> None:
        """An uncaught exception ended the training: mark the run crashed, with the error."""
        error = {"type": type(exc).__name__, "message": _exc_text(exc)}
        self._close("crashed", self.settings.finish_timeout, error)

    def _report_exit(self, left: int) -> None:
        s = self.sender
        if s.dropped:
            say(
                f"{s.dropped_points} point(s) of run {self.name!r} were dropped: the server "
                f"was unreachable and the spool in {self.spool.root} could not be written."
            )
        if s.rejected:
            say(
                f"{s.rejected} message(s) ({s.rejected_points} point(s)) of run {self.name!r} were "
                f"refused by the server for good; they are kept in {self.spool.root / 'rejected'}."
            )
        if left:
            say(
                f"{left} message(s) of run {self.name!r} are not delivered yet and are kept in "
                f"{self.spool.root / self.id}; send them with "
                f"`fitscope sync --url {self.settings.url}` once that server is up."
            )

    # -- messages ----------------------------------------------------------------------
    def _create_message(self) -> Message:
        config = dict(self.config)
        config["fitscope"] = self.fitscope
        body = create_run_body(
            self.id,
            self.project,
            self.name,
            json_safe(config),
            host=socket.gethostname(),
            argv=sys.argv[:20],
            tags=self.tags,
        )
        return Message("POST", paths.RUNS, body)

    def _on_facts(self, facts: dict) -> None:
        """The watcher learned something: send the whole ``fitscope`` block again."""
        self.fitscope = {**self.fitscope, **json_safe(facts)}
        self.sender.submit(Message("PATCH", paths.run(self.id), config_patch_body(self.fitscope)))

    def _collect(self) -> list[Message]:
        """The batches of the blocks recorded so far (the sender thread's ``collect``)."""
        return self._decoder.messages(self.recorder.take())

    def _heartbeat(self) -> Message:
        return Message("POST", paths.heartbeat(self.id), {}, kind="heartbeat")

    def _on_reply(self, msg: Message, reply: Any) -> None:
        alerts = reply.get("alerts") if isinstance(reply, dict) else None
        if not isinstance(alerts, list):
            return
        for alert in alerts:
            if not isinstance(alert, dict) or alert.get("severity") not in ("warning", "critical"):
                continue
            key = f"{alert.get('rule')}:{alert.get('id')}"
            if f"{key}:{alert.get('severity')}" in self._alerts_seen:
                continue
            was = "(escalated from warning) " if f"{key}:warning" in self._alerts_seen else ""
            self._alerts_seen.add(f"{key}:{alert.get('severity')}")
            say(
                f"[{alert.get('severity')}] {alert.get('rule')} {was}at step {alert.get('step')}: "
                f"{alert.get('message')} -> {self.url}"
            )


_atexit_done = False


def _register_atexit() -> None:
    global _atexit_done
    if not _atexit_done:
        _atexit_done = True
        atexit.register(_finish_all)


def _finish_all() -> None:
    for run in list(_live_runs):
        run._close("finished", timeout=run.settings.finish_timeout)


def clean_tags(tags: Any) -> list[str]:
    """``tags=`` as the server takes them: strings, trimmed, no control characters, at most
    64 characters each and 32 in all, duplicates and blanks dropped (never raises)."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    try:
        for t in tags:
            s = "".join(c for c in str(t) if c >= " ").strip()[:64]
            if s and s not in out:
                out.append(s)
    except Exception:  # not iterable, or a str() that raises: the run is more important
        say_once("bad-tags", f"tags= should be a list of strings, not {type(tags).__name__}")
    return out[:32]


MAX_ERROR_MESSAGE = 1000


def _exc_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = f"<{type(exc).__name__}: str() failed>"
    return text[:MAX_ERROR_MESSAGE]


_hooks_installed = False


def _install_excepthooks() -> None:
    """Chain to ``sys.excepthook`` and ``threading.excepthook``: an exception nobody caught
    in the thread that created a run marks it ``crashed`` at once (KeyboardInterrupt too)."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook
    previous_thread = threading.excepthook

    def excepthook(etype: type[BaseException], value: BaseException, tb: Any) -> None:
        try:
            previous(etype, value, tb)  # the traceback first, as without fitscope
        finally:
            _crash_runs(threading.get_ident(), value)

    def thread_excepthook(args: Any) -> None:
        try:
            previous_thread(args)
        finally:
            thread = args.thread
            if thread is not None and thread.ident is not None and args.exc_value is not None:
                _crash_runs(thread.ident, args.exc_value)

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def _crash_runs(thread_ident: int, exc: BaseException) -> None:
    for run in list(_live_runs):
        if run._thread_ident == thread_ident and not run.finished:
            try:
                run._crashed(exc)
            except Exception:  # reporting a crash must not raise another one
                pass
