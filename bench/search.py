"""Search over a year of sessions: query latency per store, and the index rebuild time.

    .venv/bin/python bench/search.py [--days 365] [--queries 200] [--stores file,sqlite,postgres]
    .venv/bin/python bench/search.py --pending 10000 [--stores sqlite,postgres]

A year of work is made once with real sessions (a manager on ``memory://`` with a
simulated clock: two sessions a day, tasks, decisions, checkpoints, learnings), then
copied key by key into each store through its ordinary write path (so its index is
written as it would be in use). Then, per store: the median and p99 of a mix of
queries (rare, common and two-word terms; the first query of each store, which may
build its index, is timed on its own), and a full rebuild of the index. The last
column is the same queries with no index at all (every record read and matched, what
``memory://`` does): what the index saves.

PostgreSQL's search tables are ANALYZEd after the load, as autovacuum would have done
to a store a year old (without statistics the planner reads every match of a common
word instead of walking the newest documents back).

The budget (issue 20): at least 10,000 records, median query <= 10 ms.

``--pending N`` measures instead what the SQLite and PostgreSQL stores defer: their
writes only queue their keys, and the first search indexes them. One session writes N
checkpoints (a work state of 12 tasks and 6 decisions, one task's progress changed each
time) with no search between; then the first search (which indexes the N queued
checkpoints) and the second are timed.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lifecycle import Learning, LearningType, SessionManager  # noqa: E402
from lifecycle.search import rebuild, search  # noqa: E402
from lifecycle.stores.base import Put, Store  # noqa: E402
from lifecycle.stores.memory import MemoryStore  # noqa: E402

WORDS = " ".join(
    (
        "parser lexer token cache index query schema migration checkpoint restore session",
        "learning decision rationale rename fsync folder file store sqlite postgres pool",
        "retry timeout budget latency journal replay branch merge conflict lock thread",
        "process signal hook prompt context summary report diagram table guard effect row",
        "event trigger risk deletion security review audit test fixture bench profile",
    )
).split()
RARE = ("walrus", "quokka", "axolotl", "pangolin")


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_year(days: int, seed: int = 7) -> MemoryStore:
    rng = random.Random(seed)
    store = MemoryStore()
    now = [datetime(2026, 1, 1, 9, 0, tzinfo=UTC)]
    clock = lambda: now[0]  # noqa: E731
    for day in range(days):
        for part in range(2):
            now[0] = datetime(2026, 1, 1, 9 + 6 * part, 0, tzinfo=UTC) + timedelta(days=day)
            m = SessionManager(store=store, project="bench", clock=clock)
            m.start_session(command="impl", restore=part == 1, change_id=f"change-{day}")
            for t in range(12):
                task = f"T{day:03d}{part}{t}"
                m.add_task(task, sentence(rng, 8))
                now[0] += timedelta(minutes=7)
                m.record_decision(sentence(rng, 5), rationale=sentence(rng, 10), impact="minor")
                m.complete_task(task, priority="high")
            if day % 3 == 0:
                word = RARE[day % len(RARE)] if day % 30 == 0 else rng.choice(WORDS)
                m.capture_learning(
                    Learning(
                        type=LearningType.SOLUTION,
                        key=f"learning/solutions/fix-{day}-{part}",
                        content=f"{sentence(rng, 12)} {word}",
                        timestamp=now[0],
                        tags=(rng.choice(WORDS),),
                    )
                )
            now[0] += timedelta(minutes=10)
            m.end_session(success=True, phase=f"Phase {day // 30}: {sentence(rng, 3)}")
    return store


def open_target(name: str, where: Path) -> Store:
    if name == "file":
        from lifecycle.stores.file import FileStore

        return FileStore(where / "file")
    if name == "sqlite":
        from lifecycle.stores.sqlite import SqliteStore

        return SqliteStore(where / "s.db")
    import pgserver

    from lifecycle.stores.postgres import PostgresStore

    return PostgresStore(pgserver.require_postgres_url(), schema=pgserver.unique_schema())


def queries(n: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    mix = []
    for i in range(n):
        if i % 4 == 0:
            mix.append(rng.choice(RARE))
        elif i % 4 == 1:
            mix.append(rng.choice(WORDS))
        else:
            mix.append(f"{rng.choice(WORDS)} {rng.choice(WORDS)}")
    return mix


def timed(store: Store, mix: list[str]) -> list[float]:
    out = []
    for q in mix:
        start = time.perf_counter()
        search(store, "bench", q, limit=20)
        out.append(time.perf_counter() - start)
    return out


def pending(stores: list[str], count: int) -> int:
    """The first search after ``count`` checkpoints nobody searched (see the docstring)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in stores:
            store = open_target(name, Path(tmp))
            m = SessionManager(store=store, project="bench")
            m.start_session(command="impl", restore=False)
            rng = random.Random(5)
            tasks = [sentence(rng, 8) for _ in range(12)]
            for t, text in enumerate(tasks):
                m.add_task(f"T{t:02d}", text)
            for _ in range(6):
                m.record_decision(sentence(rng, 5), rationale=sentence(rng, 10))
            start = time.perf_counter()
            for i in range(count):
                m.add_task(f"T{i % 12:02d}", tasks[i % 12], progress=f"step {i}")
                m.create_checkpoint(progress={"step": i})
            wrote = time.perf_counter() - start
            start = time.perf_counter()
            first = search(store, "bench", "manual", limit=20)
            caught_up = time.perf_counter() - start
            start = time.perf_counter()
            search(store, "bench", "manual", limit=20)
            again = time.perf_counter() - start
            store.close()
            rows.append(
                (
                    name,
                    f"{count:,}",
                    f"{wrote / count * 1e3:.2f} ms",
                    f"{caught_up:.2f} s ({caught_up / count * 1e3:.2f} ms each)",
                    ms(again),
                    str(len(first)),
                )
            )
    head = ("store", "checkpoints", "each write", "first search", "second search", "hits")
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--stores", default=None, help="default: file,sqlite,postgres")
    ap.add_argument(
        "--pending",
        type=int,
        metavar="N",
        help="time the first search after N checkpoints nobody searched (sqlite, postgres)",
    )
    args = ap.parse_args()
    if args.pending is not None:
        return pending((args.stores or "sqlite,postgres").split(","), args.pending)
    args.stores = args.stores or "file,sqlite,postgres"

    started = time.perf_counter()
    year = make_year(args.days)
    entries = list(year.scan(""))
    print(
        f"a year of sessions: {args.days} days, {len(entries):,} records "
        f"({sum(len(e.value) for e in entries) / 1e6:.1f} MB), made in "
        f"{time.perf_counter() - started:.1f} s"
    )
    mix = queries(args.queries)
    scan = timed(year, mix[: max(20, args.queries // 10)])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.stores.split(","):
            store = open_target(name, Path(tmp))
            start = time.perf_counter()
            for i in range(0, len(entries), 100):
                store.batch([Put(e.key, e.value) for e in entries[i : i + 100]])
            load = time.perf_counter() - start
            if name == "postgres":  # what autovacuum does to a table a year old
                analyze = f'ANALYZE "{store.schema}".lifecycle_search_text'  # type: ignore[attr-defined]
                store._run("analyze", lambda conn, sql=analyze: conn.execute(sql))  # type: ignore[attr-defined]
            first = timed(store, mix[:1])[0]
            times = timed(store, mix)
            start = time.perf_counter()
            docs = rebuild(store)
            rebuilt = time.perf_counter() - start
            store.close()
            times.sort()
            rows.append(
                (
                    name,
                    ms(statistics.median(times)),
                    ms(times[int(len(times) * 0.99) - 1]),
                    ms(first),
                    f"{rebuilt:.2f} s ({docs:,} docs)",
                    f"{load:.1f} s",
                )
            )
    head = ("store", "median", "p99", "first query", "rebuild", "load (writes + index)")
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    for row in (head, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(
        f"no index (memory://, every record read): median {ms(statistics.median(scan))} "
        f"over {len(scan)} queries"
    )
    print("budget: median query <= 10 ms over >= 10,000 records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
