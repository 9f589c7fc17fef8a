"""fitscope's web UI: static HTML, CSS and JavaScript, served by the server."""

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
