"""A real ``fitscope serve`` subprocess with extra options (workers, settings by env)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.servers import ServerProcess


class Server(ServerProcess):
    def __init__(self, db_url: str, data_dir: Path, workers: int = 1, **env: str) -> None:
        super().__init__(
            db_url,
            data_dir,
            env={f"FITSCOPE_{k.upper()}": str(v) for k, v in env.items()},
            args=["--workers", str(workers)],
        )
        self.workers = workers

    def start(self, timeout: float = 60.0) -> Server:
        super().start(timeout)
        return self

    def post(self, path: str, body: dict, fresh: bool = False) -> httpx.Response:
        """POST JSON; ``fresh`` uses a new connection (another worker may take it)."""
        headers = {"Connection": "close"} if fresh else {}
        r = httpx.post(f"{self.url}{path}", json=body, timeout=30, headers=headers)
        r.raise_for_status()
        return r
