"""How fast ``fitscope import`` reads and sends a history (run by hand).

    python -m bench.import_speed --url http://127.0.0.1:7007 [--steps 200000] [--keys 5]

Writes a CSV history and a TensorBoard event file of ``steps`` x ``keys`` points
into a temporary folder, then prints points/s for reading each and for sending
the CSV's run to the server (create, batches, finish).  Needs a running server
(``fitscope serve``); the event file needs ``tensorboard`` (else it is skipped).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from fitscope._api import ApiClient
from fitscope.importers import load, upload


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:7007")
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--keys", type=int, default=5)
    args = p.parse_args()
    n = args.steps * args.keys
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "history.csv"
        with open(csv_path, "w") as f:
            f.write("step," + ",".join(f"m{k}" for k in range(args.keys)) + "\n")
            for s in range(1, args.steps + 1):
                f.write(f"{s}," + ",".join(repr(math.sin(s + k)) for k in range(args.keys)) + "\n")
        t = time.perf_counter()
        [run] = load(csv_path)
        read_csv = time.perf_counter() - t
        print(f"read CSV:          {n / read_csv:12,.0f} points/s ({n:,} points, {read_csv:.2f} s)")

        try:
            from torch.utils.tensorboard import SummaryWriter

            w = SummaryWriter(str(Path(tmp) / "tb"))
            for s in range(1, args.steps + 1):
                for k in range(args.keys):
                    w.add_scalar(f"m{k}", math.sin(s + k), s)
            w.close()
            t = time.perf_counter()
            load(Path(tmp) / "tb")
            read_tb = time.perf_counter() - t
            print(f"read TensorBoard:  {n / read_tb:12,.0f} points/s ({read_tb:.2f} s)")
        except ImportError:
            print("read TensorBoard:  skipped (tensorboard is not installed)")

        run.name = f"bench-{time.time():.0f}"  # a new run each time (ids follow the content)
        client = ApiClient(args.url)
        t = time.perf_counter()
        upload(client, run, project="bench-import")
        sent = time.perf_counter() - t
        print(f"send to server:    {n / sent:12,.0f} points/s ({sent:.2f} s)")


if __name__ == "__main__":
    main()
