"""One-line messages to the training terminal; each said at most once."""

from __future__ import annotations

import sys
import threading

_said: set[str] = set()
_lock = threading.Lock()


def say(msg: str) -> None:
    try:
        print(f"fitscope: {msg}", file=sys.stderr, flush=True)
    except Exception:  # a closed stderr must not reach the training loop
        pass


def say_once(key: str, msg: str) -> None:
    with _lock:
        if key in _said:
            return
        _said.add(key)
    say(msg)
