"""The ``fitscope`` command: ``serve``, ``db``, ``runs``, ``alerts``, ``export``, ``import``,
``sync``, ``demo``.  Everything but ``serve`` and ``db`` is a plain HTTP client that
needs only the standard library."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from . import __version__
from ._progress import Progress
from ._settings import ClientSettings


def _server_missing() -> None:
    sys.exit(
        "fitscope: the server is not installed here; install it with: pip install 'fitscope[server]'"
    )


def cmd_serve(args: argparse.Namespace) -> None:
    try:
        import uvicorn
        from sqlalchemy.engine import make_url

        from fitscope_server import Settings, create_app, migrate
        from fitscope_server.db import make_engine
    except ImportError:
        _server_missing()
    overrides = {"db_url": args.db} if args.db else {}
    settings = Settings(**overrides)
    check_exposure(args.host, settings.token, args.insecure_no_auth)
    url = f"http://{args.host}:{args.port}"
    if args.workers > 1:
        # each worker builds its own app from FITSCOPE_* variables; the schema is migrated
        # (or checked) once here, so that workers do not race to migrate it
        engine = make_engine(settings.database_url())
        try:
            (migrate.check_at_head if args.no_upgrade else migrate.upgrade)(engine)
        finally:
            engine.dispose()
        os.environ["FITSCOPE_DB_URL"] = settings.database_url()
        os.environ["FITSCOPE_UPGRADE_ON_START"] = "false"
        target: object = "fitscope_server.app:app_from_env"
    else:
        target = create_app(settings, upgrade=not args.no_upgrade)
    demo = None
    if args.demo:
        demo = subprocess.Popen(
            [sys.executable, "-m", "fitscope.demo", "--url", url, "--parent", str(os.getpid())]
        )
    shown = make_url(settings.database_url()).render_as_string(hide_password=True)
    print(f"fitscope: dashboard at {url}/  (database: {shown})", flush=True)
    try:
        uvicorn.run(
            target,  # type: ignore[arg-type]
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            workers=args.workers if args.workers > 1 else None,
            factory=args.workers > 1,
            # live streams never end by themselves: give them this long at shutdown
            timeout_graceful_shutdown=2,
        )
    finally:
        if demo is not None and demo.poll() is None:
            demo.terminate()


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    """Refuse to serve beyond this machine without a token, unless told so loudly."""
    if is_loopback(host) or token:
        return
    if not insecure:
        sys.exit(
            f"fitscope: refusing to serve on {host} without a token: anyone who can reach it "
            "could read and write your runs. Set FITSCOPE_TOKEN (clients send the same value), "
            "or pass --insecure-no-auth if this network is trusted."
        )
    print(
        f"fitscope: WARNING: serving on {host} with NO AUTHENTICATION (--insecure-no-auth): "
        "anyone who can reach this address can read, write and delete runs.",
        file=sys.stderr,
        flush=True,
    )


def cmd_db(args: argparse.Namespace) -> None:
    try:
        from fitscope_server import Settings, migrate
        from fitscope_server.db import make_engine
    except ImportError:
        _server_missing()
    settings = Settings(**({"db_url": args.db} if args.db else {}))
    engine = make_engine(settings.database_url())
    if args.action == "upgrade":
        migrate.upgrade(engine, args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(engine, args.revision or "-1")
    print(
        f"fitscope: schema at {migrate.current_revision(engine) or 'none'} "
        f"(newest: {migrate.head_revision()})"
    )
    engine.dispose()


def cmd_sync(args: argparse.Namespace) -> None:
    """Send what the hook spooled to disk while the server was unreachable."""
    from ._sender import sync_spool
    from ._spool import Spool
    from ._transport import HTTPTransport

    settings = ClientSettings.from_env(args.url)
    spool = Spool(settings.spool_dir)
    total = spool.count()
    if not total:
        print(f"fitscope: nothing to sync (spool {spool.root} is empty)")
        return
    runs = spool.runs()
    if args.redirect and not args.url:
        sys.exit("fitscope: --redirect needs --url (the server to send everything to)")
    where = "the server each was meant for"
    if args.url:
        where = args.url if args.redirect else f"{args.url} (only the messages meant for it)"
    print(f"fitscope: sending {total} message(s) of {len(runs)} run(s) to {where}")
    with Progress(
        total, "syncing", unit="messages", enabled=False if args.no_progress else None
    ) as bar:
        report = sync_spool(
            spool,
            HTTPTransport,
            settings.token,
            lambda done, _of: bar.set(done),
            only=args.url,
            redirect=args.redirect,
            default_url=settings.url,
        )
    for url, why in report.unreachable.items():
        print(f"fitscope: {url}: {why}", file=sys.stderr)
    for url, n in report.skipped.items():
        print(
            f"fitscope: {n} message(s) meant for {url} left (send them with "
            f"`fitscope sync --url {url}`)",
            file=sys.stderr,
        )
    print(
        f"fitscope: {report.sent} sent, {report.rejected} rejected, {report.left} left in {spool.root}"
    )
    if report.rejected:
        print(
            f"fitscope: rejected messages are set aside in {spool.root / 'rejected'} "
            "(each with a .reason.txt)",
            file=sys.stderr,
        )
    if report.left:
        sys.exit(1)


def cmd_demo(args: argparse.Namespace) -> None:
    """Train a small MLP on generated data, watched by fitscope."""
    from . import demo

    demo.run_demo(args)


_URL_HELP = "server address (default: FITSCOPE_URL, else http://127.0.0.1:7007)"
_EPILOG = """\
examples:
  fitscope serve                          dashboard on http://127.0.0.1:7007 (SQLite)
  fitscope runs                           list the server's runs
  fitscope alerts demo-mlp                what the diagnosis found in a run (the newest
                                          of that name; or give its id, e.g. 673e)
  fitscope export demo-mlp -o run.csv     every point of a run, full resolution
  fitscope runs -q demo                   runs whose name, project, tag or id has "demo"
  fitscope rename 673e demo-lr3e-3        rename a run (by id prefix or unique name)
  fitscope delete 673e                    delete a run and its data (asks first)
  fitscope import runs/ lightning_logs/   TensorBoard, CSV/JSONL or trainer_state.json
  fitscope sync                           send data spooled while its server was down

A server that requires a token gets it from FITSCOPE_TOKEN.
"""


def _client_args(p: argparse.ArgumentParser, progress: bool = False) -> None:
    p.add_argument("--url", default=None, help=_URL_HELP)
    if progress:
        p.add_argument(
            "--no-progress",
            action="store_true",
            help="no progress bar (it is only drawn on a terminal anyway)",
        )


def build_parser() -> argparse.ArgumentParser:
    from . import demo
    from ._cli_import import cmd_import
    from ._cli_read import cmd_alerts, cmd_export, cmd_runs

    p = argparse.ArgumentParser(
        prog="fitscope",
        description="Training diagnostics for PyTorch: the dashboard server and its terminal client.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fitscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "serve",
        help="start the dashboard and API",
        description="Start the dashboard and API (the schema is upgraded first).",
    )
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1); any other address requires FITSCOPE_TOKEN",
    )
    s.add_argument("--port", type=int, default=7007, help="port (default 7007)")
    s.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL (default: FITSCOPE_DB_URL, else "
        "an SQLite file fitscope.db in FITSCOPE_DIR, ~/.fitscope by default)",
    )
    s.add_argument(
        "--demo", action="store_true", help="also start a small demo training run streaming into it"
    )
    s.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow serving on a non-loopback address without FITSCOPE_TOKEN (dangerous)",
    )
    s.add_argument(
        "--no-upgrade", action="store_true", help="refuse to start unless the schema is current"
    )
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); use several with PostgreSQL, where the live "
        "streams of every worker see every change",
    )
    s.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    s.set_defaults(fn=cmd_serve)

    d = sub.add_parser(
        "db",
        help="manage the database schema",
        description="Manage the database schema through fitscope's Alembic history.",
    )
    d.add_argument("action", choices=["upgrade", "downgrade", "current"])
    d.add_argument("revision", nargs="?", help="target revision (upgrade: head; downgrade: -1)")
    d.add_argument("--db", default=None, help="SQLAlchemy URL (default as for serve)")
    d.set_defaults(fn=cmd_db)

    r = sub.add_parser(
        "runs",
        help="list the server's runs",
        description="List the server's runs, newest first, with the health of each (its worst "
        "open alert) and its last step.",
    )
    r.add_argument("--project", default=None, help="only this project")
    r.add_argument(
        "-q", "--search", default=None, help="only runs whose name, project, tag or id has this"
    )
    r.add_argument("--tag", default=None, help="only runs with this tag")
    r.add_argument("--limit", type=int, default=0, help="at most this many (default: all)")
    r.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    _client_args(r)
    r.set_defaults(fn=cmd_runs)

    a = sub.add_parser(
        "alerts",
        help="what the diagnosis found in a run",
        description="The diagnoses raised for a run, open ones first, most severe first. "
        "RUN is a run id, a unique id prefix (4+ characters) or a unique run name.",
    )
    a.add_argument("run", metavar="RUN", help="run id, id prefix or name")
    a.add_argument("-v", "--verbose", action="store_true", help="also show remedies and evidence")
    a.add_argument("--json", action="store_true", help="the API's JSON instead of a table")
    a.add_argument(
        "--fail-on",
        choices=["warning", "critical"],
        default=None,
        help="exit with status 2 if an open alert is at least this severe (for scripts and CI)",
    )
    _client_args(a)
    a.set_defaults(fn=cmd_alerts)

    e = sub.add_parser(
        "export",
        help="write every point of a run as CSV or JSON Lines",
        description="Write a run's series at full resolution. CSV has the columns "
        "key,step,value,time (time: the step's Unix time by the training clock, when the run "
        "recorded time/wall; with --key: key,step,value; with --wide: step and one column per "
        "key); JSON Lines has one object per point and one "
        "per histogram. Non-finite values are written NaN, Infinity, -Infinity.",
    )
    e.add_argument("run", metavar="RUN", help="run id, id prefix or name")
    e.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    e.add_argument(
        "--format",
        choices=["csv", "jsonl"],
        default=None,
        help="default: from the file name (.jsonl/.ndjson), else csv",
    )
    e.add_argument("--key", action="append", help="only this key (repeatable)")
    e.add_argument("--wide", action="store_true", help="CSV with one column per key")
    _client_args(e, progress=True)
    e.set_defaults(fn=cmd_export)

    i = sub.add_parser(
        "import",
        help="import runs logged without fitscope (TensorBoard, CSV, JSONL, trainer_state.json)",
        description="Import runs logged by other tools, so the dashboard and the diagnosis cover "
        "them too. PATH is a TensorBoard event file or a folder of them (each folder with event "
        "files is one run), a CSV / JSON Lines / JSON history (a step column and one column per "
        "metric, or key,step,value rows as `fitscope export` writes), or a Hugging Face "
        "trainer_state.json (or the checkpoint folder holding it). Common names become fitscope's "
        "keys: loss -> train/loss, val_loss or eval_loss -> val/loss, eval_accuracy -> val/accuracy, "
        "learning_rate -> lr/0, grad_norm -> grad_norm/total. Importing the same data again "
        "stores nothing twice.",
    )
    i.add_argument("paths", nargs="+", metavar="PATH", help="file or folder to import")
    i.add_argument(
        "--project", default="imported", help="project of the new runs (default imported)"
    )
    i.add_argument("--name", default=None, help="run name (default: the file or folder name)")
    i.add_argument(
        "--format",
        default="auto",
        choices=["auto", "tensorboard", "csv", "jsonl", "json", "hf"],
        help="default: judged from the file name",
    )
    i.add_argument(
        "--map",
        action="append",
        metavar="OLD=NEW",
        help="rename a series (repeatable), e.g. --map acc=val/accuracy",
    )
    i.add_argument(
        "--keep-names", action="store_true", help="keep the names as logged (no standard keys)"
    )
    i.add_argument(
        "--dry-run", action="store_true", help="show what would be imported; send nothing"
    )
    _client_args(i, progress=True)
    i.set_defaults(fn=cmd_import)

    y = sub.add_parser(
        "sync",
        help="send spooled data to the server",
        description="Send the data the hook kept on disk (in FITSCOPE_DIR/spool) while the "
        "server was unreachable. Each message goes to the server its run was sending to "
        "(recorded in the spool), with FITSCOPE_TOKEN; with --url, only the messages meant for "
        "that server are sent and the others are left. Safe to run twice, or twice at once: "
        "the server stores each message once and a run is delivered by one process at a time. "
        "A message the server refuses for good is set aside in FITSCOPE_DIR/spool/rejected.",
    )
    y.add_argument(
        "--url",
        default=None,
        help="send only the messages meant for this server (default: each to its own)",
    )
    y.add_argument(
        "--redirect",
        action="store_true",
        help="with --url: send every spooled message to that server, whatever server it "
        "was meant for (a server that moved)",
    )
    y.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is only drawn on a terminal anyway)",
    )
    y.set_defaults(fn=cmd_sync)

    from ._cli_edit import add_parsers as add_edit_parsers

    add_edit_parsers(sub, _client_args)

    m = sub.add_parser(
        "demo",
        help="run a small demo training run",
        description="Train a small MLP on generated data (no download), watched by fitscope; "
        "it overfits mildly towards the end, which is what the dashboard is there to show. "
        "Needs torch.",
    )
    demo.add_arguments(m)
    m.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
    except KeyboardInterrupt:
        print("\nfitscope: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # the reader went away (`fitscope export RUN | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


if __name__ == "__main__":
    main()
