"""SIGKILL a checkpoint writer at random moments; check nothing acknowledged is lost.

Each trial starts ``tests/crash_writer.py`` on one store, lets it run for a random
while (sometimes killing it before it is even ready, while it restores and writes
its session record) and SIGKILLs it. Then a new manager in this process checks:

- every checkpoint the writer acknowledged (an ``ack`` line) is readable by its key
  and decodes to a checkpoint with that id: otherwise an *acknowledged loss*;
- ``start_session(restore=True)`` succeeds and restores the newest acknowledged
  checkpoint or a newer one (whose write completed but whose ack was never
  printed): if it raises, starts fresh, or lands on an older checkpoint, the
  session is *unrecoverable*;
- with ``--search``: a search finds the task the newest acknowledged checkpoint
  holds by the words the writer last gave it (SQLite and PostgreSQL queue a write's
  keys for the index in its transaction, and a search indexes the queue): otherwise a
  *search miss*.

The next trial's writer continues from that store, so leftovers of every crash
(temp files, a lock file's crash marker, a WAL) meet the next writer.

The full run (documented in docs/reliability.md)::

    python -m tests.crash_harness --kills 1000 --store file
    python -m tests.crash_harness --kills 1000 --store sqlite
    python -m tests.crash_harness --kills 200 --store postgres
    python -m tests.crash_harness --kills 1000 --store sqlite --search   # and postgres

prints ``trials``, ``acknowledged``, ``acknowledged losses`` and ``unrecoverable
sessions``, and exits 1 if either of the last two is not zero. The test suite runs
a short version (tests/test_crash.py).
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WRITER = HERE / "crash_writer.py"
READY_TIMEOUT = 60.0  # seconds a writer may take to print "ready"
PROJECT = "crash"
#: How long a writer may run after "ready" before it is killed, per store (seconds):
#: long enough to cover several checkpoints, short enough that most kills land inside one.
WINDOWS = {"file": 0.06, "sqlite": 0.04, "postgres": 0.06}
#: Share of trials killed before the writer printed "ready" (during start-up and restore).
EARLY_SHARE = 0.15


@attrs.define
class Counts:
    store: str
    trials: int = 0
    early_kills: int = 0  # killed before "ready"
    acknowledged: int = 0  # ack lines seen across all trials
    acknowledged_losses: int = 0
    unrecoverable_sessions: int = 0
    newer_than_ack: int = 0  # restores that found a completed but unacknowledged checkpoint
    search_misses: int = 0  # with search: the newest acked task's words not found
    writer_errors: int = 0  # a writer that exited by itself (a traceback: a bug)
    newest: str | None = None  # the newest checkpoint id known durable so far
    problems: list[str] = attrs.Factory(list)

    def lines(self) -> list[str]:
        return [
            f"store: {self.store}",
            f"trials: {self.trials}",
            f"killed before ready: {self.early_kills}",
            f"acknowledged checkpoints: {self.acknowledged}",
            f"restores newer than the last ack: {self.newer_than_ack}",
            f"writer errors: {self.writer_errors}",
            f"acknowledged losses: {self.acknowledged_losses}",
            f"unrecoverable sessions: {self.unrecoverable_sessions}",
            f"search misses: {self.search_misses}",
        ]

    @property
    def ok(self) -> bool:
        return not (
            self.acknowledged_losses
            or self.unrecoverable_sessions
            or self.writer_errors
            or self.search_misses
        )


def _spawn(url: str, stderr_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(stderr_path, "wb") as err:
        return subprocess.Popen(
            [sys.executable, str(WRITER), url, PROJECT],
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )


def _wait_ready(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    """Read stdout until the ``ready`` line; return what was read (raw bytes)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    got = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"writer printed no ready line in {timeout} s")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:  # the writer exited
                return got
            got += chunk
    return got


def _acks(output: bytes) -> list[tuple[str, str]]:
    """(checkpoint id, key) of every complete ``ack`` line (a torn last line is no ack)."""
    found = []
    for line in output.split(b"\n")[:-1]:
        parts = line.decode().split()
        if len(parts) == 3 and parts[0] == "ack":
            found.append((parts[1], parts[2]))
    return found


def trial(
    url: str,
    counts: Counts,
    rng: random.Random,
    window: float,
    work: Path,
    *,
    searched: bool = False,
) -> None:
    """One writer run, one SIGKILL, one check."""
    from lifecycle import Checkpoint, SessionManager, codec, open_store
    from lifecycle.errors import LifecycleError
    from lifecycle.search import search

    stderr_path = work / "writer.stderr"
    proc = _spawn(url, stderr_path)
    out = b""
    try:
        if rng.random() < EARLY_SHARE:
            counts.early_kills += 1
            time.sleep(rng.uniform(0.0, 0.4))
        else:
            out = _wait_ready(proc, READY_TIMEOUT)
            time.sleep(rng.uniform(0.0, window))
        proc.send_signal(signal.SIGKILL)
    finally:
        assert proc.stdout is not None
        out += proc.stdout.read()
        proc.stdout.close()
        rc = proc.wait(timeout=READY_TIMEOUT)
    counts.trials += 1
    if rc != -signal.SIGKILL:
        counts.writer_errors += 1
        tail = stderr_path.read_text(errors="replace")[-2000:]
        counts.problems.append(f"trial {counts.trials}: writer exited {rc}: {tail}")
    acks = _acks(out)
    counts.acknowledged += len(acks)
    store = open_store(url)
    try:
        for cp_id, key in acks:
            entry = store.get(f"{PROJECT}/{key}")
            try:
                found = None if entry is None else codec.decode(Checkpoint, entry.value).id
            except LifecycleError as exc:
                found = f"unreadable ({exc})"
            if found != cp_id:
                counts.acknowledged_losses += 1
                counts.problems.append(f"trial {counts.trials}: ack {cp_id} at {key}: {found}")
        if acks:
            counts.newest = max(counts.newest or "", acks[-1][0])
        if acks and searched:
            last = store.get(f"{PROJECT}/{acks[-1][1]}")
            n = codec.decode(Checkpoint, last.value).progress["n"] if last else None
            # The writer's words for task T{n % 5} at step n (crash_writer.py); no later
            # write changes them (the next change to that task is 5 checkpoints on).
            words = f"task {n} of writer {proc.pid}"
            hits = [h.ident for h in search(store, PROJECT, words, kinds="task")]
            expected = [f"T{n % 5}"] if isinstance(n, int) else ["(a step n in the checkpoint)"]
            if hits != expected:
                counts.search_misses += 1
                counts.problems.append(f"trial {counts.trials}: search {words!r} found {hits}")
        newest = counts.newest
        try:
            manager = SessionManager(store=store, project=PROJECT)
            start = manager.start_session(command="crash-check", restore=True)
        except LifecycleError as exc:
            counts.unrecoverable_sessions += 1
            counts.problems.append(f"trial {counts.trials}: start_session raised {exc!r}")
            return
        if newest is not None:
            restored = start.checkpoint_id
            if restored is None or restored < newest:
                counts.unrecoverable_sessions += 1
                counts.problems.append(
                    f"trial {counts.trials}: restored {restored}, newest ack {newest}, "
                    f"warnings {start.warnings}"
                )
            elif restored > newest:
                counts.newer_than_ack += 1
                counts.newest = restored
    finally:
        store.close()


@contextmanager
def store_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh store of ``kind`` under ``folder`` (PostgreSQL: a private throwaway server)."""
    if kind == "file":
        yield f"file://{folder / 'store'}"
    elif kind == "sqlite":
        yield f"sqlite:///{folder / 'store.db'}"
    elif kind == "postgres":
        sys.path.insert(0, str(HERE))
        import pgserver

        try:
            url = pgserver.require_postgres_url()
        except BaseException as exc:  # pytest.skip outside pytest: say why
            raise SystemExit(f"no PostgreSQL server for the crash harness: {exc}") from None
        try:
            yield f"{url}?schema={pgserver.unique_schema()}"
        finally:
            pgserver.stop_shared_server()
    else:
        raise SystemExit(f"unknown store {kind!r}; use file, sqlite or postgres")


def run(
    kind: str,
    kills: int,
    seed: int,
    folder: Path,
    url: str | None = None,
    *,
    searched: bool = False,
) -> Counts:
    counts = Counts(kind)
    rng = random.Random(seed)
    window = WINDOWS.get(kind, 0.05)
    if url is not None:
        for _ in range(kills):
            trial(url, counts, rng, window, folder, searched=searched)
        return counts
    with store_url(kind, folder) as made:
        for _ in range(kills):
            trial(made, counts, rng, window, folder, searched=searched)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.crash_harness", description=__doc__)
    parser.add_argument("--kills", type=int, default=1000, help="trials (default 1000)")
    parser.add_argument("--store", choices=("file", "sqlite", "postgres"), default="file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp folder)")
    parser.add_argument("--search", action="store_true", help="also check a search after each kill")
    args = parser.parse_args(argv)
    from lifecycle.logs import configure

    configure("error")
    started = time.monotonic()
    if args.dir:
        folder = Path(args.dir)
        folder.mkdir(parents=True, exist_ok=True)
        counts = run(args.store, args.kills, args.seed, folder, searched=args.search)
    else:
        with tempfile.TemporaryDirectory(prefix="lifecycle-crash-") as tmp:
            counts = run(args.store, args.kills, args.seed, Path(tmp), searched=args.search)
    for line in counts.lines():
        print(line)
    print(f"seconds: {time.monotonic() - started:.1f}")
    for problem in counts.problems[:20]:
        print("problem:", problem)
    return 0 if counts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
