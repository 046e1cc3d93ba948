"""Claude Code hooks: one hook event (JSON on stdin) in, lifecycle events out.

Claude Code runs ``lifecycle hook claude`` as a command hook and writes one
event to its stdin, with the common fields ``session_id``, ``transcript_path``,
``cwd``, ``permission_mode``, ``hook_event_name`` and the event's own fields.
The mapping:

====================  ===============================================================
Claude Code event     lifecycle
====================  ===============================================================
SessionStart          load: continue the open session when Claude resumes or compacts
                      the same Claude session; otherwise end a stale open session and
                      start one, restoring the latest checkpoint. Answers
                      ``hookSpecificOutput.additionalContext`` with the Session Report
                      (at most 10,000 characters) and, after a restore, a
                      ``systemMessage`` the user sees.
PreCompact            manual checkpoint (a no-op when nothing changed).
PreToolUse            Bash, Edit, Write, MultiEdit, NotebookEdit: ``before_operation``;
                      the risk evaluator checkpoints a risky one, with a git snapshot
                      of the work tree (``lifecycle rewind``), before the hook answers.
PostToolUse           files modified (Edit, Write, MultiEdit, NotebookEdit), TodoWrite
                      tasks (a completed todo is a task completion), else activity;
                      a success of a tool whose last call failed: error recovered.
PostToolUseFailure    remembers the failure (in the session's context) until the same
                      tool succeeds; an interrupt is only activity.
TaskCreated           add_task.
TaskCompleted         complete_task (priority "high" unless the task is known with
                      another priority): the task trigger.
UserPromptSubmit,     activity (the time trigger).
Stop, SubagentStop
SessionEnd            end_session (only the Claude session that owns the open one).
====================  ===============================================================

The hook never blocks Claude Code because of its own failure: it always exits
0; when something went wrong (a store that cannot be opened, a checkpoint that
could not be written, garbage on stdin) its stdout is ``{"systemMessage": ...}``.
A risky operation whose checkpoint failed still runs, with that warning: the
agent's work is not held hostage by the bookkeeping.

Which store: ``$LIFECYCLE_STORE`` if set, else ``file://<project>/.lifecycle``
where ``<project>`` is ``$CLAUDE_PROJECT_DIR`` (Claude Code sets it to the project
root) or else the event's ``cwd``. The project root wins because ``cwd`` follows
a ``cd`` in the Bash tool, which would otherwise split one session across
folders. The project name is ``$LIFECYCLE_PROJECT`` or ``default``, the same as
the command line's, so ``lifecycle status`` in the project folder shows the
session the hooks drive.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.integrations.live import LiveSession
    from lifecycle.session import SessionManager

#: Claude Code's limit for SessionStart's additionalContext.
CONTEXT_LIMIT = 10_000
#: The largest hook event read from stdin (a tool's whole input and output fit).
MAX_EVENT_BYTES = 16 * 1024 * 1024
#: The context keys where the hook keeps its own state in the session.
CLAUDE_SESSION = "claude_session_id"
FAILED_TOOLS = "claude_failed_tools"
#: The end of an additionalContext that had to be cut.
CUT_NOTE = "\n... (cut to fit; run `lifecycle report` in the project for the rest)"
#: The ``command`` the hook's sessions record.
COMMAND = "claude-code"
#: Tools whose input names a file they modify, and the key naming it.
FILE_TOOLS: dict[str, str] = {
    "Edit": "file_path",
    "Write": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}
#: Events that are only activity for the time trigger.
ACTIVITY_EVENTS = frozenset({"UserPromptSubmit", "Stop", "SubagentStop"})
#: How long a hook waits for another process on the same session; SessionEnd has to
#: finish inside Claude Code's 1.5 s budget, and a session it leaves open is ended by
#: the next SessionStart.
LOCK_TIMEOUT = 5.0
SESSION_END_LOCK_TIMEOUT = 0.8

Answer = dict[str, Any] | None


class BadEvent(Exception):
    """stdin that is not a hook event."""


def parse(raw: str | bytes) -> dict[str, Any]:
    """The event as a dict, or BadEvent saying what is wrong with ``raw``."""
    if len(raw) > MAX_EVENT_BYTES:
        raise BadEvent(f"stdin holds more than {MAX_EVENT_BYTES} bytes; not a hook event")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not raw.strip():
        raise BadEvent("stdin is empty, expected one hook event as JSON")
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise BadEvent(f"stdin is not JSON ({exc}): {raw[:60]!r}") from None
    if not isinstance(event, dict):
        raise BadEvent(f"stdin is JSON but not an object: {raw[:60]!r}")
    name = event.get("hook_event_name")
    if not isinstance(name, str) or not name:
        raise BadEvent("the event has no hook_event_name")
    return event


def project_dir(event: Mapping[str, Any], env: Mapping[str, str]) -> str:
    cwd = event.get("cwd")
    return env.get("CLAUDE_PROJECT_DIR") or (cwd if isinstance(cwd, str) and cwd else os.getcwd())


def store_url(event: Mapping[str, Any], env: Mapping[str, str]) -> str:
    if env.get("LIFECYCLE_STORE"):
        return env["LIFECYCLE_STORE"]
    from urllib.parse import quote

    folder = os.path.join(os.path.abspath(project_dir(event, env)), ".lifecycle")
    return "file://" + quote(folder, errors="surrogateescape")  # a folder name not UTF-8


def cap(text: str, limit: int = CONTEXT_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, at a line end when one is near."""
    if len(text) <= limit:
        return text
    room = limit - len(CUT_NOTE)
    cut = text.rfind("\n", 0, room)
    return text[: cut if cut > room // 2 else room] + CUT_NOTE


def handle(
    raw: str | bytes,
    *,
    store: str | None = None,
    project: str | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Answer:
    """Handle one hook event; the JSON to print, or None. Never raises."""
    env = os.environ if env is None else env
    try:
        event = parse(raw)
    except BadEvent as exc:
        return {"systemMessage": f"lifecycle: ignored a hook event: {exc}"}
    name = event["hook_event_name"]
    handler = _HANDLERS.get(name)
    if handler is None and name not in ACTIVITY_EVENTS:
        return None  # an event lifecycle has no use for
    try:
        from lifecycle.integrations.live import live_session

        url = store or store_url(event, env)
        timeout = SESSION_END_LOCK_TIMEOUT if name == "SessionEnd" else LOCK_TIMEOUT
        with live_session(
            url,
            project or env.get("LIFECYCLE_PROJECT") or "default",
            clock=clock,
            lock_timeout=timeout,
            work_tree=project_dir(event, env),  # what a risk checkpoint snapshots
            snapshot=env.get("LIFECYCLE_SNAPSHOT") or None,
        ) as live:
            if handler is None:
                _open(live, event).tick()
                return None
            return handler(live, event, env)
    except Exception as exc:
        from lifecycle.errors import LifecycleError

        what = str(exc) if isinstance(exc, LifecycleError) else f"{type(exc).__name__}: {exc}"
        return {"systemMessage": f"lifecycle: the {name} hook failed, Claude Code goes on: {what}"}


# -- the events -------------------------------------------------------------------------


def _claude_id(event: Mapping[str, Any]) -> str | None:
    sid = event.get("session_id")
    return sid if isinstance(sid, str) and sid else None


def _open(live: LiveSession, event: Mapping[str, Any]) -> SessionManager:
    """The open session; activity with none open starts one (restoring the latest)."""
    m = live.manager
    if not live.is_open:
        m.start_session(command=COMMAND, restore=True)
        m.update_context({CLAUDE_SESSION: _claude_id(event)})
    return m


def session_start(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    from lifecycle.integrations.live import end_open_session

    m = live.manager
    sid = _claude_id(event)
    source = event.get("source") or "startup"
    continued = (
        live.attached and source in ("resume", "compact") and m.context.get(CLAUDE_SESSION) == sid
    )
    ended = None
    if live.attached and not continued:
        # A session left open (Claude Code crashed, or a command-line session): end it;
        # its unsaved work goes into its final checkpoint, which the new one restores.
        ended = end_open_session(live, success=False, command=COMMAND).session_id
        m = live.restart()
    if not continued:
        m.start_session(command=COMMAND, restore=True)
    m.update_context({CLAUDE_SESSION: sid})
    restored = m.session.restored_from if m.session is not None else None
    if continued:
        head = (
            f"[lifecycle] Continuing work session {m.session_id} in this project "
            f"(Claude Code {source}). Where it stands:"
        )
    elif restored:
        head = (
            f"[lifecycle] Work session {m.session_id} started, restored from checkpoint "
            f"{restored}. This is where the previous session stopped:"
        )
    else:
        head = f"[lifecycle] Work session {m.session_id} started fresh (nothing to restore)."
    if ended:
        head += f"\n(The session left open before, {ended}, was ended and checkpointed.)"
    answer: dict[str, Any] = {
        "hookSpecificOutput": {
            "hookEventName": "SessionStart",
            "additionalContext": cap(head + "\n" + m.report()),
        }
    }
    if restored or continued:
        from lifecycle.report import progress_line

        what = "continued" if continued else f"restored from {restored}"
        answer["systemMessage"] = (
            f"lifecycle: session {what} (phase: {m.phase or 'not set'}; "
            f"progress: {progress_line(m.progress)})"
        )
    return answer


def pre_compact(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    result = _open(live, event).create_checkpoint()
    if result.error:
        return {"systemMessage": f"lifecycle: checkpoint before compaction failed: {result.error}"}
    return None


def pre_tool_use(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    op = operation(event, project_dir(event, env))
    if op is None:
        return None
    clearance = _open(live, event).before_operation(op)
    if not clearance.proceed:
        return {
            "systemMessage": f"lifecycle: {clearance.reason}; the tool runs anyway (no checkpoint)"
        }
    return None


def post_tool_use(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event)
    tool = str(event.get("tool_name") or "")
    tool_input = event.get("tool_input")
    tool_input = tool_input if isinstance(tool_input, dict) else {}
    failed = dict(m.context.get(FAILED_TOOLS) or {})
    if tool in failed:
        error = str(failed.pop(tool))
        m.update_context({FAILED_TOOLS: failed or None})
        m.error_recovered(
            error,
            recovery_steps=(f"{tool} succeeded: {describe(tool, tool_input)}",),
            operation=tool,
        )
    if tool in FILE_TOOLS:
        path = tool_input.get(FILE_TOOLS[tool])
        if isinstance(path, str) and path:
            op, changes = _file_operation(tool, tool_input, event.get("tool_response"))
            where = _relative(path, project_dir(event, env), event.get("cwd"))
            m.record_file_change(where, (op,), changes)
            return None
    if tool == "TodoWrite":
        todos = tool_input.get("todos")
        if isinstance(todos, list):
            record_todos(m, todos)
            return None
    m.tick()
    return None


def post_tool_use_failure(
    live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]
) -> Answer:
    m = _open(live, event)
    if event.get("is_interrupt"):
        m.tick()
        return None
    tool = str(event.get("tool_name") or "tool")
    tool_input = event.get("tool_input")
    what = describe(tool, tool_input if isinstance(tool_input, dict) else {})
    error = " ".join(str(event.get("error") or "failed").split())[:300]
    failed = dict(m.context.get(FAILED_TOOLS) or {})
    failed[tool] = f"{tool} failed ({what}): {error}"
    m.update_context({FAILED_TOOLS: failed})
    return None


def task_created(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    task_id, subject = _task(event)
    _open(live, event).add_task(task_id, subject)
    return None


def task_completed(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event)
    task_id, subject = _task(event)
    known = next((t for t in m.work.active_tasks if t.id == task_id), None)
    # A tracked task is a unit of work worth a checkpoint, unless it was added with a
    # lower priority.
    outcome = m.complete_task(task_id, subject, priority=known.priority if known else "high")
    if outcome.checkpoint is not None and outcome.checkpoint.error:
        return {
            "systemMessage": f"lifecycle: checkpoint after task {task_id} failed: "
            f"{outcome.checkpoint.error}"
        }
    return None


def session_end(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = live.manager
    if not live.attached:
        return None
    owner = m.context.get(CLAUDE_SESSION)
    if owner is not None and owner != _claude_id(event):
        return None  # another Claude Code session works on it
    from lifecycle.integrations.live import end_open_session

    end_open_session(live, success=True, command=COMMAND)
    return None


_HANDLERS: dict[str, Callable[[LiveSession, Mapping[str, Any], Mapping[str, str]], Answer]] = {
    "SessionStart": session_start,
    "PreCompact": pre_compact,
    "PreToolUse": pre_tool_use,
    "PostToolUse": post_tool_use,
    "PostToolUseFailure": post_tool_use_failure,
    "TaskCreated": task_created,
    "TaskCompleted": task_completed,
    "SessionEnd": session_end,
}


# -- reading tool inputs ----------------------------------------------------------------


def _relative(path: str, root: str, cwd: Any = None) -> str:
    """A path inside the project as relative to its root (what the risk patterns and the
    report read best); anything else unchanged. A relative path is taken from ``cwd``."""
    if not os.path.isabs(path) and isinstance(cwd, str) and cwd:
        path = os.path.join(cwd, path)
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def operation(event: Mapping[str, Any], root: str) -> Any:
    """The :class:`Operation` a PreToolUse event is about to run, or None."""
    from lifecycle.triggers.base import Operation

    tool = event.get("tool_name")
    tool_input = event.get("tool_input")
    if not isinstance(tool_input, dict):
        return None
    if tool == "Bash":
        command = tool_input.get("command")
        return Operation(name="bash", command=command) if isinstance(command, str) else None
    if isinstance(tool, str) and tool in FILE_TOOLS:
        path = tool_input.get(FILE_TOOLS[tool])
        if isinstance(path, str) and path:
            where = _relative(path, root, event.get("cwd"))
            return Operation(name=tool.lower(), paths=(where,))
    return None


def _file_operation(tool: str, tool_input: Mapping[str, Any], response: Any) -> tuple[str, int]:
    if tool == "Write":
        created = isinstance(response, dict) and response.get("type") == "create"
        return ("create" if created else "write"), 1
    if tool == "MultiEdit":
        edits = tool_input.get("edits")
        return "edit", len(edits) if isinstance(edits, list) else 1
    return "edit", 1


def describe(tool: str, tool_input: Mapping[str, Any]) -> str:
    """A short, one-line account of a tool call."""
    for field in ("command", "file_path", "notebook_path", "pattern", "url", "path"):
        value = tool_input.get(field)
        if isinstance(value, str) and value:
            text = " ".join(value.split())
            return text if len(text) <= 120 else text[:117] + "..."
    return tool


def _task(event: Mapping[str, Any]) -> tuple[str, str]:
    from lifecycle.keys import slug

    subject = str(event.get("task_subject") or event.get("task_description") or "")
    raw = event.get("task_id")
    task_id = str(raw) if raw not in (None, "") else (slug(subject)[:60] or "task")
    return task_id, subject


def record_todos(m: SessionManager, todos: list[Any]) -> None:
    """TodoWrite's list: new or changed open todos are tasks; a newly completed one is a
    task completion (priority from the todo when it has one, else medium)."""
    from lifecycle.keys import slug

    done = {t.id for t in m.work.completed_tasks}
    active = {t.id: t for t in m.work.active_tasks}
    for todo in todos:
        if not isinstance(todo, dict):
            continue
        content = str(todo.get("content") or "")
        raw_id = todo.get("id")
        task_id = str(raw_id) if raw_id not in (None, "") else (slug(content)[:60] or "todo")
        status = todo.get("status")
        priority = (
            todo.get("priority") if todo.get("priority") in ("low", "medium", "high") else None
        )
        if status == "completed":
            if task_id not in done:
                m.complete_task(task_id, content, priority=priority)
                done.add(task_id)
        elif status in ("pending", "in_progress"):
            old = active.get(task_id)
            if old is None or old.status.value != status or old.description != content:
                keep = old.priority.value if old is not None else "medium"
                m.add_task(task_id, content, priority=priority or keep, status=status)
