"""``lifecycle show`` and ``lifecycle diff`` (``lifecycle.checkpoint_view``) on the file,
SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from procs import ROOT, environment
from stores import STORE_FACTORIES

from lifecycle import Checkpoint, SessionManager
from lifecycle.checkpoint_view import diff, read_checkpoint, read_state, show_text, state_of
from lifecycle.errors import CheckpointNotFound
from lifecycle.stores.base import ProjectStore, Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=("file", "sqlite", "postgres"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = STORE_FACTORIES[request.param](tmp_path)
    yield made
    made.close()


def two_checkpoints(store: Store) -> tuple[SessionManager, str, str]:
    now = [T0]
    m = SessionManager(store=store, project="demo", clock=lambda: now[0])
    m.start_session(command="impl", restore=False)
    m.add_task("T1", "Parse the query")
    m.add_task("T2", "Rank the hits")
    m.add_task("T3", "Drop the old index")
    m.add_open_question("Stem English words?")
    m.add_blocker("waiting for the schema review")
    m.record_file_change("lifecycle/search/fts.py", ["create"], changes=40)
    a = m.create_checkpoint(
        Checkpoint(id="a", timestamp=now[0], phase="Phase 1", progress={"done": 1})
    )
    now[0] += timedelta(minutes=5)
    m.complete_task("T1")
    m.add_task("T2", "Rank the hits", status="in_progress", progress="50%")
    m.add_task("T4", "Write the benchmark")
    m.record_decision("bm25 with titles twice", rationale="titles say what a record is")
    m.resolve_question("Stem English words?")
    m.clear_blocker("waiting for the schema review")
    m.add_blocker("the CI runner is down")
    m.record_file_change("lifecycle/search/fts.py", ["edit"], changes=12)
    m.record_file_change("bench/search.py", ["create"], changes=90)
    b = m.create_checkpoint(
        Checkpoint(id="b", timestamp=now[0], phase="Phase 2", progress={"done": 2})
    )
    assert a.checkpoint_id and b.checkpoint_id
    return m, a.checkpoint_id, b.checkpoint_id


def test_show_gives_every_part_of_a_checkpoint(store: Store) -> None:
    _, a, _ = two_checkpoints(store)
    cp = read_checkpoint(ProjectStore(store, "demo"), a)
    text = show_text(cp)
    for part in (
        f"Checkpoint {a}  (manual, trigger: user-requested)",
        "Phase: Phase 1",
        "Progress: done=1",
        "Tasks: 3 open, 0 completed",
        "[pending] T1 Parse the query (medium)",
        "Open questions:\n  - Stem English words?",
        "Blockers:\n  - waiting for the schema review",
        "lifecycle/search/fts.py (create, 40 changes)",
        f"Recovery: lifecycle session start --checkpoint {a}",
        "label: a",
    ):
        assert part in text, part


def test_diff_names_every_kind_of_change(store: Store) -> None:
    _, a, b = two_checkpoints(store)
    p = ProjectStore(store, "demo")
    change = diff(read_state(p, a), read_state(p, b))
    assert change.phase == ("Phase 1", "Phase 2")
    assert change.progress == {"done": (1, 2)}
    assert change.tasks_added == ("T4 Write the benchmark",)
    assert change.tasks_completed == ("T1 Parse the query",)
    assert change.tasks_removed == ()
    assert change.tasks_changed == ("T2 pending -> in_progress (50%)",)
    assert change.decisions_added == ("bm25 with titles twice",)
    assert change.files_added == ("bench/search.py",)
    assert change.files_changed == ("lifecycle/search/fts.py",)
    assert change.questions_resolved == ("Stem English words?",)
    assert change.blockers_added == ("the CI runner is down",)
    assert change.blockers_cleared == ("waiting for the schema review",)
    back = diff(read_state(p, b), read_state(p, a))
    assert back.tasks_removed == ("T4 Write the benchmark",)
    assert back.decisions_removed == ("bm25 with titles twice",)


def test_diff_against_now_sees_the_unsaved_work_of_the_open_session(store: Store) -> None:
    m, _, b = two_checkpoints(store)
    m.add_task("T5", "Not yet saved")
    m.save_context()
    p = ProjectStore(store, "demo")
    change = diff(read_state(p, b), read_state(p, "now"))
    assert change.tasks_added == ("T5 Not yet saved",)
    assert diff(state_of(read_checkpoint(p, b)), state_of(read_checkpoint(p, "latest"))).empty


def test_an_unknown_checkpoint_is_a_clear_error(store: Store) -> None:
    two_checkpoints(store)
    p = ProjectStore(store, "demo")
    for name in ("cp-20990101T000000.000000Z", "nonsense", "../../etc/passwd", "checkpoints/x"):
        with pytest.raises(CheckpointNotFound):
            read_state(p, name)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**environment(), "PYTHONPATH": str(ROOT)},
    )


def test_the_commands_show_and_diff_in_text_and_json(tmp_path: Path) -> None:
    assert run("demo", cwd=tmp_path).returncode == 0
    history = json.loads(
        run("history", "--project", "demo", "--format", "json", cwd=tmp_path).stdout
    )
    first = history["checkpoints"][0]["id"]
    shown = run("show", first, "--project", "demo", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout.startswith(f"Checkpoint {first}")
    data = json.loads(
        run("show", first, "--project", "demo", "--format", "json", cwd=tmp_path).stdout
    )
    assert data["id"] == first and "state" in data and "recovery_info" in data
    change = json.loads(
        run("diff", first, "--project", "demo", "--format", "json", cwd=tmp_path).stdout
    )
    assert change["a"] == first and change["tasks_completed"] == ["T002 Write the file store"]
    missing = run("show", "cp-nope", "--project", "demo", cwd=tmp_path)
    assert (missing.returncode, missing.stderr) == (
        4,
        "lifecycle: error: no valid checkpoint with id 'cp-nope'\n",
    )
