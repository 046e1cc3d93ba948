"""Claude Code hooks: one hook event (JSON on stdin) in, lifecycle events out.

Claude Code runs ``lifecycle hook claude`` as a command hook and writes one
event to its stdin, with the common fields ``session_id``, ``transcript_path``,
``cwd``, ``permission_mode``, ``hook_event_name`` and the event's own fields.
Every event runs synchronously: Claude Code cancels async hooks still running when
``claude -p`` exits (the last tool call would be lost) and skips SessionEnd while
one runs. The mapping:

====================  ===============================================================
Claude Code event     lifecycle
====================  ===============================================================
SessionStart          ``startup``: end a session whose SessionEnd never came (it is
                      shown as "ended without SessionEnd"), start one restoring the
                      latest checkpoint. ``resume`` and ``compact``: continue the
                      lifecycle session of the same Claude session (``compact``
                      re-injects what compaction dropped). ``clear``: end it, start a
                      new one. Answers ``additionalContext`` with the context
                      (:func:`lifecycle.report.render_context`, within the budget).
UserPromptSubmit      the prompt, kept (the last few, trimmed) for the next context.
PreCompact            checkpoint (a no-op when nothing changed).
PreToolUse            Bash, Edit, Write, MultiEdit, NotebookEdit: ``before_operation``;
                      a risky one is checkpointed, with a git snapshot of the work
                      tree (``lifecycle rewind``), before the hook answers, and
                      remembered with its checkpoint id.
PostToolUse           files created / edited (file tools), deleted (``rm``), tasks
                      (TaskCreate, TaskUpdate, TodoWrite); a success of the same tool
                      on the same target as an earlier failure: error recovered.
PostToolUseFailure    the failure, kept until the same target succeeds.
TaskCreated,          add_task / complete_task with ids kept per Claude session (Claude
TaskCompleted         numbers its tasks from 1 in every session); a completion
                      checkpoints.
Stop, SubagentStop    activity (the time trigger).
SessionEnd            end_session (only the Claude session that owns the open one).
====================  ===============================================================

The hook never blocks Claude Code because of its own failure: it always exits
0; when something went wrong its stdout is ``{"systemMessage": ...}`` (shown to
the user, not the model), once per Claude session and cause.

Which project: ``$CLAUDE_PROJECT_DIR`` (Claude Code sets it to the project root),
else the git top level of the event's ``cwd`` (or the ``cwd``). Which store:
``$LIFECYCLE_STORE``, else ``file://<project>/.lifecycle``. The project name is
``$LIFECYCLE_PROJECT``, else the project folder's name (as for the command line
run in that folder). Each checkpoint carries the project's root and the user's
id; a checkpoint from another project or user, or a store file others can
write, is not restored into the model's context (a warning says why).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.integrations.live import LiveSession
    from lifecycle.records import Checkpoint
    from lifecycle.session import SessionManager
    from lifecycle.stores import Store

#: Claude Code's limit for SessionStart's additionalContext.
CONTEXT_LIMIT = 10_000
#: The largest hook event read from stdin (a tool's whole input and output fit).
MAX_EVENT_BYTES = 16 * 1024 * 1024
#: The context keys where the hook keeps its own state in the session.
CLAUDE_SESSION = "claude_session_id"
FAILURES = "failures"  # target -> "Bash failed (ls x): ...", until the target succeeds
PROMPTS = "prompts"  # the user's last prompts, trimmed
RISKY = "risky_operations"  # [{"operation", "checkpoint_id"}]
IDENTITY = "project_identity"  # {"root": ..., "uid": ...}: whose records these are
#: How many prompts and risky operations a session keeps, and how long a prompt is kept.
KEEP_PROMPTS = 5
KEEP_RISKY = 10
PROMPT_CHARS = 300
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
    store: str | Store | None = None,
    project: str | None = None,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Answer:
    """Handle one hook event; the JSON to print, or None. Never raises. ``store`` is a URL
    or an open Store (left open)."""
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
        base = project or env.get("LIFECYCLE_PROJECT") or project_name(project_dir(event, env))
        timeout = SESSION_END_LOCK_TIMEOUT if name == "SessionEnd" else LOCK_TIMEOUT
        # what a risk checkpoint snapshots: the project's work tree
        options: dict[str, Any] = {
            "work_tree": project_dir(event, env),
            "snapshot": env.get("LIFECYCLE_SNAPSHOT") or None,
        }
        routed = _route(url, base, event)
        if name == "SessionStart" and routed is None:
            with live_session(url, base, clock=clock, lock_timeout=timeout, **options) as live:
                other = _other_alive(live, event)
                if other is None:
                    return session_start(live, event, env)
                from lifecycle.report import budget, render_context

                theirs = render_context(
                    live.manager.snapshot(),
                    [
                        f"  Meanwhile, Claude Code session {other} works in this project; "
                        f"its work session {live.manager.session_id} holds:"
                    ],
                    limit_chars=budget(env.get("LIFECYCLE_CONTEXT_BUDGET")) // 2,
                )
            routed = _set_route(url, base, event)
            with live_session(url, routed, clock=clock, lock_timeout=timeout, **options) as live:
                answer = session_start(live, event, env)
            assert answer is not None
            out = answer["hookSpecificOutput"]
            out["additionalContext"] = cap(out["additionalContext"] + "\n" + theirs)
            return answer
        with live_session(
            url, routed or base, clock=clock, lock_timeout=timeout, **options
        ) as live:
            if handler is None:
                _open(live, event, env).tick()
                return None
            if name == "SessionEnd" and routed is not None:
                work, context = live.manager.work, dict(live.manager.context)
                handler(live, event, env)
            else:
                return handler(live, event, env)
        # a concurrent Claude session ended: its work joins the project's own session
        _clear_route(url, base, event)
        with live_session(url, base, clock=clock, lock_timeout=timeout, **options) as live:
            _merge_into(live, event, env, work, context)
        return None
    except Exception as exc:
        return _failed(name, event, env, exc, store=store, project=project)


def _failed(
    name: str,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    exc: Exception,
    *,
    store: str | Store | None,
    project: str | None,
) -> Answer:
    """What the user is told when a hook failed: the real cause, once per Claude session
    and cause. SessionStart still gives the model what can be read."""
    from lifecycle.errors import LifecycleError

    what = str(exc) if isinstance(exc, LifecycleError) else f"{type(exc).__name__}: {exc}"
    answer: dict[str, Any] = {}
    if name == "SessionStart":
        context = _read_only_context(event, env, store=store, project=project)
        if context:
            answer["hookSpecificOutput"] = {
                "hookEventName": "SessionStart",
                "additionalContext": context,
            }
    if _first_warning(event, type(exc).__name__):
        answer["systemMessage"] = (
            f"lifecycle: could not record Claude Code's {name} ({what}); Claude Code goes on"
            " and lifecycle keeps trying on the next events (this warning is shown once)"
        )
    return answer or None


def _first_warning(event: Mapping[str, Any], cause: str) -> bool:
    """True the first time ``cause`` is warned about in this Claude session (a marker file
    in the temp folder: the store itself may be what is broken)."""
    import hashlib
    import tempfile

    sid = _claude_id(event) or "none"
    where = event.get("cwd") if isinstance(event.get("cwd"), str) else ""
    seen = f"{sid}\x00{where}\x00{cause}".encode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(seen, digest_size=8).hexdigest()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    marker = os.path.join(tempfile.gettempdir(), f"lifecycle-{uid}-warned-{digest}")
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    except OSError:
        return True
    os.close(fd)
    return True


def _read_only_context(
    event: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    store: str | Store | None,
    project: str | None,
) -> str | None:
    """The latest checkpoint's context from a store that can be read but not written."""
    try:
        from lifecycle.session import SessionManager
        from lifecycle.stores import open_store

        root = project_dir(event, env)
        owned = not (store is not None and not isinstance(store, str))
        raw = (
            open_store(store if isinstance(store, str) else store_url(event, env))
            if owned
            else store
        )
        assert raw is not None
        assert not isinstance(raw, str)
        try:
            m = SessionManager(
                store=raw, project=project or env.get("LIFECYCLE_PROJECT") or project_name(root)
            )
            cp = m.read_checkpoint()
            if _distrust(cp, raw, root):
                return None
            from lifecycle.report import budget, render_context

            view = _checkpoint_view(m, cp)
            head = [
                f"[lifecycle] The project's store can be read but not written: this session is "
                f"not being recorded. The latest checkpoint, {cp.id}, holds:"
            ]
            return cap(render_context(view, head, limit_chars=budget()))
        finally:
            if owned:
                raw.close()
    except Exception:
        return None


def _checkpoint_view(m: SessionManager, cp: Checkpoint) -> Any:
    from lifecycle.session.results import SessionSnapshot
    from lifecycle.spec import INITIAL

    return SessionSnapshot(
        project=m.project,
        store=m.store,
        state=INITIAL,
        session=None,
        phase=cp.phase,
        progress=dict(cp.progress),
        work=cp.state,
        restored_from=cp,
        warnings=(),
        learnings_count=0,
        context=dict(cp.context),
    )


# -- concurrent Claude sessions ----------------------------------------------------------

#: A Claude session whose transcript changed this recently is still working.
ALIVE_SECONDS = 15 * 60
TRANSCRIPT = "claude_transcript"


def _route_file(url: Any, base: str, event: Mapping[str, Any]) -> str:
    import hashlib
    import tempfile

    where = getattr(url, "url", url)
    key = f"{where}\x00{base}\x00{_claude_id(event)}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"lifecycle-{uid}-route-{digest}")


def _route(url: Any, base: str, event: Mapping[str, Any]) -> str | None:
    """The project of a Claude session that works beside another one, or None."""
    try:
        with open(_route_file(url, base, event), encoding="utf-8") as f:
            name = f.read().strip()
    except OSError:
        return None
    return name or None


def _set_route(url: Any, base: str, event: Mapping[str, Any]) -> str:
    from lifecycle.keys import slug

    name = f"{base[:90]}.{slug(_claude_id(event) or 'claude')[:8]}"
    path = _route_file(url, base, event)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, name.encode())
    finally:
        os.close(fd)
    return name


def _clear_route(url: Any, base: str, event: Mapping[str, Any]) -> None:
    import contextlib

    with contextlib.suppress(OSError):
        os.unlink(_route_file(url, base, event))


def _other_alive(live: LiveSession, event: Mapping[str, Any]) -> str | None:
    """The id of another Claude session that owns the open session and is still working
    (its transcript changed in the last :data:`ALIVE_SECONDS`), or None."""
    import time

    if not live.is_open:
        return None
    owner = live.manager.context.get(CLAUDE_SESSION)
    transcript = live.manager.context.get(TRANSCRIPT)
    if not isinstance(owner, str) or owner == _claude_id(event) or not isinstance(transcript, str):
        return None
    try:
        fresh = time.time() - os.path.getmtime(transcript) < ALIVE_SECONDS
    except OSError:
        return None
    return owner if fresh else None


def _merge_into(
    live: LiveSession,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    work: Any,
    context: Mapping[str, Any],
) -> None:
    """A concurrent Claude session's work, added to the project's session (started for
    it, and ended again, when none is open)."""
    started = not live.is_open
    m = _open(live, event, env)
    if started:
        m.update_context({CLAUDE_SESSION: None})
    have = {t.id for t in (*m.work.active_tasks, *m.work.completed_tasks)}
    for f in work.files_modified:
        m.record_file_change(f.path, f.operations, f.changes)
    for t in work.active_tasks:
        if t.id not in have:
            m.add_task(t.id, t.description, priority=t.priority, status=t.status)
    for t in work.completed_tasks:
        if t.id not in {c.id for c in m.work.completed_tasks}:
            m.complete_task(t.id, t.description, priority=t.priority)
    for d in work.decisions:
        if d not in m.work.decisions:
            m.record_decision(d.decision, d.rationale, d.impact, at=d.timestamp)
    for q in work.open_questions:
        if q not in m.work.open_questions:
            m.add_open_question(q)
    for b in work.blockers:
        if b not in m.work.blockers:
            m.add_blocker(b)
    for e in work.errors:
        if e not in m.work.errors:
            m.error_recovered(e.error, e.recovery_steps, operation=e.operation)
    merged: dict[str, Any] = {}
    for key, keep in ((PROMPTS, KEEP_PROMPTS), (RISKY, KEEP_RISKY)):
        mine = list(m.context.get(key) or [])
        extra = [x for x in context.get(key) or [] if x not in mine]
        if extra:
            merged[key] = [*mine, *extra][-keep:]
    if merged:
        m.update_context(merged)
    if started:
        m.end_session(success=True, command=COMMAND)


# -- trust ------------------------------------------------------------------------------


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


# -- the events -------------------------------------------------------------------------


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


def session_start(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    from lifecycle.integrations.live import end_open_session

    m = live.manager
    sid = _claude_id(event)
    source = str(event.get("source") or "startup")
    owner = m.context.get(CLAUDE_SESSION) if live.attached else None
    continued = live.attached and owner == sid and source in ("resume", "compact")
    ended: str | None = None
    why: str | None = None
    if not continued:
        if live.attached:
            # Ended so that nothing of it is lost, or left open (StoreError: the hook
            # says so) when its final checkpoint cannot be written.
            if source == "clear" and owner == sid:
                ended = end_open_session(live, success=True, command=COMMAND).session_id
            else:
                # its SessionEnd never came (killed, crashed) or a command-line session:
                # closed from its last durable state, outcome unknown
                ended = end_open_session(live, success=None, command=COMMAND).session_id
            m = live.restart()
        why = _start(live, event, env)
        m = live.manager
    from lifecycle.report import budget, render_context

    assert m.session is not None
    restored = m.session.restored_from
    if continued and source == "compact":
        head = (
            f"[lifecycle] Continuing work session {m.session_id} after compaction; what it holds:"
        )
    elif continued:
        head = f"[lifecycle] Claude Code resumed; work session {m.session_id} continues:"
    elif source == "clear" and ended:
        head = (
            f"[lifecycle] Context cleared: work session {ended} ended; session {m.session_id} "
            + (f"started from checkpoint {restored}:" if restored else "started fresh.")
        )
    elif restored:
        head = (
            f"[lifecycle] Work session {m.session_id} started from checkpoint {restored}, "
            "where the previous session stopped:"
        )
    else:
        head = f"[lifecycle] Work session {m.session_id} started; nothing recorded before it."
    lines = [head]
    if why:
        lines.append(f"  Not restored: {why}.")
    context = render_context(
        m.snapshot(), lines, limit_chars=budget(env.get("LIFECYCLE_CONTEXT_BUDGET"))
    )
    answer: dict[str, Any] = {
        "hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": cap(context)}
    }
    if why:
        answer["systemMessage"] = f"lifecycle: the latest checkpoint was not restored: {why}"
    elif restored and not continued:
        answer["systemMessage"] = f"lifecycle: session {m.session_id} restored from {restored}"
    return answer


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


def pre_compact(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event, env)
    result = m.create_checkpoint()
    if result.error and _first_warning(event, "PreCompact"):
        return {"systemMessage": f"lifecycle: checkpoint before compaction failed: {result.error}"}
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
        kept = [r for r in m.context.get(RISKY) or [] if isinstance(r, dict)]
        m.update_context(
            {RISKY: [*kept, {"operation": what, "checkpoint_id": after.id}][-KEEP_RISKY:]}
        )
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


def task_created(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event, env)
    tid, subject = _task(event)
    if any(t.id == tid for t in m.work.completed_tasks):
        return None  # the completion came first: nothing is open
    known = next((t for t in m.work.active_tasks if t.id == tid), None)
    if known is None or (subject and known.description != subject):
        m.add_task(tid, subject or (known.description if known else ""))
    return None


def task_completed(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event, env)
    tid, subject = _task(event)
    if any(t.id == tid for t in m.work.completed_tasks):
        return None
    known = next((t for t in m.work.active_tasks if t.id == tid), None)
    # a task Claude tracked to the end is a unit of work worth a checkpoint
    outcome = m.complete_task(tid, subject or (known.description if known else ""), priority="high")
    if (
        outcome.checkpoint is not None
        and outcome.checkpoint.error
        and _first_warning(event, "task-checkpoint")
    ):
        return {
            "systemMessage": f"lifecycle: checkpoint after task {subject or tid} failed: "
            f"{outcome.checkpoint.error}"
        }
    return None


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
    "UserPromptSubmit": user_prompt_submit,
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


def preview(
    *,
    store: str | None = None,
    project: str | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """What the next SessionStart (``startup``) would inject, changing nothing. The one
    difference: the new session's id does not exist yet and is shown as ``(next)``."""
    from lifecycle.errors import CheckpointNotFound
    from lifecycle.integrations.live import live_session
    from lifecycle.report import budget, render_context

    env = os.environ if env is None else env
    event = {"cwd": cwd or os.getcwd()}
    root = project_dir(event, env)
    url = store or store_url(event, env)
    name = project or env.get("LIFECYCLE_PROJECT") or project_name(root)
    limit = budget(env.get("LIFECYCLE_CONTEXT_BUDGET"))
    fresh = "[lifecycle] Work session (next) started; nothing recorded before it."
    if isinstance(url, str) and url.startswith("file://"):
        from lifecycle.stores.file import root_of_url

        if not root_of_url(url).exists():
            return fresh  # opening the store would create its folder
    with live_session(url, name, save=False) as live:
        m = live.manager
        if live.is_open:
            # the next start checkpoints this session's state and restores it
            head = [
                "[lifecycle] Work session (next) started from the final checkpoint of "
                f"{m.session_id}, where the previous session stopped:"
            ]
            return cap(render_context(m.snapshot(), head, limit_chars=limit))
        try:
            cp = m.read_checkpoint()
        except CheckpointNotFound:
            return fresh
        why = _distrust(cp, m.store, root)
        if why:
            return f"{fresh}\n  Not restored: {why}."
        head = [
            f"[lifecycle] Work session (next) started from checkpoint {cp.id}, "
            "where the previous session stopped:"
        ]
        return cap(render_context(_checkpoint_view(m, cp), head, limit_chars=limit))
