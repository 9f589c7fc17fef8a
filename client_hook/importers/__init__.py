"""``fitscope import``: runs logged without fitscope, sent to a server like live ones.

Readers for TensorBoard event files, CSV / JSON Lines / JSON histories and the
Hugging Face Trainer's ``trainer_state.json`` turn a file (or a folder) into
:class:`ImportedRun` objects; :func:`upload` sends one through the ordinary
ingest protocol (create the run, batches in step order, finish), so the
diagnosis runs on it as on a live run.  Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path

from ._model import ALIASES, BadImport, ImportedRun, display_name, standard_key
from .hf_state import read_trainer_state
from .tabular import read_csv, read_json_rows, read_jsonl, sniff_text
from .tensorboard import event_dirs, read_run
from .upload import UploadResult, import_run_id, upload

__all__ = [
    "ALIASES",
    "FORMATS",
    "BadImport",
    "ImportedRun",
    "UploadResult",
    "import_run_id",
    "load",
    "standard_key",
    "upload",
]

FORMATS = ("auto", "tensorboard", "csv", "jsonl", "json", "hf")


def detect(path: Path) -> str:
    """The format of ``path`` judged by its name (and, for text files, its first character)."""
    if path.is_dir():
        if (path / "trainer_state.json").is_file():
            return "hf"
        if event_dirs(path):
            return "tensorboard"
        raise BadImport(
            f"{path}: no TensorBoard event files (events.out.tfevents.*) or trainer_state.json in it"
        )
    if not path.is_file():
        raise BadImport(f"{path}: no such file or folder")
    name = path.name.lower()
    if "tfevents" in name:
        return "tensorboard"
    if name == "trainer_state.json":
        return "hf"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return sniff_text(path)


def load(path: Path, fmt: str = "auto", name: str | None = None) -> list[ImportedRun]:
    """Read ``path`` into runs: one per file, or one per folder of TensorBoard event files."""
    path = Path(path)
    if fmt not in FORMATS:
        raise BadImport(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect(path)
    base = name or display_name(path)
    if fmt == "tensorboard":
        if path.is_file():  # one event file: the run is its folder
            base = name or path.resolve().parent.name
        dirs = event_dirs(path)
        if not dirs:
            raise BadImport(f"{path}: no TensorBoard event files found")
        runs = []
        for folder, files in dirs.items():
            root = path if path.is_dir() else path.parent
            rel = folder.relative_to(root).as_posix() if folder != root else ""
            runs.append(read_run(files, f"{base}/{rel}" if rel else base))
        return runs
    if path.is_dir():
        path = path / "trainer_state.json"
    if fmt == "csv":
        return [read_csv(path, base)]
    if fmt == "jsonl":
        return [read_jsonl(path, base)]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BadImport(f"{path}: cannot read JSON ({exc})") from None
    if fmt == "hf" or (isinstance(doc, dict) and "log_history" in doc):
        if not isinstance(doc, dict):
            raise BadImport(f"{path}: a trainer_state.json is a JSON object")
        if name is None and path.name == "trainer_state.json":
            base = path.resolve().parent.name
        return [read_trainer_state(doc, path, base)]
    return [read_json_rows(doc, path, base)]
