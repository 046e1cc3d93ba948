"""A LangGraph agent whose run is one lifecycle session, on one store, without a model.

    python examples/langgraph_agent.py [--store URL]

(needs the ``[langgraph]`` extra, and ``[testing]`` for the kit's FaultyStore of run 3;
``[dev]`` has both.)

The agent (a scripted chat model from langchain_core, so no model or network is
needed) prepares a release: it reads the changelog, cleans the build folder with
``rm -rf`` and then asks a person, with LangGraph's ``interrupt()``, whether to publish.
The graph's checkpoints are kept by ``LifecycleSaver`` and the run is a lifecycle
session (``GraphSession``), both in one project of one store:

1. the first run starts a fresh session; ``rm -rf build/`` is risky, so the session
   checkpoints before the tool runs; the interrupt is a checkpoint too, and the
   process stops there;
2. a second run, with a new saver and a new manager as another process would have,
   resumes the thread with the person's answer: the session is RESUMED from the
   interrupt's checkpoint, the graph finishes and the session ends;
3. a third agent on a store whose checkpoint writes fail asks for ``git push
   --force``: its checkpoint cannot be written, so the tool is refused and never runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, interrupt

from lifecycle import SessionManager, open_store
from lifecycle.integrations.langgraph import GraphSession, LifecycleSaver
from lifecycle.stores import Store
from lifecycle.testing import FaultyStore

PROJECT = "release-agent"
RAN: list[str] = []  # what the tools really did


@tool
def read_file(path: str) -> str:
    """Read a file of the project."""
    RAN.append(f"read_file {path}")
    return "## 1.2.0\n- faster checkpoints"


@tool
def run_shell(command: str) -> str:
    """Run a shell command in the project."""
    RAN.append(f"run_shell {command}")
    return "ok"


def call(name: str, n: int, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call-{n}"}])


def scripted_model(*commands: str) -> FakeMessagesListChatModel:
    """The model's turns: read the changelog, run each command, then say it is ready."""
    turns = [call("read_file", 0, path="CHANGELOG.md")]
    turns += [call("run_shell", i, command=c) for i, c in enumerate(commands, 1)]
    return FakeMessagesListChatModel(responses=[*turns, AIMessage(content="ready to publish")])


def build(session: GraphSession, model: FakeMessagesListChatModel, saver: LifecycleSaver) -> Any:
    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "approve"

    def approve(state: MessagesState) -> dict[str, list[BaseMessage]]:
        answer = interrupt({"question": "publish 1.2.0?"})
        verdict = "published 1.2.0" if answer == "yes" else "not published"
        return {"messages": [AIMessage(content=verdict)]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", session.tool_node([read_file, run_shell]))
    builder.add_node("approve", approve)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", "approve"])
    builder.add_edge("tools", "agent")
    builder.add_edge("approve", END)
    return builder.compile(checkpointer=saver)


def clearances(session: GraphSession) -> None:
    for name, clearance in session.clearances:
        if not clearance.proceed:
            print(f"  tool {name}: refused ({clearance.reason})")
        elif clearance.checkpoint is not None and clearance.checkpoint.written:
            print(f"  tool {name}: checkpointed first ({clearance.checkpoint.key})")
        else:
            print(f"  tool {name}: not risky, ran")


def first_run(store: Store, config: dict[str, Any]) -> None:
    manager = SessionManager(store=store, project=PROJECT)
    session = GraphSession(manager)
    graph = build(session, scripted_model("rm -rf build/"), LifecycleSaver(store, project=PROJECT))
    result = session.run(graph, {"messages": [HumanMessage("prepare the release")]}, config)
    assert session.started is not None
    print(f"run 1: fresh session: {session.started.is_fresh_session}")
    clearances(session)
    print(f"  interrupted before {', '.join(result.next)}: {result.interrupts[0]}")
    latest = manager.read_checkpoint()
    print(f"  checkpoint {latest.id} phase={latest.phase}; the process stops here")


def second_run(store: Store, config: dict[str, Any]) -> None:
    manager = SessionManager(store=store, project=PROJECT)  # as another process would
    session = GraphSession(manager)
    graph = build(session, scripted_model(), LifecycleSaver(store, project=PROJECT))
    result = session.run(graph, Command(resume="yes"), config)
    assert session.started is not None
    restored = session.started.restored_state or {}
    print(
        f"run 2: resumed: {not session.started.is_fresh_session} from "
        f"{session.started.checkpoint_id} (phase {restored.get('phase')})"
    )
    print(f"  the agent says: {result.values['messages'][-1].content}")
    done = [t.id for t in manager.work.completed_tasks]
    print(f"  session {manager.state.value}; nodes completed: {', '.join(done)}")


def refused_run(store: Store) -> None:
    faulty = FaultyStore(store)
    faulty.fail(("put", "batch"), prefix=f"{PROJECT}-3/checkpoints/")
    manager = SessionManager(store=faulty, project=f"{PROJECT}-3")
    session = GraphSession(manager)
    saver = LifecycleSaver(store, project=f"{PROJECT}-3")
    graph = build(session, scripted_model("git push --force origin main"), saver)
    config = {"configurable": {"thread_id": "release-3"}}
    session.run(graph, {"messages": [HumanMessage("publish it now")]}, config)
    print("run 3: checkpoint writes fail")
    clearances(session)
    tool_replies = [m for m in graph.get_state(config).values["messages"] if m.type == "tool"]
    print(f"  the model was told: {tool_replies[-1].content}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a store URL (default: a SQLite file in a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.store or f"sqlite:///{tmp}/agent.db"
        store = open_store(url)
        print(f"langgraph agent on {url}")
        config = {"configurable": {"thread_id": "release/1.2.0"}}
        first_run(store, config)
        second_run(store, config)
        RAN.clear()
        refused_run(store)
        print(f"  commands that ran: {RAN}")
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
