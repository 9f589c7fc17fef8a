"""Run scenarios one after another in this interpreter, each as its own fitscope run.

    python -m tests.scenarios.runner URL ID [ID ...]    (from the repository root)

Prints one ``RESULT {json}`` line per scenario: its id, the run id, and the seconds it took.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    import torch

    from .catalog import SCENARIOS
    from .lib import SEED

    torch.set_num_threads(1)
    url, ids = argv[0], argv[1:]
    for sid in ids:
        torch.manual_seed(SEED)
        t0 = time.monotonic()
        run_id = SCENARIOS[sid].train(sid, url)
        import fitscope._run as run_mod

        for run in list(run_mod._live_runs):
            run.finish(timeout=20)
        print(
            "RESULT " + json.dumps({"id": sid, "run_id": run_id, "seconds": time.monotonic() - t0})
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
