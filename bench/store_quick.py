"""Median time of one put of a 10 KB value and one get, per store adapter.

    python bench/store_quick.py [--postgres-url URL] [--puts 300] [--gets 2000]

Without --postgres-url it starts a throwaway server with tests/pgserver.py
(skipped if none can start). Prints one line per measurement, with the bare
floor beside it: write + fsync of the same bytes, and a raw psycopg round trip.
A measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

VALUE = os.urandom(10 * 1024)


def timed(n: int, action: Callable[[int], object]) -> tuple[float, float]:
    """Median and 90th percentile of ``action(i)`` over n runs, in microseconds."""
    samples = []
    for i in range(n):
        start = time.perf_counter_ns()
        action(i)
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def report(name: str, result: tuple[float, float]) -> None:
    median, p90 = result
    print(f"{name:<44} median {median:9.1f} us   p90 {p90:9.1f} us")


def bench_store(label: str, store: object, puts: int, gets: int) -> None:
    from lifecycle.stores.base import Store

    assert isinstance(store, Store)
    report(f"{label} put 10 KB (blind)", timed(puts, lambda i: store.put(f"b/k{i % 50}", VALUE)))
    version = store.put("b/cas", VALUE)
    box = [version]

    def cas(_: int) -> None:
        box[0] = store.put("b/cas", VALUE, expected_version=box[0])

    report(f"{label} put 10 KB (compare-and-swap)", timed(puts, cas))
    report(f"{label} get 10 KB", timed(gets, lambda i: store.get(f"b/k{i % 50}")))


def bench_floor(folder: Path, puts: int) -> None:
    path = folder / "floor.bin"

    def write(_: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, VALUE)
            os.fsync(fd)
        finally:
            os.close(fd)

    report("floor: write + fsync 10 KB (same disk)", timed(puts, write))


def bench_postgres_floor(url: str, gets: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        report("floor: raw psycopg SELECT 1", timed(gets, lambda _: conn.execute("SELECT 1")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url")
    parser.add_argument("--puts", type=int, default=300)
    parser.add_argument("--gets", type=int, default=2000)
    args = parser.parse_args()

    from lifecycle.stores.memory import MemoryStore
    from lifecycle.stores.sqlite import SqliteStore

    # Next to the repository, not in /tmp, which may be a RAM disk elsewhere.
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        folder = Path(tmp)
        bench_floor(folder, args.puts)
        bench_store("memory", MemoryStore(), args.puts, args.gets)
        sqlite = SqliteStore(folder / "bench.db")
        try:
            bench_store("sqlite", sqlite, args.puts, args.gets)
        finally:
            sqlite.close()

    server = None
    url = args.postgres_url
    if url is None:
        import pgserver

        try:
            server = pgserver.PostgresServer()
            url = server.setup()
        except Exception as exc:
            print(f"postgres: skipped ({str(exc).splitlines()[0]})")
            return 0
    try:
        from lifecycle.stores.postgres import PostgresStore

        bench_postgres_floor(url, args.gets)
        store = PostgresStore(url, schema="bench_" + os.urandom(4).hex())
        try:
            bench_store("postgres", store, args.puts, args.gets)
        finally:
            store.close()
    finally:
        if server is not None:
            server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
