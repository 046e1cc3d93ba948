"""The full hostile-input run: many examples per target, counting inputs and escapes.

    python -m tests.fuzz_run --examples 5000 --cli-examples 500 --planted-examples 1000

Runs every check in tests/hostile.py (record JSON of every kind, keys through a
file store and an SQLite store, store URLs, ``--progress`` JSON, learning names,
store folders with a hostile file planted, command lines; hook events and MCP tool
arguments when ``lifecycle hook`` / ``lifecycle mcp`` exist) with hypothesis, in a
temporary folder whose parent is watched for writes outside it. An escape is
recorded and the run goes on (hypothesis does not stop at the first one), so the
counts are complete. Prints ``inputs tried`` and ``escapes`` per target and in
total; exits 1 if anything escaped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lifecycle.logs import configure  # noqa: E402

configure("critical")  # before hostile builds its sample records: keep stdout for counts

import hostile  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class Tally:
    def __init__(self) -> None:
        self.tried: dict[str, int] = {}
        self.escapes: dict[str, list[str]] = {}

    def run(
        self, name: str, strategy: st.SearchStrategy[Any], check: Callable[[Any], None], n: int
    ) -> None:
        self.tried[name] = 0
        self.escapes[name] = []

        @settings(
            max_examples=n,
            database=None,
            deadline=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def target(value: Any) -> None:
            self.tried[name] += 1
            try:
                check(value)
            except hostile.Escape as exc:
                self.escapes[name].append(str(exc)[:300])

        target()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz_run", description=__doc__)
    parser.add_argument("--examples", type=int, default=5000, help="per in-process target")
    parser.add_argument("--cli-examples", type=int, default=300, help="command lines, hooks")
    parser.add_argument("--mcp-calls", type=int, default=200, help="calls per MCP tool")
    parser.add_argument(
        "--planted-examples", type=int, default=1000, help="stores with a hostile file planted"
    )
    args = parser.parse_args(argv)
    from lifecycle.stores.file import FileStore
    from lifecycle.stores.sqlite import SqliteStore

    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lifecycle-fuzz-") as tmp:
        parent = Path(tmp)
        (parent / "bystander.txt").write_text("must not change")
        work = parent / "work"
        work.mkdir()
        before = hostile.snapshot(parent, skip=work)
        os.chdir(work)
        os.environ["HOME"] = str(work)
        tally.run(
            "record JSON", hostile.raw_records(), lambda c: hostile.check_decode(*c), args.examples
        )
        file_store = FileStore(work / "file-root")
        tally.run(
            "keys (file store)",
            hostile.keys_text,
            lambda k: hostile.check_key(k, file_store),
            args.examples,
        )
        sqlite_store = SqliteStore(work / "keys.db")
        tally.run(
            "keys (SQLite)",
            hostile.keys_text,
            lambda k: hostile.check_key(k, sqlite_store),
            args.examples,
        )
        sqlite_store.close()
        tally.run("store URLs", hostile.store_urls(), hostile.check_url, args.examples)
        tally.run(
            "--progress / --context JSON",
            hostile.json_flag_texts,
            hostile.check_json_flag,
            args.examples,
        )
        tally.run(
            "learning names", hostile.learning_names, hostile.check_learning_names, args.examples
        )
        planted = work / "planted"
        planted.mkdir()
        # The outside folder sits beside the watched parent's bystander: a write through a
        # planted link would show there (and in the snapshot below).
        template, outside = hostile.planted_sandbox(planted)
        tally.run(
            "planted store files (FIFO, folder, links, sparse, torn, flipped, future)",
            hostile.planted_cases(),
            lambda c: hostile.check_planted(c, template, planted, outside),
            args.planted_examples,
        )
        cli_work = work / "cli"
        cli_work.mkdir()
        tally.run(
            "command lines",
            hostile.cli_args(),
            lambda a: hostile.check_cli(a, cli_work),
            args.cli_examples,
        )
        agents = hostile.agent_commands()
        if "hook" in agents:
            from test_hostile_input import hook_events

            tally.run(
                "hook events",
                hook_events,
                lambda b: hostile.check_cli(["hook", "claude"], cli_work, b),
                args.cli_examples,
            )
        if "mcp" in agents:
            import anyio

            mcp_work = work / "mcp"
            mcp_work.mkdir()
            tried, escapes = anyio.run(
                hostile.fuzz_mcp, f"file://{mcp_work / 'store'}", mcp_work, args.mcp_calls, 1
            )
            tally.tried["MCP tool arguments"] = tried
            tally.escapes["MCP tool arguments"] = escapes
        outside = hostile.snapshot(parent, skip=work) != before
    total_tried = sum(tally.tried.values())
    total_escapes = sum(len(e) for e in tally.escapes.values()) + int(outside)
    for name, tried in tally.tried.items():
        print(f"{name}: inputs tried {tried}, escapes {len(tally.escapes[name])}")
    print(f"writes outside the root: {int(outside)}")
    print(f"inputs tried: {total_tried}")
    print(f"escapes: {total_escapes}")
    print(f"seconds: {time.monotonic() - started:.1f}")
    for name, found in tally.escapes.items():
        for text in found[:5]:
            print(f"escape ({name}): {text}")
    return 1 if total_escapes else 0


if __name__ == "__main__":
    sys.exit(main())
