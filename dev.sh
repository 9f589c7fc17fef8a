#!/usr/bin/env bash
# fitscope's two commands for a fresh machine:
#   ./dev.sh demo   set everything up, start the dashboard on SQLite with a demo run streaming into it
#   ./dev.sh test   set everything up, run the linters and the whole test suite
# Everything is installed into a virtual environment in .venv (override with FITSCOPE_VENV).
set -euo pipefail
cd "$(dirname "$0")"

VENV="${FITSCOPE_VENV:-.venv}"
TORCH_VERSION="2.13.0"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "dev.sh: creating $VENV" >&2
    python3 -m venv "$VENV"
  fi
  # shellcheck disable=SC1091
  . "$VENV/bin/activate"
  local stamp="$VENV/.fitscope-installed"
  local want
  want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    python -m pip install -q --upgrade pip
    # torch first and pinned: an unpinned torch would pull a large CUDA build
    python -c "import torch" 2>/dev/null || python -m pip install -q "torch==${TORCH_VERSION}"
    # integrations: Lightning and transformers for the callbacks' tests (they use the torch above)
    # setuptools tells every editable install of a package-dir layout (ours: fitscope is
    # client_hook/) to beware of folders named like the package in the working directory, as
    # a warning box that reads like a failure; that one notice is filtered (README, "Install")
    PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q -e '.[server,dev,integrations]'
    echo "$want" > "$stamp"
  fi
}

case "${1:-}" in
  demo)
    setup
    shift
    exec fitscope serve --demo "$@"
    ;;
  test)
    setup
    shift
    ruff check .
    ruff format --check .
    # each package under its import name (.typecheck/, see pyproject.toml), so types cross the seam
    mypy -p fitscope -p fitscope_server -p fitscope_migrations -p tests -p bench
    exec python -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo|test [extra arguments]" >&2
    exit 2
    ;;
esac
