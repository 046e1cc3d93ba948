"""The benchmark: lifecycle against the physical floor and the best peers, in one run.

    bash bench/run.sh                 # creates bench/.venv with the peers, then runs this
    bench/.venv/bin/python bench/run.py [--quick] [--only SECTION ...] [--postgres-url URL]

Prints a table of medians, p99 and ratios against the floor or peer, and writes the
same to ``bench/results/latest.json``. Scratch data lives in ``bench/results/tmp-*``
(on the repository's disk, not /tmp, which may be a RAM disk elsewhere) and is removed
at the end. A measurement, not a test: a missed budget is reported, never raised.

The budgets are listed in docs/performance.md ("Budgets"); each row says which one
it checks.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import importlib.util
import itertools
import json
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SECTIONS = (
    "file",
    "sqlite",
    "postgres",
    "history",
    "events",
    "startup",
    "size",
    "sessions",
)

# -- measuring ----------------------------------------------------------------------------


class Stats:
    """Samples in nanoseconds (or any unit), sorted; median and p99."""

    def __init__(self, samples: list[float], cpu: list[float] | None = None) -> None:
        self.samples = sorted(samples)
        #: CPU time of this thread per sample (ns), when asked for: on a loaded machine
        #: it shows our own cost apart from waiting for the disk or a CPU.
        self.cpu_median = statistics.median(cpu) if cpu else None

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        index = max(0, math.ceil(0.99 * len(self.samples)) - 1)
        return self.samples[index]


def timed(action: Callable[[], object], n: int, warmup: int) -> Stats:
    """Run ``action`` ``warmup`` times untimed, then ``n`` times timed (perf_counter_ns)."""
    for _ in range(warmup):
        action()
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        action()
        samples.append(clock() - start)
    return Stats(samples)


def timed_round(
    actions: list[Callable[[], object]], n: int, warmup: int, *, cpu: bool = False
) -> list[Stats]:
    """Time several actions round-robin (a, b, c, a, b, c, ...) so that drift in the
    machine's load (other processes, the disk) hits all of them alike. With ``cpu``,
    also this thread's CPU time per call (a syscall each: only for slow actions)."""
    for _ in range(warmup):
        for action in actions:
            action()
    gc.collect()
    samples: list[list[int]] = [[] for _ in actions]
    cpus: list[list[int]] = [[] for _ in actions]
    clock = time.perf_counter_ns
    thread = time.thread_time_ns
    for _ in range(n):
        for action, into, into_cpu in zip(actions, samples, cpus, strict=True):
            if cpu:
                start_cpu = thread()
            start = clock()
            action()
            into.append(clock() - start)
            if cpu:
                into_cpu.append(thread() - start_cpu)
    return [Stats(s, c) for s, c in zip(samples, cpus, strict=True)]


def timed_pair(
    first: Callable[[], object],
    second: Callable[[], object],
    n: int,
    warmup: int,
    *,
    cpu: bool = False,
) -> tuple[Stats, Stats]:
    """Time two actions interleaved (a, b, a, b, ...)."""
    a, b = timed_round([first, second], n, warmup, cpu=cpu)
    return a, b


class Report:
    """Rows of the table; each may compare its median with another row's."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def time(
        self,
        section: str,
        name: str,
        stats: Stats,
        *,
        versus: str | None = None,
        versus_value: float | None = None,
        budget: float | None = None,
        budget_text: str | None = None,
        note: str = "",
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "section": section,
            "name": name,
            "unit": "us",
            "median": stats.median / 1000,
            "p99": stats.p99 / 1000,
            "n": stats.n,
            "note": note,
            "cpu_median": None if stats.cpu_median is None else stats.cpu_median / 1000,
        }
        if stats.cpu_median is not None:
            cpu = f"CPU {stats.cpu_median / 1000:,.0f} us of it"
            row["note"] = f"{cpu}; {note}" if note else cpu
        self._compare(row, versus, versus_value, budget, budget_text)
        self.rows.append(row)
        self._print(row)
        return row

    def value(
        self,
        section: str,
        name: str,
        value: float,
        unit: str,
        *,
        versus: str | None = None,
        versus_value: float | None = None,
        budget: float | None = None,
        budget_text: str | None = None,
        note: str = "",
        p99: float | None = None,
        n: int = 1,
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "section": section,
            "name": name,
            "unit": unit,
            "median": value,
            "p99": p99,
            "n": n,
            "note": note,
        }
        self._compare(row, versus, versus_value, budget, budget_text)
        self.rows.append(row)
        self._print(row)
        return row

    def skip(self, section: str, name: str, reason: str) -> None:
        row = {"section": section, "name": name, "unit": "", "median": None, "p99": None}
        row.update({"n": 0, "note": f"SKIPPED: {reason}"})
        self.rows.append(row)
        self._print(row)

    def find(self, name: str) -> dict[str, Any]:
        for row in self.rows:
            if row["name"] == name:
                return row
        raise KeyError(name)

    def _compare(
        self,
        row: dict[str, Any],
        versus: str | None,
        versus_value: float | None,
        budget: float | None,
        budget_text: str | None,
    ) -> None:
        row["versus"] = versus
        row["ratio"] = None
        row["budget"] = budget
        row["budget_text"] = budget_text
        row["met"] = None
        if versus is not None:
            base = versus_value if versus_value is not None else self.find(versus)["median"]
            if base:
                row["ratio"] = row["median"] / base
        if budget is not None and row["ratio"] is not None:
            row["met"] = row["ratio"] <= budget
        elif budget is not None and versus is None:
            row["met"] = row["median"] <= budget

    @staticmethod
    def _fmt(value: float | None, unit: str) -> str:
        if value is None:
            return "-"
        if unit == "us":
            if value >= 100_000:
                return f"{value / 1e6:.2f} s"
            if value >= 1000:
                return f"{value / 1000:.2f} ms"
            return f"{value:.1f} us"
        if unit == "bytes":
            return f"{value:,.0f} B"
        if unit == "s":
            return f"{value:.2f} s"
        return f"{value:,.2f} {unit}"

    def line(self, row: dict[str, Any]) -> str:
        ratio = "-" if row.get("ratio") is None else f"{row['ratio']:.2f}x"
        budget = row.get("budget_text") or (
            "-" if row.get("budget") is None else f"<= {row['budget']}x"
        )
        met = {True: "ok", False: "MISS", None: ""}[row.get("met")]
        return (
            f"{row['name'][:58]:<58} {self._fmt(row['median'], row['unit']):>11} "
            f"{self._fmt(row['p99'], row['unit']):>11} {row['n']:>6} {ratio:>8} "
            f"{budget:>14} {met:>4}"
        )

    def header(self) -> str:
        return (
            f"{'measurement':<58} {'median':>11} {'p99':>11} {'n':>6} {'ratio':>8} "
            f"{'budget':>14} {'':>4}"
        )

    def _print(self, row: dict[str, Any]) -> None:
        print(self.line(row), flush=True)
        if row.get("note"):
            print(f"    {row['note']}", flush=True)

    def table(self) -> str:
        out = [self.header(), "-" * len(self.header())]
        section = None
        for row in self.rows:
            if row["section"] != section:
                section = row["section"]
                out.append(f"[{section}]")
            out.append(self.line(row))
            if row.get("note"):
                out.append(f"    {row['note']}")
        return "\n".join(out)


# -- the machine ----------------------------------------------------------------------------


def _mount_of(path: Path) -> tuple[str, str, str]:
    """(device, mount point, file system type) holding ``path``."""
    best = ("?", "/", "?")
    target = str(path.resolve())
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            device, point, fstype, *_ = line.split()
            inside = target == point or target.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best[1]):
                best = (device, point, fstype)
    return best


def machine_info(scratch: Path) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    device, point, fstype = _mount_of(scratch)
    rotational = "?"
    name = os.path.basename(device)
    with contextlib.suppress(OSError):
        rotational = Path(f"/sys/block/{name}/queue/rotational").read_text().strip()
    versions = {}
    for dist in (
        "langgraph",
        "langgraph-checkpoint",
        "langgraph-checkpoint-sqlite",
        "langgraph-checkpoint-postgres",
        "transitions",
        "orjson",
        "cattrs",
        "attrs",
        "structlog",
        "psycopg",
    ):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "nproc": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "scratch_dir": str(scratch),
        "filesystem": {"device": device, "mount": point, "type": fstype, "rotational": rotational},
        "packages": versions,
    }


# -- fixtures -----------------------------------------------------------------------------


def quiet_logs() -> None:
    """The CLI's log set-up (warnings and up, on stderr): what a user of the library sees."""
    from lifecycle.logs import configure

    configure("warning", sys.stderr)


def wait_for_resident(root: str, env: dict[str, str], timeout: float = 30.0) -> None:
    """Until ``root``'s resident hook process answers (a tree without one: at once)."""
    try:
        from lifecycle.integrations import resident
    except ImportError:
        return
    end = time.monotonic() + timeout
    while time.monotonic() < end and resident.status(root, env) is None:
        time.sleep(0.05)


def new_manager(store: Any, project: str = "bench", **kwargs: Any) -> Any:
    from lifecycle.session import SessionManager

    return SessionManager(store, project=project, **kwargs)


def fill_state(manager: Any, target: int = 10_000) -> int:
    """Give the session a realistic work state whose checkpoint is about ``target`` bytes."""
    from lifecycle import codec
    from lifecycle.records import Checkpoint

    i = 0
    while True:
        manager.add_task(
            f"task-{i:03d}",
            f"Implement step {i} of the storage layer: parse, validate, persist and test it",
            status="in_progress",
            priority=("high", "medium", "low")[i % 3],
            progress=f"{(i * 7) % 100}%",
        )
        manager.record_decision(
            f"Decision {i}: keep records as JSON with an explicit schema version",
            rationale="Readable on disk, cheap with orjson, upcastable when fields change",
            impact=f"every record kind, module {i}",
        )
        manager.record_file_change(f"src/lifecycle/module_{i:03d}.py", ("edit", "test"), 12 + i)
        if i % 4 == 0:
            manager.add_open_question(f"Should module {i} expose an async twin?")
            manager.record_discovery(pattern=f"pattern {i}: write temp, fsync, rename")
        i += 1
        probe = Checkpoint(id="cp-probe", timestamp=datetime.now(UTC), state=manager.work)
        if len(codec.encode(probe)) >= target - 600:  # the rest: ids, keys, progress
            break
    cp = manager.create_checkpoint(progress={"step": "000000"})
    entry = manager.store.get(cp.key)
    return len(entry.value)


class Counter:
    def __init__(self, start: int = 1) -> None:
        self.i = start

    def __call__(self) -> str:
        self.i += 1
        return f"{self.i:06d}"


def checkpoint_action(manager: Any) -> Callable[[], object]:
    step = Counter()

    def action() -> object:
        result = manager.create_checkpoint(progress={"step": step()})
        assert result.written, result
        return result

    return action


def langgraph_payload(manager: Any) -> dict[str, Any]:
    """The same 10 KB content as lifecycle's latest checkpoint, as a plain dict."""
    import orjson

    from lifecycle import codec

    # Through JSON, so it holds only plain types (no enums), as any agent state would.
    loaded: dict[str, Any] = orjson.loads(codec.encode(manager.read_checkpoint()))
    return loaded


class LangGraphWriter:
    """Puts successive checkpoints holding ``payload`` into a LangGraph saver."""

    def __init__(self, saver: Any, payload: dict[str, Any]) -> None:
        from langgraph.checkpoint.base.id import uuid6

        self.saver = saver
        self.payload = payload
        self.uuid6 = uuid6
        self.parent: str | None = None
        self.step = 0
        self.version: Any = None

    def put(self) -> object:
        self.step += 1
        payload = dict(self.payload)
        payload["progress"] = {"step": f"{self.step:06d}"}
        cp_id = str(self.uuid6(clock_seq=self.step))
        # The channel's next version in the saver's own form, named in new_versions as a
        # graph does: PostgresSaver stores a channel value only at a version named there.
        self.version = self.saver.get_next_version(self.version, None)
        checkpoint = {
            "v": 4,
            "id": cp_id,
            "ts": datetime.now(UTC).isoformat(),
            "channel_values": {"session": payload},
            "channel_versions": {"session": self.version},
            "versions_seen": {},
            "updated_channels": ["session"],
        }
        config = {"configurable": {"thread_id": "bench", "checkpoint_ns": ""}}
        if self.parent is not None:
            config["configurable"]["checkpoint_id"] = self.parent
        metadata = {"source": "loop", "step": self.step}
        saved = self.saver.put(config, checkpoint, metadata, {"session": self.version})
        self.parent = cp_id
        return saved

    def get_latest(self) -> object:
        found = self.saver.get_tuple({"configurable": {"thread_id": "bench", "checkpoint_ns": ""}})
        # Both sides must read the value back: a read that leaves it out is cheaper.
        assert found is not None
        assert "session" in found.checkpoint["channel_values"]
        return found


# -- sections -----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, scratch: Path, report: Report) -> None:
        self.args = args
        self.scratch = scratch
        self.report = report
        self.quick = args.quick
        self.extra: dict[str, Any] = {}

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    # 1. durable checkpoint on the file store vs the bare durable write ------------------

    def file(self) -> None:
        from lifecycle.stores.file import (
            FileStore,
            _fsync_dir,
            _write_file,
            bare_durable_write,
            encode_record,
        )

        section = "file store: durable checkpoint"
        store = FileStore(self.scratch / "file")
        manager = new_manager(store)
        manager.start_session(restore=False)
        size = fill_state(manager)
        self.extra["checkpoint_bytes"] = size
        key = manager.last_checkpoint.key
        record = encode_record(1, store.get("bench/" + key).value)
        floor_dir = self.scratch / "floor"
        floor_dir.mkdir()
        names = Counter()

        def floor() -> None:
            bare_durable_write(floor_dir / f"cp-{names()}.rec", record)

        pointer = encode_record(2, b"x" * 120)  # a checkpoints/latest pointer's size
        two_dir = self.scratch / "floor2"
        two_dir.mkdir()

        def floor_two_files() -> None:
            # What a checkpoint must do: the checkpoint durably, plus the latest pointer
            # (not fsynced itself) renamed over the old one, one folder fsync for both.
            name = names()
            _write_file(str(two_dir / ".cp.tmp"), record)
            _write_file(str(two_dir / ".latest.tmp"), pointer, sync=False)
            os.replace(two_dir / ".cp.tmp", two_dir / f"cp-{name}.rec")
            os.replace(two_dir / ".latest.tmp", two_dir / "latest.rec")
            _fsync_dir(str(two_dir))

        n = self.n(400, 100)
        floor_name = f"floor: write+fsync+rename+dir fsync ({len(record):,} B)"
        ours, bare, two = timed_round(
            [checkpoint_action(manager), floor, floor_two_files], n, warmup=20, cpu=True
        )
        self.report.time(section, floor_name, bare)
        self.report.time(
            section,
            "file: create_checkpoint (manager, full path)",
            ours,
            versus=floor_name,
            budget=1.5,
        )
        self.report.time(
            section,
            "floor + latest pointer (2nd file, not fsynced, same dir fsync)",
            two,
            versus=floor_name,
            note="the physical cost of the pointer; create_checkpoint against it: "
            f"{ours.median / two.median:.2f}x",
        )
        # start_session(restore=True) as a whole against one durable write plus the read,
        # all three interleaved.
        whole, bare2, two2, read = timed_round(
            [
                lambda: new_manager(store).start_session(restore=True),
                floor,
                floor_two_files,
                manager.read_checkpoint,
            ],
            self.n(300, 80),
            warmup=10,
        )
        self.report.time(section, "file: read_checkpoint() latest (get+decode)", read)
        self.report.time(
            section,
            "file: SessionManager() + start_session(restore=True)",
            whole,
            versus="floor durable write + read_checkpoint",
            versus_value=bare2.median / 1000 + read.median / 1000,
            budget=1.0,
            budget_text="<= write+read",
            note=f"interleaved: floor write {bare2.median / 1e6:.2f} ms + read "
            f"{read.median / 1e3:.0f} us; against floor + pointer "
            f"({two2.median / 1e6:.2f} ms) + read: "
            f"{whole.median / (two2.median + read.median):.2f}x "
            "(start_session writes the session record and session/current)",
        )

    # 2. SQLite store vs LangGraph's SqliteSaver ----------------------------------------

    def sqlite(self) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        from lifecycle.stores.sqlite import SqliteStore

        section = "sqlite: lifecycle vs LangGraph SqliteSaver"
        store = SqliteStore(self.scratch / "lifecycle.db")
        manager = new_manager(store)
        manager.start_session(restore=False)
        fill_state(manager)
        conn = sqlite3.connect(self.scratch / "langgraph.db", check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        writer = LangGraphWriter(saver, langgraph_payload(manager))
        writer.put()
        pragmas = {
            "lifecycle": store._conn.execute("PRAGMA synchronous").fetchone()[0],
            "langgraph": conn.execute("PRAGMA synchronous").fetchone()[0],
            "lifecycle_journal": store._conn.execute("PRAGMA journal_mode").fetchone()[0],
            "langgraph_journal": conn.execute("PRAGMA journal_mode").fetchone()[0],
        }
        self.extra["sqlite_pragmas"] = pragmas
        lg_size = len(saver.serde.dumps_typed(writer.get_latest().checkpoint)[1])
        note = (
            f"synchronous={pragmas['lifecycle']}/{pragmas['langgraph']} "
            f"(lifecycle/LangGraph; 2=FULL), journal {pragmas['lifecycle_journal']}/"
            f"{pragmas['langgraph_journal']}; LangGraph blob {lg_size:,} B (msgpack)"
        )
        n = self.n(400, 100)
        ours, peer = timed_pair(checkpoint_action(manager), writer.put, n, warmup=20, cpu=True)
        self.report.time(section, "LangGraph SqliteSaver.put (same 10 KB)", peer, note=note)
        self.report.time(
            section,
            "sqlite: create_checkpoint (manager, full path)",
            ours,
            versus="LangGraph SqliteSaver.put (same 10 KB)",
            budget=1.0,
        )
        reads = self.n(3000, 500)
        ours_r, peer_r = timed_pair(manager.read_checkpoint, writer.get_latest, reads, warmup=100)
        self.report.time(section, "LangGraph SqliteSaver.get_tuple (checkpoint_ns='')", peer_r)
        self.report.time(
            section,
            "sqlite: read_checkpoint() latest (get+decode)",
            ours_r,
            versus="LangGraph SqliteSaver.get_tuple (checkpoint_ns='')",
            budget=3.0,
        )
        body = os.urandom(10 * 1024)
        raw_keys = Counter()
        whole, raw_put, read = timed_round(
            [
                lambda: new_manager(store).start_session(restore=True),
                # a new key each time, as start_session writes a new session record
                lambda: store.put(f"bench/raw/{raw_keys()}", body),
                manager.read_checkpoint,
            ],
            self.n(300, 80),
            warmup=10,
        )
        self.report.time(section, "sqlite: store.put 10 KB, new key (one durable commit)", raw_put)
        self.report.time(
            section,
            "sqlite: SessionManager() + start_session(restore=True)",
            whole,
            versus="store.put + read_checkpoint",
            versus_value=raw_put.median / 1000 + read.median / 1000,
            budget=1.0,
            budget_text="<= write+read",
            note=f"interleaved: store.put {raw_put.median / 1e6:.2f} ms + read "
            f"{read.median / 1e3:.0f} us",
        )
        store.close()
        conn.close()

    # 3. PostgreSQL store vs LangGraph's PostgresSaver on the same server ---------------

    @contextlib.contextmanager
    def postgres_server(self) -> Iterator[tuple[str, str]]:
        """(url for lifecycle, url for LangGraph): two databases on one server."""
        if self.args.postgres_url:
            yield self.args.postgres_url, self.args.postgres_url
            return
        from pgserver import PostgresServer

        server = PostgresServer()
        try:
            server.initdb()
            server.start()
            ours = server.create_database("bench_lifecycle")
            peer = server.create_database("bench_langgraph")
            yield ours, peer
        finally:
            server.cleanup()

    def postgres(self) -> None:
        section = "postgres: lifecycle vs LangGraph PostgresSaver (same server)"
        try:
            from langgraph.checkpoint.postgres import PostgresSaver
        except ImportError as exc:
            self.report.skip(section, "postgres", f"langgraph-checkpoint-postgres missing: {exc}")
            return
        try:
            server = self.postgres_server()
            ours_url, peer_url = server.__enter__()
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.report.skip(section, "postgres", f"no PostgreSQL server: {first}")
            return
        try:
            import psycopg

            from lifecycle.stores import open_store

            store = open_store(ours_url)
            manager = new_manager(store)
            manager.start_session(restore=False)
            fill_state(manager)
            with PostgresSaver.from_conn_string(peer_url) as saver:
                saver.setup()
                writer = LangGraphWriter(saver, langgraph_payload(manager))
                writer.put()
                with psycopg.connect(ours_url, autocommit=True) as conn:
                    version = conn.execute("SHOW server_version").fetchone()[0]
                    sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
                    fsync = conn.execute("SHOW fsync").fetchone()[0]
                    self.extra["postgres"] = {
                        "server_version": version,
                        "synchronous_commit": sync,
                        "fsync": fsync,
                    }
                    ping = timed(lambda: conn.execute("SELECT 1"), self.n(3000, 500), 100)
                self.report.time(
                    section,
                    "floor: psycopg round trip SELECT 1",
                    ping,
                    note=f"PostgreSQL {version}, 127.0.0.1, fsync={fsync}, "
                    f"synchronous_commit={sync}",
                )
                n = self.n(400, 100)
                ours, peer = timed_pair(
                    checkpoint_action(manager), writer.put, n, warmup=20, cpu=True
                )
                self.report.time(section, "LangGraph PostgresSaver.put (same 10 KB)", peer)
                self.report.time(
                    section,
                    "postgres: create_checkpoint (manager, full path)",
                    ours,
                    versus="LangGraph PostgresSaver.put (same 10 KB)",
                    budget=1.0,
                )
                reads = self.n(3000, 500)
                ours_r, peer_r = timed_pair(
                    manager.read_checkpoint, writer.get_latest, reads, warmup=100
                )
                self.report.time(
                    section, "LangGraph PostgresSaver.get_tuple (checkpoint_ns='')", peer_r
                )
                self.report.time(
                    section,
                    "postgres: read_checkpoint() latest (get+decode)",
                    ours_r,
                    versus="LangGraph PostgresSaver.get_tuple (checkpoint_ns='')",
                    budget=3.0,
                )
                whole = timed(
                    lambda: new_manager(store).start_session(restore=True),
                    self.n(300, 80),
                    warmup=10,
                )
                self.report.time(
                    section, "postgres: SessionManager() + start_session(restore=True)", whole
                )
            store.close()
        finally:
            server.__exit__(None, None, None)

    # 4. restore latest at 100 / 10,000 / 100,000 checkpoints; pruning 100,000 ----------

    def write_history(self, store: Any, count: int) -> None:
        """``count`` real (small) checkpoints under bench/checkpoints/, plus the pointer."""
        from lifecycle import codec, keys
        from lifecycle.records import Checkpoint, Pointer
        from lifecycle.stores.base import Put

        base = datetime(2024, 1, 1, tzinfo=UTC)
        chunk: list[Any] = []
        last = None
        for i in range(count):
            at = base + timedelta(seconds=i)
            key = keys.checkpoint_key("manual", at)
            cp = Checkpoint(
                id=f"cp-{keys.format_ts(at)}",
                timestamp=at,
                phase="history",
                progress={"step": i},
                session_id="session-history",
                project="bench",
                key=key,
            )
            chunk.append(Put("bench/" + key, codec.encode(cp), sync=False))
            last = cp
            if len(chunk) == 2000:
                store.batch(chunk)
                chunk = []
        if chunk:
            store.batch(chunk)
        assert last is not None
        pointer = codec.encode(Pointer(last.key, last.id, last.timestamp))
        store.put("bench/checkpoints/latest", pointer)

    def history(self) -> None:
        from lifecycle.stores.file import FileStore
        from lifecycle.stores.sqlite import SqliteStore

        sizes = (100, 10_000, 100_000) if not self.quick else (100, 10_000)
        retention = importlib.util.find_spec("lifecycle.retention") is not None
        for kind in ("file", "sqlite"):
            section = f"{kind}: restore latest vs history size; pruning"
            # Every size's store is written first, then their reads are timed round-robin
            # (100, 10,000, 100,000, 100, ...): the machine's drift hits each size alike.
            wheres, stores, managers, notes = [], [], [], []
            for count in sizes:
                where = self.scratch / f"history-{kind}-{count}"
                store = FileStore(where) if kind == "file" else SqliteStore(str(where) + ".db")
                started = time.perf_counter()
                self.write_history(store, count)
                filled = time.perf_counter() - started
                manager = new_manager(store)
                manager.start_session(restore=True)
                fill_state(manager)  # the latest is a real 10 KB checkpoint
                wheres.append(where)
                stores.append(store)
                managers.append(manager)
                notes.append(f"history written in {filled:.1f} s")
            reads = [manager.read_checkpoint for manager in managers]
            every = timed_round(reads, self.n(2000, 300), warmup=100)
            first = f"{kind}: read_checkpoint() latest, {sizes[0]:,} in history"
            for count, stats, note in zip(sizes, every, notes, strict=True):
                name = f"{kind}: read_checkpoint() latest, {count:,} in history"
                if count == sizes[0]:
                    self.report.time(section, name, stats, note=note + "; sizes interleaved")
                else:
                    self.report.time(
                        section,
                        name,
                        stats,
                        versus=first,
                        budget=1.5 if count == sizes[-1] else None,
                        note=note,
                    )
            self.prune(section, kind, stores[-1], managers[-1], sizes[-1], retention)
            for where, store in zip(wheres, stores, strict=True):
                store.close()
                if kind == "file":
                    shutil.rmtree(where, ignore_errors=True)
                else:
                    for suffix in ("", "-wal", "-shm"):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(str(where) + ".db" + suffix)

    def prune(
        self, section: str, kind: str, store: Any, manager: Any, count: int, retention: bool
    ) -> None:
        """Prune the written history (all older than 90 days): lifecycle.retention when
        present, else deleting every checkpoint but the latest through store.batch."""
        keep = manager.last_checkpoint.key
        if retention:
            from lifecycle import retention as lr

            marks: list[int] = []
            started = time.perf_counter_ns()
            the_plan = lr.plan(manager.store, datetime.now(UTC))
            planned = time.perf_counter_ns()
            marks.append(planned)
            result = lr.apply(
                manager.store,
                the_plan,
                progress=lambda done, total: marks.append(time.perf_counter_ns()),
            )
            total = (time.perf_counter_ns() - started) / 1e9
            batches = [b - a for a, b in itertools.pairwise(marks)]
            pruned = result.pruned_checkpoints
            self.report.time(
                section,
                f"{kind}: retention.prune {pruned:,} checkpoints, per batch of {lr.BATCH_SIZE}",
                Stats(batches),
                note=f"lifecycle.retention: plan {(planned - started) / 1e6:.0f} ms "
                f"(lists and parses {count:,} keys), then {len(batches)} batches",
            )
        else:
            from lifecycle.stores.base import Delete

            started = time.perf_counter_ns()
            names = [k for _, k in manager.list_checkpoints()]
            listed = time.perf_counter_ns() - started
            doomed = ["bench/" + k for k in names if k != keep]
            chunks = []
            for i in range(0, len(doomed), 1000):
                ops = [Delete(k) for k in doomed[i : i + 1000]]
                t0 = time.perf_counter_ns()
                store.batch(ops)
                chunks.append(time.perf_counter_ns() - t0)
            total = (time.perf_counter_ns() - started) / 1e9
            pruned = len(doomed)
            self.report.time(
                section,
                f"{kind}: prune {pruned:,} checkpoints, per batch of 1,000 deletes",
                Stats(chunks),
                note=f"STAND-IN for lifecycle.retention: list_checkpoints "
                f"({listed / 1e6:.0f} ms) + store.batch(Delete x 1,000) x {len(chunks)}",
            )
        self.report.value(section, f"{kind}: prune {pruned:,} checkpoints, total", total, "s")
        assert manager.read_checkpoint().key == keep
        assert len(manager.list_checkpoints()) <= 3, manager.list_checkpoints()[:5]

    # 5. a work event that does not checkpoint vs a bare transitions event -------------

    def events(self) -> None:
        from transitions import Machine

        from lifecycle.stores.file import FileStore

        section = "work event (no checkpoint) vs bare transitions event"

        class Model:
            pass

        model = Model()
        Machine(
            model=model,
            states=["a", "b"],
            transitions=[["go", "a", "b"], ["go", "b", "a"]],
            initial="a",
            auto_transitions=False,
        )
        store = FileStore(self.scratch / "events")
        manager = new_manager(store)
        manager.start_session(restore=False)
        fill_state(manager)
        files = [f"src/lifecycle/module_{i:03d}.py" for i in range(7)]
        which = Counter()

        def record_file_change() -> object:
            outcome = manager.record_file_change(files[int(which()) % 7], "edit")
            assert not outcome.checkpointed
            return outcome

        def tick() -> object:
            outcome = manager.tick()
            assert not outcome.checkpointed
            return outcome

        n = self.n(20_000, 3000)
        ours, bare = timed_pair(tick, model.go, n, warmup=2000)
        self.report.time(section, "transitions Machine: model.go() (bare event)", bare)
        self.report.time(
            section,
            "tick() (no trigger due), 10 KB session",
            ours,
            versus="transitions Machine: model.go() (bare event)",
            budget=3.0,
        )
        ours, _ = timed_pair(record_file_change, model.go, n, warmup=2000)
        self.report.time(
            section,
            "record_file_change() (no trigger due), 10 KB session",
            ours,
            versus="transitions Machine: model.go() (bare event)",
            budget=3.0,
        )

    # 6. process start-up: the hook vs `python -c "import transitions"` --------------------
    # SessionStart and SessionEnd are answered by the project's resident process (started
    # by the first of them; waited for after the warm-up), as for a user whose Claude Code
    # session ran a hook in the last 30 minutes. bench/hook_latency.py also times them
    # without it.

    def startup(self) -> None:
        section = "process start-up vs python -c 'import transitions'"
        python = sys.executable
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        env.pop("LIFECYCLE_COVERAGE", None)
        project = self.scratch / "startup"
        project.mkdir()
        store_url = "file://" + str(project / ".lifecycle")
        env["LIFECYCLE_STORE"] = store_url
        env["LIFECYCLE_PROJECT"] = "default"  # the project seeded below (not the folder's name)
        env["CLAUDE_PROJECT_DIR"] = str(project)  # as Claude Code runs its hooks
        # A project with a session to resume.
        from lifecycle.stores.file import FileStore

        manager = new_manager(FileStore(project / ".lifecycle"), project="default")
        manager.start_session(restore=False)
        fill_state(manager)

        def run(argv: list[str], stdin: str | None = None) -> Callable[[], object]:
            def action() -> object:
                return subprocess.run(
                    argv,
                    input=stdin,
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=project,
                    env=env,
                    timeout=60,
                )

            return action

        floor = run([python, "-c", "import transitions"])
        bare_python = run([python, "-c", "pass"])
        n = self.n(40, 10)
        hook = subprocess.run(
            [python, "-m", "lifecycle", "hook", "--help"],
            capture_output=True,
            cwd=project,
            env=env,
            timeout=60,
            check=False,
        )
        floor_name = "python -c 'import transitions'"
        if hook.returncode == 0:

            def event(name: str, **fields: Any) -> str:
                common = {"session_id": "bench", "transcript_path": "/dev/null"}
                common["cwd"] = str(project)
                return json.dumps(
                    {**common, "permission_mode": "default", "hook_event_name": name, **fields}
                )

            hook_argv = [python, "-m", "lifecycle", "hook", "claude"]
            start = run(hook_argv, event("SessionStart", source="resume"))
            end = run(hook_argv, event("SessionEnd", reason="other"))
            # A session with some work, so that every start has a checkpoint to restore.
            run(hook_argv, event("SessionStart", source="startup"))()
            for i in range(5):
                write = {"file_path": f"{project}/src/m{i}.py", "content": "x"}
                post = event("PostToolUse", tool_name="Write", tool_input=write)
                run(hook_argv, post)()
            end()
            floor_t, bare_t, start_t, end_t = [], [], [], []
            for i in range(n + 3):
                if i == 3:
                    wait_for_resident(str(project), env)
                for action, into in ((floor, floor_t), (bare_python, bare_t), (start, start_t)):
                    t0 = time.perf_counter_ns()
                    action()
                    if i >= 3:  # warm-up
                        into.append(time.perf_counter_ns() - t0)
                t0 = time.perf_counter_ns()
                end()  # SessionEnd closes the session the start resumed (timed apart)
                if i >= 3:
                    end_t.append(time.perf_counter_ns() - t0)
            self.report.time(section, floor_name, Stats(floor_t))
            self.report.time(section, "python -c pass", Stats(bare_t), versus=floor_name)
            self.report.time(
                section,
                "lifecycle hook claude (SessionStart, resume)",
                Stats(start_t),
                versus=floor_name,
                budget=2.5,
            )
            self.report.time(
                section,
                "lifecycle hook claude (SessionEnd)",
                Stats(end_t),
                versus=floor_name,
                note="Claude Code allows SessionEnd 1.5 s",
            )
        else:
            parser = run([python, "-c", "import lifecycle.cli; lifecycle.cli.build_parser()"])
            resume = run(
                [
                    python,
                    "-c",
                    "from lifecycle.session import SessionManager; "
                    f"SessionManager({store_url!r}).start_session(restore=True)",
                ]
            )
            demo_help = run([python, "-m", "lifecycle", "demo", "--help"])
            floor_s, bare_s, parser_s, resume_s, help_s = timed_round(
                [floor, bare_python, parser, resume, demo_help], n, warmup=3
            )
            self.report.time(section, floor_name, floor_s)
            self.report.time(section, "python -c pass", bare_s, versus=floor_name)
            self.report.skip(
                section,
                "lifecycle hook claude (SessionStart, resume)",
                "`lifecycle hook` is not on this branch yet; measured again automatically "
                "once `lifecycle hook --help` succeeds. Stand-ins below.",
            )
            self.report.time(
                section,
                "STAND-IN: process: SessionManager(url).start_session(resume)",
                resume_s,
                versus=floor_name,
                budget=2.5,
            )
            self.report.time(
                section,
                "process: import lifecycle.cli; build_parser()",
                parser_s,
                versus=floor_name,
            )
            self.report.time(
                section, "process: python -m lifecycle demo --help", help_s, versus=floor_name
            )
        self.import_breakdown(section, python, env, project)

    def import_breakdown(self, section: str, python: str, env: dict[str, str], cwd: Path) -> None:
        """Self import time per top-level package for ``import lifecycle.session``
        (python -X importtime, the least of 7 runs per package)."""
        best: dict[str, int] = {}
        for _ in range(7):
            done = subprocess.run(
                [python, "-X", "importtime", "-c", "import lifecycle.session"],
                capture_output=True,
                text=True,
                check=True,
                cwd=cwd,
                env=env,
                timeout=60,
            )
            totals: dict[str, int] = {}
            for line in done.stderr.splitlines():
                if not line.startswith("import time:") or "self [us]" in line:
                    continue
                own, _, name = line[len("import time:") :].split("|")
                package = name.strip().split(".")[0]
                totals[package] = totals.get(package, 0) + int(own)
            for package, us in totals.items():
                best[package] = min(best.get(package, us), us)
        ranked = sorted(best.items(), key=lambda item: -item[1])
        self.extra["import_lifecycle_session_us"] = dict(ranked)
        total = sum(best.values())
        top = ", ".join(f"{name} {us / 1000:.1f}" for name, us in ranked[:8])
        self.report.value(
            section,
            "import lifecycle.session: self time of all modules",
            total / 1e6,
            "s",
            note=f"ms per package (least of 7): {top}",
        )

    # 7. bytes per checkpoint after 10 and after 1,000 earlier ones ----------------------

    def size(self) -> None:
        from lifecycle import codec
        from lifecycle.stores.file import FileStore

        section = "checkpoint size vs checkpoints before it"
        store = FileStore(self.scratch / "size")
        manager = new_manager(store)
        manager.start_session(restore=False)
        fill_state(manager)  # writes checkpoint #1
        action = checkpoint_action(manager)
        sizes: dict[int, tuple[int, int, int]] = {}
        for done in range(1, 1002):
            if done in (10, 1000):
                action()  # checkpoint done+1: 'done' checkpoints came before it
                key = manager.last_checkpoint.key
                value = len(store.get("bench/" + key).value)
                path = store._path("bench/" + key)[1]
                on_disk = os.stat(path).st_size
                record = len(codec.encode(manager.session))
                sizes[done] = (value, on_disk, record)
            else:
                action()
        v10, d10, r10 = sizes[10]
        v1000, d1000, r1000 = sizes[1000]
        self.report.value(section, "checkpoint bytes after 10 earlier", v10, "bytes")
        self.report.value(
            section,
            "checkpoint bytes after 1,000 earlier",
            v1000,
            "bytes",
            versus="checkpoint bytes after 10 earlier",
            budget=1.0,
            budget_text="equal",
            note=f"file store record on disk: {d10:,} B vs {d1000:,} B",
        )
        self.report.value(section, "session record bytes after 10 checkpoints", r10, "bytes")
        self.report.value(
            section,
            "session record bytes after 1,000 checkpoints",
            r1000,
            "bytes",
            versus="session record bytes after 10 checkpoints",
            note="the session record keeps the last RECENT_CHECKPOINTS refs and a count; "
            "written at end_session / save_context, not per checkpoint",
        )

    # 8. 10,000 live sessions in one process ---------------------------------------------

    def sessions(self) -> None:
        from lifecycle.stores.memory import MemoryStore

        section = "10,000 live sessions in one process"
        count = self.n(10_000, 2000)

        def make(store: Any, i: int) -> Any:
            manager = new_manager(store, project=f"p{i}")
            manager.start_session(restore=False)
            manager.add_task("task-1", "the first task", status="in_progress")
            return manager

        # Pass 1: creation time, no tracing.
        store = MemoryStore()
        make(store, -1)
        gc.collect()
        samples = []
        live = []
        clock = time.perf_counter_ns
        for i in range(count):
            start = clock()
            live.append(make(store, i))
            samples.append(clock() - start)
        self.report.time(
            section,
            "create one (SessionManager + start_session + add_task)",
            Stats(samples),
            note=f"{count:,} managers on one MemoryStore, all kept alive",
        )
        del live, store
        gc.collect()
        # Pass 2: memory with tracemalloc (Python allocations, the store's records included).
        store = MemoryStore()
        make(store, -1)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        base = tracemalloc.get_traced_memory()[0]
        live = [make(store, i) for i in range(count)]
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        stats = after.compare_to(before, "filename")[:5]
        top = ", ".join(
            f"{Path(s.traceback[0].filename).name} {s.size_diff / count / 1024:.1f} KB"
            for s in stats
        )
        del before, after
        self.report.value(
            section,
            "memory per live session (tracemalloc, store included)",
            used / count / 1024,
            "KB",
            budget=25.0,
            budget_text="< 25 KB",
            note=f"top files per session: {top}",
        )
        store_bytes = sum(len(e.value) for e in store._data.values())
        self.report.value(
            section, "of which stored record bytes per session", store_bytes / count / 1024, "KB"
        )
        del live


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, history to 10k")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--postgres-url", help="use this server instead of starting one")
    parser.add_argument(
        "--output", type=Path, default=RESULTS / "latest.json", help="where to write the JSON"
    )
    args = parser.parse_args()
    quiet_logs()
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = Report()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="tmp-", dir=RESULTS) as tmp:
        scratch = Path(tmp)
        info = machine_info(scratch)
        print(
            f"lifecycle bench: {info['cpu_model']} x{info['nproc']}, "
            f"{info['filesystem']['type']} on {info['filesystem']['device']}, "
            f"Python {info['python']}, SQLite {info['sqlite']}",
            flush=True,
        )
        print(report.header(), flush=True)
        bench = Bench(args, scratch, report)
        for name in SECTIONS:
            if args.only and name not in args.only:
                continue
            t0 = time.perf_counter()
            getattr(bench, name)()
            print(f"  ({name} took {time.perf_counter() - t0:.1f} s)", flush=True)
    print()
    print(report.table())
    missed = [r["name"] for r in report.rows if r.get("met") is False]
    print()
    print("budgets missed: " + (", ".join(missed) if missed else "none"))
    data = {
        "started": started.isoformat(),
        "seconds": (datetime.now(UTC) - started).total_seconds(),
        "quick": args.quick,
        "machine": info,
        "extra": bench.extra,
        "rows": report.rows,
        "missed": missed,
        "loadavg_at_end": os.getloadavg(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
