"""``fitscope sync``: send what the hook kept on disk while its server was unreachable."""

from __future__ import annotations

import argparse
import sys

from ._progress import Progress
from ._settings import ClientSettings


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``fitscope sync``'s description and options."""
    p.description = (
        "Send the data the hook kept on disk (in FITSCOPE_DIR/spool) while the "
        "server was unreachable. Each message goes to the server its run was sending to "
        "(recorded in the spool), with FITSCOPE_TOKEN; with --url, only the messages meant for "
        "that server are sent and the others are left. Safe to run twice, or twice at once: "
        "the server stores each message once and a run is delivered by one process at a time. "
        "A message the server refuses for good is set aside in FITSCOPE_DIR/spool/rejected."
    )
    p.add_argument(
        "--url",
        default=None,
        help="send only the messages meant for this server (default: each to its own)",
    )
    p.add_argument(
        "--redirect",
        action="store_true",
        help="with --url: send every spooled message to that server, whatever server it "
        "was meant for (a server that moved)",
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (it is only drawn on a terminal anyway)",
    )
    p.set_defaults(fn=cmd_sync)
