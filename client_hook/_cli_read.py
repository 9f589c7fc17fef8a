"""``fitscope runs``, ``fitscope alerts RUN`` and ``fitscope export RUN``: the server, from a terminal."""

from __future__ import annotations

import argparse
import codecs
import csv
import json
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ._api import ApiClient, ApiError, error_detail
from ._progress import Progress
from ._settings import ClientSettings
from ._table import render, when
from .protocol import decode_float, encode_float, paths

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def client_for(args: argparse.Namespace) -> ApiClient:
    settings = ClientSettings.from_env(getattr(args, "url", None))
    return ApiClient(settings.url, settings.token)


def fail(msg: str, code: int = 1) -> None:
    print(f"fitscope: {msg}", file=sys.stderr)
    sys.exit(code)


@contextmanager
def api_errors() -> Iterator[None]:
    """Turn a server error into one clear line and a non-zero exit."""
    try:
        yield
    except ApiError as exc:
        hint = ""
        if exc.status == 401 or exc.status == 403:
            hint = " (set FITSCOPE_TOKEN to the server's token)"
        elif exc.status == 0:
            hint = " (is `fitscope serve` running there? set FITSCOPE_URL or --url)"
        fail(f"{exc.detail}{hint}")


# -- runs ------------------------------------------------------------------------------
def _health(r: dict) -> str:
    level = r.get("health")
    if not level:  # an older server
        return ""
    if level == "ok":
        return "-" if r.get("status") == "crashed" else "ok"
    more = f" +{r['open_alerts'] - 1}" if r.get("open_alerts", 0) > 1 else ""
    return f"{level}: {r.get('alert_rule')}{more}"


def cmd_runs(args: argparse.Namespace) -> None:
    params = {"project": args.project, "q": args.search, "tag": args.tag}
    if args.limit:
        params["limit"] = args.limit
    with api_errors():
        runs = client_for(args).get(paths.RUNS, **params)
    if args.limit:
        runs = runs[: args.limit]
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    if not runs:
        where = f" in project {args.project!r}" if args.project else ""
        if args.search or args.tag:
            print(
                f"no runs{where} match"
                + (f" {args.search!r}" if args.search else "")
                + (f" with tag {args.tag!r}" if args.tag else "")
            )
        else:
            print(f"no runs yet{where}")
        return
    rows = [
        (
            r["id"],
            r["project"],
            r["status"],
            _health(r),
            "" if r.get("last_step") is None else str(r["last_step"]),
            when(r.get("created_at")),
            r["name"] + (f"  [{', '.join(r['tags'])}]" if r.get("tags") else ""),
        )
        for r in runs
    ]
    print(render(("ID", "PROJECT", "STATUS", "HEALTH", "STEP", "CREATED", "NAME"), rows))


# -- alerts ----------------------------------------------------------------------------
def _alert_rows(alerts: list[dict], verbose: bool) -> list[tuple]:
    rows = []
    for a in alerts:
        step = str(a["step"])
        if a.get("onset_step") is not None and a["onset_step"] != a["step"]:
            step = f"{a['onset_step']}-{a['step']}"
        text = a.get("message") or ""
        if verbose and a.get("remedy"):
            text += f"  Try: {a['remedy']}"
        rows.append((a["severity"], a["rule"], step, a["status"], text))
    return rows


def sort_alerts(alerts: list[dict]) -> list[dict]:
    return sorted(
        alerts,
        key=lambda a: (
            a.get("status") != "open",
            SEVERITY_ORDER.get(a.get("severity", ""), 9),
            a.get("step", 0),
        ),
    )


def cmd_alerts(args: argparse.Namespace) -> None:
    with api_errors():
        api = client_for(args)
        run = api.find_run(args.run, newest=True)
        alerts = sort_alerts(api.get(paths.alerts(run["id"])))
    if args.json:
        print(json.dumps(alerts, indent=2))
    else:
        print(f"run {run['name']} ({run['id']}) in {run['project']}: {run['status']}")
        if not alerts:
            print("no alerts: the diagnosis has found nothing wrong with this run")
        else:
            print(
                render(
                    ("SEVERITY", "RULE", "STEP", "STATUS", "MESSAGE"),
                    _alert_rows(alerts, args.verbose),
                )
            )
            if args.verbose:
                for a in alerts:
                    ev = a.get("evidence") or {}
                    if ev:
                        print(textwrap.shorten(f"  {a['rule']} evidence: {json.dumps(ev)}", 300))
            print(f"\nsee {api.url}/runs/{run['id']}")
    if args.fail_on:
        worst = SEVERITY_ORDER[args.fail_on]
        if any(
            a.get("status") == "open" and SEVERITY_ORDER.get(a.get("severity", ""), 9) <= worst
            for a in alerts
        ):
            sys.exit(2)


# -- export ----------------------------------------------------------------------------
def _format_for(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    if args.output and args.output != "-":
        suffix = Path(args.output).suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            return "jsonl"
    return "csv"


def _cell(v: object) -> str:
    x = decode_float(v)
    e = encode_float(x)
    return e if isinstance(e, str) else repr(x)


def _series(api: ApiClient, run_id: str, keys: list[dict]) -> Iterator[tuple[dict, Any]]:
    for k in keys:
        if k["kind"] == "histogram":
            doc = api.get(paths.histograms(run_id), key=k["key"])
        else:
            doc = api.get(paths.series(run_id), key=k["key"])
        yield k, doc


def export_by_key(
    api: ApiClient,
    run_id: str,
    fmt: str,
    out: IO[str],
    keys: list[str] | None,
    wide: bool,
    bar: Progress,
) -> int:
    """Write every point of every series (or of ``keys``) from ``/keys`` + ``/series``."""
    available = api.get(paths.keys(run_id))
    if keys:
        missing = sorted(set(keys) - {k["key"] for k in available})
        if missing:
            raise ApiError(404, f"the run has no key(s) {', '.join(missing)}")
        available = [k for k in available if k["key"] in keys]
    if fmt == "csv":
        available = [k for k in available if k["kind"] == "scalar"]
    bar.set(0, sum(k["count"] for k in available))
    rows = 0
    if fmt == "csv" and wide:
        table: dict[int, dict[str, str]] = {}
        names = []
        for k, doc in _series(api, run_id, available):
            names.append(k["key"])
            for step, v in zip(doc["steps"], doc["values"], strict=True):
                table.setdefault(step, {})[k["key"]] = _cell(v)
            bar.advance(len(doc["steps"]))
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["step", *names])
        for step in sorted(table):
            w.writerow([step, *(table[step].get(n, "") for n in names)])
        return len(table)
    w = csv.writer(out, lineterminator="\n")
    if fmt == "csv":
        w.writerow(["key", "step", "value"])
    for k, doc in _series(api, run_id, available):
        if k["kind"] == "histogram":
            for h in doc["histograms"]:
                out.write(json.dumps({"key": k["key"], **h}) + "\n")
            n = len(doc["histograms"])
        else:
            for step, v in zip(doc["steps"], doc["values"], strict=True):
                if fmt == "csv":
                    w.writerow([k["key"], step, _cell(v)])
                else:
                    out.write(json.dumps({"key": k["key"], "step": step, "value": v}) + "\n")
            n = len(doc["steps"])
        rows += n
        bar.advance(n)
    return rows


def cmd_export(args: argparse.Namespace) -> None:
    fmt = _format_for(args)
    to_stdout = not args.output or args.output == "-"
    with api_errors():
        api = client_for(args)
        run = api.find_run(args.run, newest=True)
        if to_stdout:
            _export(api, run, fmt, sys.stdout, args)
            return
        # write next to the target and rename at the end: a failed export leaves no half file
        target = Path(args.output)
        part = target.with_name(target.name + ".part")
        try:
            with open(part, "w", newline="", encoding="utf-8") as out:
                _export(api, run, fmt, out, args)
            part.replace(target)
        finally:
            part.unlink(missing_ok=True)
    print(f"fitscope: wrote {args.output} ({fmt})", file=sys.stderr)


def _export(api: ApiClient, run: dict, fmt: str, out: IO[str], args: argparse.Namespace) -> None:
    label = f"exporting {run['name']}"
    bar_on = _bar_on(args)
    whole = not args.key and not args.wide
    if whole and _export_endpoint(api, run["id"], fmt, out, label, bar_on):
        return
    with Progress(None, label, unit="points", enabled=bar_on) as bar:
        export_by_key(api, run["id"], fmt, out, args.key, args.wide, bar)


def _bar_on(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "no_progress", False) else None


def _export_endpoint(
    api: ApiClient, run_id: str, fmt: str, out: IO[str], label: str, bar_on: bool | None
) -> bool:
    """Stream the server's own full-resolution export when it has one; False when it does not."""
    status, length, chunks = api.stream(f"{paths.export(run_id)}?format={fmt}")
    if status in (404, 405):
        for _ in chunks:  # drain, so the connection closes cleanly
            pass
        return False
    if not 200 <= status < 300:
        raise ApiError(status, error_detail(b"".join(chunks)))
    with Progress(length, label, unit="B", enabled=bar_on) as bar:
        # decode incrementally: a chunk may end inside a multi-byte character
        dec = codecs.getincrementaldecoder("utf-8")()
        for chunk in chunks:
            out.write(dec.decode(chunk))
            bar.advance(len(chunk))
        out.write(dec.decode(b"", final=True))
    return True


# -- parsers ---------------------------------------------------------------------------
def add_client_arguments(p: argparse.ArgumentParser, progress: bool = False) -> None:
    """``--url`` (and ``--no-progress``), which every command that talks to a server takes."""
    p.add_argument(
        "--url",
        default=None,
        help="server address (default: FITSCOPE_URL, else http://127.0.0.1:7007)",
    )
    if progress:
        p.add_argument(
            "--no-progress",
            action="store_true",
            help="no progress bar (it is only drawn on a terminal anyway)",
        )


def add_runs_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "List the server's runs, newest first, with the health of each (its worst "
        "open alert) and its last step."
    )
    p.add_argument("--project", default=None, help="only this project")
    p.add_argument(
        "-q", "--search", default=None, help="only runs whose name, project, tag or id has this"
    )
    p.add_argument("--tag", default=None, help="only runs with this tag")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    p.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    add_client_arguments(p)
    p.set_defaults(fn=cmd_runs)


def add_alerts_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "The diagnoses raised for a run, open ones first, most severe first. "
        "RUN is a run id, a unique id prefix (4+ characters) or a unique run name."
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix or name")
    p.add_argument("-v", "--verbose", action="store_true", help="also show remedies and evidence")
    p.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    p.add_argument(
        "--fail-on",
        choices=["warning", "critical"],
        default=None,
        help="exit with status 2 if an open alert is at least this severe (for scripts and CI)",
    )
    add_client_arguments(p)
    p.set_defaults(fn=cmd_alerts)


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write a run's series at full resolution. CSV has the columns "
        "key,step,value,time (time: the step's Unix time by the training clock, when the run "
        "recorded time/wall; with --key: key,step,value; with --wide: step and one column per "
        "key); JSON Lines has one object per point and one "
        "per histogram. Non-finite values are written NaN, Infinity, -Infinity."
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix or name")
    p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    p.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default=None,
        help="default: from the file name (.jsonl/.ndjson), else csv",
    )
    p.add_argument("--key", action="append", help="only this key (repeatable)")
    p.add_argument("--wide", action="store_true", help="CSV with one column per key")
    add_client_arguments(p, progress=True)
    p.set_defaults(fn=cmd_export)
