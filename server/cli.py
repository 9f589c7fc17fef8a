"""``fitscope serve`` and ``fitscope db``: the server's two commands.

The ``fitscope`` command lives in the hook package, which never imports the server (a training
environment has only the hook). It finds these through the ``fitscope.commands`` entry point
group (``pyproject.toml``): each entry point names a command, and its function fills in that
command's parser.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import subprocess
import sys

import uvicorn
from sqlalchemy.engine import make_url

from . import migrate
from .app import create_app
from .db import make_engine
from .settings import Settings


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    """``fitscope serve``'s description and options (entry point ``serve``)."""
    p.description = "Start the dashboard and API (the schema is upgraded first)."
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1); any other address requires FITSCOPE_TOKEN",
    )
    p.add_argument("--port", type=int, default=7007, help="port (default 7007)")
    p.add_argument(
        "--db",
        default=None,
        help="SQLAlchemy URL (default: FITSCOPE_DB_URL, else "
        "an SQLite file fitscope.db in FITSCOPE_DIR, ~/.fitscope by default)",
    )
    p.add_argument(
        "--demo", action="store_true", help="also start a small demo training run streaming into it"
    )
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow serving on a non-loopback address without FITSCOPE_TOKEN (dangerous)",
    )
    p.add_argument(
        "--no-upgrade", action="store_true", help="refuse to start unless the schema is current"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); use several with PostgreSQL, where the live "
        "streams of every worker see every change",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.set_defaults(fn=cmd_serve)


def add_db_arguments(p: argparse.ArgumentParser) -> None:
    """``fitscope db``'s description and arguments (entry point ``db``)."""
    p.description = "Manage the database schema through fitscope's Alembic history."
    p.add_argument("action", choices=["upgrade", "downgrade", "current"])
    p.add_argument("revision", nargs="?", help="target revision (upgrade: head; downgrade: -1)")
    p.add_argument("--db", default=None, help="SQLAlchemy URL (default as for serve)")
    p.set_defaults(fn=cmd_db)


def cmd_serve(args: argparse.Namespace) -> None:
    """Serve the dashboard and API until interrupted (with ``--demo``, a demo run streams in)."""
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
    """Upgrade or downgrade the schema, then say where it stands."""
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
