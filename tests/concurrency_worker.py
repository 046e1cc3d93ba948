"""A worker for the concurrency tests: one of N processes writing to one project.

Run as ``python tests/concurrency_worker.py URL MODE POLICY INDEX COUNT BARRIER``:

- MODE ``project``: its own session on the shared project (``start_session``);
  MODE ``session``: continue the project's open session (``attach``), saving the
  live context after each checkpoint;
- POLICY ``last-write-wins`` or ``merge`` (the manager's ``conflict`` setting);
- it waits for ``BARRIER.go`` so that all workers race from the same moment, then
  COUNT times adds a task ``w{INDEX}-t{i}`` and a decision ``w{INDEX}-d{i}``,
  creates a checkpoint and prints ``ack <id> <key>`` once it is acknowledged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

WORKER_TIMEOUT = 120
SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parents[1]
PROJECT = "shared"


def run_all(
    url: str, mode: str, policy: str, count: int, workers: int, folder: Path
) -> list[tuple[int, str, str]]:
    """Start ``workers`` processes, release them together, return (rc, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    barrier = str(folder / "barrier")
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), url, mode, policy, str(i), str(count), barrier],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        while len(list(folder.glob("barrier.ready.*"))) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                break  # a worker died or hangs: its return code will say
            time.sleep(0.005)
        (folder / "barrier.go").touch()
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=WORKER_TIMEOUT)
            results.append((proc.returncode, out, err))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def main(url: str, mode: str, policy: str, index: int, count: int, barrier: str) -> int:
    from datetime import UTC, datetime

    from lifecycle import SessionManager, open_store
    from lifecycle.logs import configure

    configure("error")
    store = open_store(url)
    kwargs = {} if policy == "last-write-wins" else {"conflict": policy}
    manager = SessionManager(store=store, project=PROJECT, **kwargs)  # type: ignore[arg-type]
    Path(f"{barrier}.ready.{os.getpid()}").touch()
    deadline = time.monotonic() + WORKER_TIMEOUT
    while not Path(barrier + ".go").exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    if mode == "session":
        if not manager.attach():
            print("no open session to attach to", file=sys.stderr)
            return 1
    else:
        manager.start_session(command=f"worker {index}", restore=False)
    try:
        for i in range(count):
            manager.add_task(f"w{index}-t{i}", f"task {i} of worker {index}")
            manager.record_decision(f"w{index}-d{i}", at=datetime.now(UTC))
            result = manager.create_checkpoint(progress={"worker": index, "i": i})
            if not result.written:
                print(f"nack {result.error}", flush=True)
                continue
            print(f"ack {result.checkpoint_id} {result.key}", flush=True)
            if mode == "session":
                manager.save_context()
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    a = sys.argv
    sys.exit(main(a[1], a[2], a[3], int(a[4]), int(a[5]), a[6]))
