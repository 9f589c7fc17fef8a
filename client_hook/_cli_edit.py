"""``fitscope delete RUN`` and ``fitscope rename RUN NEW_NAME``: change runs from a terminal.

RUN must name one run: a name shared by several runs is refused with their ids listed."""

from __future__ import annotations

import argparse
import sys

from ._api import ApiError
from ._cli_read import add_client_arguments, api_errors, client_for, fail
from .protocol import paths


def _describe(run: dict) -> str:
    return f"{run['name']} ({run['id'][:12]}) in {run['project']}"


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace) -> None:
    with api_errors():
        api = client_for(args)
        runs = [api.find_run(ref) for ref in args.runs]
    unique = list({r["id"]: r for r in runs}.values())
    if not args.yes:
        if not sys.stdin.isatty():
            fail("not deleting without a confirmation: pass --yes (no terminal to ask on)")
        listed = "\n".join(f"  {_describe(r)}" for r in unique)
        print(f"delete {len(unique)} run{'s' if len(unique) != 1 else ''} and all their data:")
        print(listed)
        if not _confirm("this cannot be undone; delete?"):
            fail("nothing deleted")
    with api_errors():
        for r in unique:
            try:
                api.call("DELETE", paths.run(r["id"]))
            except ApiError as exc:
                if exc.status != 404:  # gone already (deleted elsewhere): what was asked
                    raise
            print(f"deleted {_describe(r)}")


def cmd_rename(args: argparse.Namespace) -> None:
    name = args.new_name.strip()
    if not name:
        fail("the new name is empty")
    with api_errors():
        api = client_for(args)
        run = api.find_run(args.run)
        api.call("PATCH", paths.run(run["id"]), {"name": name})
    print(f"renamed {_describe(run)} to {name!r}")


def add_delete_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Delete runs with all their points, histograms and alerts. RUN is a run id, "
        "a unique id prefix (4+ characters) or a run name that only one run has (a shared name "
        "is refused with the matching ids listed). Asks first unless --yes."
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run id, id prefix or name")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask (for scripts)")
    add_client_arguments(p)
    p.set_defaults(fn=cmd_delete)


def add_rename_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Rename a run (its id stays). RUN is a run id, a unique id prefix "
        "(4+ characters) or a run name that only one run has."
    )
    p.add_argument("run", metavar="RUN", help="run id, id prefix or name")
    p.add_argument("new_name", metavar="NEW_NAME", help="the new name (up to 200 characters)")
    add_client_arguments(p)
    p.set_defaults(fn=cmd_rename)
