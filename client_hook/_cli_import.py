"""``fitscope import PATH``: runs logged without fitscope, diagnosed like live ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._api import ApiError
from ._cli_read import add_client_arguments, api_errors, client_for, fail, sort_alerts
from ._progress import Progress
from ._table import render
from .importers import BadImport, ImportedRun, load, upload


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        old, sep, new = p.partition("=")
        if not sep or not old.strip() or not new.strip():
            fail(f"--map wants OLD=NEW, got {p!r}", 2)
        out[old.strip()] = new.strip()
    return out


def _summary(run: ImportedRun) -> str:
    rows = []
    for key in sorted(run.scalars):
        steps = run.scalars[key]
        rows.append((key, len(steps), min(steps), max(steps)))
    hist_keys = sorted({h["key"] for h in run.histograms})
    for key in hist_keys:
        hsteps = [h["step"] for h in run.histograms if h["key"] == key]
        rows.append((f"{key} (histogram)", len(hsteps), min(hsteps), max(hsteps)))
    return render(("POINTS", "FIRST", "LAST", "KEY"), [(n, a, b, k) for k, n, a, b in rows])


def cmd_import(args: argparse.Namespace) -> None:
    mapping = _mapping(args.map or [])
    runs: list[ImportedRun] = []
    for raw in args.paths:
        try:
            found = load(Path(raw), args.format, name=args.name)
        except BadImport as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot read {raw}: {exc}")
        for run in found:
            run.rename(mapping, standard=not args.keep_names)
            if not run.n_points:
                print(f"fitscope: {run.source}: no numeric series found; skipped", file=sys.stderr)
                continue
            runs.append(run)
    if not runs:
        fail("nothing to import")
    total = sum(r.n_points for r in runs)
    if args.dry_run:
        for run in runs:
            print(f"{run.name}  ({run.format}, {run.n_points:,} points from {run.source})")
            print(_summary(run))
            for note in run.notes:
                print(f"note: {note}")
            print()
        print(f"dry run: {len(runs)} run(s), {total:,} points; nothing sent")
        return
    with api_errors():
        api = client_for(args)
        with Progress(
            total, "importing", unit="points", enabled=False if args.no_progress else None
        ) as bar:
            results = []
            for run in runs:
                bar.label = f"importing {run.name}"
                try:
                    results.append((run, upload(api, run, args.project, progress=bar.advance)))
                except ApiError as exc:
                    bar.close()
                    raise ApiError(exc.status, f"{run.source}: {exc.detail}") from None
    for run, res in results:
        print(f"imported {run.name}: {res.points:,} points -> {api.url}/runs/{res.run_id}")
        if res.duplicate_batches and not res.stored:
            print("  (already imported before: nothing new stored)")
        for note in run.notes:
            print(f"  note: {note}")
        open_alerts = [a for a in sort_alerts(res.alerts) if a.get("status") == "open"]
        if open_alerts:
            rules = ", ".join(f"{a['rule']} ({a['severity']})" for a in open_alerts[:6])
            print(f"  diagnosis: {rules}; details: fitscope alerts {res.run_id}")
        else:
            print("  diagnosis: no alerts")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``fitscope import``'s description and arguments."""
    p.description = (
        "Import runs logged by other tools, so the dashboard and the diagnosis cover "
        "them too. PATH is a TensorBoard event file or a folder of them (each folder with event "
        "files is one run), a CSV / JSON Lines / JSON history (a step column and one column per "
        "metric, or key,step,value rows as `fitscope export` writes), or a Hugging Face "
        "trainer_state.json (or the checkpoint folder holding it). Common names become fitscope's "
        "keys: loss -> train/loss, val_loss or eval_loss -> val/loss, eval_accuracy -> val/accuracy, "
        "learning_rate -> lr/0, grad_norm -> grad_norm/total. Importing the same data again "
        "stores nothing twice."
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="file or folder to import")
    p.add_argument(
        "--project", default="imported", help="project of the new runs (default imported)"
    )
    p.add_argument("--name", default=None, help="run name (default: the file or folder name)")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", "tensorboard", "csv", "jsonl", "json", "hf"],
        help="default: judged from the file name",
    )
    p.add_argument(
        "--map",
        action="append",
        metavar="OLD=NEW",
        help="rename a series (repeatable), e.g. --map acc=val/accuracy",
    )
    p.add_argument(
        "--keep-names", action="store_true", help="keep the names as logged (no standard keys)"
    )
    p.add_argument(
        "--dry-run", action="store_true", help="show what would be imported; send nothing"
    )
    add_client_arguments(p, progress=True)
    p.set_defaults(fn=cmd_import)
