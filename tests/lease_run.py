"""The full concurrency run of the session lease: count acknowledged updates and losses.

    python -m tests.lease_run --updates 200

Three runs, each of ``--updates`` acknowledged progress updates to one open session:

- two machines on one file store: two writers with their own temp folder (``TMPDIR``),
  the audit's simulation of two machines; each a ``lifecycle checkpoint save`` process;
- two spellings of one SQLite file: ``sqlite:///lc.db`` and ``sqlite:////abs/lc.db``;
- MCP plus CLI plus hooks: an MCP server (``lifecycle mcp`` through the SDK's stdio
  client, started without ``TMPDIR``), ``checkpoint save`` processes and
  ``lifecycle hook claude`` PostToolUse events, all at once.

Afterwards every acknowledged update must be in the session (progress keys, files
modified): the count of those that are not is the loss. Every process has a timeout.
Prints one line per run; exits 1 if anything acknowledged was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def _run(args: list[str], cwd: Path, env: dict[str, str], stdin: str = "") -> int:
    outer = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    full = {**outer, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        cwd=cwd, env=full, input=stdin, capture_output=True, text=True, timeout=TIMEOUT,
        check=False,
    )  # fmt: skip
    if done.returncode != 0 or "failed" in done.stdout:
        return 1
    return 0


def saves(folder: Path, url: str, name: str, count: int, tmpdir: Path) -> list[str]:
    tmpdir.mkdir(exist_ok=True)
    acked = []
    for i in range(count):
        key = f"{name}-{i}"
        args = ["checkpoint", "save", "--progress", json.dumps({key: i}), "--store", url]
        if _run(args, folder, {"TMPDIR": str(tmpdir)}) == 0:
            acked.append(key)
    return acked


def hooks(folder: Path, url: str, count: int) -> list[str]:
    acked = []
    for i in range(count):
        path = f"h{i}.py"
        event = {
            "hook_event_name": "PostToolUse",
            "tool_name": "Edit",
            "tool_input": {"file_path": str(folder / path)},
            "cwd": str(folder),
        }
        env = {"LIFECYCLE_STORE": url, "CLAUDE_PROJECT_DIR": str(folder)}
        if _run(["hook", "claude"], folder, env, json.dumps(event)) == 0:
            acked.append(path)
    return acked


def mcp(folder: Path, url: str, count: int) -> list[str]:
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    async def calls() -> list[str]:
        env = {k: v for k, v in os.environ.items() if k != "TMPDIR"}
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lifecycle", "mcp", "--store", url],
            env={**env, "PYTHONPATH": str(ROOT)},
            cwd=str(folder),
        )
        acked = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            for i in range(count):
                key = f"mcp-{i}"
                result = await s.call_tool("session_save", {"progress": {key: i}})
                if not result.is_error:
                    acked.append(key)
        return acked

    return anyio.run(calls)


def session(folder: Path, url: str) -> dict[str, object]:
    full = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "status", "--format", "json", "--store", url],
        cwd=folder, env=full, capture_output=True, text=True, timeout=TIMEOUT, check=True,
    )  # fmt: skip
    data: dict[str, object] = json.loads(done.stdout)
    return data


def start(folder: Path, url: str) -> None:
    if _run(["session", "start", "--store", url], folder, {}) != 0:
        raise SystemExit(f"could not start a session on {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lease_run", description=__doc__)
    parser.add_argument("--updates", type=int, default=200, help="acknowledged updates per run")
    args = parser.parse_args(argv)
    n = args.updates
    lost_total = 0
    with tempfile.TemporaryDirectory(prefix="lifecycle-lease-") as tmp:
        base = Path(tmp)
        runs = []

        # 1. two machines (two temp folders) on one file store
        one = base / "machines"
        one.mkdir()
        url = f"file://{one}/lc"
        start(one, url)
        runs.append(("two machines, file store", one, url, [
            lambda: saves(one, url, "a", n // 2, one / "tmp-a"),
            lambda: saves(one, url, "b", n - n // 2, one / "tmp-b"),
        ]))  # fmt: skip

        # 2. two spellings of one SQLite file
        two = base / "spellings"
        two.mkdir()
        rel, absolute = "sqlite:///lc.db", f"sqlite:///{two}/lc.db"
        start(two, rel)
        runs.append(("two URLs of one SQLite file", two, absolute, [
            lambda: saves(two, rel, "rel", n // 2, two / "tmp-rel"),
            lambda: saves(two, absolute, "abs", n - n // 2, two / "tmp-abs"),
        ]))  # fmt: skip

        # 3. MCP + CLI + hooks
        three = base / "agents"
        three.mkdir()
        url3 = f"file://{three}/lc"
        start(three, url3)
        runs.append(("MCP + CLI + hooks, file store", three, url3, [
            lambda: mcp(three, url3, n // 3),
            lambda: saves(three, url3, "cli", n // 3, three / "tmp-cli"),
            lambda: hooks(three, url3, n - 2 * (n // 3)),
        ]))  # fmt: skip

        for name, folder, url, writers in runs:
            began = time.monotonic()
            with ThreadPoolExecutor(len(writers)) as pool:
                acked = [key for run in [pool.submit(w) for w in writers] for key in run.result()]
            data = session(folder, url)
            held = set(data["progress"]) | set(data["files_modified"])  # type: ignore[call-overload]
            lost = [k for k in acked if k not in held]
            lost_total += len(lost)
            print(
                f"{name}: updates {n}, acknowledged {len(acked)}, lost {len(lost)}, "
                f"seconds {time.monotonic() - began:.1f}"
            )
    print(f"acknowledged updates lost: {lost_total}")
    return 1 if lost_total else 0


if __name__ == "__main__":
    sys.exit(main())
