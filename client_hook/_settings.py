"""Where the hook sends its data and keeps its files.

This is the only place in the client that reads the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:7007"
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ClientSettings:
    url: str = DEFAULT_URL
    dir: Path = Path("~/.fitscope").expanduser()
    token: str | None = None
    # how long finish() (and interpreter exit) waits for delivery before leaving the rest spooled
    finish_timeout: float = 5.0
    # distributed training: by default only rank 0 sends (FITSCOPE_ALL_RANKS=1: every rank)
    all_ranks: bool = False
    rank: int | None = None  # RANK, as set by torchrun, when torch.distributed is not up yet
    world_size: int | None = None  # WORLD_SIZE

    @classmethod
    def from_env(cls, url: str | None = None) -> ClientSettings:
        """``url=`` wins, then ``FITSCOPE_URL``, then the default address."""
        env = os.environ
        return cls(
            url=(url or env.get("FITSCOPE_URL") or DEFAULT_URL).rstrip("/"),
            dir=Path(env.get("FITSCOPE_DIR") or "~/.fitscope").expanduser(),
            token=env.get("FITSCOPE_TOKEN") or None,
            finish_timeout=_float(env.get("FITSCOPE_FINISH_TIMEOUT"), 5.0),
            all_ranks=env.get("FITSCOPE_ALL_RANKS", "").strip().lower() in _TRUE,
            rank=_int(env.get("RANK")),
            world_size=_int(env.get("WORLD_SIZE")),
        )

    @property
    def spool_dir(self) -> Path:
        return self.dir / "spool"


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
