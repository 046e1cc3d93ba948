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
def lived(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The project after the four runs, with the fake server's log."""
    assert BINARY is not None
    root = tmp_path_factory.mktemp("claude")
    with FakeAnthropic(log_dir=root, max_requests=150, max_seconds=500) as fake:
        project = Project(root, fake, BINARY)
        fake.script = script(project.dir)
        project.install()
        one = project.claude(FIRST)
        two = project.claude(SECOND)
        three = project.claude(THIRD, "--continue")
        four = project.claude("/compact", "--resume", project.session_id(three))
        project.ids = [project.session_id(d) for d in (one, two, three, four)]  # type: ignore[attr-defined]
        yield project


def context_of(body: dict[str, Any]) -> str:
    """The lifecycle context a request carries (the SessionStart additionalContext)."""
    text = text_of(body.get("messages"))
    start = text.find("[lifecycle]")
    assert start >= 0, "no lifecycle context in the request"
    return text[start:]


def test_the_pinned_claude_code_is_the_one_that_runs(lived: Project) -> None:
    assert installed_version().startswith("2.1.")
    assert len(lived.runs) == 4


def test_claude_code_rejects_no_hook_output(lived: Project) -> None:
    assert lived.rejected_hook_output() == []
