"""A lockout for failed credentials, per client address, in bounded memory.

After ``max_failures`` wrong tokens (bearer, session cookie or the login form) within
``window_s`` from one address, every request from it that presents a credential is
answered 429 for ``lockout_s`` (even with the right token, or guessing could go on).
At most ``max_clients`` addresses are remembered; the least recently failing is forgotten.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict


class Throttle:
    def __init__(
        self,
        max_failures: int = 10,
        window_s: float = 60.0,
        lockout_s: float = 60.0,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_clients = max_clients
        # address -> [window start, failures in it, locked until]
        self._seen: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def locked(self, addr: str) -> float:
        """Seconds ``addr`` stays locked out (0: not locked)."""
        with self._lock:
            entry = self._seen.get(addr)
            if entry is None:
                return 0.0
            return max(0.0, entry[2] - time.monotonic())

    def failed(self, addr: str) -> None:
        now = time.monotonic()
        with self._lock:
            entry = self._seen.pop(addr, None)
            if entry is None or now - entry[0] > self.window_s:
                entry = [now, 0.0, entry[2] if entry else 0.0]
            entry[1] += 1
            if entry[1] >= self.max_failures:
                entry[2] = now + self.lockout_s
                entry[0], entry[1] = now, 0.0
            self._seen[addr] = entry
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
