"""Sending an imported run through the same protocol as the hook.

The run id and every batch id are derived from the run's content, so importing
the same file again (or resuming an interrupted import) stores nothing twice.
Points go in step order, all keys of a step range together, as they would
have arrived from a live run, so the diagnosis sees the run as it unfolded.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .._api import ApiClient
from .._messages import Message
from ..protocol import batch_body, create_run_body, encode_float, finish_body, paths
from ._model import ImportedRun

BATCH_POINTS = 20_000  # ~0.5 MB of JSON before gzip: well under the server's body limit


@dataclass
class UploadResult:
    run_id: str
    points: int
    stored: int = 0
    duplicate_batches: int = 0
    alerts: list[dict] = field(default_factory=list)


def import_run_id(run: ImportedRun, project: str) -> str:
    """A stable id for ``run`` in ``project``: same content, same id."""
    h = hashlib.sha256()
    h.update(f"{project}\0{run.name}\0{run.format}\0".encode())
    for key in sorted(run.scalars):
        points = run.scalars[key]
        steps = sorted(points)
        h.update(key.encode() + b"\0")
        h.update(struct.pack(f"<{len(steps)}q", *steps))
        h.update(struct.pack(f"<{len(steps)}d", *(points[s] for s in steps)))
    for hist in run.histograms:
        h.update(repr(sorted(hist.items())).encode())
    return "imp-" + h.hexdigest()[:28]


def _batches(run: ImportedRun, size: int) -> list[tuple[dict, list[dict], int]]:
    """``(scalars, histograms, n_points)`` per batch, in step order."""
    keys = sorted(run.scalars)
    events: list[tuple[int, int, float]] = []
    for ki, key in enumerate(keys):
        events.extend((step, ki, v) for step, v in run.scalars[key].items())
    events.sort()
    hists = sorted(run.histograms, key=lambda h: h["step"])
    out: list[tuple[dict, list[dict], int]] = []
    hi = 0
    for start in range(0, max(len(events), 1), size):
        part = events[start : start + size]
        last = part[-1][0] if part and start + size < len(events) else None
        scalars: dict[str, dict[str, list]] = {}
        for step, ki, v in part:
            s = scalars.setdefault(keys[ki], {"steps": [], "values": []})
            s["steps"].append(step)
            s["values"].append(encode_float(v))
        batch_hists = []
        while hi < len(hists) and (last is None or hists[hi]["step"] <= last):
            h = hists[hi]
            batch_hists.append(
                {
                    k: ([encode_float(x) for x in v] if isinstance(v, list) else v)
                    for k, v in h.items()
                }
            )
            hi += 1
        out.append((scalars, batch_hists, len(part) + len(batch_hists)))
    return out


def upload(
    client: ApiClient,
    run: ImportedRun,
    project: str = "imported",
    *,
    progress: Callable[[int], None] | None = None,
    batch_points: int = BATCH_POINTS,
) -> UploadResult:
    """Create the run on the server, send its points, mark it finished.

    ``progress(n)`` is called after each batch with the points it carried.
    Raises :class:`fitscope._api.ApiError` when the server refuses or cannot be reached.
    """
    run_id = import_run_id(run, project)
    config = dict(run.config)
    config["import"] = {"format": run.format, "source": run.source}
    client.send(
        Message("POST", paths.RUNS, create_run_body(run_id, project, run.name[:200], config))
    )
    result = UploadResult(run_id=run_id, points=run.n_points)
    for i, (scalars, hists, n) in enumerate(_batches(run, batch_points)):
        body = batch_body(f"{run_id}-{i}", scalars, hists)
        reply = client.send(Message("POST", paths.batches(run_id), body)) or {}
        result.stored += int(reply.get("stored", 0))
        result.duplicate_batches += bool(reply.get("duplicate"))
        if progress:
            progress(n)
    client.send(Message("POST", paths.finish(run_id), finish_body("finished")))
    result.alerts = client.get(paths.alerts(run_id))
    return result
