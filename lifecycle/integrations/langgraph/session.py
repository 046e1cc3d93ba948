"""``GraphSession``: a LangGraph run as one lifecycle session.

    manager = SessionManager(store=store, project="agent")
    session = GraphSession(manager)
    tools = session.tool_node([run_shell, read_file])    # a ToolNode that asks first
    graph = build(tools).compile(checkpointer=LifecycleSaver(store, project="agent"))
    result = session.run(graph, {"messages": [...]}, {"configurable": {"thread_id": "t1"}})

What the session sees of the run:

- the run starts: ``start_session(restore=True)``; a thread that stopped at an
  interrupt (in this process or another) is RESUMED from that checkpoint;
- each tool call goes through ``before_operation`` first (:meth:`wrap_tool_call`, the
  ToolNode's ``wrap_tool_call``): a risky one (``rm -rf``, a migration, a force push,
  ...: the risk trigger's rules) is checkpointed before it runs, and if that
  checkpoint cannot be written the tool does not run: the model is told so in an error
  ``ToolMessage``;
- each node that completes is ``complete_task`` (``{node}@{n}``; ``priorities``
  gives a node ``high`` to checkpoint on every completion);
- an ``interrupt()`` is a checkpoint (its phase names the nodes waiting, its context
  the interrupt values and LangGraph's checkpoint id), and the session stays open for
  the resume;
- the run's end ends the session (``end_session(success=True)``); a run that raises
  ends it with ``success=False`` and re-raises.

One :class:`GraphSession` is one session: once it has ended, build another (with a
new manager) for the next run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import orjson
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from lifecycle.records import JSONValue
from lifecycle.session import SessionManager
from lifecycle.session.results import Clearance, EndResult, StartResult
from lifecycle.spec import TABLE, Event
from lifecycle.triggers.base import Operation

#: Tool-call arguments read as the operation's shell command and its paths.
COMMAND_ARGS = ("command", "cmd", "script", "shell")
PATH_ARGS = ("path", "file_path", "filename", "file", "target", "destination")
PATHS_ARGS = ("paths", "files", "file_paths")

ToolResult = ToolMessage | Command[Any]


def tool_operation(call: ToolCall) -> Operation:
    """The operation a tool call is: its name; a shell command and paths from its
    arguments when they have one (``command``, ``path``, ``paths``, ...)."""
    args = call.get("args") or {}
    command = next((v for k in COMMAND_ARGS if isinstance(v := args.get(k), str)), None)
    paths = [v for k in PATH_ARGS if isinstance(v := args.get(k), str)]
    for k in PATHS_ARGS:
        value = args.get(k)
        if isinstance(value, list | tuple):
            paths += [p for p in value if isinstance(p, str)]
    return Operation(name=call["name"], command=command, paths=tuple(paths))


@attrs.frozen
class RunResult:
    """What :meth:`GraphSession.run` ends with."""

    #: The graph's state values after the run (or at the interrupt).
    values: dict[str, Any]
    #: The nodes waiting to run (the run stopped at an interrupt); empty at the end.
    next: tuple[str, ...] = ()
    #: The interrupt values the run stopped at.
    interrupts: tuple[Any, ...] = ()
    #: The session's end, when the run ran to the end.
    ended: EndResult | None = None

    @property
    def interrupted(self) -> bool:
        return bool(self.next)


class GraphSession:
    """One LangGraph run as one lifecycle session (see the module docstring).

    ``operation_of`` turns a tool call into the :class:`Operation` the risk trigger
    judges (:func:`tool_operation` by default); ``priorities`` maps node names to a
    task priority (``"high"`` checkpoints each completion of that node).
    """

    def __init__(
        self,
        manager: SessionManager,
        *,
        command: str = "langgraph",
        operation_of: Callable[[ToolCall], Operation] = tool_operation,
        priorities: Mapping[str, str] | None = None,
    ) -> None:
        self.manager = manager
        self.command = command
        self.operation_of = operation_of
        self.priorities = dict(priorities or {})
        self.started: StartResult | None = None
        #: Every tool call's ``(tool name, clearance)``, in order.
        self.clearances: list[tuple[str, Clearance]] = []

    # -- the session's events ----------------------------------------------------------------

    def start(self, thread_id: str) -> StartResult:
        """Start the session, restoring the latest checkpoint (once; later calls return
        the first start)."""
        if self.started is None:
            self.started = self.manager.start_session(
                command=f"{self.command} {thread_id}", restore=True
            )
            self.manager.update_context({"langgraph_thread_id": thread_id})
        return self.started

    def clear(self, call: ToolCall) -> Clearance:
        """``before_operation`` for a tool call: may it run?"""
        clearance = self.manager.before_operation(self.operation_of(call))
        self.clearances.append((call["name"], clearance))
        return clearance

    def node_completed(self, node: str) -> None:
        """``complete_task("{node}@{n}")``, n counting the session's completed tasks (a
        restored session goes on from its checkpoint's count)."""
        n = len(self.manager.work.completed_tasks) + 1
        self.manager.complete_task(
            f"{node}@{n}", f"LangGraph node {node}", priority=self.priorities.get(node)
        )

    def interrupted(self, interrupts: Sequence[Any], config: RunnableConfig | None) -> None:
        """A checkpoint for an ``interrupt()``: the run waits for its resume."""
        context: dict[str, JSONValue] = {
            **self.manager.context,
            "langgraph_interrupts": [_json(i) for i in interrupts],
        }
        if config is not None:
            context["langgraph_checkpoint_id"] = config["configurable"].get("checkpoint_id")
        self.manager.create_checkpoint(phase="interrupted", context=context)

    def end(self, *, success: bool) -> EndResult:
        return self.manager.end_session(success=success, phase="completed" if success else None)

    # -- tool calls ------------------------------------------------------------------------

    def wrap_tool_call(
        self, request: ToolCallRequest, execute: Callable[[ToolCallRequest], ToolResult]
    ) -> ToolResult:
        """A ToolNode ``wrap_tool_call``: the tool runs only if ``before_operation`` clears it."""
        clearance = self.clear(request.tool_call)
        if not clearance.proceed:
            return _refusal(request.tool_call, clearance)
        return execute(request)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        execute: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        clearance = await asyncio.to_thread(self.clear, request.tool_call)
        if not clearance.proceed:
            return _refusal(request.tool_call, clearance)
        return await execute(request)

    def tool_node(self, tools: Sequence[Any], **kwargs: Any) -> ToolNode:
        """A LangGraph ``ToolNode`` whose every call goes through :meth:`wrap_tool_call`."""
        return ToolNode(
            tools,
            wrap_tool_call=self.wrap_tool_call,
            awrap_tool_call=self.awrap_tool_call,
            **kwargs,
        )

    # -- a whole run -----------------------------------------------------------------------

    def run(self, graph: Any, input: Any, config: RunnableConfig, **kwargs: Any) -> RunResult:
        """Run ``graph`` (a compiled LangGraph with a checkpointer) on ``input`` (or a
        ``Command(resume=...)``) as this session; see the module docstring."""
        self.start(str(config["configurable"]["thread_id"]))
        try:
            for chunk in graph.stream(input, config, stream_mode="updates", **kwargs):
                self._update(chunk)
            return self._finish(graph.get_state(config))
        except Exception:  # a cancelled or interrupted run stays open, to be resumed
            self._fail()
            raise

    async def arun(
        self, graph: Any, input: Any, config: RunnableConfig, **kwargs: Any
    ) -> RunResult:
        """:meth:`run` for ``astream``; the manager's I/O runs in a worker thread."""
        await asyncio.to_thread(self.start, str(config["configurable"]["thread_id"]))
        try:
            async for chunk in graph.astream(input, config, stream_mode="updates", **kwargs):
                await asyncio.to_thread(self._update, chunk)
            snapshot = await graph.aget_state(config)
            return await asyncio.to_thread(self._finish, snapshot)
        except Exception:
            await asyncio.to_thread(self._fail)
            raise

    def _update(self, chunk: Mapping[str, Any]) -> None:
        for node in chunk:
            if node != "__interrupt__":
                self.node_completed(node)

    def _finish(self, snapshot: Any) -> RunResult:
        values = dict(snapshot.values or {})
        interrupts = tuple(i.value for task in snapshot.tasks for i in task.interrupts)
        if snapshot.next:
            self.interrupted(interrupts, snapshot.config)
            return RunResult(values=values, next=tuple(snapshot.next), interrupts=interrupts)
        return RunResult(values=values, ended=self.end(success=True))

    def _fail(self) -> None:
        if self.started is not None and Event.COMPLETE in TABLE.legal_events(self.manager.state):
            self.end(success=False)


def _refusal(call: ToolCall, clearance: Clearance) -> ToolMessage:
    return ToolMessage(
        content=f"not run: {clearance.reason}; the tool call was refused so that no work is lost",
        tool_call_id=call.get("id") or "",
        name=call["name"],
        status="error",
    )


def _json(value: Any) -> JSONValue:
    """``value`` as a JSON value for the checkpoint's context (its text if it has none)."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return repr(value)
