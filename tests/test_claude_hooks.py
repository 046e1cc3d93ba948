"""``lifecycle hook claude``, driven as Claude Code drives it: one process per hook event,
the event as JSON on stdin, the project folder as the event's ``cwd``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from procs import run, run_json

from lifecycle.integrations.claude_code import CONTEXT_LIMIT, CUT_NOTE, cap, identity
from lifecycle.report import DEFAULT_BUDGET


def event(name: str, cwd: Path, session: str = "claude-1", **fields: Any) -> dict[str, Any]:
    """An event with Claude Code's common fields."""
    return {
        "session_id": session,
        "transcript_path": f"/home/u/.claude/projects/p/{session}.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": name,
        **fields,
    }


def hook(payload: dict[str, Any] | str, cwd: Path, **kwargs: Any) -> dict[str, Any] | None:
    """Run the hook; it must exit 0 with nothing on stderr that looks like a crash."""
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    done = run(["hook", "claude"], cwd=cwd, stdin=raw, **kwargs)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def tool(name: str, cwd: Path, tool_name: str, tool_input: dict[str, Any], **f: Any) -> Any:
    return hook(event(name, cwd, tool_name=tool_name, tool_input=tool_input, **f), cwd)


def status(cwd: Path) -> dict[str, Any]:
    return run_json(["status"], cwd=cwd)


def test_session_start_answers_additional_context_for_a_fresh_session(tmp_path) -> None:
    answer = hook(event("SessionStart", tmp_path, source="startup", model="m"), tmp_path)
    assert answer is not None
    assert set(answer) == {"hookSpecificOutput"}
    out = answer["hookSpecificOutput"]
    assert out["hookEventName"] == "SessionStart"
    assert out["additionalContext"].startswith("[lifecycle] Work session session-")
    assert out["additionalContext"].endswith("started; nothing recorded before it.")
    assert (tmp_path / ".lifecycle").is_dir()
    assert status(tmp_path)["context"] == {
        "claude_session_id": "claude-1",
        "project_identity": {"root": os.path.realpath(tmp_path), "uid": os.getuid()},
        "claude_transcript": "/home/u/.claude/projects/p/claude-1.jsonl",
    }


def test_session_start_after_a_previous_session_shows_the_restored_context(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    tool("PostToolUse", tmp_path, "Write", {"file_path": str(tmp_path / "src/app.py")})
    todos = [
        {"content": "Write the parser", "status": "completed", "activeForm": "Writing"},
        {"content": "Test the parser", "status": "in_progress", "activeForm": "Testing"},
    ]
    tool("PostToolUse", tmp_path, "TodoWrite", {"todos": todos})
    hook(event("TaskCompleted", tmp_path, task_id="7", task_subject="Ship the CLI"), tmp_path)
    hook(event("SessionEnd", tmp_path, reason="prompt_input_exit"), tmp_path)

    answer = hook(event("SessionStart", tmp_path, "claude-2", source="startup"), tmp_path)
    assert answer is not None
    context = answer["hookSpecificOutput"]["additionalContext"]
    restored = status(tmp_path)["restored_from"]
    assert f"started from checkpoint {restored}, where the previous session stopped" in context
    assert "  Done so far:\n    - files edited (1): src/app.py\n" in context
    assert "    - task completed: Write the parser\n" in context
    assert "    - task completed: Ship the CLI\n" in context  # the subject, not Claude's "7"
    assert "  Open:\n    - task: Test the parser [in_progress]" in context
    assert "Phase:" not in context and "Learnings captured" not in context
    now = status(tmp_path)["session_id"]
    assert answer["systemMessage"] == f"lifecycle: session {now} restored from {restored}"


def test_resume_of_the_same_claude_session_continues_the_open_session(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    before = status(tmp_path)
    tool("PostToolUse", tmp_path, "Edit", {"file_path": "a.py", "old_string": "x"})
    answer = hook(event("SessionStart", tmp_path, source="resume"), tmp_path)
    after = status(tmp_path)
    assert after["session_id"] == before["session_id"]
    assert after["files_modified"] == ["a.py"]
    assert answer is not None
    assert answer["hookSpecificOutput"]["additionalContext"].startswith(
        f"[lifecycle] Claude Code resumed; work session {before['session_id']} continues:"
    )


def test_startup_ends_a_session_left_open_and_restores_its_unsaved_work(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    first = status(tmp_path)["session_id"]
    tool("PostToolUse", tmp_path, "Edit", {"file_path": "lost.py"})  # unsaved; then a crash
    answer = hook(event("SessionStart", tmp_path, "claude-2", source="startup"), tmp_path)
    now = status(tmp_path)
    assert now["session_id"] != first
    # The unsaved work went into the ended session's final checkpoint, which was restored;
    # its files stay in that session's records, not in the new session's work.
    from lifecycle import SessionManager
    from lifecycle.project import default_name

    store = SessionManager(
        store=f"file://{tmp_path / '.lifecycle'}", project=default_name(str(tmp_path))
    )
    final = store.read_checkpoint(now["restored_from"])
    assert [f.path for f in final.state.files_modified] == ["lost.py"]
    assert now["files_modified"] == []
    assert answer is not None
    context = answer["hookSpecificOutput"]["additionalContext"]
    assert f"  Previous session: {first} (ended without SessionEnd " in context
    assert "failed" not in context


def test_post_tool_use_records_the_files_edit_write_multiedit_and_notebookedit_modify(
    tmp_path,
) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    tool("PostToolUse", tmp_path, "Edit", {"file_path": str(tmp_path / "a.py")})
    tool("PostToolUse", tmp_path, "Write", {"file_path": str(tmp_path / "b.py"), "content": ""})
    tool(
        "PostToolUse",
        tmp_path,
        "MultiEdit",
        {"file_path": str(tmp_path / "c.py"), "edits": [{"old_string": "a"}, {"old_string": "b"}]},
    )
    tool("PostToolUse", tmp_path, "NotebookEdit", {"notebook_path": str(tmp_path / "n.ipynb")})
    tool("PostToolUse", tmp_path, "Read", {"file_path": str(tmp_path / "r.py")})
    tool("PostToolUse", tmp_path, "Write", {"file_path": "/elsewhere/x.py", "content": ""})
    assert status(tmp_path)["files_modified"] == [
        "a.py",
        "b.py",
        "c.py",
        "n.ipynb",
        "/elsewhere/x.py",
    ]


def test_a_failure_then_a_success_of_the_same_tool_is_an_error_recovery_checkpoint(
    tmp_path,
) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    tool("PostToolUseFailure", tmp_path, "Bash", {"command": "pytest"}, error="exit 1")
    tool("PostToolUse", tmp_path, "Read", {"file_path": "x.py"})  # another tool: no recovery
    assert status(tmp_path)["last_checkpoint"] is None
    tool("PostToolUse", tmp_path, "Bash", {"command": "pytest"}, tool_response={"stdout": "ok"})
    now = status(tmp_path)
    assert now["last_checkpoint"]["key"].startswith("checkpoints/recovery-")
    assert now["last_checkpoint"]["trigger"] == "error-recovery"
    assert "failures" not in now["context"]


def test_an_interrupted_tool_is_not_an_error_to_recover_from(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    tool("PostToolUseFailure", tmp_path, "Bash", {"command": "sleep 9"}, is_interrupt=True)
    tool("PostToolUse", tmp_path, "Bash", {"command": "sleep 9"})
    assert status(tmp_path)["last_checkpoint"] is None


def test_task_completed_is_the_task_trigger(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    hook(event("TaskCompleted", tmp_path, task_id="42", task_subject="Add login"), tmp_path)
    now = status(tmp_path)
    assert now["tasks_completed"] == ["claude-1/42"]  # Claude's id, kept per Claude session
    assert now["last_checkpoint"]["trigger"] == "task-complete"
    assert now["last_checkpoint"]["key"].startswith("checkpoints/task-claude-1-42-")


def test_a_created_task_that_completes_is_checkpointed(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    hook(event("TaskCreated", tmp_path, task_id="9", task_subject="Tidy"), tmp_path)
    assert status(tmp_path)["open_tasks"] == ["claude-1/9"]
    hook(event("TaskCompleted", tmp_path, task_id="9", task_subject="Tidy"), tmp_path)
    now = status(tmp_path)
    assert now["tasks_completed"] == ["claude-1/9"]
    assert now["open_tasks"] == []
    assert now["last_checkpoint"]["trigger"] == "task-complete"


def test_a_todowrite_todo_marked_completed_is_a_task_completion_once(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    todos = [{"id": "t1", "content": "Parse", "status": "in_progress", "priority": "high"}]
    tool("PostToolUse", tmp_path, "TodoWrite", {"todos": todos})
    assert status(tmp_path)["open_tasks"] == ["t1"]
    todos[0]["status"] = "completed"
    tool("PostToolUse", tmp_path, "TodoWrite", {"todos": todos})
    done = status(tmp_path)
    assert done["tasks_completed"] == ["t1"]
    assert done["last_checkpoint"]["trigger"] == "task-complete"  # its priority was high
    tool("PostToolUse", tmp_path, "TodoWrite", {"todos": todos})
    assert status(tmp_path)["tasks_completed"] == ["t1"]


def test_pre_compact_saves_a_checkpoint_of_unsaved_work(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    tool("PostToolUse", tmp_path, "Edit", {"file_path": "a.py"})
    assert status(tmp_path)["unsaved_work"] is True
    compact = event("PreCompact", tmp_path, trigger="auto", custom_instructions="")
    assert hook(compact, tmp_path) is None
    now = status(tmp_path)
    assert now["unsaved_work"] is False
    assert now["state"] == "CHECKPOINTED"


def test_pre_tool_use_of_a_risky_command_checkpoints_before_it_runs(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    answer = tool("PreToolUse", tmp_path, "Bash", {"command": "rm -rf build"})
    assert answer is None  # never blocks
    assert status(tmp_path)["last_checkpoint"]["type"] == "risk"


def test_a_risky_command_run_again_is_one_entry_with_its_count_and_newest_checkpoint(
    tmp_path,
) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    seen = []
    for command in ("rm -rf build", "git reset --hard", "rm -rf build", "rm -rf build"):
        tool("PreToolUse", tmp_path, "Bash", {"command": command})
        seen.append(status(tmp_path)["last_checkpoint"]["checkpoint_id"])
    risky = status(tmp_path)["context"]["risky_operations"]
    assert [(r["operation"], r["checkpoint_id"], r.get("runs")) for r in risky] == [
        ("git reset --hard", seen[1], None),
        ("rm -rf build", seen[3], 3),
    ]
    hook(event("SessionEnd", tmp_path, reason="logout"), tmp_path)
    answer = hook(event("SessionStart", tmp_path, "claude-2", source="startup"), tmp_path)
    assert answer is not None
    context = answer["hookSpecificOutput"]["additionalContext"]
    assert (
        f"risky operation 'rm -rf build' (3 times), checkpoint {seen[3]} written "
        "before the last run" in context
    )
    assert context.count("rm -rf build") == 1


def test_pre_tool_use_of_a_plain_command_writes_no_checkpoint_and_never_blocks(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    answer = tool("PreToolUse", tmp_path, "Bash", {"command": "ls -la"})
    assert answer is None
    assert status(tmp_path)["last_checkpoint"] is None


def test_session_end_completes_the_session(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    opened = status(tmp_path)["session_id"]
    tool("PostToolUse", tmp_path, "Edit", {"file_path": "a.py"})
    assert hook(event("SessionEnd", tmp_path, reason="logout"), tmp_path) is None
    closed = status(tmp_path)
    assert closed["session_id"] is None
    assert closed["last_session"]["session_id"] == opened
    assert closed["latest_checkpoint"]["trigger"] == "session-end"


def test_session_end_of_another_claude_session_leaves_the_open_one_alone(tmp_path) -> None:
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    hook(event("SessionEnd", tmp_path, "someone-else", reason="other"), tmp_path)
    assert status(tmp_path)["session_id"] is not None


def test_activity_with_no_session_open_starts_one(tmp_path) -> None:
    tool("PostToolUse", tmp_path, "Edit", {"file_path": "a.py"})
    now = status(tmp_path)
    assert now["command"] == "claude-code"
    assert now["files_modified"] == ["a.py"]


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("", "lifecycle: ignored a hook event: stdin is empty"),
        ("garbage", "lifecycle: ignored a hook event: stdin is not JSON"),
        ("[1, 2]", "lifecycle: ignored a hook event: stdin is JSON but not an object"),
        ('{"session_id": "x"}', "lifecycle: ignored a hook event: the event has no hook_event"),
    ],
)
def test_garbage_on_stdin_is_a_system_message_not_a_traceback(tmp_path, stdin, message) -> None:
    answer = hook(stdin, tmp_path)
    assert answer is not None
    assert set(answer) == {"systemMessage"}
    assert answer["systemMessage"].startswith(message)


def test_an_unknown_flag_still_exits_0_with_a_system_message(tmp_path) -> None:
    done = run(["hook", "claude", "--frobnicate"], cwd=tmp_path, stdin="{}")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {
        "systemMessage": "lifecycle: hook claude ignored the event: "
        "unrecognized arguments: --frobnicate"
    }


def test_a_store_that_cannot_be_opened_is_a_system_message(tmp_path) -> None:
    answer = hook(
        event("PreToolUse", tmp_path, tool_name="Bash", tool_input={"command": "ls"}),
        tmp_path,
        env={"LIFECYCLE_STORE": "bogus://nowhere"},
    )
    assert answer is not None
    assert answer["systemMessage"].startswith(
        "lifecycle: could not record Claude Code's PreToolUse (cannot open store"
    )


def test_an_event_lifecycle_does_not_use_prints_nothing_and_touches_nothing(tmp_path) -> None:
    assert hook(event("Notification", tmp_path, message="hi"), tmp_path) is None
    assert not (tmp_path / ".lifecycle").exists()


def test_the_project_root_from_claude_code_wins_over_a_cwd_that_followed_a_cd(tmp_path) -> None:
    sub = tmp_path / "pkg"
    sub.mkdir()
    env = {"CLAUDE_PROJECT_DIR": str(tmp_path)}
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path, env=env)
    tool_event = event("PostToolUse", sub, tool_name="Edit", tool_input={"file_path": "x.py"})
    hook(tool_event, sub, env=env)
    assert not (sub / ".lifecycle").exists()
    assert status(tmp_path)["files_modified"] == ["pkg/x.py"]  # relative to the root


def test_lifecycle_store_names_the_store_for_every_hook(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    hook(event("SessionStart", tmp_path, source="startup"), tmp_path, env={"LIFECYCLE_STORE": url})
    assert (tmp_path / "team.db").exists()
    assert not (tmp_path / ".lifecycle").exists()
    assert run_json(["status", "--store", url], cwd=tmp_path)["command"] == "claude-code"


def test_the_additional_context_is_capped_at_10000_characters(tmp_path) -> None:
    from lifecycle import SessionManager, open_store

    store = open_store(f"file://{tmp_path / '.lifecycle'}")
    m = SessionManager(store=store, project=tmp_path.name)
    m.start_session(command="impl")
    m.update_context({"project_identity": identity(str(tmp_path))})
    for i in range(60):
        m.add_task(f"T{i:03d}", f"task {i} " + "with a long description " * 80)
    m.end_session(success=True)
    store.close()
    answer = hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    assert answer is not None
    context = answer["hookSpecificOutput"]["additionalContext"]
    assert len(context) <= DEFAULT_BUDGET
    assert context.splitlines()[-1].endswith(
        "more lines (cut at 4,000 characters; `lifecycle report` has them all)"
    )
    assert "    - task: T000: task 0 with a long" in context
    big = hook(
        event("SessionStart", tmp_path, "claude-2", source="startup"),
        tmp_path,
        env={"LIFECYCLE_CONTEXT_BUDGET": "50000"},
    )
    assert big is not None
    assert len(big["hookSpecificOutput"]["additionalContext"]) <= CONTEXT_LIMIT  # hard cap


def test_cap_keeps_text_up_to_the_limit_and_cuts_longer_text_to_it() -> None:
    exact = "x" * CONTEXT_LIMIT
    assert cap(exact) == exact
    longer = "line\n" * 3000
    cut = cap(longer)
    assert len(cut) <= CONTEXT_LIMIT
    assert cut.startswith("line\nline\n")
    assert cap("a" * (CONTEXT_LIMIT + 1)) == "a" * (CONTEXT_LIMIT - len(CUT_NOTE)) + CUT_NOTE


# -- install / uninstall ------------------------------------------------------------------

FOREIGN = {
    "model": "claude-sonnet-4-6",
    "permissions": {"allow": ["Bash(npm test:*)"], "deny": ["Read(./.env)"]},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "./guard.sh"}]}
        ],
        "Notification": [{"hooks": [{"type": "command", "command": "notify-send hi"}]}],
    },
}


def _settings(tmp_path: Path) -> Path:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(FOREIGN, indent=4))
    return path


def test_install_merges_our_hooks_and_keeps_every_other_setting_and_hook(tmp_path) -> None:
    path = _settings(tmp_path)
    data = run_json(["hook", "install"], cwd=tmp_path)
    assert data["changed"] is True
    assert data["settings"] == str(path.resolve())
    settings = json.loads(path.read_text())
    assert settings["model"] == FOREIGN["model"]
    assert settings["permissions"] == FOREIGN["permissions"]
    assert settings["hooks"]["Notification"] == FOREIGN["hooks"]["Notification"]
    pre = settings["hooks"]["PreToolUse"]
    assert pre[0] == FOREIGN["hooks"]["PreToolUse"][0]
    assert pre[1]["matcher"] == "Bash|Edit|Write|MultiEdit|NotebookEdit"
    assert pre[1]["hooks"][0]["command"].endswith("lifecycle hook claude")
    assert set(settings["hooks"]) == {
        "PreToolUse",
        "Notification",
        "SessionStart",
        "UserPromptSubmit",
        "PostToolUse",
        "PostToolUseFailure",
        "TaskCreated",
        "TaskCompleted",
        "PreCompact",
        "Stop",
        "SessionEnd",
    }
    # every event synchronous: Claude Code cancels async hooks when `claude -p` exits
    for event_name in ("PostToolUse", "Stop", "SessionEnd", "UserPromptSubmit"):
        assert "async" not in settings["hooks"][event_name][-1]["hooks"][0]


def test_install_twice_gives_the_same_file(tmp_path) -> None:
    path = _settings(tmp_path)
    run_json(["hook", "install"], cwd=tmp_path)
    once = path.read_bytes()
    again = run_json(["hook", "install"], cwd=tmp_path)
    assert again["changed"] is False
    assert path.read_bytes() == once


def test_uninstall_removes_only_ours(tmp_path) -> None:
    path = _settings(tmp_path)
    run_json(["hook", "install"], cwd=tmp_path)
    data = run_json(["hook", "uninstall"], cwd=tmp_path)
    assert data["removed"] == 10
    assert json.loads(path.read_text()) == FOREIGN
    assert run_json(["hook", "uninstall"], cwd=tmp_path)["removed"] == 0


def test_install_into_settings_without_hooks_adds_ours_and_keeps_the_rest(tmp_path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    permissions = {"permissions": {"allow": ["Bash(ls)"]}}
    path.write_text(json.dumps(permissions))
    data = run_json(["hook", "install"], cwd=tmp_path)
    assert data["changed"] is True
    settings = json.loads(path.read_text())
    assert settings["permissions"] == permissions["permissions"]
    assert "SessionStart" in settings["hooks"]
    assert run_json(["hook", "install"], cwd=tmp_path)["changed"] is False


def test_install_into_a_project_without_settings_creates_them(tmp_path) -> None:
    run_json(["hook", "install"], cwd=tmp_path)
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    assert set(settings) == {"hooks"}
    run_json(["hook", "uninstall"], cwd=tmp_path)
    assert not (tmp_path / ".claude" / "settings.json").exists()  # install created it


def test_user_scope_installs_into_the_home_settings(tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    run_json(["hook", "install", "--scope", "user"], cwd=tmp_path, env={"HOME": str(home)})
    assert (home / ".claude" / "settings.json").exists()
    assert not (tmp_path / ".claude").exists()


def test_install_refuses_settings_that_are_not_json_and_changes_nothing(tmp_path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text("{ not json")
    done = run(["hook", "install"], cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "settings.json is not valid JSON" in done.stderr
    assert path.read_text() == "{ not json"


def test_the_installed_command_handles_a_session_start(tmp_path) -> None:
    import subprocess

    from procs import environment

    run_json(["hook", "install"], cwd=tmp_path)
    settings = json.loads((tmp_path / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["SessionStart"][0]["hooks"][0]["command"]
    done = subprocess.run(
        command,
        shell=True,
        cwd=tmp_path,
        input=json.dumps(event("SessionStart", tmp_path, source="startup")),
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hookSpecificOutput"]["hookEventName"] == "SessionStart"


def test_concurrent_hooks_lose_no_work(tmp_path) -> None:
    """Claude Code runs async hooks side by side; each must see the others' work."""
    import subprocess
    import sys

    from procs import environment

    hook(event("SessionStart", tmp_path, source="startup"), tmp_path)
    procs = []
    for _ in range(6):
        p = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "hook", "claude"],
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(),
        )
        procs.append(p)
    for i, p in enumerate(procs):  # every process gets its event before any is waited for
        edit = event("PostToolUse", tmp_path, tool_name="Edit", tool_input={"file_path": f"f{i}"})
        assert p.stdin is not None
        p.stdin.write(json.dumps(edit))
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=60) == 0
        assert p.stdout is not None and p.stderr is not None
        assert p.stdout.read() == ""
        assert "Traceback" not in p.stderr.read()
    assert sorted(status(tmp_path)["files_modified"]) == [f"f{i}" for i in range(6)]
