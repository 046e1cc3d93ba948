"""The command line, driven as users and the seed's hook scripts drive it: one process
per command, on the default ``file://.lifecycle`` store in the current folder."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from procs import run, run_json

#: The seed's hook-script command lines, with ``python superspec/hooks/scripts/X.py``
#: replaced by the matching command.
SEED_START = "session start --command impl --change-id CHANGE_ID"
SEED_END = 'session end --command impl --success --phase "Phase 1"'
SEED_CHECKPOINT = """checkpoint save --phase "Phase 1" --progress '{"completed": 5}'"""

TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def test_the_seeds_three_hook_script_lines_run_verbatim_as_one_session(tmp_path) -> None:
    start = run(shlex.split(SEED_START), cwd=tmp_path)
    assert start.returncode == 0, start.stderr
    opened = run_json(["status"], cwd=tmp_path)
    assert opened["command"] == "impl"
    assert opened["change_id"] == "CHANGE_ID"

    checkpoint = run(shlex.split(SEED_CHECKPOINT), cwd=tmp_path)
    assert checkpoint.returncode == 0, checkpoint.stderr
    saved = run_json(["status"], cwd=tmp_path)
    assert saved["session_id"] == opened["session_id"]
    assert saved["phase"] == "Phase 1"
    assert saved["progress"] == {"completed": 5}
    assert saved["state"] == "CHECKPOINTED"

    end = run(shlex.split(SEED_END), cwd=tmp_path)
    assert end.returncode == 0, end.stderr
    closed = run_json(["status"], cwd=tmp_path)
    assert closed["session_id"] is None
    assert closed["last_session"]["session_id"] == opened["session_id"]
    assert closed["last_session"]["success"] is True
    assert closed["last_session"]["phase"] == "Phase 1"
    assert closed["latest_checkpoint"]["checkpoint_id"] == saved["last_checkpoint"]["checkpoint_id"]


def test_session_start_answers_the_seeds_output_fields(tmp_path) -> None:
    data = run_json(shlex.split(SEED_START), cwd=tmp_path)
    assert data["session_id"].startswith("session-")
    assert data["is_fresh_session"] is True
    assert data["restored_state"] is None
    assert data["continued"] is False


def test_checkpoint_save_answers_checkpoint_id_and_a_utc_timestamp(tmp_path) -> None:
    run_json(["session", "start"], cwd=tmp_path)
    data = run_json(shlex.split(SEED_CHECKPOINT), cwd=tmp_path)
    assert data["checkpoint_id"].startswith("cp-")
    assert TS.match(data["timestamp"]), data["timestamp"]
    assert data["written"] is True
    assert data["key"].startswith("checkpoints/")


def test_a_second_identical_checkpoint_save_writes_nothing_and_says_so(tmp_path) -> None:
    run_json(["session", "start"], cwd=tmp_path)
    first = run_json(shlex.split(SEED_CHECKPOINT), cwd=tmp_path)
    again = run_json(shlex.split(SEED_CHECKPOINT), cwd=tmp_path)
    assert again["written"] is False
    assert again["checkpoint_id"] == first["checkpoint_id"]


def test_progress_and_context_are_merged_and_null_removes_a_key(tmp_path) -> None:
    run_json(["session", "start"], cwd=tmp_path)
    run_json(["checkpoint", "save", "--progress", '{"completed": 5, "total": 10}'], cwd=tmp_path)
    run_json(
        ["checkpoint", "save", "--progress", '{"completed": 6}', "--context", '{"task": "T6"}'],
        cwd=tmp_path,
    )
    run_json(["checkpoint", "save", "--context", '{"task": null, "file": "a.py"}'], cwd=tmp_path)
    status = run_json(["status"], cwd=tmp_path)
    assert status["progress"] == {"completed": 6, "total": 10}
    assert status["context"] == {"file": "a.py"}


def test_commands_in_separate_processes_continue_one_session(tmp_path) -> None:
    started = run_json(["session", "start", "--command", "impl"], cwd=tmp_path)
    saved = run_json(["checkpoint", "save", "--phase", "P2"], cwd=tmp_path)
    learned = run_json(
        ["learn", "--type", "insight", "--key", "cross-process", "--content", "one session"],
        cwd=tmp_path,
    )
    status = run_json(["status"], cwd=tmp_path)
    assert status["session_id"] == started["session_id"]
    assert status["last_checkpoint"]["checkpoint_id"] == saved["checkpoint_id"]
    assert status["checkpoints_this_session"] == 1
    assert learned["learning_key"] == "learning/insights/cross-process"
    ended = run_json(["session", "end"], cwd=tmp_path)
    assert ended["session_id"] == started["session_id"]
    assert ended["summary"]["learnings"] == ["learning/insights/cross-process"]


def test_session_start_with_a_session_open_continues_it_and_changes_nothing(tmp_path) -> None:
    first = run_json(["session", "start"], cwd=tmp_path)
    run_json(["checkpoint", "save", "--phase", "Design"], cwd=tmp_path)
    again = run_json(["session", "start"], cwd=tmp_path)
    assert again["continued"] is True
    assert again["session_id"] == first["session_id"]
    assert again["is_fresh_session"] is False
    assert again["restored_state"] == {"phase": "Design", "progress": {}, "context": {}}
    text = run(["session", "start"], cwd=tmp_path)
    assert text.stdout.startswith(f"Continuing the open session {first['session_id']}")


def test_session_start_new_ends_the_open_session_and_restores_its_final_checkpoint(
    tmp_path,
) -> None:
    first = run_json(["session", "start"], cwd=tmp_path)
    run_json(["checkpoint", "save", "--phase", "Build", "--progress", '{"done": 1}'], cwd=tmp_path)
    second = run_json(["session", "start", "--new"], cwd=tmp_path)
    assert second["ended_session_id"] == first["session_id"]
    assert second["session_id"] != first["session_id"]
    assert second["is_fresh_session"] is False
    assert second["restored_state"] == {"phase": "Build", "progress": {"done": 1}, "context": {}}


def test_the_restore_command_of_a_checkpoint_starts_a_session_from_that_checkpoint(
    tmp_path,
) -> None:
    run_json(["session", "start"], cwd=tmp_path)
    early = run_json(["checkpoint", "save", "--phase", "Early"], cwd=tmp_path)
    run_json(["checkpoint", "save", "--phase", "Late"], cwd=tmp_path)
    back = run_json(["session", "start", "--checkpoint", early["checkpoint_id"]], cwd=tmp_path)
    assert back["checkpoint_id"] == early["checkpoint_id"]
    assert back["restored_state"]["phase"] == "Early"


def test_no_restore_starts_fresh_after_a_finished_session(tmp_path) -> None:
    run_json(["session", "start"], cwd=tmp_path)
    run_json(["checkpoint", "save", "--phase", "Old"], cwd=tmp_path)
    run_json(["session", "end"], cwd=tmp_path)
    fresh = run_json(["session", "start", "--no-restore"], cwd=tmp_path)
    assert fresh["is_fresh_session"] is True
    assert fresh["restored_state"] is None


def test_learn_answers_the_seeds_success_and_learning_key(tmp_path) -> None:
    data = run_json(
        [
            "learn",
            "--type",
            "solution",
            "--key",
            "learning/solutions/jwt-expiry-fix",
            "--content",
            "Fixed by increasing token expiry to 7 days",
        ],
        cwd=tmp_path,
    )
    assert data == {"success": True, "learning_key": "learning/solutions/jwt-expiry-fix"}


def test_yaml_output_has_the_same_fields_as_json(tmp_path) -> None:
    done = run(["session", "start", "--format", "yaml"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = yaml.safe_load(done.stdout)
    assert data["is_fresh_session"] is True
    assert data["session_id"].startswith("session-")


def test_a_restored_session_reports_the_seeds_session_report(tmp_path) -> None:
    run_json(["session", "start"], cwd=tmp_path)
    run_json(
        [
            "checkpoint",
            "save",
            "--phase",
            "Phase 1: Foundation",
            "--progress",
            '{"tasks_completed": 5, "tasks_total": 10}',
        ],
        cwd=tmp_path,
    )
    for name in ("a", "b", "c"):
        run_json(["learn", "--type", "pattern", "--key", name, "--content", name], cwd=tmp_path)
    run_json(["session", "end"], cwd=tmp_path)
    start = run(["session", "start"], cwd=tmp_path)
    assert start.returncode == 0, start.stderr
    assert start.stdout.splitlines()[:4] == [
        "Session restored:",
        "  Phase: Phase 1: Foundation",
        "  Progress: 5/10 (50%)",
        "  Learnings captured: 3",
    ]
    report = run_json(["report"], cwd=tmp_path)
    assert report["report"].startswith("Session restored:\n  Phase: Phase 1: Foundation\n")


def test_status_without_a_session_exits_0_and_names_what_the_next_start_restores(
    tmp_path,
) -> None:
    empty = run(["status"], cwd=tmp_path)
    assert empty.returncode == 0
    assert empty.stdout.splitlines() == [
        f"No open session in project {tmp_path.name}.",  # named after its folder
        "  Next: lifecycle session start",
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["checkpoint", "save", "--progress", "{bad"],
            2,
            "lifecycle: error: --progress is not valid JSON",
        ),
        (
            ["checkpoint", "save", "--progress", "[1, 2]"],
            2,
            "lifecycle: error: --progress must be a JSON object, not list",
        ),
        (
            ["checkpoint", "save", "--context", '"text"'],
            2,
            "lifecycle: error: --context must be a JSON object, not str",
        ),
        (
            ["learn", "--type", "pattern", "--key", "learnings/pattern/x", "--content", "y"],
            2,
            "lifecycle: error: invalid key 'learnings/pattern/x'",
        ),
        (["learn", "--type", "trick", "--key", "x", "--content", "y"], 2, "lifecycle learn: error"),
        (["status", "--store", "bogus://x"], 2, "lifecycle: error: cannot open store 'bogus://x'"),
        (["status", "--project", "../up"], 2, "lifecycle: error: invalid key '../up'"),
        (["session", "start", "--frobnicate"], 2, "lifecycle: error: unrecognized arguments"),
        (["session"], 2, "lifecycle session: error"),
        (["session", "end"], 3, "lifecycle: error: no open session to end"),
        (["checkpoint", "save"], 3, "lifecycle: error: no open session to checkpoint"),
        (
            ["session", "start", "--checkpoint", "cp-20000101T000000.000000Z"],
            4,
            "lifecycle: error: no valid checkpoint with id 'cp-20000101T000000.000000Z'",
        ),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_its_documented_exit_code(
    tmp_path, args, code, message
) -> None:
    done = run(args, cwd=tmp_path)
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(message), lines[0]
    assert done.stdout == ""


def test_a_bad_learning_key_suggests_the_nearest_valid_one(tmp_path) -> None:
    done = run(
        ["learn", "--type", "pattern", "--key", "learnings/pattern/x", "--content", "y"],
        cwd=tmp_path,
    )
    assert done.stderr.rstrip().endswith("did you mean 'learning/patterns/x'?")


def test_bad_json_never_touches_the_store(tmp_path) -> None:
    run(["checkpoint", "save", "--progress", "{bad"], cwd=tmp_path)
    assert not (tmp_path / ".lifecycle").exists()


def test_the_exit_codes_are_documented_in_the_command_docstring() -> None:
    from lifecycle import cli

    doc = " ".join((cli.__doc__ or "").split())
    for phrase in (
        "0 success",
        "2 bad input",
        "3 an event the current state does not allow, or no session",
        "4 a corrupt or missing record",
        "5 the store failed",
    ):
        assert phrase in doc, phrase
