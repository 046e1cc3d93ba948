"""Instructions per call of LifecycleSaver and LangGraph's savers, counted by callgrind.

    .venv/bin/python bench/langgraph_instructions.py [--calls N] [--only sqlite|postgres]

bench/langgraph_saver.py's wall-clock medians swing with the machine's load; callgrind's
instruction counts do not. For each store (SQLite; PostgreSQL on a throwaway server) and
each side (``LifecycleSaver`` and ``SqliteSaver``/``PostgresSaver``), ``put`` and
``get_tuple`` of the same checkpoints as there (bench/run.py's ``LangGraphWriter``, one
10 KB channel value) run in a fresh process under callgrind, with 0 and with N calls
after the same set-up and warm-up; the difference divided by N is one call, start-up
excluded. What is counted is this process's own work (Python, the driver, SQLite's C
code): not the kernel's (fsync) and not the PostgreSQL server's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOAD = """
import sys, tempfile
from pathlib import Path
root = Path(sys.argv[1])
sys.path[:0] = [str(root), str(root / "bench"), str(root / "tests")]
from langgraph_saver import payload, writer_with_writes
from run import quiet_logs
quiet_logs()
store, side, op, n, url = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
scratch = Path(tempfile.mkdtemp(prefix="tmp-lg-instr-", dir=root / "bench" / "results"))
if side == "ours":
    from lifecycle.integrations.langgraph import LifecycleSaver
    from lifecycle.stores import open_store
    target = f"sqlite:///{scratch}/lifecycle.db" if store == "sqlite" else url
    saver = LifecycleSaver(open_store(target), project="bench")
elif store == "sqlite":
    import sqlite3
    from langgraph.checkpoint.sqlite import SqliteSaver
    saver = SqliteSaver(sqlite3.connect(scratch / "langgraph.db", check_same_thread=False))
    saver.setup()
else:
    from langgraph.checkpoint.postgres import PostgresSaver
    opened = PostgresSaver.from_conn_string(url)  # kept: its end closes the connection
    saver = opened.__enter__()
    saver.setup()
writer = writer_with_writes(saver, payload())
for _ in range(30):
    writer.put()
    writer.get_latest()
action = writer.put if op == "put" else writer.get_latest
for _ in range(n):
    action()
import shutil
shutil.rmtree(scratch, ignore_errors=True)
"""


def instructions(script: Path, args: list[str]) -> int:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, str(script), str(ROOT), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"the workload failed under callgrind:\n{done.stderr[-3000:]}")
    return int(found.group(1))


@contextlib.contextmanager
def postgres() -> Iterator[tuple[str, str]]:
    sys.path.insert(0, str(ROOT / "tests"))
    from pgserver import PostgresServer

    server = PostgresServer()
    try:
        server.initdb()
        server.start()
        yield server.create_database("instr_lifecycle"), server.create_database("instr_langgraph")
    finally:
        server.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt install valgrind)")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tmp-lg-instr-", dir=ROOT / "bench" / "results"))
    script = work / "workload.py"
    script.write_text(WORKLOAD)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "lifecycle")],
        env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    print(f"instructions per call (callgrind, {args.calls} calls, start-up excluded)")
    print(f"{'store':<9} {'call':<10} {'LifecycleSaver':>15} {'peer':>15} {'ratio':>7}")
    stores = [args.only] if args.only else ["sqlite", "postgres"]
    try:
        for store in stores:
            urls = ("", "")
            with contextlib.ExitStack() as stack:
                if store == "postgres":
                    urls = stack.enter_context(postgres())
                for op in ("put", "get_tuple"):
                    per = []
                    for side, url in (("ours", urls[0]), ("theirs", urls[1])):
                        counts = [
                            instructions(script, [store, side, op, str(n), url or "-"])
                            for n in (0, args.calls)
                        ]
                        per.append((counts[1] - counts[0]) / args.calls)
                    print(
                        f"{store:<9} {op:<10} {per[0]:>15,.0f} {per[1]:>15,.0f} "
                        f"{per[0] / per[1]:>6.2f}x",
                        flush=True,
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
