"""A store written when every project was ``default`` (before projects were named after
their folder, issue 15): the command line says so once, with the fix, and the fix works."""

from __future__ import annotations

import json
from pathlib import Path

import procs


def _old_store(folder: Path) -> str:
    """A session started in ``folder`` the way an older lifecycle named it: ``default``."""
    folder.mkdir()
    done = procs.run(["session", "start"], cwd=folder, env={"LIFECYCLE_PROJECT": "default"})
    assert done.returncode == 0, done.stderr
    status = procs.run_json(["status"], cwd=folder, env={"LIFECYCLE_PROJECT": "default"})
    session_id: str = status["session_id"]
    return session_id


def test_records_left_under_default_are_named_in_one_warning_with_the_fix(tmp_path: Path) -> None:
    folder = tmp_path / "myproj"
    _old_store(folder)
    done = procs.run(["status", "--format", "json"], cwd=folder)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["session_id"] is None  # the folder's name finds nothing
    (line,) = done.stderr.splitlines()
    assert "records of project 'default'" in line and "LIFECYCLE_PROJECT=default" in line
    assert "lifecycle export --project default --output old.jsonl" in line
    assert "lifecycle import old.jsonl --project myproj" in line


def test_the_fixes_the_warning_names_reach_the_old_session(tmp_path: Path) -> None:
    folder = tmp_path / "myproj"
    old = _old_store(folder)
    kept = procs.run_json(["status"], cwd=folder, env={"LIFECYCLE_PROJECT": "default"})
    assert kept["session_id"] == old
    for args in (
        ["export", "--project", "default", "--output", "old.jsonl"],
        ["import", "old.jsonl", "--project", "myproj"],
    ):
        done = procs.run(args, cwd=folder)
        assert done.returncode == 0, done.stderr
    done = procs.run(["status", "--format", "json"], cwd=folder)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert json.loads(done.stdout)["session_id"] == old


def test_no_warning_for_a_named_project_or_one_with_records_of_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "myproj"
    _old_store(folder)
    named = procs.run(["status"], cwd=folder, env={"LIFECYCLE_PROJECT": "other"})
    assert named.returncode == 0 and named.stderr == "", named.stderr
    assert procs.run(["session", "start"], cwd=folder).returncode == 0
    again = procs.run(["status"], cwd=folder)
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_the_check_opens_only_a_local_store_that_exists_and_creates_none(tmp_path: Path) -> None:
    from lifecycle.commands.base import _warn_if_left_under_default

    for url in (f"file://{tmp_path / 'none'}", f"sqlite:///{tmp_path / 'none.db'}"):
        _warn_if_left_under_default(url, "myproj")
    assert list(tmp_path.iterdir()) == []
    _warn_if_left_under_default("postgresql://u@127.0.0.1:1/db", "myproj")  # not opened
