"""Messages the hook sends, and how they become request bodies.

Every message carries a unique id chosen by the client (the batch id for a batch
of points), so the server can store a resent message exactly once.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from dataclasses import dataclass, field


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

    def n_points(self) -> int:
        """Points a batch carries (scalar points plus histograms); 0 for control messages."""
        scalars = self.payload.get("scalars") or {}
        return sum(len(s.get("steps", ())) for s in scalars.values()) + len(
            self.payload.get("histograms") or ()
        )

    def body(self) -> bytes:
        raw = json.dumps(self.payload, separators=(",", ":"), allow_nan=False).encode()
        return gzip.compress(raw, compresslevel=1)

    def to_spool(self) -> bytes:
        record = {
            "method": self.method,
            "path": self.path,
            "payload": self.payload,
            "id": self.id,
            "created": self.created,
            "kind": self.kind,
        }
        return gzip.compress(json.dumps(record, allow_nan=False).encode(), compresslevel=1)

    @classmethod
    def from_spool(cls, data: bytes) -> Message:
        r = json.loads(gzip.decompress(data))
        return cls(
            r["method"], r["path"], r["payload"], r["id"], r["created"], r.get("kind", "control")
        )


def headers(token: str | None) -> dict[str, str]:
    h = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h
