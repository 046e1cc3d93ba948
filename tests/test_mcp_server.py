"""``lifecycle mcp`` with the real ``mcp`` client over stdio: the server is
``python -m lifecycle mcp`` in its own process, as an MCP client starts it."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from procs import ROOT, environment, run_json

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client

from lifecycle.errors import InvalidKey
from lifecycle.integrations.mcp_server import memory_key


def with_server(store: str, body: Callable[[ClientSession], Awaitable[None]]) -> None:
    """Start the server, run ``body`` against it, stop it; 60 s at most."""

    async def main() -> None:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lifecycle", "mcp", "--store", store],
            env=environment(),
            cwd=ROOT,
        )
        with anyio.fail_after(60):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                await body(s)

    anyio.run(main)


async def ok(s: ClientSession, name: str, args: dict[str, Any] | None = None) -> Any:
    result = await s.call_tool(name, args or {})
    assert not result.is_error, result.content
    return result.structured_content


async def error(s: ClientSession, name: str, args: dict[str, Any] | None = None) -> str:
    result = await s.call_tool(name, args or {})
    assert result.is_error
    assert result.structured_content is None
    (text,) = [c.text for c in result.content]
    return str(text)


def test_a_real_client_runs_a_whole_session(tmp_path: Path) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    seen: dict[str, Any] = {}

    async def session(s: ClientSession) -> None:
        load = await ok(s, "session_load", {"command": "impl"})
        assert load["is_fresh_session"] is True
        assert load["session_id"].startswith("session-")
        seen["session_id"] = load["session_id"]

        work = await ok(s, "add_task", {"task_id": "T1", "description": "Parser"})
        assert work == {"state": "ACTIVE", "checkpoint": None}
        await ok(s, "record_decision", {"decision": "Use argparse", "rationale": "stdlib"})
        await ok(s, "record_file_change", {"path": "lifecycle/cli.py", "operation": "edit"})
        done = await ok(s, "complete_task", {"task_id": "T1", "priority": "high"})
        assert done["state"] == "CHECKPOINTED"
        assert done["checkpoint"]["trigger"] == "task-complete"

        saved = await ok(
            s,
            "session_save",
            {"phase": "Phase 1", "progress": {"tasks_completed": 1, "tasks_total": 2}},
        )
        assert saved["written"] is True
        assert saved["checkpoint_id"].startswith("cp-")
        assert saved["timestamp"].endswith("Z")

        learned = await ok(
            s,
            "capture_learning",
            {"type": "solution", "key": "learning/solutions/jwt-expiry-fix", "content": "7 days"},
        )
        assert learned == {"success": True, "learning_key": "learning/solutions/jwt-expiry-fix"}
        listed = await ok(s, "list_learnings", {})
        assert [(i["key"], i["content"]) for i in listed["learnings"]] == [
            ("learning/solutions/jwt-expiry-fix", "7 days")
        ]

        wrote = await ok(s, "write_memory", {"memory_name": "conventions", "content": "# Style"})
        assert wrote == {"key": "memories/conventions", "success": True, "chars": 7}
        names = await ok(s, "list_memories", {})
        assert names["memories"] == ["memories/conventions", "learning/solutions/jwt-expiry-fix"]
        read = await ok(s, "read_memory", {"memory_name": "conventions"})
        assert read["content"] == "# Style"
        solution = await ok(s, "read_memory", {"memory_name": "learning/solutions/jwt-expiry-fix"})
        assert solution["content"] == "7 days"

        status = await ok(s, "session_status")
        assert status["session_id"] == load["session_id"]
        assert status["state"] == "CHECKPOINTED"
        assert status["phase"] == "Phase 1"
        assert status["tasks_completed"] == ["T1"]
        assert status["files_modified"] == ["lifecycle/cli.py"]
        assert status["last_checkpoint"]["checkpoint_id"] == saved["checkpoint_id"]
        assert status["learnings"] == 1

        end = await ok(s, "session_end", {"success": True})
        assert end["session_id"] == load["session_id"]
        assert end["tasks_completed"] == ["T1"]

        again = await ok(s, "session_load", {})
        assert again["is_fresh_session"] is False
        assert again["restored_state"]["phase"] == "Phase 1"
        assert again["report"].startswith("Session restored:\n  Phase: Phase 1\n")

    with_server(store, session)
    # the command line in the same folder (the same project) sees the session left open
    assert run_json(["status", "--store", store], cwd=ROOT)["phase"] == "Phase 1"


def test_every_tool_publishes_an_output_schema(tmp_path: Path) -> None:
    names: list[str] = []

    async def listing(s: ClientSession) -> None:
        tools = (await s.list_tools()).tools
        names.extend(t.name for t in tools)
        assert all(t.output_schema is not None for t in tools), [
            t.name for t in tools if t.output_schema is None
        ]

    with_server(f"file://{tmp_path / '.lifecycle'}", listing)
    for serena_name in ("read_memory", "write_memory", "list_memories", "delete_memory"):
        assert serena_name in names


def test_errors_are_tool_errors_with_the_one_line_message(tmp_path: Path) -> None:
    async def mistakes(s: ClientSession) -> None:
        bad_key = await error(s, "read_memory", {"memory_name": "learnings/pattern/x"})
        assert bad_key.endswith("did you mean 'learning/patterns/x'?")
        assert "\n" not in bad_key
        no_session = await error(s, "session_save", {"phase": "x"})
        assert no_session.endswith("no open session to checkpoint; call session_load first")
        missing = await error(s, "read_memory", {"memory_name": "nothing-here"})
        assert missing.endswith("no memory 'memories/nothing-here'")
        record = await error(s, "write_memory", {"memory_name": "session/last", "content": "x"})
        assert "only memories/... and learning/... keys are written" in record
        deleted = await ok(s, "delete_memory", {"memory_name": "never-written"})
        assert deleted == {"key": "memories/never-written", "deleted": False}

    with_server(f"file://{tmp_path / '.lifecycle'}", mistakes)


def test_a_bad_store_url_stops_the_server_with_one_line(tmp_path: Path) -> None:
    from procs import run

    done = run(["mcp", "--store", "bogus://x"], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "lifecycle: error: cannot open store 'bogus://x': unknown scheme 'bogus'; use file://DIR, "
        "sqlite:///FILE, postgresql://..., serena+stdio://..., or memory://"
    ]


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("notes", "memories/notes"),
        ("suggested_commands.md", "memories/suggested_commands"),
        ("memories/team/style", "memories/team/style"),
        ("learning/insights/x", "learning/insights/x"),
        ("session/last", "session/last"),
    ],
)
def test_a_memory_name_is_a_key_or_a_bare_name_under_memories(name: str, key: str) -> None:
    assert memory_key(name) == key


def test_a_memory_name_outside_the_grammar_is_an_invalid_key_with_a_suggestion() -> None:
    with pytest.raises(InvalidKey) as caught:
        memory_key("learnings/pattern/x")
    assert caught.value.suggestion == "learning/patterns/x"
