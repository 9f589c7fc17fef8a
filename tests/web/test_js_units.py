"""The dashboard's pure JavaScript (series merging, decoding, the x axis, alerts, the layer
heatmap, metric groups, calibration, config tables) under ``node --test``: the ``*.test.mjs``
files beside this one.

The modules import ``protocol.js``, which the server generates from ``fitscope.protocol``
instead of keeping a copy on disk; here it is written into a copy of ``web/static`` that the
node tests load from (``FITSCOPE_WEB_STATIC``, read by ``static.mjs``). Skips without Node.js,
except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fitscope_server.web import PROTOCOL_MODULE, protocol_module
from fitscope_web import STATIC_DIR
from tests.support.fixtures import need

HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.node


def test_js_units(tmp_path: Path) -> None:
    node = shutil.which("node")
    need(node is not None, "Node.js is not installed (apt-get install -y nodejs)")
    assert node is not None
    static = tmp_path / "static"
    shutil.copytree(STATIC_DIR, static, ignore=shutil.ignore_patterns("*.html", "__pycache__"))
    (static / PROTOCOL_MODULE).write_text(protocol_module())
    files = sorted(str(p) for p in HERE.glob("*.test.mjs"))
    assert files, "no *.test.mjs files found"
    r = subprocess.run(
        [node, "--test", *files],
        env={**os.environ, "FITSCOPE_WEB_STATIC": str(static)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0:
        pytest.fail(
            f"node --test failed (exit {r.returncode}):\n{r.stdout[-20000:]}\n{r.stderr[-4000:]}"
        )
