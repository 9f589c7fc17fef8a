"""Helpers for the hook's tests: the real server app behind an injected transport.

``AppServer`` runs the real FastAPI app on a fresh SQLite file in-process; its
``transport`` (a ``fitscope.testing.MockTransport``) hands the hook's requests to that app
without a socket, so the whole path hook -> decode -> store -> read API is exercised quickly.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import torch

import fitscope
from fitscope._settings import ClientSettings
from fitscope.testing import MockTransport, Request, Response


class AppServer:
    def __init__(self, client: Any, tmp_path: Path) -> None:
        self.client = client
        self.tmp_path = tmp_path
        self.transport = MockTransport(self._handle)

    def _handle(self, request: Request) -> Response:
        r = self.client.request(
            request.method, request.path, content=request.body, headers=request.headers
        )
        return Response(r.status_code, r.content)

    def settings(self) -> ClientSettings:
        return ClientSettings(url="http://fitscope.test", dir=self.tmp_path / "client")

    def watch(self, *args: Any, **kwargs: Any) -> fitscope.Run:
        kwargs.setdefault("transport", self.transport)
        kwargs.setdefault("settings", self.settings())
        kwargs.setdefault("interval", 0.05)
        return fitscope.watch(*args, **kwargs)

    def init(self, **kwargs: Any) -> fitscope.Run:
        kwargs.setdefault("transport", self.transport)
        kwargs.setdefault("settings", self.settings())
        kwargs.setdefault("interval", 0.05)
        return fitscope.init(**kwargs)

    def api(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def counts(self, run_id: str) -> dict[str, int]:
        return {k["key"]: k["count"] for k in self.api(f"/api/v1/runs/{run_id}/keys")}

    def series(self, run_id: str, key: str) -> tuple[list[int], list[float]]:
        s = self.api(f"/api/v1/runs/{run_id}/series", key=key)
        return s["steps"], [_num(v) for v in s["values"]]

    def histograms(self, run_id: str, key: str) -> list[dict]:
        return self.api(f"/api/v1/runs/{run_id}/histograms", key=key)["histograms"]

    def config(self, run_id: str) -> dict:
        return self.api(f"/api/v1/runs/{run_id}")["config"]


def _num(v: Any) -> float:
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


def classification_data(
    n: int = 256, features: int = 10, classes: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return x, y.clamp(max=classes - 1)


def mlp(features: int = 10, classes: int = 3, hidden: int = 16) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)
    )


def close(a: float, b: float, rel: float = 1e-5, abs_: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def run_script(
    code: str, tmp_path: Path, url: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess:
    """Run a training script in a fresh interpreter, as a user would."""
    script = tmp_path / f"train_{uuid.uuid4().hex[:6]}.py"
    script.write_text(code)
    # a loaded CI machine can be slow: let finish() wait rather than spool
    full_env = dict(
        os.environ,
        FITSCOPE_URL=url,
        FITSCOPE_DIR=str(tmp_path / "client"),
        FITSCOPE_FINISH_TIMEOUT="60",
    )
    full_env.update(env)
    return subprocess.run(
        [sys.executable, str(script)], env=full_env, capture_output=True, text=True, timeout=timeout
    )
