"""A worker process that CAS-increments one counter key, for the multi-process tests.

Run as ``python tests/cas_worker.py URL TIMES BARRIER``: it opens the store, marks
itself ready (``BARRIER.ready.<pid>``), waits for ``BARRIER.go`` so that every
worker races from the same moment, then increments ``p/counter`` TIMES times with
compare-and-swap, retrying on VersionConflict. Prints how many conflicts it saw.
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


def spawn(url: str, times: int, folder: Path, count: int) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    barrier = str(folder / "barrier")
    return [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), url, str(times), barrier],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def run_all(url: str, times: int, folder: Path, count: int = 4) -> list[tuple[int, str, str]]:
    """Start ``count`` workers, release them together, return (rc, stdout, stderr) each."""
    workers = spawn(url, times, folder, count)
    try:
        deadline = time.monotonic() + WORKER_TIMEOUT
        while len(list(folder.glob("barrier.ready.*"))) < count:
            if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
                break  # a worker died or hangs: its return code will say
            time.sleep(0.005)
        (folder / "barrier.go").touch()
        results = []
        for worker in workers:
            out, err = worker.communicate(timeout=WORKER_TIMEOUT)
            results.append((worker.returncode, out, err))
        return results
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)


def main(url: str, times: int, barrier: str) -> int:
    from lifecycle.errors import VersionConflict
    from lifecycle.stores import open_store

    store = open_store(url)
    Path(f"{barrier}.ready.{os.getpid()}").touch()
    deadline = time.monotonic() + WORKER_TIMEOUT
    while not Path(barrier + ".go").exists() and time.monotonic() < deadline:
        time.sleep(0.001)
    conflicts = 0
    try:
        for _ in range(times):
            while True:
                entry = store.get("p/counter")
                count = int(entry.value) if entry else 0
                try:
                    store.put(
                        "p/counter",
                        str(count + 1).encode(),
                        expected_version=entry.version if entry else 0,
                    )
                    break
                except VersionConflict:
                    conflicts += 1
    finally:
        store.close()
    print(conflicts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
