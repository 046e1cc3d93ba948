"""LifecycleSaver against LangGraph's own savers, the same payload, in one run.

    .venv/bin/python bench/langgraph_saver.py [--quick] [--postgres-url URL]
    bench/.venv/bin/python bench/langgraph_saver.py        (bench/run.sh's venv also works)

``put`` and ``get_tuple`` (the latest checkpoint of a thread, with its pending writes)
of ``LifecycleSaver`` on lifecycle's SQLite store against ``SqliteSaver``, and on
lifecycle's PostgreSQL store against ``PostgresSaver`` on the same throwaway server
(two databases). Both sides get the same checkpoints (bench/run.py's 10 KB session
state as one channel value, through the same ``LangGraphWriter``), timed interleaved
(ours, theirs, ours, ...) so that the machine's drift hits both alike; the file store
is shown beside them, with no LangGraph peer. Prints one table, medians and p99, with
the ratio to the peer; the goal is 1.2x. A measurement, not a test: a missed goal is
reported, never raised.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from run import (  # noqa: E402  (bench/run.py: the same payload, writer and timing)
    LangGraphWriter,
    Stats,
    fill_state,
    langgraph_payload,
    new_manager,
    quiet_logs,
    timed_pair,
)

GOAL = 1.2


def payload() -> dict[str, Any]:
    """bench/run.py's 10 KB session state, as a plain dict."""
    from lifecycle.stores.memory import MemoryStore

    manager = new_manager(MemoryStore())
    manager.start_session(restore=False)
    fill_state(manager)
    return langgraph_payload(manager)


def writer_with_writes(saver: Any, content: dict[str, Any]) -> LangGraphWriter:
    """A writer whose thread has a checkpoint with two tasks' pending writes, so that
    get_tuple reads writes too, as it does in a real run."""
    writer = LangGraphWriter(saver, content)
    saved = writer.put()
    for task in ("task-a", "task-b"):
        saver.put_writes(saved, [("messages", {"role": "tool", "content": "ok"})], task)
    return writer


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, Stats, str, Stats | None]] = []

    def add(self, store: str, op: str, ours: Stats, peer_name: str, peer: Stats | None) -> None:
        self.rows.append((store, op, ours, peer_name, peer))
        print(self.line(self.rows[-1]), flush=True)

    @staticmethod
    def _us(ns: float) -> str:
        us = ns / 1000
        return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} us"

    def header(self) -> str:
        return (
            f"{'store':<9} {'call':<10} {'LifecycleSaver':>22} {'peer':<14} {'peer time':>22} "
            f"{'ratio':>7} {'goal':>12} {'CPU ratio':>10}"
        )

    def line(self, row: tuple[str, str, Stats, str, Stats | None]) -> str:
        store, op, ours, peer_name, peer = row
        mine = f"{self._us(ours.median)} / {self._us(ours.p99)}"
        if peer is None:
            return f"{store:<9} {op:<10} {mine:>22} {peer_name:<14} {'-':>22} {'-':>7} {'-':>12}"
        ratio = ours.median / peer.median
        met = "met" if ratio <= GOAL else "MISSED"
        theirs = f"{self._us(peer.median)} / {self._us(peer.p99)}"
        cpu = "-"
        if ours.cpu_median and peer.cpu_median:
            cpu = f"{ours.cpu_median / peer.cpu_median:.2f}x"
        return (
            f"{store:<9} {op:<10} {mine:>22} {peer_name:<14} {theirs:>22} {ratio:>6.2f}x "
            f"{f'{GOAL}x: {met}':>12} {cpu:>10}"
        )


def compare(
    table: Table,
    store: str,
    ours: LangGraphWriter,
    peer_name: str,
    peer: LangGraphWriter | None,
    n_put: int,
    n_get: int,
) -> None:
    def pair(a: Callable[[], object], b: Callable[[], object] | None, n: int) -> tuple[Stats, Any]:
        if b is None:
            return timed_pair(a, a, n, warmup=20, cpu=True)[0], None
        return timed_pair(a, b, n, warmup=20, cpu=True)

    mine, theirs = pair(ours.put, peer.put if peer else None, n_put)
    table.add(store, "put", mine, peer_name, theirs)
    mine, theirs = pair(ours.get_latest, peer.get_latest if peer else None, n_get)
    table.add(store, "get_tuple", mine, peer_name, theirs)


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[tuple[str, str]]:
    if url:
        yield url, url
        return
    from pgserver import PostgresServer

    server = PostgresServer()
    try:
        server.initdb()
        server.start()
        yield server.create_database("bench_lifecycle"), server.create_database("bench_langgraph")
    finally:
        server.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--postgres-url", help="use this server instead of starting one")
    args = parser.parse_args()
    quiet_logs()
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from lifecycle.integrations.langgraph import LifecycleSaver
    from lifecycle.stores import open_store
    from lifecycle.stores.file import FileStore
    from lifecycle.stores.sqlite import SqliteStore

    n_put, n_get = (100, 500) if args.quick else (400, 3000)
    content = payload()
    scratch = Path(tempfile.mkdtemp(prefix="tmp-langgraph-", dir=ROOT / "bench" / "results"))
    table = Table()
    print("LifecycleSaver vs LangGraph's savers: same checkpoints (one 10 KB channel value),")
    print("interleaved; times are median / p99 (wall); CPU ratio: this thread's CPU time")
    print(table.header())
    print("-" * len(table.header()))
    try:
        store = SqliteStore(scratch / "lifecycle.db")
        conn = sqlite3.connect(scratch / "langgraph.db", check_same_thread=False)
        peer = SqliteSaver(conn)
        peer.setup()
        ours = LifecycleSaver(store, project="bench")
        compare(
            table,
            "sqlite",
            writer_with_writes(ours, content),
            "SqliteSaver",
            writer_with_writes(peer, content),
            n_put,
            n_get,
        )
        store.close()
        conn.close()

        with postgres(args.postgres_url) as (ours_url, peer_url):
            store = open_store(ours_url)
            with PostgresSaver.from_conn_string(peer_url) as pg:
                pg.setup()
                compare(
                    table,
                    "postgres",
                    writer_with_writes(LifecycleSaver(store, project="bench"), content),
                    "PostgresSaver",
                    writer_with_writes(pg, content),
                    n_put,
                    n_get,
                )
            store.close()

        store = FileStore(scratch / "files")
        ours_file = writer_with_writes(LifecycleSaver(store, project="bench"), content)
        compare(table, "file", ours_file, "(no peer)", None, n_put, n_get)
        store.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
