"""lifecycle's hooks under the real Claude Code CLI (pinned in tests/claude_code/),
driven by a scripted Messages API on 127.0.0.1 (tests/fake_anthropic.py).

One project lives through what a user does: ``claude -p`` twice, ``--continue``
once, ``/compact`` through ``--resume``. The first session creates a task, writes and
edits a file, runs a risky ``rm -rf build/``, a failing command and its fix, and
completes the task. The tests read what the second session's first request to the
model carries, what the store holds, and Claude Code's own debug log.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
from claude_cli import Project, claude_binary, first_request, installed_version, text_of
from fake_anthropic import FakeAnthropic, tool_results

BINARY = claude_binary()
if BINARY is None and os.environ.get("LIFECYCLE_REQUIRE_CLAUDE_CLI"):  # .ci/run sets it
    raise RuntimeError("the Claude Code CLI is not installed: cd tests/claude_code && npm ci")
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="the Claude Code CLI is not installed: cd tests/claude_code && npm ci (.ci/run does)",
)

FIRST = "Session one: write the parser"
SECOND = "Session two: what is next?"
THIRD = "Session three: carry on"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _task_id(body: dict[str, Any]) -> dict[str, Any]:
    """TaskUpdate's input: the id Claude Code gave the task TaskCreate made."""
    for result in tool_results(body):
        match = re.search(r"#(\d+)", text_of(result))
        if match:
            return {"taskId": match.group(1), "status": "in_progress"}
    return {"taskId": "1", "status": "in_progress"}


def _complete(body: dict[str, Any]) -> dict[str, Any]:
    return {**_task_id_from_history(body), "status": "completed"}


def _task_id_from_history(body: dict[str, Any]) -> dict[str, Any]:
    for message in body.get("messages") or []:
        for block in message.get("content") or []:
            if isinstance(block, dict) and block.get("name") == "TaskUpdate":
                return {"taskId": block["input"]["taskId"]}
    return {"taskId": "1"}


def script(project: Path) -> dict[str, list[Any]]:
    parser = str(project / "src" / "parser.py")
    return {
        FIRST: [
            [("TaskCreate", {"subject": "Write the parser", "description": "src/parser.py"})],
            [("TaskUpdate", _task_id)],
            [("Write", {"file_path": parser, "content": "def parse(text):\n    return text\n"})],
            [
                (
                    "Edit",
                    {
                        "file_path": parser,
                        "old_string": "return text",
                        "new_string": "return text.split()",
                    },
                )
            ],
            [("Bash", {"command": "mkdir -p build && rm -rf build/", "description": "Clean"})],
            [("Bash", {"command": "ls no-such-dir", "description": "List"})],
            [("Bash", {"command": "ls src", "description": "List"})],
            [
                (
                    "Bash",
                    {
                        "command": f"export AWS_SECRET_ACCESS_KEY={SECRET} && rm -rf dist",
                        "description": "Clean",
                    },
                )
            ],
            [("TaskUpdate", _complete)],
            "The parser is written.",
        ],
        SECOND: ["Nothing else to do."],
        THIRD: ["Carrying on."],
    }


@pytest.fixture(scope="module")
def lived() -> Any:
    """The project after the four runs, with the fake server's log. (Its own temporary
    folder: pytest prunes old basetemp folders of concurrent runs.)"""
    assert BINARY is not None
    with (
        tempfile.TemporaryDirectory(prefix="lifecycle-claude-") as tmp,
        FakeAnthropic(log_dir=Path(tmp), max_requests=150, max_seconds=500) as fake,
    ):
        root = Path(tmp)
        project = Project(root, fake, BINARY)
        fake.script = script(project.dir)
        project.install()
        project.claude(FIRST)
        project.claude(SECOND)
        three = project.claude(THIRD, "--continue")
        project.claude("/compact", "--resume", project.session_id(three))
        yield project


def test_the_pinned_claude_code_is_the_one_that_runs(lived: Project) -> None:
    assert installed_version().startswith("2.1.")
    assert len(lived.runs) == 4


def test_claude_code_rejects_no_hook_output(lived: Project) -> None:
    assert lived.rejected_hook_output() == []


def context_of(body: dict[str, Any]) -> str:
    """The lifecycle context a request carries (the SessionStart additionalContext)."""
    text = text_of(body.get("messages"))
    start = text.find("[lifecycle]")
    assert start >= 0, "no lifecycle context in the request"
    end = text.find("\n\n", start)
    return text[start : end if end > 0 else None]


def test_the_second_session_is_told_what_the_first_did(lived: Project) -> None:
    context = context_of(first_request(lived.fake, SECOND))
    assert "started from checkpoint cp-" in context
    assert repr(FIRST) in context  # what the user asked
    assert "files created (1): src/parser.py" in context
    assert "task completed: Write the parser" in context
    assert "failed, then recovered: Bash failed (ls no-such-dir)" in context
    assert "risky operation 'mkdir -p build && rm -rf build/', checkpoint cp-" in context
    assert "Phase: not set" not in context and "Learnings captured" not in context
    assert "nothing" not in context


def test_the_previous_session_ended_with_session_end_and_is_not_called_failed(
    lived: Project,
) -> None:
    context = context_of(first_request(lived.fake, SECOND))
    assert ", success" in context
    assert "failed)" not in context and "was ended and checkpointed" not in context


def first_session_checkpoints(lived: Project) -> list[Any]:
    from lifecycle import SessionManager, open_store

    store = open_store(f"file://{lived.dir / '.lifecycle'}")
    try:
        from lifecycle import codec
        from lifecycle.records import Checkpoint

        m = SessionManager(store=store, project="proj")
        out = []
        for _, key in m.list_checkpoints():
            entry = m.store.get(key)
            if entry is not None:
                out.append(codec.decode(Checkpoint, entry.value, key=key))
        return out
    finally:
        store.close()


def test_the_task_completion_checkpoints_and_nothing_is_left_open(lived: Project) -> None:
    cps = first_session_checkpoints(lived)
    first = cps[0].session_id
    mine = [cp for cp in cps if cp.session_id == first]
    assert any(cp.trigger.startswith("task") for cp in mine), [cp.trigger for cp in mine]
    final = mine[-1]
    assert [t.description for t in final.state.completed_tasks] == ["Write the parser"]
    assert final.state.active_tasks == ()


def test_the_last_tool_call_before_exit_is_recorded(lived: Project) -> None:
    # the Bash with the secret ran last but one, the TaskUpdate last: both are recorded
    cps = first_session_checkpoints(lived)
    final = [cp for cp in cps if cp.session_id == cps[0].session_id][-1]  # the first session's
    assert "dist" in [f.path for f in final.state.files_modified]


def test_compaction_re_injects_the_live_session(lived: Project) -> None:
    log = [line for line in lived.hook_lines() if "SessionStart:compact" in line]
    assert any("PreCompact" in line for line in lived.hook_lines())
    assert any("Continuing work session" in line and "after compaction" in line for line in log)
    # what the conversation compaction dropped held: the live session's prompts (the
    # parser was written two sessions before; a session carries only open work and a
    # window of the one before it, docs/limits.md)
    assert any(THIRD in line for line in log)


def test_no_secret_reaches_the_store_or_the_model(lived: Project) -> None:
    for path in (lived.dir / ".lifecycle").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    for body in lived.fake.requests:
        assert SECRET not in text_of(body.get("messages")).split("[lifecycle]", 1)[-1][:10_000]


def test_the_resident_process_answered_the_hooks_that_need_the_engine(lived: Project) -> None:
    from lifecycle.integrations import resident

    env = lived.env()
    env["CLAUDE_PROJECT_DIR"] = str(lived.dir)
    found = resident.status(str(lived.dir), env)
    assert found is not None, "no resident process for the project"
    assert found["root"] == str(lived.dir)
    assert isinstance(found["events"], int) and found["events"] >= 3
