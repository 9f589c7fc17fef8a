"""Histories kept as CSV, JSON Lines or JSON: one row per logging step.

Two shapes are understood:

- **wide**: a step column (``step``, ``global_step``, ``iteration``, ``iter``,
  ``_step``, ``trainer/global_step``) and one column per metric, empty where a
  metric was not logged (PyTorch Lightning's ``CSVLogger`` writes this).
  Without a step column, rows are numbered from 1.  Nested JSON objects
  flatten with ``/`` (``{"val": {"loss": 1}}`` is ``val/loss``).
- **long**: one point per row with ``key``, ``step`` and ``value`` (what
  ``fitscope export`` writes); JSON Lines rows with ``edges`` and ``counts`` are
  histograms.

Values may be numbers or ``nan``, ``inf``, ``-inf`` (also ``NaN``, ``Infinity``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..protocol import decode_float
from ._model import BadImport, ImportedRun, is_noise

STEP_COLUMNS = ("step", "global_step", "iteration", "iter", "_step", "trainer/global_step")
LONG_COLUMNS = {"key", "step", "value"}


def _number(x: Any) -> float | None:
    """A cell as a float; ``None`` when empty; ``ValueError`` when not a number."""
    if x is None or isinstance(x, bool):
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        s = x.strip()
        if not s:
            return None
        try:
            return decode_float(s)
        except ValueError:
            return float(s)  # also "nan", "inf", "1e-3"; raises ValueError otherwise
    raise ValueError(f"not a number: {type(x).__name__}")


def _step(x: Any, where: str) -> int:
    try:
        v = _number(x)
    except ValueError:
        v = None
    if v is None or not math.isfinite(v) or v != int(v) or v < 0:
        raise BadImport(f"{where}: step must be a whole number >= 0, got {x!r}")
    return int(v)


def _step_column(columns: Iterable[str]) -> str | None:
    lowered = {c.strip().lower(): c for c in columns}
    for name in STEP_COLUMNS:
        if name in lowered:
            return lowered[name]
    return None


def flatten(doc: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def read_rows(rows: Iterable[dict[str, Any]], run: ImportedRun) -> ImportedRun:
    """Fill ``run`` from wide or long rows (dicts), whichever they are."""
    not_numbers: dict[str, int] = {}
    step_col: str | None = None
    long: bool | None = None
    for i, raw in enumerate(rows, start=1):
        row = flatten(raw)
        where = f"{run.source} row {i}"
        if long is None:
            long = LONG_COLUMNS <= {c.strip().lower() for c in row}
            step_col = _step_column(row)
            if not long and step_col is None:
                run.notes.append("no step column found: rows are numbered from 1")
        if long:
            _long_row(row, run, where)
            continue
        step = (
            _step(row[step_col], where) if step_col and row.get(step_col) not in (None, "") else i
        )
        for col, cell in row.items():
            if col == step_col or is_noise(col):
                continue
            try:
                value = _number(cell)
            except ValueError:
                not_numbers[col] = not_numbers.get(col, 0) + 1
                continue
            if value is not None:
                run.add(col.strip(), step, value)
    for col in not_numbers:
        run.scalars.pop(col.strip(), None)
    if not_numbers:
        run.notes.append(f"left out columns that are not numbers: {', '.join(sorted(not_numbers))}")
    return run


def _long_row(row: dict[str, Any], run: ImportedRun, where: str) -> None:
    cols = {c.strip().lower(): v for c, v in row.items()}
    key = str(cols.get("key") or "").strip()
    if not key:
        raise BadImport(f"{where}: empty key")
    step = _step(cols.get("step"), where)
    if "counts" in cols and "edges" in cols:
        hist = {"key": key, "step": step}
        try:
            for name in ("edges", "counts", "correct", "conf_sum"):
                if cols.get(name) is not None:
                    hist[name] = [_number(x) for x in cols[name]]
        except (ValueError, TypeError) as exc:
            raise BadImport(f"{where}: bad histogram: {exc}") from None
        run.histograms.append(hist)
        return
    try:
        value = _number(cols.get("value"))
    except ValueError:
        raise BadImport(f"{where}: value is not a number: {cols.get('value')!r}") from None
    if value is not None:
        run.add(key, step, value)


def read_csv(path: Path, name: str) -> ImportedRun:
    run = ImportedRun(name=name, source=str(path), format="csv")
    with open(path, newline="", encoding="utf-8-sig") as f:
        sample = f.read(4096)
        f.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(f, dialect=dialect)
        if not reader.fieldnames:
            raise BadImport(f"{path}: empty CSV file (no header row)")
        return read_rows(reader, run)


def _json_lines(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise BadImport(f"{path} line {n}: not JSON ({exc})") from None
            if not isinstance(doc, dict):
                raise BadImport(f"{path} line {n}: expected a JSON object per line")
            yield doc


def read_jsonl(path: Path, name: str) -> ImportedRun:
    run = ImportedRun(name=name, source=str(path), format="jsonl")
    return read_rows(_without_export_records(_json_lines(path), run), run)


def _without_export_records(docs: Iterator[dict], run: ImportedRun) -> Iterator[dict]:
    """Read fitscope's own run export too: its ``run`` line names the run and its ``alert``
    lines are the server's diagnosis (made again on import), not data."""
    for doc in docs:
        kind = doc.pop("type", None)
        if kind == "run":
            if isinstance(doc.get("name"), str) and doc["name"]:
                run.name = doc["name"]
            continue
        if kind == "alert":
            continue
        yield doc


def read_json_rows(doc: object, path: Path, name: str) -> ImportedRun:
    """A JSON file holding a list of row objects."""
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise BadImport(f"{path}: expected a list of objects, one per logged step")
    return read_rows(doc, ImportedRun(name=name, source=str(path), format="json"))


def sniff_text(path: Path) -> str:
    """``"jsonl"`` or ``"csv"`` by the first non-blank character of a file."""
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        head = io.StringIO(f.read(2048)).read().lstrip()
    return "jsonl" if head.startswith("{") else "csv"
