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
from lifecycle.integrations.mcp_server import TOOLS, memory_key


def with_server(
    store: str, body: Callable[[ClientSession], Awaitable[None]], project: str = "default"
) -> None:
    """Start the server, run ``body`` against it, stop it; 60 s at most."""

    async def main() -> None:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lifecycle", "mcp", "--store", store, "--project", project],
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
        assert learned == {
            "success": True,
            "learning_key": "learning/solutions/jwt-expiry-fix",
            "overwritten": False,
        }
        listed = await ok(s, "list_learnings", {})
        assert [(i["key"], i["content"]) for i in listed["learnings"]] == [
            ("learning/solutions/jwt-expiry-fix", "7 days")
        ]

        wrote = await ok(s, "write_memory", {"memory_name": "conventions", "content": "# Style"})
        assert wrote == {
            "memory_name": "conventions",
            "key": "memories/conventions",
            "success": True,
            "chars": 7,
            "overwritten": False,
        }
        names = await ok(s, "list_memories", {})
        assert names == {
            "memories": ["learning/solutions/jwt-expiry-fix", "conventions"],
            "next_cursor": None,
        }
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
    assert (
        run_json(["status", "--store", store, "--project", "default"], cwd=ROOT)["phase"]
        == "Phase 1"
    )


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
        bad_key = await error(s, "read_memory", {"memory_name": "learning/pattern/x"})
        assert bad_key.endswith("did you mean 'learning/patterns/x'?")
        assert "\n" not in bad_key
        no_session = await error(s, "session_save", {"phase": "x"})
        assert no_session.endswith("no open session to checkpoint; call session_load first")
        missing = await error(s, "read_memory", {"memory_name": "nothing-here"})
        assert missing == "no memory 'nothing-here' (memories/nothing-here)"
        record = await error(s, "write_memory", {"memory_name": "session/last", "content": "x"})
        assert "only memories and learning/... keys are written" in record
        deleted = await ok(s, "delete_memory", {"memory_name": "never-written"})
        assert deleted == {
            "memory_name": "never-written",
            "key": "memories/never-written",
            "deleted": False,
        }

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
        ("auth/login/logic", "memories/auth/login/logic"),
        ("learnings/pattern/x", "memories/learnings/pattern/x"),
        ("Project Overview", "memories/x--Project_20Overview-"),
        ("mem:core", "memories/core"),
    ],
)
def test_a_memory_name_is_a_key_or_a_bare_name_under_memories(name: str, key: str) -> None:
    assert memory_key(name) == key


def test_a_key_outside_the_grammar_in_a_namespace_is_an_invalid_key_with_a_suggestion() -> None:
    with pytest.raises(InvalidKey) as caught:
        memory_key("learning/pattern/x")
    assert caught.value.suggestion == "learning/patterns/x"


# -- the wire: every request answered, the early answers equal the SDK's ----------------------


def raw_session(store: str, lines: list[str], want: set[object]) -> list[dict[str, Any]]:
    """Send ``lines`` to a server process; every answer until all ids in ``want`` came."""
    import json
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "mcp", "--store", store],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
        cwd=ROOT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write("".join(line + "\n" for line in lines).encode())
        proc.stdin.flush()
        answers: list[dict[str, Any]] = []
        while want - {a.get("id") for a in answers}:
            line = proc.stdout.readline()
            assert line, f"the server closed its output; still waiting for {want}"
            answers.append(json.loads(line))
        _, err = proc.communicate(timeout=60)
        assert err.decode() == "", err.decode()
        return answers
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)


INITIALIZE = (
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
    '"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
)
INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}'


def test_the_early_answers_are_the_sdks_own(tmp_path: Path) -> None:
    answers = raw_session(
        f"file://{tmp_path / '.lifecycle'}",
        [
            INITIALIZE,
            INITIALIZED,
            '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
            '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"session_status"}}',
            '{"jsonrpc":"2.0","id":4,"method":"tools/list"}',
        ],
        {1, 2, 3, 4},
    )
    by_id = {a["id"]: a for a in answers}
    # 2 was answered before the SDK was loaded, 4 by the SDK; the server's stderr is empty,
    # so the SDK's answer to the replayed initialize equalled the early one
    assert by_id[2]["result"] == by_id[4]["result"]
    assert [t["name"] for t in by_id[4]["result"]["tools"]] == list(TOOLS)
    assert by_id[1]["result"]["protocolVersion"] == "2025-06-18"
    assert by_id[1]["result"]["capabilities"] == {
        "prompts": {"listChanged": False},
        "resources": {"listChanged": False, "subscribe": False},
        "tools": {"listChanged": False},
    }
    assert by_id[3]["result"]["isError"] is False


def test_a_line_that_is_not_json_gets_a_parse_error_with_id_null(tmp_path: Path) -> None:
    answers = raw_session(
        f"file://{tmp_path / '.lifecycle'}",
        [
            INITIALIZE,
            INITIALIZED,
            "not json",
            '[{"jsonrpc":"2.0","id":5,"method":"ping"}]',
            '{"jsonrpc":"2.0","id":true,"method":"ping"}',
            '{"jsonrpc":"2.0","id":6,"method":"ping"}',
        ],
        {1, 6},
    )
    errors = [a["error"] for a in answers if a.get("id") is None]
    assert errors == [
        {
            "code": -32700,
            "message": "parse error: not valid JSON text (invalid literal, expected 'null': "
            "line 1 column 1 (char 0))",
        },
        {
            "code": -32600,
            "message": "invalid request: a message is a JSON object, not a batch (JSON array)",
        },
        {
            "code": -32600,
            "message": "invalid request: id must be a string or an integer, not True",
        },
    ]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"a":"x\\ud800y"}}', -32600),
        ('{"jsonrpc":"2.0","id":7,"method":"ping","params":[]}', -32602),
        ('{"id":7,"method":"ping"}', -32600),
        ('{"jsonrpc":"1.0","id":7,"method":"ping"}', -32600),
        ('{"jsonrpc":"2.0","id":7,"method":5}', -32600),
        (
            '{"jsonrpc":"2.0","id":7,"method":"x","params":{"a":' + "[" * 150 + "]" * 150 + "}}",
            -32602,
        ),
    ],
)
def test_the_guard_answers_what_the_sdk_would_drop_with_the_request_id(
    line: str, code: int
) -> None:
    from lifecycle.integrations.mcp_stdio import screen

    screened = screen(line)
    assert screened.message is None
    assert screened.reply is not None
    answer = __import__("json").loads(screened.reply)
    assert (answer["id"], answer["error"]["code"]) == (7, code)


def test_the_guard_passes_a_well_formed_message_unchanged() -> None:
    from lifecycle.integrations.mcp_stdio import screen

    line = '{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x"}}'
    assert screen(line).message == {
        "jsonrpc": "2.0",
        "id": "a",
        "method": "tools/call",
        "params": {"name": "x"},
    }
    assert screen(line).reply is None


def test_the_early_answers_know_the_sdks_protocol_versions() -> None:
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    from lifecycle.integrations.mcp_stdio import sdk_versions

    assert sdk_versions() == HANDSHAKE_PROTOCOL_VERSIONS


# -- Serena's names ----------------------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lifecycle.integrations.memory_names import memory_name, memory_ref  # noqa: E402

topic = st.text(
    st.characters(exclude_characters="/", exclude_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda t: t not in (".", ".."))
serena_name = (
    st.lists(topic, min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda n: not n.endswith(".md") and not n.startswith("mem:") and n != "global")
)


@given(st.one_of(serena_name, serena_name.map("global/memories/".__add__)))
def test_every_serena_name_maps_to_a_valid_key_and_back(name: str) -> None:
    from lifecycle import keys

    head = name.removeprefix("global/").split("/")[0]
    try:
        ref = memory_ref(name)
    except InvalidKey:  # a namespace's own key that is not valid: a typo of a record's key
        assert head in keys.NAMESPACES
        assert head != "memories"
        return
    assert keys.is_valid(ref.key)
    assert memory_ref(ref.name) == ref
    if head not in keys.NAMESPACES:  # a key's own spelling may differ (memories/x is x)
        assert ref.name == name


@pytest.mark.parametrize(
    ("name", "key", "shared"),
    [
        ("auth/login/logic", "memories/auth/login/logic", False),
        ("global/java/style_guide", "memories/java/style_guide", True),
        ("Project Overview", "memories/x--Project_20Overview-", False),
        ("日本語メモ", "memories/x--4dkc5281bncbk91h", False),
        ("x--foo", "memories/x--x--foo-", False),
        ("memories/session/x", "memories/session/x", False),
    ],
)
def test_serena_names_map_to_keys(name: str, key: str, shared: bool) -> None:
    ref = memory_ref(name)
    assert (ref.key, ref.shared) == (key, shared)
    assert memory_name(ref.key, shared=shared) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("global", "a bare 'global' is not a memory name; use 'global/{name}'"),
        ("a//b", "a memory name cannot start or end with '/' or hold '//'"),
        ("../etc/passwd", "a memory name cannot hold a '.' or '..' topic"),
        ("", "a memory name cannot be empty"),
    ],
)
def test_names_serena_refuses_are_refused(name: str, reason: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        memory_ref(name)
    assert caught.value.reason == reason


def test_an_error_quotes_at_most_200_characters_of_a_name() -> None:
    with pytest.raises(InvalidKey) as caught:
        memory_ref("learning/" + "y" * 1_000_000)
    assert len(str(caught.value)) < 700


def test_the_published_tool_list_is_the_tables() -> None:
    """mcp_tools.json, which the transport answers from before the table is built, is what
    the table publishes (after changing a tool: python -m lifecycle.integrations.mcp_stdio)."""
    import orjson

    from lifecycle.integrations.mcp_server import published
    from lifecycle.integrations.mcp_stdio import PUBLISHED

    assert orjson.loads(PUBLISHED.read_bytes()) == published()


def test_an_edit_that_would_take_a_memory_past_its_limit_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    from lifecycle.limits import MEMORY_TEXT_CHARS

    text = "x" * (MEMORY_TEXT_CHARS - 6) + "needle"

    async def memories(s: ClientSession) -> None:
        await ok(s, "write_memory", {"memory_name": "big", "content": text})
        refused = await error(
            s, "edit_memory", {"memory_name": "big", "needle": "needle", "repl": "y" * 100}
        )
        assert f"over the {MEMORY_TEXT_CHARS:,}-character limit of a memory's text" in refused
        read = await ok(
            s, "read_memory", {"memory_name": "big", "offset": MEMORY_TEXT_CHARS - 1000}
        )
        assert (read["chars"], read["content"]) == (len(text), text[-1000:])

    with_server(f"file://{tmp_path / '.lifecycle'}", memories)


def test_memories_are_edited_renamed_listed_by_topic_and_shared_through_global(
    tmp_path: Path,
) -> None:
    async def memories(s: ClientSession) -> None:
        await ok(s, "write_memory", {"memory_name": "auth/login/logic", "content": "v1 v1"})
        await ok(s, "write_memory", {"memory_name": "global/java/style", "content": "tabs"})
        twice = await error(
            s, "edit_memory", {"memory_name": "auth/login/logic", "needle": "v1", "repl": "v2"}
        )
        assert twice.endswith("make needle unique or pass allow_multiple_occurrences=true"), twice
        edited = await ok(
            s,
            "edit_memory",
            {
                "memory_name": "auth/login/logic",
                "needle": r"v(\d)",
                "repl": "V",
                "mode": "regex",
                "allow_multiple_occurrences": True,
            },
        )
        assert (edited["replacements"], edited["chars"]) == (2, 3)
        moved = await ok(
            s, "rename_memory", {"old_name": "auth/login/logic", "new_name": "global/auth/login"}
        )
        assert moved == {
            "old_name": "auth/login/logic",
            "new_name": "global/auth/login",
            "key": "memories/auth/login",
        }
        assert (await ok(s, "list_memories", {"topic": "auth"}))["memories"] == []
        shared = await ok(s, "list_memories", {"topic": "global"})
        assert shared["memories"] == ["global/auth/login", "global/java/style"]
        read = await ok(s, "read_memory", {"memory_name": "global/auth/login"})
        assert read["content"] == "V V"
        page = await ok(s, "list_memories", {"topic": "global", "limit": 1})
        assert page["memories"] == ["global/auth/login"]
        rest = await ok(
            s, "list_memories", {"topic": "global", "limit": 1, "cursor": page["next_cursor"]}
        )
        assert rest == {"memories": ["global/java/style"], "next_cursor": None}

    store = f"file://{tmp_path / '.lifecycle'}"
    with_server(store, memories)

    async def other_project(s: ClientSession) -> None:  # global memories are every project's
        read = await ok(s, "read_memory", {"memory_name": "global/java/style.md"})
        assert read["content"] == "tabs"
        assert (await ok(s, "list_memories", {"topic": "auth"}))["memories"] == []

    with_server(store, other_project, project="other")
