"""Checkpoint and restore medians on every store adapter, in one run.

    .venv/bin/python bench/adapters_quick.py [--runs 100] [--serena-runs 10]

Each adapter gets the same session (20 open tasks, a decision per checkpoint, about
10 KB of state): ``create_checkpoint`` (durable, with its ``latest`` pointer) and
``SessionManager(...).start_session(restore=True)`` (read the latest checkpoint and
write the new session record). PostgreSQL runs on a throwaway server started here
(tests/pgserver.py); Serena on a real server from the test venv (tests/serena_env.py:
built on first use, ~30 s). The side-by-side comparison with the floor and the peers
is bench/run.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def measure(open_store: Callable[[], object], runs: int) -> tuple[float, float]:
    from lifecycle import SessionManager

    store = open_store()
    try:
        m = SessionManager(store=store, project="bench")  # type: ignore[arg-type]
        m.start_session(restore=False)
        for i in range(20):
            m.add_task(f"T{i:03d}", "x" * 300, status="in_progress")
        checkpoint, restore = [], []
        for i in range(runs):
            m.record_decision(f"decision {i}", rationale="y" * 100)
            t0 = time.perf_counter_ns()
            m.create_checkpoint(progress={"i": i})
            checkpoint.append(time.perf_counter_ns() - t0)
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            SessionManager(store=store, project="bench").start_session(restore=True)  # type: ignore[arg-type]
            restore.append(time.perf_counter_ns() - t0)
    finally:
        store.close()  # type: ignore[attr-defined]
    return statistics.median(checkpoint) / 1e6, statistics.median(restore) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--serena-runs", type=int, default=10)
    args = parser.parse_args()
    from lifecycle.logs import configure
    from lifecycle.stores import open_store

    configure("error")
    tmp = Path(tempfile.mkdtemp(prefix="lifecycle-adapters-"))
    adapters: list[tuple[str, Callable[[], object], int]] = [
        ("memory://", lambda: open_store("memory://"), args.runs),
        ("file://", lambda: open_store(f"file://{tmp / 'file'}"), args.runs),
        ("sqlite:///", lambda: open_store(f"sqlite:///{tmp / 'x.db'}"), args.runs),
        (
            "fallback:// (file primary)",
            lambda: open_store(
                f"fallback://?primary=file://{tmp / 'primary'}&local={tmp / 'local'}"
            ),
            args.runs,
        ),
    ]
    try:
        import pgserver

        url = pgserver.require_postgres_url()
        adapters.append(("postgresql://", lambda: open_store(url), args.runs))
    except BaseException as exc:  # the helper skips (raises) when no server can start
        print(f"postgresql:// skipped: {exc}")
    try:
        import serena_env

        project = tmp / "serena"
        project.mkdir()
        adapters.append(
            ("serena+stdio://", lambda: serena_env.open_test_store(project), args.serena_runs)
        )
    except BaseException as exc:
        print(f"serena+stdio:// skipped: {exc}")

    print(f"{'adapter':<28} {'checkpoint':>12} {'restore':>12}  runs")
    for name, opener, runs in adapters:
        cp, rs = measure(opener, runs)
        print(f"{name:<28} {cp:>9.3f} ms {rs:>9.3f} ms  {runs}")
    try:
        import pgserver

        pgserver.stop_shared_server()
    except BaseException:
        pass


if __name__ == "__main__":
    main()
