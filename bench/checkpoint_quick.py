"""One checkpoint and one restore on the file store: medians (issue 2's quick numbers).

    .venv/bin/python bench/checkpoint_quick.py [--runs 200]

The full side-by-side benchmark with the floor and peers is bench/run.py.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lifecycle import SessionManager, open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    from lifecycle.logs import configure

    configure("warning")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        url = f"file://{Path(tmp) / 'store'}"
        store = open_store(url)
        m = SessionManager(store=store, project="bench")
        m.start_session(restore=False)
        for i in range(20):
            m.add_task(f"T{i:03d}", "x" * 200, status="in_progress")
        checkpoint, restore = [], []
        for i in range(args.runs):
            m.record_decision(f"decision {i}", rationale="y" * 100)
            t0 = time.perf_counter_ns()
            m.create_checkpoint(progress={"i": i})
            checkpoint.append(time.perf_counter_ns() - t0)
        size = len(store.get(f"bench/{m.last_checkpoint.key}").value)  # type: ignore[union-attr]
        for _ in range(args.runs):
            t0 = time.perf_counter_ns()
            SessionManager(store=store, project="bench").start_session(restore=True)
            restore.append(time.perf_counter_ns() - t0)
        print(f"checkpoint bytes: {size}")
        cp_ms = statistics.median(checkpoint) / 1e6
        restore_ms = statistics.median(restore) / 1e6
        print(f"create_checkpoint (file store, durable): median {cp_ms:.3f} ms")
        print(f"start_session(restore=True) (file store): median {restore_ms:.3f} ms")


if __name__ == "__main__":
    main()
