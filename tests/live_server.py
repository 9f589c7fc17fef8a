"""A real ``fitscope serve`` subprocess with extra options (workers, settings by env)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import ServerProcess


class Server(ServerProcess):
    def __init__(self, db_url: str, data_dir: Path, workers: int = 1, **env: str) -> None:
        super().__init__(db_url, data_dir)
        self.workers = workers
        self.env = {f"FITSCOPE_{k.upper()}": str(v) for k, v in env.items()}

    def start(self, timeout: float = 60.0) -> Server:
        env = dict(os.environ, FITSCOPE_DIR=str(self.dir), **self.env)
        cmd = [sys.executable, "-m", "fitscope.cli", "serve", "--port", str(self.port)]
        cmd += ["--db", self.db_url, "--workers", str(self.workers)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")

    def post(self, path: str, body: dict, fresh: bool = False) -> httpx.Response:
        """POST JSON; ``fresh`` uses a new connection (another worker may take it)."""
        headers = {"Connection": "close"} if fresh else {}
        r = httpx.post(f"{self.url}{path}", json=body, timeout=30, headers=headers)
        r.raise_for_status()
        return r
