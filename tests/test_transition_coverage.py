"""Transition coverage: the recorder sees the rows the real manager fires; the pytest
plugin and ``lifecycle coverage`` report them and draw the ones never fired."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle import coverage
from lifecycle.diagrams import coverage_diagram
from lifecycle.spec import TABLE, Event, Guard, SessionState

ROOT = Path(__file__).resolve().parent.parent
S = SessionState


def _row(event: Event, source: SessionState, **guards: bool) -> int:
    row = TABLE.resolve(event, source, {Guard(k): v for k, v in guards.items()})
    assert row is not None
    return TABLE.rows.index(row)


#: What the session in SESSION fires, row by row.
FIRED = {
    _row(Event.LOAD, S.INITIALIZING, restore_available=False),
    _row(Event.RECORD, S.ACTIVE, checkpoint_due=False, has_unsaved=True),
    _row(Event.SAVE, S.ACTIVE, has_unsaved=True, write_failed=False),
    _row(Event.SAVE, S.CHECKPOINTED, has_unsaved=False),
    _row(Event.COMPLETE, S.CHECKPOINTED, has_unsaved=False),
}

SESSION = """
from datetime import UTC, datetime
from lifecycle import SessionManager, open_store

def run_session():
    manager = SessionManager(store=open_store("memory://"), project="cov",
                             clock=lambda: datetime(2026, 1, 25, 9, 0, tzinfo=UTC))
    manager.start_session(restore=False)
    manager.record_decision("use SQLite")
    manager.create_checkpoint(phase="Phase 1")
    manager.create_checkpoint(phase="Phase 1")
    manager.end_session()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != coverage.ENV_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def test_recorder_records_exactly_the_rows_the_session_manager_fires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(coverage, "_enabled", True)
    monkeypatch.setattr(coverage, "_fired", set())
    namespace: dict[str, object] = {}
    exec(SESSION, namespace)
    namespace["run_session"]()  # type: ignore[operator]
    assert coverage.fired() == FIRED


def test_recorder_records_nothing_when_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(coverage, "_enabled", False)
    monkeypatch.setattr(coverage, "_fired", set())
    namespace: dict[str, object] = {}
    exec(SESSION, namespace)
    namespace["run_session"]()  # type: ignore[operator]
    assert coverage.fired() == frozenset()


def test_report_counts_the_rows_and_lists_each_never_exercised() -> None:
    text = coverage.report(set(range(1, len(TABLE.rows))))
    first = TABLE.rows[0]
    assert text.splitlines() == [
        f"transition coverage: {len(TABLE.rows) - 1} of {len(TABLE.rows)} rows exercised",
        "never exercised:",
        f"  row 0: {first.source} -> {first.target}: {first.label}",
    ]


def test_pytest_plugin_writes_the_rows_the_run_fired_and_draws_the_rest(tmp_path: Path) -> None:
    (tmp_path / "test_one_session.py").write_text(
        SESSION + "\n\ndef test_session():\n    run_session()\n", encoding="utf-8"
    )
    rows_file = tmp_path / "out" / "rows.json"
    rows_file.parent.mkdir()
    rows_file.write_text('{"stale": true}')  # a file from an earlier run is replaced
    diagram = tmp_path / "out" / "coverage.mmd"
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-p", "lifecycle.pytest_coverage",
            f"--lifecycle-coverage={rows_file}",
            f"--lifecycle-coverage-diagram={diagram}",
            "test_one_session.py",
        ],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert coverage.load(rows_file) == FIRED
    total = len(TABLE.rows)
    assert f"transition coverage: {len(FIRED)} of {total} rows exercised" in done.stdout
    missing = [line for line in done.stdout.splitlines() if line.startswith("  row ")]
    assert len(missing) == total - len(FIRED)
    assert diagram.read_text(encoding="utf-8") == coverage_diagram(FIRED)


def test_coverage_command_reports_a_recorded_file_and_writes_the_diagram(tmp_path: Path) -> None:
    rows_file = tmp_path / "rows.json"
    coverage.write(rows_file, FIRED)
    diagram = tmp_path / "coverage.mmd"
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "coverage", str(rows_file), "--diagram", str(diagram),
         "--format", "json"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["rows"], data["exercised"]) == (len(TABLE.rows), len(FIRED))
    assert [r["row"] for r in data["never_exercised"]] == coverage.never_fired(FIRED)
    assert diagram.read_text(encoding="utf-8") == coverage_diagram(FIRED)


def test_coverage_command_without_a_file_says_how_to_record_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "coverage", "missing.json"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "lifecycle: error: no coverage file missing.json: record one with pytest -p "
        "lifecycle.pytest_coverage --lifecycle-coverage=missing.json, or run with "
        "LIFECYCLE_COVERAGE=missing.json\n"
    )
