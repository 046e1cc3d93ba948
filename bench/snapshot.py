"""Work-tree snapshots (issue 21): the whole operation, side by side with git itself.

    PYTHONPATH=$PWD .venv/bin/python bench/snapshot.py [runs]

In a temporary git repository of 10,000 committed files (100 folders of 100), it
times, as medians of ``runs`` runs (default 20):

- a snapshot as a risk checkpoint takes it (find the repository, ``git add -A`` into
  the temporary index, ``write-tree``, ``commit-tree`` unless unchanged,
  ``update-ref``): after 10 files changed (budget 150 ms), and unchanged (50 ms);
- against the floor, ``git status --porcelain`` (what git itself needs to see what
  changed), and the peer, ``git stash create`` (git's own snapshot commit of the
  tracked files, without untracked ones);
- the risky PreToolUse hook (``lifecycle hook claude``, ``rm -rf build``) as a whole
  process, with its snapshot and without it (``LIFECYCLE_SNAPSHOT=never``), 10 files
  changed before each run (budget: within 2x).

Wall time on a shared machine moves with its load, so the load average is printed
with the table.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
sys.path.insert(0, ROOT)

from lifecycle.snapshots import Snapshots  # noqa: E402

FOLDERS, FILES = 100, 100


def git(repo: str, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def make_repo(repo: str) -> None:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "bench")
    git(repo, "config", "user.email", "bench@localhost")
    for d in range(FOLDERS):
        folder = Path(repo, f"pkg{d:03d}")
        folder.mkdir()
        for f in range(FILES):
            (folder / f"mod{f:03d}.py").write_text(f"# module {d}/{f}\nVALUE = {d * FILES + f}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "10,000 files")


def change_ten(repo: str, round_: int) -> None:
    for i in range(10):
        Path(repo, f"pkg{i:03d}", "mod000.py").write_text(f"# changed in round {round_}\n")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(fn: Callable[[], object], cpu: list[float] | None = None) -> float:
    """Wall time of ``fn``; with ``cpu``, also the CPU time of the processes it ran
    (user + system of the children: what the machine's load does not inflate)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as tmp:
        repo = os.path.join(tmp, "work")
        os.mkdir(repo)
        make_repo(repo)
        snaps = Snapshots("risk", repo)
        ids = iter(f"cp-20260101T000000.{n:06d}Z" for n in range(10_000))

        def snapshot() -> None:
            snap = snaps.snapshot("bench", next(ids))
            if snap.commit is None:
                raise SystemExit(f"no snapshot: {snap.skipped}")

        snapshot()  # the first one starts from the user's index; the rest from the kept one
        changed, unchanged, status, stash = [], [], [], []
        cpu: dict[str, list[float]] = {k: [] for k in ("changed", "unchanged", "status", "stash")}
        for r in range(runs):
            change_ten(repo, r)
            changed.append(timed(snapshot, cpu["changed"]))
            unchanged.append(timed(snapshot, cpu["unchanged"]))
            status.append(timed(lambda: git(repo, "status", "--porcelain"), cpu["status"]))
            stash.append(timed(lambda: git(repo, "stash", "create"), cpu["stash"]))

        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "CLAUDE_"))}
        env.update(PYTHONPATH=ROOT, CLAUDE_PROJECT_DIR=repo)
        env["LIFECYCLE_STORE"] = "file://" + os.path.join(tmp, "store")
        event = json.dumps(
            {
                "session_id": "bench",
                "cwd": repo,
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_input": {"command": "rm -rf build"},
            }
        )

        def hook(policy: str) -> None:
            done = subprocess.run(
                [sys.executable, "-m", "lifecycle", "hook", "claude"],
                input=event,
                cwd=repo,
                env={**env, "LIFECYCLE_SNAPSHOT": policy},
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if done.returncode != 0 or done.stdout.strip():
                raise SystemExit(f"hook failed: {done.stdout} {done.stderr}")

        hook("risk")  # the session exists before the timed runs
        with_snapshot, without = [], []
        cpu["hook"], cpu["hook_never"] = [], []
        for r in range(runs):
            change_ten(repo, 1000 + r)
            with_snapshot.append(timed(lambda: hook("risk"), cpu["hook"]))
            change_ten(repo, 2000 + r)
            without.append(timed(lambda: hook("never"), cpu["hook_never"]))
        refs = len(git(repo, "for-each-ref", "refs/lifecycle/").splitlines())

    ch, un, st, sc = map(median_ms, (changed, unchanged, status, stash))
    hw, hn = median_ms(with_snapshot), median_ms(without)
    c = {k: median_ms(v) for k, v in cpu.items()}
    rows = [
        ("snapshot, 10 of 10,000 files changed", ch, c["changed"], st, c["status"],
         sc, c["stash"], 150.0),
        ("snapshot, unchanged", un, c["unchanged"], st, c["status"], sc, c["stash"], 50.0),
        ("risky PreToolUse hook with its snapshot", hw, c["hook"], hn, c["hook_never"],
         None, None, None),
    ]  # fmt: skip
    print(f"work-tree snapshots, {FOLDERS * FILES:,} files, median of {runs} runs")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {refs} snapshot refs")
    print("against: git status --porcelain (the floor) for snapshots; the hook without its")
    print("snapshot for the hook. peer: git stash create (tracked files only). cpu: user+sys.")
    head = f"{'measurement':<40} {'wall':>9} {'cpu':>9}  {'against':>9} {'cpu':>9} {'ratio':>6}"
    print(f"{head}  {'peer':>9} {'cpu':>9}  budget")
    for name, ours, ours_cpu, base, base_cpu, peer, peer_cpu, budget in rows:
        ratio = ours / base
        if budget is not None:
            verdict = f"{budget:.0f} ms: {'met' if ours <= budget else 'missed'}"
        else:
            verdict = f"2x: {'met' if ratio <= 2 else 'missed'}"
        peers = "" if peer is None else f"{peer:>6.1f} ms {peer_cpu:>6.1f} ms"
        print(
            f"{name:<40} {ours:>6.1f} ms {ours_cpu:>6.1f} ms  {base:>6.1f} ms {base_cpu:>6.1f} ms "
            f"{ratio:>5.2f}x  {peers:<19}  {verdict}"
        )


if __name__ == "__main__":
    main()
