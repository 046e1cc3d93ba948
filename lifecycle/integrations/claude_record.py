"""What a Claude Code hook event says, and the handlers of the events that record work.

These are the parts of the hook (:mod:`lifecycle.integrations.claude_code`) that the
fast path (:mod:`lifecycle.integrations.claude_fast`) and the journal's fold
(:mod:`lifecycle.integrations.claude_journal`) share with it: reading an event (its
project, store, tool input), and turning PostToolUse, PostToolUseFailure,
UserPromptSubmit and PreToolUse into session events. A recorded event folded from the
journal runs through the same handler as one handled at once, so the two cannot
drift. Standard library only at the top: the fast path imports this module.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False  # typing itself is not imported: the fast path runs this module
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Protocol, TypeAlias

    from lifecycle.records import Checkpoint
    from lifecycle.session import SessionManager

    class LiveSession(Protocol):
        """What a handler needs of :class:`lifecycle.integrations.live.LiveSession` (named
        here, not imported: the live module folds the journal through these handlers)."""

        manager: SessionManager
        attached: bool

        @property
        def is_open(self) -> bool: ...


#: The largest hook event read from stdin (a tool's whole input and output fit).
MAX_EVENT_BYTES = 16 * 1024 * 1024


#: The context keys where the hook keeps its own state in the session.
CLAUDE_SESSION = "claude_session_id"


FAILURES = "failures"  # target -> "Bash failed (ls x): ...", until the target succeeds


PROMPTS = "prompts"  # the user's last prompts, trimmed


RISKY = "risky_operations"  # [{"operation", "checkpoint_id", "runs" when over 1}]


IDENTITY = "project_identity"  # {"root": ..., "uid": ...}: whose records these are


#: How many prompts and risky operations a session keeps, and how long a prompt is kept.
KEEP_PROMPTS = 5


KEEP_RISKY = 10


PROMPT_CHARS = 300


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
ACTIVITY_EVENTS = frozenset({"Stop", "SubagentStop"})


#: Programs whose first argument says what they do (``git push``, ``npm test``).
SUBCOMMANDS = frozenset(
    {
        "git",
        "npm",
        "pnpm",
        "yarn",
        "cargo",
        "go",
        "docker",
        "kubectl",
        "make",
        "uv",
        "pip",
        "poetry",
        "terraform",
        "helm",
        "gh",
        "bun",
        "deno",
        "dotnet",
        "mvn",
        "gradle",
    }
)


Answer: TypeAlias = "dict[str, Any] | None"


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
    """``$CLAUDE_PROJECT_DIR``, else the git top level of the event's ``cwd``."""
    if env.get("CLAUDE_PROJECT_DIR"):
        return os.path.abspath(env["CLAUDE_PROJECT_DIR"])
    cwd = event.get("cwd")
    from lifecycle.project import git_root

    return git_root(cwd if isinstance(cwd, str) and cwd else os.getcwd())


def project_name(root: str) -> str:
    """A project's default name: its folder's name (:mod:`lifecycle.project`)."""
    from lifecycle.project import default_name

    return default_name(root)


def store_url(event: Mapping[str, Any], env: Mapping[str, str]) -> str:
    if env.get("LIFECYCLE_STORE"):
        return env["LIFECYCLE_STORE"]
    from urllib.parse import quote

    folder = os.path.join(os.path.abspath(project_dir(event, env)), ".lifecycle")
    return "file://" + quote(folder, errors="surrogateescape")  # a folder name not UTF-8


def _first_warning(event: Mapping[str, Any], cause: str) -> bool:
    """True the first time ``cause`` is warned about in this Claude session (a marker file
    in the temp folder: the store itself may be what is broken)."""
    sid = _claude_id(event) or "none"
    where = event.get("cwd") if isinstance(event.get("cwd"), str) else ""
    seen = f"{sid}\x00{where}\x00{cause}".encode("utf-8", "surrogateescape")
    digest = _digest(seen)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    marker = os.path.join(_temp_folder(), f"lifecycle-{uid}-warned-{digest}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    except OSError:
        return True
    os.close(fd)
    return True


TRANSCRIPT = "claude_transcript"


def _digest(data: bytes) -> str:
    """8 bytes of BLAKE2b, hex (``_blake2`` is what ``hashlib.blake2b`` is; importing
    hashlib loads OpenSSL, a few milliseconds of every hook's start)."""
    try:
        from _blake2 import blake2b
    except ImportError:  # an interpreter without the module: hashlib's own
        from hashlib import blake2b
    return blake2b(data, digest_size=8).hexdigest()


def _temp_folder() -> str:
    """``tempfile.gettempdir()``, without importing tempfile when its first choice is the
    plain one: no ``$TMPDIR``, ``$TEMP`` or ``$TMP``, and ``/tmp`` a folder we can write."""
    plain = not any(os.environ.get(name) for name in ("TMPDIR", "TEMP", "TMP"))
    first = "/tmp"  # noqa: S108 (tempfile's own first candidate; the names made in it are ours)
    if plain and os.name == "posix" and os.access(first, os.W_OK | os.X_OK):
        return first
    import tempfile

    return tempfile.gettempdir()


def _route_file(url: Any, base: str, event: Mapping[str, Any]) -> str:
    where = getattr(url, "url", url)
    key = f"{where}\x00{base}\x00{_claude_id(event)}"
    digest = _digest(key.encode())
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(_temp_folder(), f"lifecycle-{uid}-route-{digest}")


def _route(url: Any, base: str, event: Mapping[str, Any]) -> str | None:
    """The project of a Claude session that works beside another one, or None."""
    try:
        with open(_route_file(url, base, event), encoding="utf-8") as f:
            name = f.read().strip()
    except OSError:
        return None
    return name or None


def identity(root: str) -> dict[str, Any]:
    # as text a record can hold: a folder name that is not UTF-8 keeps its bytes as \xNN
    where = os.fsencode(os.path.realpath(root)).decode("utf-8", "backslashreplace")
    return {"root": where, "uid": os.getuid() if hasattr(os, "getuid") else 0}


def _distrust(cp: Checkpoint, store: Any, root: str) -> str | None:
    """Why ``cp`` must not reach the model, or None: recorded for another project or
    user, or kept in a file others can write."""
    mine = identity(root)
    theirs = cp.context.get(IDENTITY)
    if theirs is not None and not isinstance(theirs, dict):
        return f"checkpoint {cp.id} carries a malformed project identity"
    if not isinstance(theirs, dict):
        pass  # written by the command line or an older lifecycle: the file checks decide
    elif theirs.get("root") != mine["root"]:
        return (
            f"checkpoint {cp.id} was recorded for the project at {theirs.get('root')!r}, "
            f"not this one ({mine['root']!r}): copied from another checkout?"
        )
    elif theirs.get("uid") != mine["uid"]:
        return f"checkpoint {cp.id} was recorded by another user (uid {theirs.get('uid')})"
    inner = getattr(store, "store", store)  # a ProjectStore: the store it scopes
    folder = getattr(inner, "root", None)
    if folder is not None:
        import stat

        project = getattr(store, "project", "")
        mine_dir = os.path.join(str(folder), f"{project}.d")
        for path in (str(folder), mine_dir, os.path.join(mine_dir, "checkpoints.d")):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if st.st_uid != mine["uid"] or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return (
                    f"the store folder {path} is owned by uid {st.st_uid} or writable by "
                    f"others (mode {stat.S_IMODE(st.st_mode):o})"
                )
    return None


def _claude_id(event: Mapping[str, Any]) -> str | None:
    sid = event.get("session_id")
    return sid if isinstance(sid, str) and sid else None


def _open(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> SessionManager:
    """The open session of this Claude session; activity with none open starts one
    (restoring the latest checkpoint when it can be trusted)."""
    if not live.is_open:
        _start(live, event, env)
    return live.manager


def _start(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Start a session in ``live``; the reason the latest checkpoint was not restored."""
    from lifecycle.errors import CheckpointNotFound, LifecycleError

    m = live.manager
    root = project_dir(event, env)
    why: str | None = None
    try:
        why = _distrust(m.read_checkpoint(), m.store, root)
    except CheckpointNotFound:
        pass
    except LifecycleError as exc:
        why = f"the latest checkpoint could not be read: {exc}"
    m.start_session(command=COMMAND, restore=why is None)
    transcript = event.get("transcript_path")
    m.update_context(
        {
            CLAUDE_SESSION: _claude_id(event),
            IDENTITY: identity(root),
            TRANSCRIPT: transcript if isinstance(transcript, str) else None,
        }
    )
    return why


def user_prompt_submit(
    live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]
) -> Answer:
    m = _open(live, event, env)
    prompt = event.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return None
    text = " ".join(prompt.split())
    text = text if len(text) <= PROMPT_CHARS else text[: PROMPT_CHARS - 3] + "..."
    kept = [p for p in m.context.get(PROMPTS) or [] if isinstance(p, str)]
    m.update_context({PROMPTS: [*kept, text][-KEEP_PROMPTS:]})
    return None


def pre_tool_use(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    op = operation(event, project_dir(event, env))
    if op is None:
        return None
    m = _open(live, event, env)
    before = m.last_checkpoint
    clearance = m.before_operation(op)
    after = m.last_checkpoint
    if after is not None and after is not before and after.type.value == "risk":
        what = describe(str(event.get("tool_name") or ""), _input(event))
        # One entry per operation, however often it runs: its count and newest checkpoint
        # (so ten runs of one command do not push every other operation out).
        from lifecycle.report import runs_of

        kept = [r for r in m.context.get(RISKY) or [] if isinstance(r, dict)]
        runs = 1 + sum(runs_of(r) for r in kept if r.get("operation") == what)
        entry: dict[str, Any] = {"operation": what, "checkpoint_id": after.id}
        if runs > 1:
            entry["runs"] = runs
        kept = [r for r in kept if r.get("operation") != what]
        m.update_context({RISKY: [*kept, entry][-KEEP_RISKY:]})
    if not clearance.proceed and _first_warning(event, "risk-checkpoint"):
        return {
            "systemMessage": f"lifecycle: {clearance.reason}; the tool runs anyway (no checkpoint)"
        }
    return None


def _input(event: Mapping[str, Any]) -> dict[str, Any]:
    tool_input = event.get("tool_input")
    return tool_input if isinstance(tool_input, dict) else {}


def target(tool: str, tool_input: Mapping[str, Any]) -> str:
    """What a tool call works on, for matching a success to an earlier failure: the file
    for file tools; for Bash the program (and its subcommand: ``git push``)."""
    if tool in FILE_TOOLS:
        return f"{tool}:{tool_input.get(FILE_TOOLS[tool])}"
    command = tool_input.get("command")
    if tool == "Bash" and isinstance(command, str):
        words = _words(command)
        env_free = [w for w in words if "=" not in w or w.startswith("-")]
        head = (
            env_free[:2]
            if env_free and os.path.basename(env_free[0]) in SUBCOMMANDS
            else env_free[:1]
        )
        return "Bash:" + " ".join(os.path.basename(w) if i == 0 else w for i, w in enumerate(head))
    return tool


def _words(command: str) -> list[str]:
    import shlex

    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def post_tool_use(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event, env)
    tool = str(event.get("tool_name") or "")
    tool_input = _input(event)
    failures = dict(m.context.get(FAILURES) or {})
    key = target(tool, tool_input)
    if key in failures:
        error = str(failures.pop(key))
        m.update_context({FAILURES: failures or None})
        m.error_recovered(
            error,
            recovery_steps=(f"{tool} succeeded: {describe(tool, tool_input)}",),
            operation=key,
        )
    root = project_dir(event, env)
    if tool in FILE_TOOLS:
        path = tool_input.get(FILE_TOOLS[tool])
        if isinstance(path, str) and path:
            op, changes = _file_operation(tool, tool_input, event.get("tool_response"))
            m.record_file_change(_relative(path, root, event.get("cwd")), (op,), changes)
            return None
    if tool == "Bash":
        deleted = _deleted(tool_input.get("command"))
        for path in deleted:
            m.record_file_change(_relative(path, root, event.get("cwd")), ("delete",))
        if deleted:
            return None
    if tool == "TodoWrite":
        todos = tool_input.get("todos")
        if isinstance(todos, list):
            record_todos(m, todos)
            return None
    if tool in ("TaskCreate", "TaskUpdate"):
        _task_tool(m, event, tool, tool_input)
        return None
    m.tick()
    return None


def _deleted(command: Any) -> list[str]:
    """The paths a simple ``rm`` command deletes (``rm -rf build/`` -> ``build``)."""
    if not isinstance(command, str) or "rm" not in command:
        return []
    out: list[str] = []
    for part in command.replace("&&", ";").replace("||", ";").split(";"):
        words = _words(part.strip())
        if words and os.path.basename(words[0]) == "rm":
            out += [w.rstrip("/") or w for w in words[1:] if not w.startswith("-")]
    return out


def post_tool_use_failure(
    live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]
) -> Answer:
    m = _open(live, event, env)
    if event.get("is_interrupt"):
        m.tick()
        return None
    tool = str(event.get("tool_name") or "tool")
    tool_input = _input(event)
    what = describe(tool, tool_input)
    error = " ".join(str(event.get("error") or "failed").split())[:300]
    failures = dict(m.context.get(FAILURES) or {})
    failures[target(tool, tool_input)] = f"{tool} failed ({what}): {error}"
    m.update_context({FAILURES: failures})
    return None


def task_id(event: Mapping[str, Any], raw: Any, subject: str = "") -> str:
    """A Claude task id as lifecycle keeps it: namespaced by the Claude session, since
    Claude Code numbers the tasks of every session from 1."""
    from lifecycle.keys import slug

    sid = _claude_id(event) or "claude"
    local = str(raw) if raw not in (None, "") else (slug(subject)[:60] or "task")
    return f"{slug(sid)[:8] or 'claude'}/{local}"


def _task(event: Mapping[str, Any]) -> tuple[str, str]:
    subject = str(event.get("task_subject") or event.get("task_description") or "")
    return task_id(event, event.get("task_id"), subject), subject


def _task_tool(
    m: SessionManager, event: Mapping[str, Any], tool: str, tool_input: Mapping[str, Any]
) -> None:
    """TaskCreate / TaskUpdate as Claude ran them: the id from the result, the status."""
    response = event.get("tool_response")
    if tool == "TaskCreate":
        raw = None
        if isinstance(response, dict):
            task = response.get("task")
            raw = (task.get("id") if isinstance(task, dict) else None) or response.get("id")
        if raw is None:
            import re

            found = re.search(r"#(\d+)", json.dumps(response))
            raw = found.group(1) if found else None
        subject = str(tool_input.get("subject") or "")
        tid = task_id(event, raw, subject)
        if not any(t.id == tid for t in (*m.work.active_tasks, *m.work.completed_tasks)):
            m.add_task(tid, subject)
        return
    tid = task_id(event, tool_input.get("taskId"))
    status = tool_input.get("status")
    known = next((t for t in m.work.active_tasks if t.id == tid), None)
    subject = str(tool_input.get("subject") or (known.description if known else ""))
    if status == "completed":
        if not any(t.id == tid for t in m.work.completed_tasks):
            m.complete_task(tid, subject, priority="high")
    elif status == "deleted":
        if known is not None:
            m.add_task(tid, subject, status="cancelled")
    elif status in ("pending", "in_progress"):
        if known is None or known.status.value != status or known.description != subject:
            m.add_task(tid, subject, status=status)
    else:
        m.tick()


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
    for field in ("command", "file_path", "notebook_path", "pattern", "url", "path", "subject"):
        value = tool_input.get(field)
        if isinstance(value, str) and value:
            text = " ".join(value.split())
            return text if len(text) <= 120 else text[:117] + "..."
    return tool


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
        tid = str(raw_id) if raw_id not in (None, "") else (slug(content)[:60] or "todo")
        status = todo.get("status")
        priority = (
            todo.get("priority") if todo.get("priority") in ("low", "medium", "high") else None
        )
        if status == "completed":
            if tid not in done:
                m.complete_task(tid, content, priority=priority)
                done.add(tid)
        elif status in ("pending", "in_progress"):
            old = active.get(tid)
            if old is None or old.status.value != status or old.description != content:
                keep = old.priority.value if old is not None else "medium"
                m.add_task(tid, content, priority=priority or keep, status=status)
