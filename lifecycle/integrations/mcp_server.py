"""``lifecycle mcp``: the session, learnings and memory as MCP tools, over stdio.

Any MCP client (Claude Code, Claude Desktop, Cursor, ...) gets:

- the session: ``session_load``, ``session_save``, ``session_status``,
  ``session_end``, and work records: ``add_task``, ``complete_task``,
  ``record_decision``, ``record_file_change``;
- learnings: ``capture_learning``, ``list_learnings``;
- memory, with the names Serena users know: ``read_memory``, ``write_memory``,
  ``list_memories``, ``delete_memory`` (``memory_name`` is a key of the key
  grammar, or a bare name, which means ``memories/{name}``).

Every tool answers with structured content (a typed schema per tool); an error
(a bad key, no open session, a store failure) is a tool error (``isError``)
whose text is the one-line message, with the suggestion when there is one.
Each call is one step of the project's one open session, exactly as a command
or a Claude Code hook is (see :mod:`lifecycle.integrations.live`), so the MCP
server, the hooks and the command line can work on the same session.

Memory values: ``memories/...`` hold the text written; ``learning/...`` keys
read and write the learning's content (write makes a learning of the type its
folder names); other keys (session records, checkpoints, summaries) read as
their JSON record and are written only by the session itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, Field

from lifecycle import keys
from lifecycle.integrations import outputs
from lifecycle.integrations.live import LiveSession, end_open_session, live_session

LearningKind = Literal["pattern", "solution", "anti-pattern", "insight"]
Priority = Literal["low", "medium", "high"]
#: Listed by list_memories when no prefix is given: what a reader wants, without the
#: many checkpoints and journal entries.
MEMORY_PREFIXES = (
    keys.MEMORIES_PREFIX,
    keys.LEARNING_PREFIX,
    keys.SUMMARIES_PREFIX,
    keys.PROJECT_STATE_PREFIX,
)
#: The largest memory write_memory accepts (the 200 KB checkpoint maximum).
MAX_MEMORY_CHARS = 200_000


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


class LearningItem(BaseModel):
    key: str
    type: str
    content: str
    timestamp: str | None
    session_id: str
    tags: list[str]


class LearningsOut(BaseModel):
    learnings: list[LearningItem]


class MemoryOut(BaseModel):
    memory_name: str
    key: str
    content: str


class MemoryWriteOut(BaseModel):
    key: str
    success: bool
    chars: int


class MemoryListOut(BaseModel):
    memories: list[str]


class MemoryDeleteOut(BaseModel):
    key: str
    deleted: bool


# -- the server -------------------------------------------------------------------------


def memory_key(name: str) -> str:
    """The key a memory name means: a key of the grammar, or ``memories/{name}``."""
    if not isinstance(name, str) or not name.strip():
        from lifecycle.errors import InvalidKey

        raise InvalidKey(str(name), "a memory name cannot be empty", keys.MEMORIES_PREFIX + "notes")
    name = name.strip()
    if keys.is_valid(name):
        return name
    if "/" not in name:
        plain = name[:-3] if name.endswith(".md") else name  # Serena's file-style names
        candidate = keys.MEMORIES_PREFIX + keys.slug(plain)
        if keys.slug(plain) == plain and keys.is_valid(candidate):
            return candidate
    return keys.validate(name)  # raises InvalidKey with the nearest valid key


def build_server(store: Any, project: str) -> Any:
    """The MCP server (an ``mcp.server.mcpserver.MCPServer``) on an open store."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from lifecycle import __version__

    server = MCPServer(
        name="lifecycle",
        version=__version__,
        instructions=(
            "Session lifecycle for this project: call session_load at the start of work "
            "(it restores where the last session stopped), record tasks, decisions and "
            "files as you go, session_save at milestones, capture_learning for what is "
            "worth keeping, and session_end when done. read_memory / write_memory / "
            "list_memories keep notes across sessions."
        ),
        log_level="WARNING",
    )

    @contextmanager
    def step(save: bool = True) -> Iterator[LiveSession]:
        from lifecycle.errors import LifecycleError

        try:
            with live_session(store, project, save=save) as live:
                yield live
        except ToolError:
            raise
        except LifecycleError as exc:
            raise ToolError(str(exc)) from None
        except Exception as exc:
            raise ToolError(f"internal error: {type(exc).__name__}: {exc}") from exc

    def opened(live: LiveSession, what: str) -> Any:
        if not live.is_open:
            from lifecycle.errors import NoSession

            raise NoSession(f"no open session to {what}; call session_load first")
        return live.manager

    def checkpoint_out(result: Any) -> CheckpointOut | None:
        return None if result is None else CheckpointOut(**_pick(outputs.checkpoint(result)))

    def work_out(outcome: Any) -> WorkOut:
        return WorkOut(state=outcome.state.value, checkpoint=checkpoint_out(outcome.checkpoint))

    # -- session --------------------------------------------------------------------------

    @server.tool()
    def session_load(command: str = "", restore: bool = True, new: bool = False) -> StartOut:
        """Start of work: continue the open session, or start one that restores the latest
        checkpoint (restore=false: fresh). new=true ends the open session first."""
        with step() as live:
            m = live.manager
            if live.attached and not new:
                data = outputs.continued(m)
            else:
                ended = None
                if live.attached:
                    ended = end_open_session(live, success=False, command=command).session_id
                    m = live.restart()
                data = outputs.start(
                    m.start_session(command=command, restore=restore), ended_session_id=ended
                )
            return StartOut(**data, report=m.report())

    @server.tool()
    def session_save(
        phase: str | None = None,
        progress: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> CheckpointOut:
        """Manual checkpoint; progress and context are merged into the session's (a key
        set to null is removed). A no-op (written=false) when nothing changed."""
        with step() as live:
            m = opened(live, "checkpoint")
            result = m.create_checkpoint(
                phase=phase,
                progress=None if progress is None else _merged(m.progress, progress),
                context=None if context is None else _merged(m.context, context),
            )
            if result.error:
                from lifecycle.errors import StoreError

                raise StoreError(f"checkpoint not written: {result.error}")
            out = checkpoint_out(result)
            assert out is not None
            return out

    @server.tool()
    def session_status() -> StatusOut:
        """Where the open session stands; with none open, the latest checkpoint."""
        with step(save=False) as live:
            m = live.manager
            data = outputs.status(m) if live.attached else outputs.closed_status(m)
            return StatusOut(**_pick(data, StatusOut))

    @server.tool()
    def session_end(success: bool = True, phase: str | None = None) -> EndOut:
        """End of work: final checkpoint (if anything is unsaved) and the session summary."""
        with step() as live:
            opened(live, "end")
            result = end_open_session(live, success=success, phase=phase)
            return EndOut(
                session_id=result.session_id,
                success=result.summary.success,
                final_checkpoint=checkpoint_out(result.checkpoint),
                tasks_completed=list(result.summary.tasks_completed),
                checkpoints=result.summary.checkpoints,
            )

    # -- work -----------------------------------------------------------------------------

    @server.tool()
    def add_task(
        task_id: str,
        description: str = "",
        priority: Priority = "medium",
        status: Literal["pending", "in_progress", "blocked"] = "pending",
    ) -> WorkOut:
        """Add or update an open task."""
        with step() as live:
            m = opened(live, "add a task to")
            return work_out(m.add_task(task_id, description, priority=priority, status=status))

    @server.tool()
    def complete_task(
        task_id: str, description: str = "", priority: Priority | None = None
    ) -> WorkOut:
        """Mark a task complete; a high-priority one always checkpoints."""
        with step() as live:
            m = opened(live, "complete a task in")
            return work_out(m.complete_task(task_id, description, priority=priority))

    @server.tool()
    def record_decision(decision: str, rationale: str = "", impact: str = "") -> WorkOut:
        """Record a decision and why it was made."""
        with step() as live:
            return work_out(
                opened(live, "record a decision in").record_decision(decision, rationale, impact)
            )

    @server.tool()
    def record_file_change(
        path: str, operation: str = "edit", changes: int | None = None
    ) -> WorkOut:
        """Record a file the session created, edited or deleted."""
        with step() as live:
            m = opened(live, "record a file change in")
            return work_out(m.record_file_change(path, (operation,), changes))

    # -- learnings ------------------------------------------------------------------------

    @server.tool()
    def capture_learning(
        type: LearningKind, key: str, content: str, tags: list[str] | None = None
    ) -> LearningOut:
        """Keep something learned: key learning/{type}s/{name} (or just a name)."""
        with step() as live:
            result = live.manager.capture_learning(
                type=type, key=key, content=content, tags=tags or ()
            )
            if not result.success:
                from lifecycle.errors import StoreError

                raise StoreError(f"learning {result.learning_key} not written: {result.error}")
            return LearningOut(success=True, learning_key=result.learning_key)

    @server.tool()
    def list_learnings(type: LearningKind | None = None) -> LearningsOut:
        """Every learning of the project (of one type if given), oldest key first."""
        from lifecycle import codec
        from lifecycle.errors import LifecycleError
        from lifecycle.records import Learning, LearningType

        prefix = keys.LEARNING_PREFIX if type is None else LearningType(type).prefix
        with step(save=False) as live:
            items = []
            for entry in live.manager.store.scan(prefix):
                try:
                    learning = codec.decode(Learning, entry.value, key=entry.key)
                except LifecycleError:
                    continue
                items.append(
                    LearningItem(
                        key=entry.key,
                        type=learning.type.value,
                        content=learning.content,
                        timestamp=outputs.iso(learning.timestamp),
                        session_id=learning.session_id,
                        tags=list(learning.tags),
                    )
                )
            return LearningsOut(learnings=items)

    # -- memory (Serena's names) ----------------------------------------------------------

    @server.tool()
    def read_memory(memory_name: str) -> MemoryOut:
        """Read a memory: memories/{name} (or a bare name), a learning, or any record key."""
        with step(save=False) as live:
            key = memory_key(memory_name)
            entry = live.manager.store.get(key)
            if entry is None:
                from lifecycle.errors import LifecycleError

                found = live.manager.store.list_keys(keys.MEMORIES_PREFIX)
                hint = f"; known: {', '.join(found[:10])}" if found else ""
                raise LifecycleError(f"no memory {key!r}{hint}")
            return MemoryOut(memory_name=memory_name, key=key, content=_memory_text(key, entry))

    @server.tool()
    def write_memory(memory_name: str, content: str) -> MemoryWriteOut:
        """Write a memory: memories/{name} (or a bare name) holds the text as written;
        learning/{type}s/{name} makes a learning with this content."""
        from lifecycle.errors import InvalidKey, InvalidRecord

        with step() as live:
            key = memory_key(memory_name)
            if len(content) > MAX_MEMORY_CHARS:
                raise InvalidRecord(
                    f"memory {key!r} is {len(content)} characters, over the "
                    f"{MAX_MEMORY_CHARS}-character limit; split it"
                )
            if key.startswith(keys.LEARNING_PREFIX):
                kind = key.split("/")[1][:-1]  # patterns -> pattern
                result = live.manager.capture_learning(type=kind, key=key, content=content)
                if not result.success:
                    from lifecycle.errors import StoreError

                    raise StoreError(f"memory {key!r} not written: {result.error}")
            elif key.startswith(keys.MEMORIES_PREFIX):
                live.manager.store.put(key, content.encode("utf-8"))
            else:
                raise InvalidKey(
                    key,
                    "only memories/... and learning/... keys are written with write_memory; "
                    "the session writes its own records",
                    keys.MEMORIES_PREFIX + key.replace("/", "-"),
                )
            return MemoryWriteOut(key=key, success=True, chars=len(content))

    @server.tool()
    def list_memories(prefix: str | None = None) -> MemoryListOut:
        """Memory keys: memories/, learning/, summaries/, project_state/ (or under prefix)."""
        from lifecycle.stores.base import check_prefix

        with step(save=False) as live:
            store = live.manager.store
            if prefix:
                check_prefix(prefix)
                found = store.list_keys(prefix)
            else:
                found = [k for p in MEMORY_PREFIXES for k in store.list_keys(p)]
            return MemoryListOut(memories=found)

    @server.tool()
    def delete_memory(memory_name: str) -> MemoryDeleteOut:
        """Delete a memories/... or learning/... key."""
        from lifecycle.errors import InvalidKey

        with step() as live:
            key = memory_key(memory_name)
            if not key.startswith((keys.MEMORIES_PREFIX, keys.LEARNING_PREFIX)):
                raise InvalidKey(
                    key, "only memories/... and learning/... keys can be deleted this way"
                )
            return MemoryDeleteOut(key=key, deleted=live.manager.store.delete(key))

    return server


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


def serve(store_url: str | None, project: str) -> None:
    """Run the server over stdio until the client closes it."""
    from lifecycle import keys
    from lifecycle.stores import open_store

    keys.validate_project(project)
    store = open_store(store_url)
    try:
        build_server(store, project).run("stdio")
    finally:
        store.close()


__all__ = ["build_server", "memory_key", "serve"]
