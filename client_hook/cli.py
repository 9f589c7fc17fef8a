"""The ``fitscope`` command: ``serve``, ``db``, ``runs``, ``alerts``, ``export``, ``import``,
``sync``, ``delete``, ``rename``, ``demo``.

Everything but ``serve`` and ``db`` is a plain HTTP client that needs only the standard library.
``serve`` and ``db`` belong to the server package, which this package never imports (a training
environment has only the hook): the server names the functions that fill in their parsers in
the ``fitscope.commands`` entry point group (``pyproject.toml``), and the one chosen is loaded
only when its command runs (importing the server takes about a second).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import NoReturn

from . import __version__, _cli_edit, _cli_import, _cli_read, _cli_sync, demo

# fills in a command's parser: its description, its arguments and `fn`, the function that runs it
Filler = Callable[[argparse.ArgumentParser], None]

PROVIDERS = "fitscope.commands"

# Every command in the order `fitscope --help` lists it, with its line there and its filler;
# None: the filler comes from the package that provides the command, through PROVIDERS.
COMMANDS: list[tuple[str, str, Filler | None]] = [
    ("serve", "start the dashboard and API", None),
    ("db", "manage the database schema", None),
    ("runs", "list the server's runs", _cli_read.add_runs_arguments),
    ("alerts", "what the diagnosis found in a run", _cli_read.add_alerts_arguments),
    ("export", "write every point of a run as CSV or JSON Lines", _cli_read.add_export_arguments),
    (
        "import",
        "import runs logged without fitscope (TensorBoard, CSV, JSONL, trainer_state.json)",
        _cli_import.add_arguments,
    ),
    ("sync", "send spooled data to the server", _cli_sync.add_arguments),
    ("delete", "delete runs and all their data", _cli_edit.add_delete_arguments),
    ("rename", "give a run another name", _cli_edit.add_rename_arguments),
    ("demo", "run a small demo training run", demo.add_arguments),
]

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


def _server_missing() -> NoReturn:
    sys.exit(
        "fitscope: the server is not installed here; install it with: pip install 'fitscope[server]'"
    )


def provided(name: str) -> Filler:
    """The filler of command ``name`` from the installed package that provides it; exits
    with how to install the server where none does (or its dependencies are missing)."""
    for ep in entry_points(group=PROVIDERS, name=name):
        try:
            fill: Filler = ep.load()
        except ImportError:
            break
        return fill
    _server_missing()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``fitscope`` parser. A command another package provides gets its arguments only
    when it is ``command``, the one to run: the others need not load that package."""
    p = argparse.ArgumentParser(
        prog="fitscope",
        description="Training diagnostics for PyTorch: the dashboard server and its terminal client.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fitscope {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, line, fill in COMMANDS:
        parser = sub.add_parser(name, help=line)
        if fill is None and name == command:
            fill = provided(name)
        if fill is not None:
            fill(parser)
    return p


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # the command is the first word that is not an option (the top-level options take no value)
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
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
