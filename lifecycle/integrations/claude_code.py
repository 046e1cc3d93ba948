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

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lifecycle.integrations.claude_record import (
    ACTIVITY_EVENTS,
    CLAUDE_SESSION,
    COMMAND,
    FAILURES,
    FILE_TOOLS,
    IDENTITY,
    KEEP_PROMPTS,
    KEEP_RISKY,
    MAX_EVENT_BYTES,
    PROMPT_CHARS,
    PROMPTS,
    RISKY,
    SUBCOMMANDS,
    TRANSCRIPT,
    Answer,
    BadEvent,
    _claude_id,
    _distrust,
    _first_warning,
    _open,
    _route,
    _route_file,
    _start,
    _task,
    describe,
    identity,
    operation,
    parse,
    post_tool_use,
    post_tool_use_failure,
    pre_tool_use,
    project_dir,
    project_name,
    record_todos,
    store_url,
    target,
    task_id,
    user_prompt_submit,
)

if TYPE_CHECKING:
    from lifecycle.integrations.live import LiveSession
    from lifecycle.records import Checkpoint
    from lifecycle.session import SessionManager
    from lifecycle.stores import Store

__all__ = [
    "ACTIVITY_EVENTS",
    "ALIVE_SECONDS",
    "CLAUDE_SESSION",
    "COMMAND",
    "CONTEXT_LIMIT",
    "CUT_NOTE",
    "FAILURES",
    "FILE_TOOLS",
    "IDENTITY",
    "KEEP_PROMPTS",
    "KEEP_RISKY",
    "LOCK_TIMEOUT",
    "MAX_EVENT_BYTES",
    "PROMPTS",
    "PROMPT_CHARS",
    "RISKY",
    "SESSION_END_LOCK_TIMEOUT",
    "SUBCOMMANDS",
    "TRANSCRIPT",
    "Answer",
    "BadEvent",
    "cap",
    "describe",
    "handle",
    "identity",
    "operation",
    "parse",
    "post_tool_use",
    "post_tool_use_failure",
    "pre_compact",
    "pre_tool_use",
    "preview",
    "project_dir",
    "project_name",
    "record_todos",
    "session_end",
    "session_start",
    "store_url",
    "target",
    "task_completed",
    "task_created",
    "task_id",
    "user_prompt_submit",
]

#: Claude Code's limit for SessionStart's additionalContext.
CONTEXT_LIMIT = 10_000
#: The end of an additionalContext that had to be cut.
CUT_NOTE = "\n... (cut to fit; run `lifecycle report` in the project for the rest)"
#: How long a hook waits for another process on the same session; SessionEnd has to
#: finish inside Claude Code's 1.5 s budget, and a session it leaves open is ended by
#: the next SessionStart.
LOCK_TIMEOUT = 5.0
SESSION_END_LOCK_TIMEOUT = 0.8


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
        # The events whose step never ends the session mark the journal folded in the
        # step's own save (one session/context write fewer).
        defer = name not in ("SessionEnd", "SessionStart")
        with live_session(
            url, routed or base, clock=clock, lock_timeout=timeout, defer_fold=defer, **options
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


# -- the events -------------------------------------------------------------------------


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


def pre_compact(live: LiveSession, event: Mapping[str, Any], env: Mapping[str, str]) -> Answer:
    m = _open(live, event, env)
    result = m.create_checkpoint()
    if result.error and _first_warning(event, "PreCompact"):
        return {"systemMessage": f"lifecycle: checkpoint before compaction failed: {result.error}"}
    return None


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
