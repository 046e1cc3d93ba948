"""GraphSession: a LangGraph run is one lifecycle session. It starts (restoring) with the
run, a risky tool call is checkpointed before the tool runs and refused if that
checkpoint fails, node completions are completed tasks, an interrupt is a checkpoint,
the run's end ends the session. And examples/langgraph_agent.py runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

from lifecycle import SessionManager
from lifecycle.integrations.langgraph import GraphSession, LifecycleSaver, tool_operation
from lifecycle.spec import SessionState
from lifecycle.stores.base import Store
from lifecycle.stores.sqlite import SqliteStore
from lifecycle.testing import FaultyStore
from lifecycle.triggers.base import Operation

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "langgraph_agent.py"
PROJECT = "agent"
CONFIG = {"configurable": {"thread_id": "thread-1"}}


class Shell:
    """A shell tool that records, when it runs, the checkpoints the store holds."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.ran: list[tuple[str, list[str]]] = []

        @tool
        def run_shell(command: str) -> str:
            """Run a shell command."""
            held = self.store.list_keys(f"{PROJECT}/checkpoints/")
            self.ran.append((command, [k for k in held if "/risk-" in k]))
            return "ok"

        self.tool = run_shell


def agent_graph(
    session: GraphSession, shell: Shell, saver: LifecycleSaver, *commands: str, ask: bool = False
) -> Any:
    turns: list[BaseMessage] = [
        AIMessage(
            content="",
            tool_calls=[{"name": "run_shell", "args": {"command": c}, "id": f"c{i}"}],
        )
        for i, c in enumerate(commands)
    ]
    model = FakeMessagesListChatModel(responses=[*turns, AIMessage(content="done")])

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        if isinstance(last, AIMessage) and last.tool_calls:
            return "tools"
        return "ask" if ask else END

    def ask_person(state: MessagesState) -> dict[str, list[BaseMessage]]:
        answer = interrupt({"question": "ship it?"})
        return {"messages": [AIMessage(content=f"answer: {answer}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", session.tool_node([shell.tool]))
    builder.add_node("ask", ask_person)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", "ask", END])
    builder.add_edge("tools", "agent")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


def start(tmp_path: Path, store: Store | None = None) -> tuple[Store, SessionManager, Any]:
    store = store or SqliteStore(tmp_path / "agent.db")
    return (
        store,
        SessionManager(store=store, project=PROJECT),
        LifecycleSaver(store, project=PROJECT),
    )


def human(text: str) -> dict[str, list[BaseMessage]]:
    return {"messages": [HumanMessage(text)]}


def test_a_risky_tool_call_is_checkpointed_before_the_tool_runs(tmp_path: Path) -> None:
    store, manager, saver = start(tmp_path)
    shell = Shell(store)
    session = GraphSession(manager)
    graph = agent_graph(session, shell, saver, "ls", "rm -rf build/")
    session.run(graph, human("clean up"), CONFIG)
    (ls, before_ls), (rm, before_rm) = shell.ran
    assert (ls, before_ls) == ("ls", [])
    assert rm == "rm -rf build/"
    assert len(before_rm) == 1 and "/checkpoints/risk-rm-rf-" in before_rm[0]
    (_, first), (_, second) = session.clearances
    assert first.proceed and first.checkpoint is None and first.reason == "not risky"
    assert second.proceed and second.checkpoint is not None and second.checkpoint.written


def test_a_risky_tool_call_is_refused_when_its_checkpoint_cannot_be_written(
    tmp_path: Path,
) -> None:
    inner = SqliteStore(tmp_path / "agent.db")
    faulty = FaultyStore(inner)
    faulty.fail(("put", "batch"), prefix=f"{PROJECT}/checkpoints/")
    _, manager, _ = start(tmp_path, faulty)
    saver = LifecycleSaver(inner, project=PROJECT)
    shell = Shell(inner)
    session = GraphSession(manager)
    graph = agent_graph(session, shell, saver, "git push --force origin main")
    session.run(graph, human("ship"), CONFIG)
    assert shell.ran == []
    [(name, clearance)] = session.clearances
    assert name == "run_shell" and not clearance.proceed
    [reply] = [m for m in graph.get_state(CONFIG).values["messages"] if isinstance(m, ToolMessage)]
    assert reply.status == "error"
    assert reply.content == (
        f"not run: {clearance.reason}; the tool call was refused so that no work is lost"
    )
    assert clearance.reason.startswith("checkpoint before a risky operation failed: ")


def test_node_completions_are_completed_tasks_and_the_end_ends_the_session(
    tmp_path: Path,
) -> None:
    store, manager, saver = start(tmp_path)
    session = GraphSession(manager, priorities={"tools": "high"})
    graph = agent_graph(session, Shell(store), saver, "ls")
    result = session.run(graph, human("look"), CONFIG)
    assert [t.id for t in manager.work.completed_tasks] == ["agent@1", "tools@2", "agent@3"]
    assert [t.priority.value for t in manager.work.completed_tasks] == ["medium", "high", "medium"]
    assert any("/checkpoints/task-tools-2-" in k for k in store.list_keys(f"{PROJECT}/"))
    assert manager.state is SessionState.COMPLETED
    assert result.ended is not None and result.ended.summary.success is True
    assert not result.interrupted and result.values["messages"][-1].content == "done"


def test_an_interrupt_is_a_checkpoint_and_the_next_run_resumes_from_it(tmp_path: Path) -> None:
    store, manager, saver = start(tmp_path)
    session = GraphSession(manager)
    result = session.run(agent_graph(session, Shell(store), saver, ask=True), human("go"), CONFIG)
    assert result.interrupted and result.next == ("ask",)
    assert result.interrupts == ({"question": "ship it?"},)
    assert manager.state is SessionState.CHECKPOINTED
    checkpoint = manager.read_checkpoint()
    assert checkpoint.phase == "interrupted"
    graph_state = saver.get_tuple(CONFIG)
    assert graph_state is not None
    assert checkpoint.context == {
        "langgraph_thread_id": "thread-1",
        "langgraph_interrupts": [{"question": "ship it?"}],
        "langgraph_checkpoint_id": graph_state.config["configurable"]["checkpoint_id"],
    }
    # Another process: a new manager and saver on the same store.
    _, manager2, saver2 = start(tmp_path, store)
    resumed = GraphSession(manager2)
    done = resumed.run(
        agent_graph(resumed, Shell(store), saver2, ask=True), Command(resume="yes"), CONFIG
    )
    assert resumed.started is not None and resumed.started.checkpoint_id == checkpoint.id
    assert not resumed.started.is_fresh_session
    assert done.values["messages"][-1].content == "answer: yes"
    assert manager2.state is SessionState.COMPLETED
    assert [t.id for t in manager2.work.completed_tasks] == ["agent@1", "ask@2"]


def test_a_run_that_raises_ends_the_session_unsuccessfully_and_raises(tmp_path: Path) -> None:
    _, manager, saver = start(tmp_path)

    def broken(state: MessagesState) -> dict[str, Any]:
        raise RuntimeError("the node broke")

    builder = StateGraph(MessagesState)
    builder.add_node("broken", broken)
    builder.add_edge(START, "broken")
    session = GraphSession(manager)
    with pytest.raises(RuntimeError, match="the node broke"):
        session.run(builder.compile(checkpointer=saver), human("x"), CONFIG)
    assert manager.state is SessionState.COMPLETED
    summary = manager.store.get("session/last")
    assert summary is not None and b'"success":false' in summary.value


def test_an_async_run_clears_tool_calls_too(tmp_path: Path) -> None:
    store, manager, saver = start(tmp_path)
    shell = Shell(store)
    session = GraphSession(manager)
    graph = agent_graph(session, shell, saver, "rm -rf dist/")
    result = asyncio.run(session.arun(graph, human("clean"), CONFIG))
    [(command, before)] = shell.ran
    assert command == "rm -rf dist/" and len(before) == 1
    assert result.ended is not None and manager.state is SessionState.COMPLETED


def test_a_tool_call_is_the_operation_its_arguments_name() -> None:
    call = {"name": "edit", "args": {"path": "db/migrations/1.sql", "paths": ["a", 3]}, "id": "1"}
    assert tool_operation(call) == Operation(name="edit", paths=("db/migrations/1.sql", "a"))  # type: ignore[arg-type]
    shell = {"name": "sh", "args": {"command": "rm -rf /tmp/x"}, "id": "2"}
    assert tool_operation(shell) == Operation(name="sh", command="rm -rf /tmp/x")  # type: ignore[arg-type]


def test_the_langgraph_example_interrupts_resumes_and_refuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/agent.db"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--store", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == [
        f"langgraph agent on {url}",
        "run 1: fresh session: True",
        "  tool read_file: not risky, ran",
    ]
    assert lines[3].startswith("  tool run_shell: checkpointed first (checkpoints/risk-rm-rf-")
    assert lines[4] == "  interrupted before approve: {'question': 'publish 1.2.0?'}"
    interrupt_id = lines[5].split()[1]
    assert lines[5] == f"  checkpoint {interrupt_id} phase=interrupted; the process stops here"
    assert lines[6] == f"run 2: resumed: True from {interrupt_id} (phase interrupted)"
    assert lines[7:9] == [
        "  the agent says: published 1.2.0",
        "  session COMPLETED; nodes completed: "
        "agent@1, tools@2, agent@3, tools@4, agent@5, approve@6",
    ]
    assert lines[9:11] == ["run 3: checkpoint writes fail", "  tool read_file: not risky, ran"]
    assert lines[11].startswith(
        "  tool run_shell: refused (checkpoint before a risky operation failed"
    )
    assert lines[-1] == "  commands that ran: ['read_file CHANGELOG.md']"
