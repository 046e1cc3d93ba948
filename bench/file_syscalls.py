"""What limits the file store's durable checkpoint: its system calls or its Python.

    .venv/bin/python bench/file_syscalls.py [--n 600]

Interleaved, on the repository's disk (``bench/results/tmp-*``), medians of wall and
thread CPU time per call:

- ``floor``: write + fsync + rename + folder fsync of a 10 KB record (what
  ``bench/run.py`` calls the floor);
- ``replayed``: every system call a checkpoint's batch makes on the file store (the
  write lock taken, the crash marker written and cleared, the pointer's header read,
  the record written and fsynced, renamed, the folder fsynced, the pointer rewritten
  in place), in the same order, with no lifecycle code around them;
- ``batch``: ``FileStore.batch`` of the same two writes (the checkpoint and its
  ``checkpoints/latest`` pointer, ``lazy=True``);
- ``create_checkpoint``: the whole call through ``SessionManager`` on the same store.

Then the same batch and create_checkpoint with ``os.fsync`` made a no-op, in a tight
loop: the Python's own CPU when nothing sleeps in between. If ``replayed`` costs what
``floor`` does and ``batch`` more, the difference is lifecycle's instructions, and
the ratio of their cost after a sleep to their cost in a tight loop shows how much
colder they run when every call follows an fsync.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from lifecycle.stores.base import Put  # noqa: E402
from lifecycle.stores.file import FileStore, _fsync_dir, _write_file, encode_record  # noqa: E402


def median_us(values: list[int]) -> float:
    return statistics.median(values) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    args = parser.parse_args()
    from run import Counter, fill_state, new_manager  # bench/run.py's 10 KB checkpoint

    from lifecycle.logs import configure

    configure("warning")
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tmp-", dir=results) as tmp:
        store = FileStore(Path(tmp) / "store")
        manager = new_manager(store)
        manager.start_session(restore=False)
        fill_state(manager)
        body = store.get("bench/" + manager.last_checkpoint.key).value  # type: ignore[union-attr]
        pointer = b'{"kind":"pointer",' + b'"k":"' + b"x" * 120 + b'"}'
        record = encode_record(1, body)
        step = Counter()
        version = 0

        def checkpoint() -> None:
            manager.create_checkpoint(progress={"step": step()})

        def batch(i: int) -> None:
            nonlocal version
            versions = store.batch(
                [
                    Put(f"p/checkpoints/c{i:07d}", body, expected_version=0),
                    Put(
                        "p/checkpoints/latest",
                        pointer,
                        expected_version=version,
                        lazy=True,
                        sync=False,
                    ),
                ]
            )
            version = versions[1]

        floor_dir, replay_dir = Path(tmp, "floor"), Path(tmp, "replay")
        floor_dir.mkdir()
        replay_dir.mkdir()
        latest = str(replay_dir / "latest.rec")
        Path(latest).write_bytes(encode_record(1, pointer))

        def floor(i: int) -> None:
            temp = str(floor_dir / ".t.tmp")
            _write_file(temp, record)
            os.replace(temp, floor_dir / f"c{i}.rec")
            _fsync_dir(str(floor_dir))

        def replayed(i: int) -> None:
            lock = os.open(replay_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX)
            os.fstat(lock)
            fd = os.open(latest, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
            os.fstat(fd)
            os.pread(fd, 96, 0)
            os.pwrite(lock, b"p.d/checkpoints.d", 0)
            temp = str(replay_dir / ".t.tmp")
            _write_file(temp, record)
            os.replace(temp, replay_dir / f"c{i}.rec")
            _fsync_dir(str(replay_dir))
            os.pwrite(fd, encode_record(2, pointer), 0)
            os.fstat(fd)
            os.ftruncate(lock, 0)
            os.close(fd)
            os.close(lock)

        actions: dict[str, Callable[[int], None]] = {
            "floor": floor,
            "replayed": replayed,
            "batch": batch,
            "create_checkpoint": lambda i: checkpoint(),
        }
        wall: dict[str, list[int]] = {name: [] for name in actions}
        cpu: dict[str, list[int]] = {name: [] for name in actions}
        for i in range(30):
            for action in actions.values():
                action(10**6 + i)
        for i in range(args.n):
            for name, action in actions.items():
                c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
                action(i)
                wall[name].append(time.perf_counter_ns() - w0)
                cpu[name].append(time.thread_time_ns() - c0)

        real_fsync = os.fsync
        os.fsync = lambda fd: None  # the Python alone, in a tight loop
        hot: dict[str, float] = {}
        try:
            for name in ("batch", "create_checkpoint"):
                action = actions[name]
                c0 = time.thread_time_ns()
                for i in range(args.n):
                    action(2 * 10**6 + i)
                hot[name] = (time.thread_time_ns() - c0) / args.n / 1000
        finally:
            os.fsync = real_fsync

    base = median_us(wall["floor"])
    load = os.getloadavg()[0]
    print(f"file store, 10 KB checkpoint, {args.n} interleaved rounds; load {load:.2f}")
    print(f"{'':20s}{'wall':>10s}{'cpu':>10s}{'vs floor':>10s}{'cpu, no fsync':>16s}")
    for name in actions:
        extra = f"{hot[name]:13.1f} us" if name in hot else ""
        print(
            f"{name:20s}{median_us(wall[name]):7.1f} us{median_us(cpu[name]):7.1f} us"
            f"{median_us(wall[name]) / base:9.2f}x{extra:>16s}"
        )


if __name__ == "__main__":
    main()
