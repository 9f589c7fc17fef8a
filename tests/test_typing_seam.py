"""mypy sees the hook's types from the server, though neither folder is named like its package.

``client_hook/`` is imported as ``fitscope`` and ``server/`` as ``fitscope_server``; the editable
install's import hook is invisible to mypy, which typed every ``fitscope`` name as ``Any`` inside
the server until ``.typecheck/`` (``mypy_path`` in pyproject.toml) named the folders. Run from the
repository, so that mypy's cache there (warm after ``./dev.sh test``'s mypy) makes it quick.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())

SNIPPET = """
import fitscope_server
import fitscope.protocol
reveal_type(fitscope.protocol.decode_float)
"""


def test_mypy_resolves_the_hook_inside_the_server():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(REPO / "pyproject.toml"),
            "-c",
            SNIPPET,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    [revealed] = [line for line in r.stdout.splitlines() if "Revealed type" in line]
    assert "Any" not in revealed and '"def (x: object) -> float"' in revealed, revealed
