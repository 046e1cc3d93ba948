"""Instructions per ``SessionManager(store)`` + ``start_session(restore=True)``, this
checkout against another revision, counted by callgrind.

    .venv/bin/python bench/start_instructions.py [REVISION] [--starts N] [--only memory file sqlite]

What ``bench/run.py`` times in its file and SQLite sections ("SessionManager() +
start_session(restore=True)"), in instructions: a session with a ~10 KB checkpoint,
then N new managers that each restore it. Each store kind runs twice per tree, with 0
and with N starts, in a fresh process with ``PYTHONHASHSEED=0``; the difference divided
by N is one start, set-up excluded (callgrind counts no time asleep in fsync).
REVISION (default ``HEAD``) is exported with ``git archive`` to a temporary folder.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from step_instructions import compile_trees, counted  # bench/ is the script's folder

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("memory", "file", "sqlite")

WORKLOAD = """
import logging, os, sys
import structlog
structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
sys.path.insert(0, os.path.join(sys.argv[4], "bench"))
from run import fill_state, new_manager
kind, n, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "file":
    from lifecycle.stores.file import FileStore
    store = FileStore(os.path.join(folder, "file"))
elif kind == "sqlite":
    from lifecycle.stores.sqlite import SqliteStore
    store = SqliteStore(os.path.join(folder, "lifecycle.db"))
else:
    from lifecycle.stores.memory import MemoryStore
    store = MemoryStore()
manager = new_manager(store)
manager.start_session(restore=False)
fill_state(manager)
for _ in range(5):  # warm: the memo of decoded records, the codec's generated functions
    new_manager(store).start_session(restore=True)
for _ in range(n):
    new_manager(store).start_session(restore=True)
"""


def instructions(tree: Path, kind: str, n: int, script: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="start-store-") as folder:
        return counted(tree, script, kind, str(n), folder, str(tree))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", default="HEAD")
    parser.add_argument("--starts", type=int, default=50)
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (Debian: apt install valgrind)")
    with tempfile.TemporaryDirectory(prefix="start-base-") as scratch:
        base = Path(scratch) / "tree"
        base.mkdir()
        archive = subprocess.run(
            ["git", "archive", args.revision], cwd=ROOT, check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        script = Path(scratch) / "start_workload.py"
        script.write_text(WORKLOAD)
        compile_trees(base, ROOT)
        print(f"instructions per start (callgrind, {args.starts} starts, set-up excluded)")
        print(f"{'store':<8} {args.revision:>14} {'this checkout':>14} {'ratio':>7}")
        for kind in args.only:
            per = []
            for tree in (base, ROOT):
                empty = instructions(tree, kind, 0, script)
                full = instructions(tree, kind, args.starts, script)
                per.append((full - empty) / args.starts)
            print(f"{kind:<8} {per[0]:>14,.0f} {per[1]:>14,.0f} {per[1] / per[0]:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
