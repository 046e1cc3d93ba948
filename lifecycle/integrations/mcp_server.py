"""``lifecycle mcp``: the session, learnings and memory as MCP tools, over stdio.

Any MCP client (Claude Code, Claude Desktop, Cursor, ...) gets:

- the session: ``session_load``, ``session_save``, ``session_status``,
  ``session_end``, and work records: ``add_task``, ``complete_task``,
  ``record_decision``, ``record_file_change``;
- learnings: ``capture_learning``, ``list_learnings`` (paged, by type and tag);
- memory, with Serena's tools and names: ``read_memory``, ``write_memory``,
  ``edit_memory``, ``rename_memory``, ``list_memories``, ``delete_memory``
  (names as :mod:`lifecycle.integrations.memory_names` maps them to keys);
- ``rewind``: the work tree's files back from a risk checkpoint's git snapshot.

**The tool table.** Each tool is a function below, registered with :func:`tool`:
its first argument is the :class:`Env` (the store and the project), the others are
its MCP arguments, each ``Annotated`` with a pydantic ``Field`` whose description,
``pattern``, ``max_length``, ``ge``/``le`` go into the published input schema; the
return annotation is its output schema; the docstring is its description (say
when to use the tool). The hints (``read_only``, ``destructive``, ``idempotent``)
are the tool's annotations; no tool reaches outside the store (``openWorldHint``
false). Arguments are validated strictly against that model: no coercion
(``"yes"`` is not a boolean, a JSON string is not an object), no unknown argument;
a failure is one line naming the argument and what would be right.

Every tool answers with structured content; an error (a bad name, no open
session, a store failure) is a tool error (``isError``) whose text is one line
quoting at most 200 characters of any input. Each call is one step of the
project's one open session, exactly as a command or a Claude Code hook is (see
:mod:`lifecycle.integrations.live`), so the MCP server, the hooks and the command
line can work on the same session.

The table imports no ``mcp``: the transport (:mod:`lifecycle.integrations.mcp_stdio`)
lists the tools from it while the SDK is still being imported.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, get_type_hints

import attrs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from lifecycle import keys, limits
from lifecycle.errors import LifecycleError, quoted
from lifecycle.integrations import outputs
from lifecycle.integrations.memory_names import GLOBAL_SCOPE, GLOBAL_TOPIC, MemoryRef, memory_ref

#: Listed by list_memories when no topic is given: what a reader wants, without the
#: many checkpoints and journal entries.
MEMORY_PREFIXES = (
    keys.MEMORIES_PREFIX,
    keys.LEARNING_PREFIX,
    keys.SUMMARIES_PREFIX,
    keys.PROJECT_STATE_PREFIX,
)
#: The longest answer a read tool gives by default, and the most it can be asked for.
DEFAULT_ANSWER_CHARS = 50_000
#: The longest text a memory tool takes or gives: a memory's, or a learning's.
MAX_TEXT_CHARS = max(limits.MEMORY_TEXT_CHARS, limits.LEARNING_CONTENT_CHARS)
MAX_ANSWER_CHARS = MAX_TEXT_CHARS
#: The longest error message (each input in it is quoted to 200 characters).
MAX_ERROR_CHARS = 1_000
INSTRUCTIONS = (
    "Session lifecycle for this project: call session_load at the start of work (it "
    "restores where the last session stopped), record tasks, decisions and files as you "
    "go, session_save at milestones, capture_learning for what is worth keeping, and "
    "session_end when done. read_memory / write_memory / edit_memory / list_memories "
    "keep notes across sessions, with Serena's memory names."
)


class ToolFailure(Exception):
    """A call that fails: its one-line message is the tool error's text."""


# -- the tool table -------------------------------------------------------------------------


@attrs.frozen
class ToolSpec:
    name: str
    title: str
    description: str
    function: Callable[..., BaseModel]
    arguments: type[BaseModel]
    output: type[BaseModel]
    read_only: bool
    destructive: bool
    idempotent: bool

    def listing(self) -> dict[str, Any]:
        """The tool as ``tools/list`` shows it (wire names)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.arguments.model_json_schema(schema_generator=ArgumentSchema),
            "outputSchema": self.output.model_json_schema(),
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent,
                "openWorldHint": False,
            },
        }


TOOLS: dict[str, ToolSpec] = {}
_STRICT = ConfigDict(strict=True, extra="forbid")


class ArgumentSchema(GenerateJsonSchema):
    """Input schemas: an optional argument is one that can be left out, not one that takes
    null (``X | None = None`` publishes as ``X``, not required, no default), so clients
    that fill arguments from the schema's ``type`` (the Inspector) see the real type."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if generated.get("default", 0) is None:
            del generated["default"]
        return generated


def tool(
    title: str, *, read_only: bool = False, destructive: bool = False, idempotent: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a tool function (see the module's docstring for what it declares)."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        hints = get_type_hints(function, include_extras=True)
        fields: dict[str, Any] = {}
        for name, parameter in list(inspect.signature(function).parameters.items())[1:]:
            default = ... if parameter.default is inspect.Parameter.empty else parameter.default
            fields[name] = (hints[name], default)
        model = create_model(f"{function.__name__}_arguments", __config__=_STRICT, **fields)
        description = " ".join(inspect.cleandoc(function.__doc__ or "").split())
        TOOLS[function.__name__] = ToolSpec(
            function.__name__,
            title,
            description,
            function,
            model,
            hints["return"],
            read_only,
            destructive,
            idempotent,
        )
        return function

    return register


_tools_result: dict[str, Any] | None = None


def tools_result() -> dict[str, Any]:
    """The ``tools/list`` result: every tool, in registration order."""
    global _tools_result
    if _tools_result is None:
        _tools_result = {"tools": [spec.listing() for spec in TOOLS.values()]}
    return _tools_result


CAPABILITIES = {
    "prompts": {"listChanged": False},
    "resources": {"listChanged": False, "subscribe": False},
    "tools": {"listChanged": False},
}


def published() -> dict[str, Any]:
    """What the server tells a client before any call: its capabilities, instructions and
    ``tools/list``. Kept in :data:`PUBLISHED` (``mcp_tools.json``) so that the transport
    answers ``initialize`` and ``tools/list`` without building this table; a test checks
    that the file is what this returns (``python -m lifecycle.integrations.mcp_stdio``
    rewrites it)."""
    return {"capabilities": CAPABILITIES, "instructions": INSTRUCTIONS, **tools_result()}


def validation_message(tool_name: str, exc: ValidationError) -> str:
    """One line: each wrong argument, what was wrong, and what would be right."""
    spec = TOOLS[tool_name]
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        kind = error["type"]
        if kind == "extra_forbidden":
            known = ", ".join(spec.arguments.model_fields) or "none"
            parts.append(f"unknown argument {quoted(where, 60)} (arguments: {known})")
        elif kind == "missing":
            parts.append(f"missing argument {where!r}")
        else:
            got = quoted(error.get("input"), 60)
            message = error["msg"][:1].lower() + error["msg"][1:]
            parts.append(f"argument {where!r}: {message}, got {got}")
    more = len(exc.errors()) - 3
    tail = f" (and {more} more)" if more > 0 else ""
    return f"{tool_name}: " + "; ".join(parts) + tail


def call(env: Env, name: str, arguments: object) -> dict[str, Any]:
    """Run one tool call; its structured result, or ToolFailure with the one-line message."""
    spec = TOOLS.get(name)
    if spec is None:
        raise ToolFailure(f"unknown tool {quoted(name, 60)}; tools: {', '.join(TOOLS)}")
    if not isinstance(arguments, dict):
        raise ToolFailure(f"{name}: arguments must be an object")
    for argument, value in arguments.items():
        if value is None and argument in spec.arguments.model_fields:
            raise ToolFailure(f"{name}: argument {argument!r}: null is not accepted; omit it")
    try:
        parsed = spec.arguments.model_validate(arguments)
    except ValidationError as exc:
        raise ToolFailure(validation_message(name, exc)) from None
    try:
        result = spec.function(env, **{k: getattr(parsed, k) for k in spec.arguments.model_fields})
    except ToolFailure:
        raise
    except LifecycleError as exc:
        raise ToolFailure(_one_line(str(exc))) from None
    except Exception as exc:
        raise ToolFailure(_one_line(f"internal error: {type(exc).__name__}: {exc}")) from exc
    return result.model_dump(mode="json")


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


# -- what the tools work on -----------------------------------------------------------------


class Env:
    """The store and project every tool call works on (one call at a time)."""

    def __init__(self, store: Any, project: str) -> None:
        self.store = store
        self.project = keys.validate_project(project)
        self.lock = threading.Lock()

    @contextmanager
    def step(self, save: bool = True) -> Iterator[Any]:
        """One step of the project's open session (see :func:`live_session`)."""
        from lifecycle.integrations.live import live_session

        with live_session(self.store, self.project, save=save) as live:
            yield live

    def memories(self, ref: MemoryRef, live: Any) -> Any:
        """The store a memory lives in: the project's, or the shared one for global/."""
        if not ref.shared:
            return live.manager.store
        from lifecycle.stores.base import ProjectStore

        class SharedMemories(ProjectStore):
            """The keys under :data:`GLOBAL_SCOPE`, beside the projects' roots."""

            def __init__(self, store: Any) -> None:
                self.store, self.project = store, GLOBAL_SCOPE
                self._root, self._validate = GLOBAL_SCOPE + "/", keys.validate

        return SharedMemories(self.store)


def opened(live: Any, what: str) -> Any:
    if not live.is_open:
        from lifecycle.errors import NoSession

        raise NoSession(f"no open session to {what}; call session_load first")
    return live.manager


# -- argument types -------------------------------------------------------------------------

Phase = Annotated[
    str | None,
    Field(
        max_length=limits.PHASE_CHARS,
        description="The phase of work the session is in (e.g. 'Phase 2: API'); "
        "omit to keep the current one.",
    ),
]
TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=limits.TASK_ID_CHARS,
        pattern=r"^\S(.*\S)?$",
        description="The task's id, e.g. 'T3' or 'parser'.",
    ),
]
TaskText = Annotated[
    str, Field(max_length=limits.TASK_DESCRIPTION_CHARS, description="What the task is, in a line.")
]
Priority = Literal["low", "medium", "high"]
LearningKind = Literal["pattern", "solution", "anti-pattern", "insight"]
MemoryName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1_000,
        description="A Serena memory name: topics with '/' (auth/login/logic), spaces and "
        "any script allowed, 'global/...' shared by every project, '.md' optional; or a key "
        f"(learning/solutions/x, {keys.LAST}, summaries/daily/2026-01-31).",
    ),
]
Limit = Annotated[
    int, Field(ge=1, le=500, description="At most this many items in one page (1-500).")
]
Cursor = Annotated[
    str | None,
    Field(
        max_length=600,
        description="next_cursor of the previous page, to read the next one; omit for the first.",
    ),
]
AnswerChars = Annotated[
    int,
    Field(
        ge=100,
        le=MAX_ANSWER_CHARS,
        description=f"The most characters of content to return (100-{MAX_ANSWER_CHARS:,}); "
        "a longer content is cut and says truncated=true (read on with offset).",
    ),
]
JSONObject = dict[str, Any]


# -- typed outputs ----------------------------------------------------------------------


class StartOut(BaseModel):
    session_id: str
    is_fresh_session: bool
    restored_state: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    continued: bool = False
    ended_session_id: str | None = None
    warnings: list[str] = Field(default_factory=list)
    report: str = ""


class CheckpointOut(BaseModel):
    checkpoint_id: str | None
    timestamp: str | None
    written: bool
    key: str | None = None
    type: str | None = None
    trigger: str | None = None


class CheckpointRef(BaseModel):
    checkpoint_id: str
    timestamp: str | None
    key: str
    type: str
    trigger: str
    phase: str


class StatusOut(BaseModel):
    project: str
    session_id: str | None
    state: str | None
    phase: str = ""
    progress: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    active_minutes: float = 0.0
    unsaved_work: bool = False
    checkpoint_due: bool = False
    restored_from: str | None = None
    last_checkpoint: CheckpointRef | None = None
    open_tasks: list[str] = Field(default_factory=list)
    tasks_completed: list[str] = Field(default_factory=list)
    open_questions: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    files_modified: list[str] = Field(default_factory=list)
    learnings: int = 0
    latest_checkpoint: CheckpointRef | None = None


class EndOut(BaseModel):
    session_id: str
    success: bool | None
    final_checkpoint: CheckpointOut | None
    tasks_completed: list[str]
    checkpoints: int


class WorkOut(BaseModel):
    """What a work event did: the state after it and the checkpoint a trigger wrote."""

    state: str
    checkpoint: CheckpointOut | None = None


class LearningOut(BaseModel):
    success: bool
    learning_key: str
    overwritten: bool = Field(description="True when a learning under this key was replaced.")


class LearningItem(BaseModel):
    key: str
    type: str
    content: str
    truncated: bool
    timestamp: str | None
    session_id: str
    tags: list[str]


class LearningsOut(BaseModel):
    learnings: list[LearningItem]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: none.")


class MemoryOut(BaseModel):
    memory_name: str
    key: str
    content: str
    chars: int = Field(description="The whole content's length in characters.")
    offset: int
    truncated: bool = Field(description="True when content stops before the end.")


class MemoryWriteOut(BaseModel):
    memory_name: str
    key: str
    success: bool
    chars: int
    overwritten: bool = Field(description="True when an existing memory was replaced.")


class MemoryEditOut(BaseModel):
    memory_name: str
    key: str
    replacements: int
    chars: int


class MemoryRenameOut(BaseModel):
    old_name: str
    new_name: str
    key: str


class MemoryListOut(BaseModel):
    memories: list[str] = Field(description="Memory names, in key order.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: none.")


class MemoryDeleteOut(BaseModel):
    memory_name: str
    key: str
    deleted: bool


def _checkpoint_out(result: Any) -> CheckpointOut | None:
    return None if result is None else CheckpointOut(**_pick(outputs.checkpoint(result)))


def _work_out(outcome: Any) -> WorkOut:
    return WorkOut(state=outcome.state.value, checkpoint=_checkpoint_out(outcome.checkpoint))


# -- session --------------------------------------------------------------------------------


@tool("Start or continue the session", idempotent=False)
def session_load(
    env: Env,
    command: Annotated[
        str,
        Field(
            max_length=limits.COMMAND_CHARS,
            description="What the session is for (e.g. 'impl parser').",
        ),
    ] = "",
    restore: Annotated[
        bool, Field(description="Restore the latest checkpoint (false: start fresh).")
    ] = True,
    new: Annotated[
        bool, Field(description="End the open session first and start a new one.")
    ] = False,
) -> StartOut:
    """Call first, at the start of work: continues the open session, or starts one that
    restores where the last session stopped (its Session Report is in `report`)."""
    with env.step() as live:
        m = live.manager
        if live.attached and not new:
            data = outputs.continued(m)
        else:
            ended = None
            if live.attached:
                from lifecycle.integrations.live import end_open_session

                ended = end_open_session(live, success=False, command=command).session_id
                m = live.restart()
            data = outputs.start(
                m.start_session(command=command, restore=restore), ended_session_id=ended
            )
        return StartOut(**data, report=m.report())


@tool("Save a checkpoint", idempotent=True)
def session_save(
    env: Env,
    phase: Phase = None,
    progress: Annotated[
        JSONObject | None,
        Field(
            description="Merged into the session's progress; the report reads "
            "'completed' (or 'tasks_completed') and 'total' (or 'tasks_total') as N/M. "
            "A key set to null is removed."
        ),
    ] = None,
    context: Annotated[
        JSONObject | None,
        Field(description="Merged into the session's context; a key set to null is removed."),
    ] = None,
) -> CheckpointOut:
    """Use at milestones and before stopping: writes a manual checkpoint of the open
    session. A no-op (written=false) when nothing changed since the last one."""
    with env.step() as live:
        m = opened(live, "checkpoint")
        result = m.create_checkpoint(
            phase=phase,
            progress=None if progress is None else _merged(m.progress, progress),
            context=None if context is None else _merged(m.context, context),
        )
        if result.error:
            from lifecycle.errors import StoreError

            raise StoreError(f"checkpoint not written: {result.error}")
        out = _checkpoint_out(result)
        assert out is not None
        return out


@tool("Session status", read_only=True, idempotent=True)
def session_status(env: Env) -> StatusOut:
    """Use to see where the open session stands (state, phase, progress, tasks, the last
    checkpoint); with none open, the latest checkpoint."""
    with env.step(save=False) as live:
        m = live.manager
        data = outputs.status(m) if live.attached else outputs.closed_status(m)
        return StatusOut(**_pick(data, StatusOut))


@tool("End the session")
def session_end(
    env: Env,
    success: Annotated[bool, Field(description="Whether the session reached its goal.")] = True,
    phase: Phase = None,
) -> EndOut:
    """Call when the work is done: writes the final checkpoint (if anything is unsaved)
    and the session summary the next session_load reports."""
    with env.step() as live:
        from lifecycle.integrations.live import end_open_session

        opened(live, "end")
        result = end_open_session(live, success=success, phase=phase)
        return EndOut(
            session_id=result.session_id,
            success=result.summary.success,
            final_checkpoint=_checkpoint_out(result.checkpoint),
            tasks_completed=list(result.summary.tasks_completed),
            checkpoints=result.summary.checkpoints,
        )


# -- work -----------------------------------------------------------------------------------


@tool("Add or update a task", idempotent=True)
def add_task(
    env: Env,
    task_id: TaskId,
    description: TaskText = "",
    priority: Annotated[
        Priority, Field(description="low, medium or high (high ones checkpoint on completion).")
    ] = "medium",
    status: Annotated[
        Literal["pending", "in_progress", "blocked"], Field(description="The task's status.")
    ] = "pending",
) -> WorkOut:
    """Use when a piece of work is identified or changes status: adds the task to the open
    session's open tasks, or updates it."""
    with env.step() as live:
        m = opened(live, "add a task to")
        return _work_out(m.add_task(task_id, description, priority=priority, status=status))


@tool("Complete a task")
def complete_task(
    env: Env,
    task_id: TaskId,
    description: TaskText = "",
    priority: Annotated[
        Priority | None,
        Field(description="The task's priority, if not given before; high always checkpoints."),
    ] = None,
) -> WorkOut:
    """Use when a task is done: marks it complete; the task trigger decides whether to
    checkpoint (a high-priority task always does)."""
    with env.step() as live:
        m = opened(live, "complete a task in")
        return _work_out(m.complete_task(task_id, description, priority=priority))


@tool("Record a decision")
def record_decision(
    env: Env,
    decision: Annotated[
        str, Field(min_length=1, max_length=limits.DECISION_CHARS, description="What was decided.")
    ],
    rationale: Annotated[str, Field(max_length=limits.DECISION_CHARS, description="Why.")] = "",
    impact: Annotated[
        str, Field(max_length=limits.DECISION_CHARS, description="What it changes.")
    ] = "",
) -> WorkOut:
    """Use when a choice is made that a later session should know about: adds it, with
    why, to the decision log the Session Report shows."""
    with env.step() as live:
        return _work_out(
            opened(live, "record a decision in").record_decision(decision, rationale, impact)
        )


@tool("Record a file change", idempotent=True)
def record_file_change(
    env: Env,
    path: Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.FILE_PATH_CHARS,
            description="The file's path, relative to the project root.",
        ),
    ],
    operation: Annotated[
        Literal["create", "edit", "delete", "rename"],
        Field(description="What was done to the file."),
    ] = "edit",
    changes: Annotated[
        int | None, Field(ge=0, description="How many lines changed, if known.")
    ] = None,
) -> WorkOut:
    """Use after creating, editing or deleting a file (unless the Claude Code hooks already
    record edits): adds it to the session's files modified."""
    with env.step() as live:
        m = opened(live, "record a file change in")
        return _work_out(m.record_file_change(path, (operation,), changes))


# -- learnings ------------------------------------------------------------------------------


@tool("Capture a learning", destructive=True, idempotent=True)
def capture_learning(
    env: Env,
    type: Annotated[LearningKind, Field(description="What kind of learning this is.")],
    key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=200,
            pattern=rf"^(learning/({'|'.join(keys.LEARNING_FOLDERS)})/{keys.NAME}|[^/]+)$",
            description="learning/{type}s/{name} (e.g. learning/solutions/jwt-expiry), or just "
            "a name (made a key of the type's folder).",
        ),
    ],
    content: Annotated[
        str,
        Field(
            min_length=1,
            max_length=limits.LEARNING_CONTENT_CHARS,
            description=f"The learning, at most {limits.LEARNING_CONTENT_CHARS:,} characters.",
        ),
    ],
    tags: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]],
        Field(max_length=50, description="Tags to find it by (list_learnings tag=...)."),
    ] = [],  # noqa: B006 - pydantic copies defaults
) -> LearningOut:
    """Use when something is worth keeping beyond this session (a pattern, a fix, a trap,
    an insight). Replaces a learning under the same key (overwritten=true says so)."""
    with env.step() as live:
        m = live.manager
        from datetime import UTC, datetime

        from lifecycle.records import Learning
        from lifecycle.session.learnings import checked

        now = datetime.now(UTC)
        target = checked(Learning(type=type, key=key, content=content, timestamp=now), "")
        existed = m.store.get(target.key) is not None
        result = m.capture_learning(type=type, key=key, content=content, tags=tags)
        if not result.success:
            from lifecycle.errors import StoreError

            raise StoreError(f"learning {result.learning_key} not written: {result.error}")
        return LearningOut(success=True, learning_key=result.learning_key, overwritten=existed)


@tool("List learnings", read_only=True, idempotent=True)
def list_learnings(
    env: Env,
    type: Annotated[LearningKind | None, Field(description="Only learnings of this type.")] = None,
    tag: Annotated[
        str | None, Field(max_length=100, description="Only learnings with this tag.")
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    max_content_chars: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_ANSWER_CHARS,
            description="Each learning's content is cut to this many characters "
            "(truncated=true); read_memory(key) reads one whole.",
        ),
    ] = 2_000,
) -> LearningsOut:
    """Use to recall what earlier sessions learned (before similar work): the project's
    learnings, oldest key first, one page at a time, optionally of one type or tag."""
    from lifecycle import codec
    from lifecycle.records import Learning, LearningType

    prefix = keys.LEARNING_PREFIX if type is None else LearningType(type).prefix
    budget = MAX_ANSWER_CHARS
    with env.step(save=False) as live:
        store = live.manager.store
        items: list[LearningItem] = []
        found = [k for k in store.list_keys(prefix) if cursor is None or k > cursor]
        next_cursor: str | None = None
        for i, key in enumerate(found):
            if len(items) >= limit or budget <= 0:
                next_cursor = found[i - 1]
                break
            entry = store.get(key)
            if entry is None:
                continue
            try:
                learning = codec.decode(Learning, entry.value, key=key)
            except LifecycleError:
                continue
            if tag is not None and tag not in learning.tags:
                continue
            cut = min(max_content_chars, budget)
            items.append(
                LearningItem(
                    key=key,
                    type=learning.type.value,
                    content=learning.content[:cut],
                    truncated=len(learning.content) > cut,
                    timestamp=outputs.iso(learning.timestamp),
                    session_id=learning.session_id,
                    tags=list(learning.tags),
                )
            )
            budget -= cut
        return LearningsOut(learnings=items, next_cursor=next_cursor)


# -- memory (Serena's tools and names) ------------------------------------------------------


def _written_keys(ref: MemoryRef) -> None:
    from lifecycle.errors import InvalidKey

    if not ref.key.startswith((keys.MEMORIES_PREFIX, keys.LEARNING_PREFIX)):
        raise InvalidKey(
            ref.key,
            "only memories and learning/... keys are written with the memory tools; "
            "the session writes its own records",
            keys.MEMORIES_PREFIX + ref.key.replace("/", "-"),
        )


def _read_text(env: Env, live: Any, ref: MemoryRef) -> str:
    entry = env.memories(ref, live).get(ref.key)
    if entry is None:
        from lifecycle.errors import LifecycleError

        raise LifecycleError(f"no memory {quoted(ref.name)} ({ref.key})")
    return _memory_text(ref.key, entry)


def _write_text(env: Env, live: Any, ref: MemoryRef, content: str) -> bool:
    """Write a memory's text; whether it replaced one."""
    _written_keys(ref)
    learning = ref.key.startswith(keys.LEARNING_PREFIX)
    limit = limits.LEARNING_CONTENT_CHARS if learning else limits.MEMORY_TEXT_CHARS
    if len(content) > limit:
        from lifecycle.errors import InvalidRecord

        what = "a learning's content" if learning else "a memory's text"
        raise InvalidRecord(
            f"memory {quoted(ref.name)} is {len(content):,} characters, over the "
            f"{limit:,}-character limit of {what}; split it"
        )
    store = env.memories(ref, live)
    existed = store.get(ref.key) is not None
    if learning:
        kind = ref.key.split("/")[1][:-1]  # patterns -> pattern
        result = live.manager.capture_learning(type=kind, key=ref.key, content=content)
        if not result.success:
            from lifecycle.errors import StoreError

            raise StoreError(f"memory {ref.key!r} not written: {result.error}")
    else:
        store.put(ref.key, content.encode("utf-8"))
    return existed


@tool("Read a memory", read_only=True, idempotent=True)
def read_memory(
    env: Env,
    memory_name: MemoryName,
    max_answer_chars: AnswerChars = DEFAULT_ANSWER_CHARS,
    offset: Annotated[
        int, Field(ge=0, description="Start at this character (to read on after a cut).")
    ] = 0,
) -> MemoryOut:
    """Use to read a memory that is likely relevant to the task (judge by its name, from
    list_memories): a note, a learning's content, or any record as JSON."""
    ref = memory_ref(memory_name)
    with env.step(save=False) as live:
        text = _read_text(env, live, ref)
    part = text[offset : offset + max_answer_chars]
    return MemoryOut(
        memory_name=ref.name,
        key=ref.key,
        content=part,
        chars=len(text),
        offset=offset,
        truncated=offset + len(part) < len(text),
    )


@tool("Write a memory", destructive=True, idempotent=True)
def write_memory(
    env: Env,
    memory_name: MemoryName,
    content: Annotated[
        str,
        Field(
            max_length=MAX_TEXT_CHARS,
            description=f"The memory's text (markdown), at most {MAX_TEXT_CHARS:,} "
            "characters; a learning/... name makes a learning with it.",
        ),
    ],
) -> MemoryWriteOut:
    """Use to keep information a later session needs (commands, conventions, where things
    are): writes the memory, replacing one of that name (overwritten=true says so)."""
    ref = memory_ref(memory_name)
    with env.step() as live:
        existed = _write_text(env, live, ref, content)
    return MemoryWriteOut(
        memory_name=ref.name, key=ref.key, success=True, chars=len(content), overwritten=existed
    )


@tool("Edit a memory", destructive=True)
def edit_memory(
    env: Env,
    memory_name: MemoryName,
    needle: Annotated[
        str,
        Field(
            min_length=1,
            max_length=10_000,
            description="The text to find (mode=literal), or a Python regular expression "
            "(mode=regex; MULTILINE and DOTALL on).",
        ),
    ],
    repl: Annotated[
        str,
        Field(max_length=MAX_TEXT_CHARS, description="The replacement, inserted verbatim."),
    ],
    mode: Annotated[
        Literal["literal", "regex"], Field(description="How needle is read.")
    ] = "literal",
    allow_multiple_occurrences: Annotated[
        bool,
        Field(description="Replace every match; false: more than one match is an error."),
    ] = False,
) -> MemoryEditOut:
    """Use to change part of a memory without rewriting it: replaces the text matching
    needle (literal or regex) with repl."""
    ref = memory_ref(memory_name)
    if mode == "regex":
        try:
            pattern = re.compile(needle, re.MULTILINE | re.DOTALL)
        except re.error as exc:
            why = f"edit_memory: argument 'needle': not a regular expression ({exc})"
            raise ToolFailure(why) from None
    else:
        pattern = re.compile(re.escape(needle))
    with env.step() as live:
        text = _read_text(env, live, ref)
        found = sum(1 for _ in zip(pattern.finditer(text), range(2), strict=False))
        if found == 0:
            raise ToolFailure(f"edit_memory: {quoted(needle, 60)} is not in {quoted(ref.name)}")
        if found > 1 and not allow_multiple_occurrences:
            raise ToolFailure(
                f"edit_memory: {quoted(needle, 60)} occurs more than once in {quoted(ref.name)};"
                " make needle unique or pass allow_multiple_occurrences=true"
            )
        edited, count = pattern.subn(lambda _m: repl, text, count=0 if found > 1 else 1)
        _write_text(env, live, ref, edited)
    return MemoryEditOut(memory_name=ref.name, key=ref.key, replacements=count, chars=len(edited))


@tool("Rename a memory", destructive=False)
def rename_memory(
    env: Env,
    old_name: MemoryName,
    new_name: MemoryName,
) -> MemoryRenameOut:
    """Use to reorganize memories into topics (or move one to or from global/): renames a
    memory, or a learning within learning/; refuses to replace an existing one."""
    old, new = memory_ref(old_name), memory_ref(new_name)
    _written_keys(old)
    _written_keys(new)
    if old.key.startswith(keys.LEARNING_PREFIX) != new.key.startswith(keys.LEARNING_PREFIX):
        raise ToolFailure(
            "rename_memory: a learning is renamed to a learning/... key, a memory to a memory name"
        )
    with env.step() as live:
        source, target = env.memories(old, live), env.memories(new, live)
        entry = source.get(old.key)
        if entry is None:
            raise ToolFailure(f"rename_memory: no memory {quoted(old.name)}")
        if target.get(new.key) is not None:
            raise ToolFailure(f"rename_memory: {quoted(new.name)} exists; delete it first")
        if old.key.startswith(keys.LEARNING_PREFIX):
            from lifecycle import codec
            from lifecycle.records import Learning, LearningType

            learning = codec.decode(Learning, entry.value, key=old.key)
            folder = new.key.split("/")[1]
            moved = attrs.evolve(learning, key=new.key, type=LearningType(folder[:-1]))
            target.put(new.key, codec.encode(moved))
        else:
            target.put(new.key, entry.value)
        source.delete(old.key)
    return MemoryRenameOut(old_name=old.name, new_name=new.name, key=new.key)


@tool("List memories", read_only=True, idempotent=True)
def list_memories(
    env: Env,
    topic: Annotated[
        str | None,
        Field(
            max_length=1_000,
            description="Only memories under this topic (auth, auth/login, global, learning, "
            "learning/solutions); omit for notes, learnings, summaries and project state.",
        ),
    ] = None,
    limit: Limit = 200,
    cursor: Cursor = None,
) -> MemoryListOut:
    """Use at the start of work to see which memories exist (then read_memory the relevant
    ones): their names, in key order, one page at a time."""
    from lifecycle.integrations.memory_names import encode_topic, memory_name
    from lifecycle.stores.base import check_prefix

    scopes: list[tuple[bool, str]]  # (shared, key prefix)
    parts = [] if topic is None else [t for t in topic.split("/") if t]
    shared = bool(parts) and parts[0] == GLOBAL_TOPIC
    parts = parts[1:] if shared else parts
    if not parts:
        everything = [(False, p) for p in MEMORY_PREFIXES] + [(True, keys.MEMORIES_PREFIX)]
        scopes = [(True, keys.MEMORIES_PREFIX)] if shared else everything
    elif parts[0] in keys.NAMESPACES and parts[0] != "memories" and not shared:
        scopes = [(False, check_prefix("/".join(parts) + "/"))]
    else:
        parts = parts[1:] if parts[0] == "memories" else parts
        folder = "".join(encode_topic(t) + "/" for t in parts)
        scopes = [(shared, check_prefix(keys.MEMORIES_PREFIX + folder))]
    with env.step(save=False) as live:
        names: list[tuple[str, str]] = []  # (cursor, name)
        for shared, prefix in scopes:
            store = env.memories(MemoryRef(prefix + "x", shared), live)
            tag = "g:" if shared else "p:"
            for key in store.list_keys(prefix):
                position = tag + key
                if cursor is not None and position <= cursor:
                    continue
                names.append((position, memory_name(key, shared=shared)))
    names.sort()
    page = names[:limit]
    more = len(names) > limit
    return MemoryListOut(
        memories=[n for _, n in page], next_cursor=page[-1][0] if more and page else None
    )


@tool("Delete a memory", destructive=True, idempotent=True)
def delete_memory(env: Env, memory_name: MemoryName) -> MemoryDeleteOut:
    """Use only when asked to, or with permission: deletes a memory or a learning."""
    ref = memory_ref(memory_name)
    _written_keys(ref)
    with env.step() as live:
        deleted = env.memories(ref, live).delete(ref.key)
    return MemoryDeleteOut(memory_name=ref.name, key=ref.key, deleted=deleted)


# -- rewind ---------------------------------------------------------------------------------


class RewindOut(BaseModel):
    source: str = Field(description="The checkpoint id, or 'undo'.")
    commit: str = Field(description="The snapshot commit restored.")
    work_tree: str
    dry_run: bool
    restored: list[str] = Field(description="Deleted since the snapshot: written back.")
    modified: list[str] = Field(description="Changed since the snapshot: written back.")
    created: list[str] = Field(description="Created since: kept unless delete_new.")
    created_deleted: bool
    undone: list[str] = Field(description="Brought back by the rewind undone: deleted.")
    blocked: list[str] = Field(description="Not written: something created since is in the way.")
    skipped: list[str] = Field(description="Submodules: not restored.")
    undo_ref: str | None
    complete: bool


@tool("Restore files from a checkpoint's snapshot", destructive=True)
def rewind(
    env: Env,
    checkpoint_id: Annotated[
        str | None,
        Field(
            max_length=100,
            pattern=r"^cp-[0-9A-Za-z._:-]+$",
            description="The risk checkpoint to restore files from (an id from "
            "session_status or the resumption context); omit with undo=true.",
        ),
    ] = None,
    undo: Annotated[
        bool, Field(description="Restore what the last rewind replaced instead.")
    ] = False,
    dry_run: Annotated[
        bool, Field(description="List what would change and change nothing.")
    ] = False,
    paths: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1000)]] | None,
        Field(
            max_length=1000,
            description="Only these files or folders (relative to the work tree).",
        ),
    ] = None,
    delete_new: Annotated[
        bool, Field(description="Also delete files created since the snapshot.")
    ] = False,
) -> RewindOut:
    """Use when files a risky command destroyed or changed (rm -rf, git reset --hard, a
    bulk edit) must come back: restores the work tree's files from the git snapshot
    the risk checkpoint took before it. Never moves HEAD or touches the index; the
    state it replaces is kept (undo=true brings it back). Call with dry_run=true first."""
    from lifecycle import rewind as rewinding
    from lifecycle.stores import ProjectStore

    result = rewinding.rewind(
        ProjectStore(env.store, env.project),
        env.project,
        checkpoint_id,
        undo=undo,
        paths=paths or (),
        delete_new=delete_new,
        dry_run=dry_run,
    )
    return RewindOut(**result.as_dict())


# -- search ---------------------------------------------------------------------------------


class SearchHitOut(BaseModel):
    key: str = Field(description="The record's key: read it with read_memory.")
    kind: str
    timestamp: str | None
    snippet: str = Field(description="The text around the match.")
    score: float


class SearchOut(BaseModel):
    hits: list[SearchHitOut]


@tool("Search memories", read_only=True, idempotent=True)
def search_memory(
    env: Env,
    query: Annotated[
        str,
        Field(
            min_length=1,
            max_length=1_000,
            description="Words that must all occur, in any order; nothing in it is syntax.",
        ),
    ],
    kind: Annotated[
        Literal[
            "learning", "decision", "task", "summary", "checkpoint", "session", "memory", "prompt"
        ]
        | None,
        Field(description="Only this kind of record; omit for every kind."),
    ] = None,
    since: Annotated[
        str | None,
        Field(
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="Only records from this date on (YYYY-MM-DD).",
        ),
    ] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="At most this many hits.")] = 10,
) -> SearchOut:
    """Use to find past work before reading memories one by one: ranked full-text search
    of the project's learnings, decisions, tasks, summaries, sessions, checkpoints and
    memories, best first, each with its key (read it with read_memory) and a snippet."""
    from lifecycle.search import search

    hits = search(env.store, env.project, query, kinds=kind, since=since, limit=limit)
    return SearchOut(
        hits=[SearchHitOut(**{k: v for k, v in h.as_dict().items() if k != "ident"}) for h in hits]
    )


# -- helpers --------------------------------------------------------------------------------


def _memory_text(key: str, entry: Any) -> str:
    if key.startswith(keys.MEMORIES_PREFIX):
        return bytes(entry.value).decode("utf-8", errors="replace")
    if key.startswith(keys.LEARNING_PREFIX):
        from lifecycle import codec
        from lifecycle.records import Learning

        return codec.decode(Learning, entry.value, key=key).content
    import orjson

    from lifecycle.errors import CorruptRecord

    try:
        return orjson.dumps(orjson.loads(entry.value), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError as exc:
        raise CorruptRecord(key, f"not JSON ({exc})") from None


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in {**old, **new}.items() if v is not None}


def _pick(data: dict[str, Any], model: type[BaseModel] = CheckpointOut) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in model.model_fields}


# -- resources and prompts ------------------------------------------------------------------

#: The Session Report of the open session (with none open, the latest checkpoint's status).
REPORT_URI = "lifecycle://session/report"
#: Each learning is a resource: this prefix and its key (``lifecycle://learning/solutions/x``).
RESOURCE_PREFIX = "lifecycle://"
#: Learnings listed per resources/list page.
RESOURCES_PAGE = 100
RESUME_PROMPT = "resume_work"


def _report(env: Env) -> str:
    with env.step(save=False) as live:
        m = live.manager
        return str(m.report()) if live.attached else outputs.status_text(outputs.closed_status(m))


def resources_page(env: Env, cursor: str | None) -> dict[str, Any]:
    """``resources/list``: the Session Report, then the learnings, a page at a time."""
    resources: list[dict[str, Any]] = []
    if cursor is None:
        resources.append(
            {
                "uri": REPORT_URI,
                "name": "session-report",
                "title": "Session Report",
                "description": "Where the work stands: phase, progress, tasks, open questions, "
                "blockers, decisions (as session_load reports it).",
                "mimeType": "text/plain",
            }
        )
    with env.step(save=False) as live:
        found = [
            k for k in live.manager.store.list_keys(keys.LEARNING_PREFIX) if k > (cursor or "")
        ]
    page = found[:RESOURCES_PAGE]
    for key in page:
        resources.append(
            {
                "uri": RESOURCE_PREFIX + key,
                "name": key,
                "title": f"Learning {key.split('/', 1)[1]}",
                "mimeType": "text/markdown",
            }
        )
    result: dict[str, Any] = {"resources": resources}
    if len(found) > RESOURCES_PAGE:
        result["nextCursor"] = page[-1]
    return result


def read_resource(env: Env, uri: str) -> dict[str, Any]:
    """``resources/read``: the report's text, or a learning's content; ToolFailure if none."""
    if uri == REPORT_URI:
        return {"contents": [{"uri": uri, "mimeType": "text/plain", "text": _report(env)}]}
    key = uri.removeprefix(RESOURCE_PREFIX)
    if not uri.startswith(RESOURCE_PREFIX) or not key.startswith(keys.LEARNING_PREFIX):
        raise ToolFailure(f"no resource {quoted(uri)}; resources/list names them")
    try:
        ref = memory_ref(key)
        with env.step(save=False) as live:
            text = _read_text(env, live, ref)
    except LifecycleError as exc:
        raise ToolFailure(_one_line(str(exc))) from None
    return {"contents": [{"uri": uri, "mimeType": "text/markdown", "text": text}]}


def prompts_result() -> dict[str, Any]:
    return {
        "prompts": [
            {
                "name": RESUME_PROMPT,
                "title": "Resume work",
                "description": "Pick up where the last session stopped: its Session Report and "
                "what to do next.",
                "arguments": [
                    {
                        "name": "focus",
                        "description": "What to work on now, if not the open tasks.",
                        "required": False,
                    }
                ],
            }
        ]
    }


def get_prompt(env: Env, name: str, arguments: dict[str, str] | None) -> dict[str, Any]:
    """``prompts/get`` for :data:`RESUME_PROMPT`; ToolFailure for another name."""
    if name != RESUME_PROMPT:
        raise ToolFailure(f"no prompt {quoted(name, 60)}; prompts: {RESUME_PROMPT}")
    focus = (arguments or {}).get("focus", "")
    steps = (
        "Call session_load to continue the session (it restores the latest checkpoint), "
        "list_memories and read the memories relevant to the work, then carry on"
        + (f" with: {focus}" if focus else " with the open tasks")
        + ". Record tasks, decisions and files as you go; session_save at milestones."
    )
    text = f"{_report(env)}\n\n{steps}"
    return {
        "description": "Resume work from the Session Report",
        "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
    }


# -- the server -----------------------------------------------------------------------------


def build_server(env: Env) -> Any:
    """The SDK's low-level server (``mcp.server.lowlevel.Server``) serving the table."""
    import anyio.to_thread
    import mcp.types as types
    import orjson
    from mcp.server.lowlevel import Server

    from lifecycle import __version__

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult.model_validate(tools_result())

    def run(name: str, arguments: object) -> types.CallToolResult:
        with env.lock:
            try:
                data = call(env, name, arguments)
            except ToolFailure as exc:
                text = types.TextContent(type="text", text=str(exc))
                return types.CallToolResult(content=[text], is_error=True)
        text = types.TextContent(type="text", text=orjson.dumps(data).decode())
        return types.CallToolResult(content=[text], structured_content=data, is_error=False)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await anyio.to_thread.run_sync(run, params.name, params.arguments or {})

    def answered(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        from mcp.shared.exceptions import MCPError

        with env.lock:
            try:
                return work()
            except ToolFailure as exc:
                raise MCPError(-32602, str(exc)) from None

    async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        cursor = None if params is None else params.cursor
        data = await anyio.to_thread.run_sync(answered, lambda: resources_page(env, cursor))
        return types.ListResourcesResult.model_validate(data)

    async def read(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        data = await anyio.to_thread.run_sync(answered, lambda: read_resource(env, params.uri))
        return types.ReadResourceResult.model_validate(data)

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult.model_validate(prompts_result())

    async def prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        def work() -> dict[str, Any]:
            return get_prompt(env, params.name, params.arguments)

        data = await anyio.to_thread.run_sync(answered, work)
        return types.GetPromptResult.model_validate(data)

    return Server(
        "lifecycle",
        version=__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read,
        on_list_prompts=list_prompts,
        on_get_prompt=prompt,
    )


def load(store: Any, project: str) -> tuple[Any, Callable[[str], object]]:
    """The SDK's server on ``store`` and the SDK's parser of one line (imports ``mcp``)."""
    import mcp.types as types

    def parse(line: str) -> object:
        return types.jsonrpc_message_adapter.validate_json(line, by_name=False)

    return build_server(Env(store, project)), parse


def memory_key(name: str) -> str:
    """The key a memory name means (see :mod:`lifecycle.integrations.memory_names`)."""
    return memory_ref(name).key


__all__ = [
    "TOOLS",
    "Env",
    "ToolSpec",
    "build_server",
    "call",
    "load",
    "memory_key",
    "published",
    "tool",
]
