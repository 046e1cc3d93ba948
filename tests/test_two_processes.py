"""A manager in another process, on the same file store, resumes the session."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WRITER = """
import json, sys
from lifecycle import SessionManager, open_store
m = SessionManager(store=open_store(sys.argv[1]), project="e2e")
m.start_session(command="impl", restore=False)
m.add_task("T2", "second", status="in_progress", progress="50%")
m.complete_task("T1", "first", priority="high")
m.record_decision("Use WAL", rationale="readers")
progress = {"tasks_completed": 5, "tasks_total": 10}
cp = m.create_checkpoint(phase="Phase 1: Foundation", progress=progress)
print(json.dumps({"checkpoint_id": cp.checkpoint_id, "session_id": m.session_id}))
"""

READER = """
import json, sys
from lifecycle import SessionManager, open_store
m = SessionManager(store=open_store(sys.argv[1]), project="e2e")
start = m.start_session(command="impl", restore=True)
print(json.dumps({"state": m.state.value, "fresh": start.is_fresh_session,
    "checkpoint_id": start.checkpoint_id, "restored_state": start.restored_state,
    "active": [t.id for t in m.work.active_tasks], "done": [t.id for t in m.work.completed_tasks],
    "decisions": [d.decision for d in m.work.decisions], "report": m.report()}))
"""


def _run(script: str, url: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_second_process_resumes_from_the_first_ones_checkpoint(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    written = _run(WRITER, url)
    resumed = _run(READER, url)
    assert resumed["state"] == "RESUMED"
    assert resumed["fresh"] is False
    assert resumed["checkpoint_id"] == written["checkpoint_id"]
    assert resumed["restored_state"]["phase"] == "Phase 1: Foundation"
    assert resumed["restored_state"]["progress"] == {"tasks_completed": 5, "tasks_total": 10}
    assert (resumed["active"], resumed["done"], resumed["decisions"]) == (
        ["T2"],
        ["T1"],
        ["Use WAL"],
    )
    assert resumed["report"].splitlines()[:3] == [
        "Session restored:",
        "  Phase: Phase 1: Foundation",
        "  Progress: 5/10 (50%)",
    ]


def test_the_demo_runs_and_the_second_session_resumes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "demo", "--store", f"file://{tmp_path / 's'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = done.stdout
    assert "Session restored:" in out
    assert "  Progress: 5/10 (50%)" in out
    assert "  Learnings captured: 3" in out
    assert "[RESUMED]" in out and "[COMPLETED]" in out
    assert done.stderr == ""


def test_the_demo_run_in_a_git_work_tree_leaves_the_repository_as_it_was(tmp_path: Path) -> None:
    """The demo's risky operation takes no work-tree snapshot: no ref under
    refs/lifecycle/, no object, nothing in `git status` (the store's folder ignores itself)."""
    import os

    repo = tmp_path / "repo"
    repo.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "LIFECYCLE_"))}
    env.update(GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", *argv], cwd=repo, env=env, capture_output=True, text=True, timeout=60,
            check=True,
        ).stdout  # fmt: skip

    git("init", "-q")
    (repo / "a.txt").write_text("a\n")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    objects = git("count-objects", "-v")
    subprocess.run(
        [sys.executable, "-m", "lifecycle", "demo"], cwd=repo, env=env, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    assert git("for-each-ref", "refs/lifecycle/") == ""
    assert git("status", "--porcelain") == ""
    assert git("count-objects", "-v") == objects
