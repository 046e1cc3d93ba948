"""``lifecycle mcp`` driven by the official clients: the MCP Inspector CLI (0.15, node 20)
and the TypeScript SDK's client (tests/mcp_clients/sdk_client.mjs), each starting the
server as its own process, as an MCP client does.

The clients are pinned in tests/mcp_clients/package-lock.json and installed with
``npm ci`` (tests/mcp_clients/install.sh, which .ci/run runs; the fixture runs it too
when the installed copy is missing or stale). Without node and npm these tests fail
and say so: they are the check that real clients can use the server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from procs import ROOT, environment, run_json

from lifecycle.integrations.mcp_server import TOOLS
from lifecycle.records import MAX_LEARNING_CHARS

CLIENTS = Path(ROOT) / "tests" / "mcp_clients"
INSPECTOR = CLIENTS / "node_modules" / "@modelcontextprotocol" / "inspector" / "cli" / "build"
TIMEOUT = 120


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, with the pinned clients installed."""
    found, npm = shutil.which("node"), shutil.which("npm")
    if found is None or npm is None:
        pytest.fail(
            "node and npm are needed to run the MCP Inspector and the TypeScript SDK against "
            "`lifecycle mcp` (Debian: apt-get install nodejs npm; .ci/run installs them)"
        )
    done = subprocess.run(
        ["bash", str(CLIENTS / "install.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return found


def server(store: str) -> list[str]:
    return [sys.executable, "-m", "lifecycle", "mcp", "--store", store]


def sdk(node: str, mode: str, store: str, stdin: Any = None, *more: list[str]) -> Any:
    command = [node, str(CLIENTS / "sdk_client.mjs"), mode, "--", *server(store)]
    for other in more:
        command += ["--", *other]
    done = subprocess.run(
        command,
        input=json.dumps(stdin),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment(),
        cwd=CLIENTS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def inspector(node: str, store: str, method: str, *args: str) -> Any:
    command = [node, str(INSPECTOR / "cli.js"), "--cli", *server(store), "--method", method]
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment(),
        cwd=CLIENTS,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


def structured(result: dict[str, Any]) -> Any:
    assert "thrown" not in result, result
    assert result["isError"] is False, result["text"]
    return result["structuredContent"]


def failed(result: dict[str, Any]) -> str:
    assert "thrown" not in result, result
    assert result["isError"] is True, result
    assert "\n" not in result["text"]
    return str(result["text"])


def test_the_inspector_lists_every_tool_and_the_strict_check_finds_nothing(
    node: str, tmp_path: Path
) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    listed = inspector(node, store, "tools/list")
    assert [t["name"] for t in listed["tools"]] == list(TOOLS)
    checked = sdk(node, "list", store)
    assert checked["problems"] == []
    assert checked["tools"] == listed["tools"]


def test_the_inspector_calls_tools_in_separate_server_processes(node: str, tmp_path: Path) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    load = inspector(node, store, "tools/call", "--tool-name", "session_load")
    assert load["structuredContent"]["is_fresh_session"] is True
    args = ["--tool-arg", "memory_name=global/java/style guide", "--tool-arg", "content=tabs"]
    wrote = inspector(node, store, "tools/call", "--tool-name", "write_memory", *args)
    assert wrote["structuredContent"]["key"] == "memories/java/x--style_20guide-"
    read = inspector(
        node,
        store,
        "tools/call",
        "--tool-name",
        "read_memory",
        "--tool-arg",
        "memory_name=global/java/style guide.md",
    )
    assert read["structuredContent"]["content"] == "tabs"
    assert read["structuredContent"]["memory_name"] == "global/java/style guide"


def test_the_session_report_and_each_learning_are_resources_and_resume_work_a_prompt(
    node: str, tmp_path: Path
) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    sdk(
        node,
        "calls",
        store,
        [
            {"tool": "session_load", "arguments": {"command": "impl"}},
            {"tool": "session_save", "arguments": {"phase": "Phase 2"}},
            {
                "tool": "capture_learning",
                "arguments": {"type": "pattern", "key": "retry", "content": "back off"},
            },
        ],
    )
    listed = inspector(node, store, "resources/list")
    assert [r["uri"] for r in listed["resources"]] == [
        "lifecycle://session/report",
        "lifecycle://learning/patterns/retry",
    ]
    learning = inspector(
        node, store, "resources/read", "--uri", "lifecycle://learning/patterns/retry"
    )
    assert learning["contents"][0]["text"] == "back off"
    report = inspector(node, store, "resources/read", "--uri", "lifecycle://session/report")
    assert "Phase: Phase 2" in report["contents"][0]["text"]
    prompt = inspector(
        node, store, "prompts/get", "--prompt-name", "resume_work", "--prompt-args", "focus=tests"
    )
    text = prompt["messages"][0]["content"]["text"]
    assert "Phase: Phase 2" in text
    assert text.endswith(
        "then carry on with: tests. Record tasks, decisions and files as you "
        "go; session_save at milestones."
    )


def test_a_workflow_across_two_server_processes_through_the_typescript_sdk(
    node: str, tmp_path: Path
) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    first = sdk(
        node,
        "calls",
        store,
        [
            {"tool": "session_load", "arguments": {"command": "impl parser"}},
            {"tool": "add_task", "arguments": {"task_id": "T1", "description": "Parser"}},
            {"tool": "record_decision", "arguments": {"decision": "argparse", "rationale": "std"}},
            {"tool": "record_file_change", "arguments": {"path": "cli.py", "changes": 30}},
            {"tool": "complete_task", "arguments": {"task_id": "T1", "priority": "high"}},
            {
                "tool": "session_save",
                "arguments": {"phase": "Phase 1", "progress": {"completed": 1, "total": 2}},
            },
            {
                "tool": "capture_learning",
                "arguments": {
                    "type": "solution",
                    "key": "jwt-expiry",
                    "content": "7 days",
                    "tags": ["auth"],
                },
            },
            {
                "tool": "write_memory",
                "arguments": {"memory_name": "auth/login/logic", "content": "a"},
            },
            {
                "tool": "write_memory",
                "arguments": {"memory_name": "auth/login/logic", "content": "b"},
            },
            {
                "tool": "edit_memory",
                "arguments": {"memory_name": "auth/login/logic", "needle": "b", "repl": "OAuth"},
            },
            {"tool": "write_memory", "arguments": {"memory_name": "日本語メモ", "content": "メモ"}},
            {"tool": "list_memories", "arguments": {"topic": "auth"}},
            {"tool": "list_learnings", "arguments": {"tag": "auth"}},
            {"tool": "session_end", "arguments": {"success": True}},
        ],
    )
    results = [structured(r) for r in first]
    assert results[0]["is_fresh_session"] is True
    assert results[4]["checkpoint"]["trigger"] == "task-complete"
    assert results[5]["written"] is True
    assert results[6] == {
        "success": True,
        "learning_key": "learning/solutions/jwt-expiry",
        "overwritten": False,
    }
    assert (results[7]["overwritten"], results[8]["overwritten"]) == (False, True)
    assert results[9]["replacements"] == 1
    assert results[11] == {"memories": ["auth/login/logic"], "next_cursor": None}
    assert [i["key"] for i in results[12]["learnings"]] == ["learning/solutions/jwt-expiry"]
    assert results[13]["tasks_completed"] == ["T1"]

    second = sdk(
        node,
        "calls",
        store,
        [
            {"tool": "session_load", "arguments": {}},
            {"tool": "read_memory", "arguments": {"memory_name": "auth/login/logic"}},
            {"tool": "list_memories", "arguments": {}},
            {"tool": "session_status", "arguments": {}},
        ],
    )
    load, memo, names, status = (structured(r) for r in second)
    assert load["is_fresh_session"] is False
    assert load["restored_state"]["phase"] == "Phase 1"
    assert "Progress: 1/2 (50%)" in load["report"]
    assert memo["content"] == "OAuth"
    records = ("summaries/", "project_state/")  # what session_end wrote
    assert [n for n in names["memories"] if not n.startswith(records)] == [
        "learning/solutions/jwt-expiry",
        "auth/login/logic",
        "日本語メモ",
    ]
    assert "project_state/decisions_log" in names["memories"]
    assert status["state"] == "RESUMED"
    # the command line sees the session the MCP server left open
    assert run_json(["status", "--store", store], cwd=tmp_path)["phase"] == "Phase 1"


def test_schemas_accept_nothing_else_and_say_what_would_be_right_in_one_line(
    node: str, tmp_path: Path
) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    results = sdk(
        node,
        "calls",
        store,
        [
            {"tool": "session_load", "arguments": {"restore": "yes"}},
            {"tool": "session_load", "arguments": {}},
            {"tool": "session_save", "arguments": {"progress": '{"completed": 1}'}},
            {"tool": "record_file_change", "arguments": {"path": "a", "operation": "frobnicate"}},
            {"tool": "record_file_change", "arguments": {"path": "a", "changes": -5}},
            {"tool": "add_task", "arguments": {"task_id": "T1", "colour": "red"}},
            {"tool": "session_save", "arguments": {"phase": None}},
        ],
    )
    assert failed(results[0]) == (
        "session_load: argument 'restore': input should be a valid boolean, got 'yes'"
    )
    structured(results[1])
    assert failed(results[2]) == (
        "session_save: argument 'progress': input should be a valid dictionary, "
        "got '{\"completed\": 1}'"
    )
    assert failed(results[3]) == (
        "record_file_change: argument 'operation': input should be 'create', 'edit', "
        "'delete' or 'rename', got 'frobnicate'"
    )
    assert failed(results[4]) == (
        "record_file_change: argument 'changes': input should be greater than or equal to 0, got -5"
    )
    assert failed(results[5]) == (
        "add_task: unknown argument 'colour' (arguments: task_id, description, priority, status)"
    )
    assert failed(results[6]) == "session_save: argument 'phase': null is not accepted; omit it"


def test_each_hostile_shape_is_answered_within_a_second(node: str, tmp_path: Path) -> None:
    answers = sdk(node, "hostile", f"file://{tmp_path / '.lifecycle'}")
    codes = {
        "lone_surrogate": -32600,
        "lone_surrogate_in_name": -32600,
        "nested_200": -32602,
        "nested_1000": -32602,
        "params_array": -32602,
        "no_jsonrpc": -32600,
        "jsonrpc_1_0": -32600,
    }
    first_id = {"_early": 10, "": 40}
    for tag, base in first_id.items():
        for offset, (shape, code) in enumerate(codes.items()):
            answer = answers[shape + tag]
            assert answer["id"] == base + offset, (shape + tag, answer)
            assert answer["error"]["code"] == code, (shape + tag, answer)
            assert answer["ms"] < 1000, (shape + tag, answer)
        assert answers["ping" + tag]["result"] == {}
    for big in ("megabyte_name", "megabyte_content"):
        assert answers[big]["ms"] < 1000
        assert answers[big]["result"]["isError"] is True
        assert answers[big]["bytes"] < 1000, "an error quotes at most 200 characters of the input"


def test_two_servers_saving_on_one_store_at_once_lose_nothing(node: str, tmp_path: Path) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    n = 15
    done = sdk(node, "concurrent", store, {"n": n}, server(store))
    assert done["errors"] == []
    expected = {f"c{who}-t{i}" for who in (0, 1) for i in range(n)}
    assert set(done["open_tasks"]) == expected


def test_list_learnings_is_paged_and_bounded(node: str, tmp_path: Path) -> None:
    store = f"file://{tmp_path / '.lifecycle'}"
    big = "x" * MAX_LEARNING_CHARS
    steps: list[dict[str, Any]] = [
        {
            "tool": "capture_learning",
            "arguments": {"type": "insight", "key": f"i{i}", "content": big},
        }
        for i in range(3)
    ]
    steps += [
        {
            "tool": "capture_learning",
            "arguments": {"type": "insight", "key": "x", "content": big + "x"},
        },
        {"tool": "list_learnings", "arguments": {"limit": 2}},
        {"tool": "list_learnings", "arguments": {"limit": 2, "cursor": "learning/insights/i1"}},
        {"tool": "read_memory", "arguments": {"memory_name": "learning/insights/i0"}},
    ]
    results = sdk(node, "calls", store, steps)
    for r in results[:3]:
        structured(r)
    too_long = failed(results[3])
    assert too_long.startswith("content: ") or "at most 200000 characters" in too_long
    page1, page2, read = (structured(r) for r in results[4:])
    assert [i["key"] for i in page1["learnings"]] == [
        "learning/insights/i0",
        "learning/insights/i1",
    ]
    assert page1["next_cursor"] == "learning/insights/i1"
    assert all(len(i["content"]) == 2_000 and i["truncated"] for i in page1["learnings"])
    assert [i["key"] for i in page2["learnings"]] == ["learning/insights/i2"]
    assert page2["next_cursor"] is None
    assert (len(read["content"]), read["chars"], read["truncated"]) == (
        50_000,
        MAX_LEARNING_CHARS,
        True,
    )
