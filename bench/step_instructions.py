"""Instructions per event, this checkout against another revision, counted by callgrind.

    .venv/bin/python bench/step_instructions.py [REVISION] [--events N]

Wall-clock medians on a shared 2-core machine swing by 2x; instruction counts do
not (valgrind's callgrind counts them, whatever else the machine is doing). Each
workload runs twice per tree, with 0 and with N events, in a fresh process with
``PYTHONHASHSEED=0`` and bytecode compiled beforehand; the difference divided by N is
what one event costs, start-up excluded. REVISION (default: the parent of the first
commit of the session-package refactor) is checked out in ``build/step-base/``.
Logging is filtered out in both trees, so neither pays for log lines.

Workloads, on a memory store with a session of 40 tasks and 40 decisions (~15 KB):
``record`` (record_file_change, no trigger due), ``tick`` (nothing due, nothing
unsaved) and ``save`` (create_checkpoint with a new progress: one checkpoint each);
``save-file`` is ``save`` on a file store in a temporary folder (the store's own Python
counted too; callgrind counts no time asleep in fsync). ``--only`` picks workloads.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = "2129da7"
WORKLOADS = ("record", "tick", "save", "save-file")

WORKLOAD = """
import logging, sys
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
from datetime import UTC, datetime, timedelta
from lifecycle import SessionManager, open_store
moment = [datetime(2026, 1, 1, tzinfo=UTC)]
def clock():
    moment[0] += timedelta(seconds=1)
    return moment[0]
what, n = sys.argv[1], int(sys.argv[2])
url = "file://" + sys.argv[3] if what == "save-file" else "memory://"
m = SessionManager(store=open_store(url), project="bench", clock=clock)
m.start_session(restore=False)
for i in range(40):
    m.complete_task(f"T{i}", "x" * 100, priority="low")
    m.record_decision("d" * 100, "r" * 50)
m.create_checkpoint()
if what == "record":
    for i in range(n):
        m.record_file_change(f"src/f{i % 50}.py")
elif what == "tick":
    for i in range(n):
        m.tick()
else:
    for i in range(n):
        m.create_checkpoint(progress={"done": i})
"""


def counted(tree: Path, script: Path, *args: str) -> int:
    """Instructions callgrind counts for ``python script *args`` on ``tree``'s package."""
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(tree))
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, str(script), *args],
        cwd=tree, env=env, capture_output=True, text=True, timeout=1800, check=True,
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def compile_trees(*trees: Path) -> None:
    """Bytecode for each tree's package first, as on a user's machine."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for tree in trees:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tree / "lifecycle")],
            env=env, check=True, capture_output=True, timeout=300,
        )  # fmt: skip


def instructions(tree: Path, what: str, n: int, script: Path) -> int:
    # The file store's folder is made and removed out here: removing it is not counted.
    with tempfile.TemporaryDirectory(prefix="step-store-") as folder:
        return counted(tree, script, what, str(n), folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", default=BASE)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument(
        "--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS[:3]), metavar="WORKLOAD"
    )
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt install valgrind)")
    base = ROOT / "build" / "step-base"
    if base.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(base), args.revision],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    script = ROOT / "build" / "step_workload.py"
    script.write_text(WORKLOAD)
    compile_trees(base, ROOT)
    print(f"instructions per event (callgrind, {args.events} events, start-up excluded)")
    print(f"{'workload':<10} {args.revision:>14} {'this checkout':>14} {'ratio':>7}")
    for what in args.only:
        per = []
        for tree in (base, ROOT):
            empty = instructions(tree, what, 0, script)
            full = instructions(tree, what, args.events, script)
            per.append((full - empty) / args.events)
        print(f"{what:<10} {per[0]:>14,.0f} {per[1]:>14,.0f} {per[1] / per[0]:>6.2f}x")
    subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
