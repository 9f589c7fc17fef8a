"""Messages the hook sends, and how they become request bodies.

Every message carries a unique id chosen by the client (the batch id for a batch
of points), so the server can store a resent message exactly once.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field

from .protocol import PROTOCOL_HEADER, PROTOCOL_VERSION


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Message:
    method: str
    path: str
    payload: dict
    id: str = field(default_factory=new_id)
    created: float = field(default_factory=time.time)
    # a batch of points may be dropped only as a last resort, and histograms first
    kind: str = "control"
    # where a spooled message must go: {"url": server address, "token": token_id(token)};
    # None for a message spooled by a version that did not record it
    dest: dict | None = None
    _json: str | None = field(default=None, repr=False, compare=False)  # the payload, encoded once

    def payload_json(self) -> str:
        if self._json is None:
            self._json = json.dumps(self.payload, separators=(",", ":"), allow_nan=False)
        return self._json

    def n_points(self) -> int:
        """Points a batch carries (scalar points plus histograms); 0 for control messages."""
        scalars = self.payload.get("scalars") or {}
        return sum(len(s.get("steps", ())) for s in scalars.values()) + len(
            self.payload.get("histograms") or ()
        )

    def body(self) -> bytes:
        return gzip.compress(self.payload_json().encode(), compresslevel=1)

    def to_spool(self, dest: dict | None = None) -> bytes:
        head = {
            "dest": dest if dest is not None else self.dest,
            "method": self.method,
            "path": self.path,
            "id": self.id,
            "created": self.created,
            "kind": self.kind,
        }
        # the payload's JSON is made once, for the spool and the request body alike
        record = json.dumps(head, allow_nan=False)[:-1] + ',"payload":' + self.payload_json() + "}"
        return gzip.compress(record.encode(), compresslevel=1)

    @classmethod
    def from_spool(cls, data: bytes) -> Message:
        r = json.loads(gzip.decompress(data))
        dest = r.get("dest")
        return cls(
            r["method"],
            r["path"],
            r["payload"],
            r["id"],
            r["created"],
            r.get("kind", "control"),
            dest if isinstance(dest, dict) else None,
        )


def token_id(token: str | None) -> str:
    """A short, one-way identity of a token (never the token itself): "" when there is none."""
    if not token:
        return ""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def destination(url: str, token: str | None) -> dict:
    """The server a message is meant for, and which token identity sent it."""
    return {"url": url.rstrip("/"), "token": token_id(token)}


def headers(token: str | None) -> dict[str, str]:
    """The headers of a message's request: gzip JSON, the protocol version, the token if any."""
    h = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        PROTOCOL_HEADER: str(PROTOCOL_VERSION),
    }
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


MAX_KEY = 250  # the server's limit on a series key


def key_problem(key: str) -> str | None:
    """Why the server would refuse ``key`` as a series name, or None when it is acceptable."""
    if not 1 <= len(key) <= MAX_KEY:
        return f"must be 1-{MAX_KEY} characters (has {len(key)})"
    if any(c < " " for c in key):
        return "contains a control character (tab, newline, ...)"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None
