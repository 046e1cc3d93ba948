"""Pure work-state transforms: each event's change, as a function of the work state.

Nothing here reads a clock, a store or a session: the façade passes the moment
in, and the step applies the change only when the table's row says so.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

import attrs

from lifecycle import keys, limits
from lifecycle.records import (
    Decision,
    Discoveries,
    ErrorContext,
    FileChange,
    Priority,
    Task,
    TaskStatus,
    WorkState,
    revise,
)

Change = Callable[[WorkState], WorkState]
R = TypeVar("R")
#: How many one-line "recent changes" a work state keeps.
RECENT_KEPT = limits.RECENT_CHANGES


def recent(items: tuple[str, ...], item: str, keep: int = RECENT_KEPT) -> tuple[str, ...]:
    return (*items, item)[-keep:]


def open_task(
    task_id: str,
    description: str,
    priority: Priority | str,
    status: TaskStatus | str,
    progress: str | None,
    at: datetime,
) -> Change:
    """Add or update an open task (OverLimit past the caps: checked now, before the
    event, so a refused task changes nothing)."""
    _task_text(task_id, description)
    limits.optional_text("task progress", progress, limits.TASK_PROGRESS_CHARS)

    def change(work: WorkState) -> WorkState:
        old = next((t for t in work.active_tasks if t.id == task_id), None)
        if old is None:
            limits.room("open tasks", len(work.active_tasks), limits.OPEN_TASKS)
        started = old.started_at if old else None
        if TaskStatus(status) is TaskStatus.IN_PROGRESS and started is None:
            started = at
        task = Task(
            id=task_id,
            description=description or (old.description if old else ""),
            status=status,
            priority=priority,
            progress=progress,
            started_at=started,
        )
        tasks = (*(t for t in work.active_tasks if t.id != task_id), task)
        return attrs.evolve(work, active_tasks=tasks)

    return change


def completed_task(
    work: WorkState,
    task_id: str,
    description: str,
    priority: Priority | str | None,
    duration_minutes: float | None,
    at: datetime,
) -> Task:
    """The completed task record for ``task_id`` (its open record's fields carried over)."""
    _task_text(task_id, description)
    old = next((t for t in work.active_tasks if t.id == task_id), None)
    if duration_minutes is None and old is not None and old.started_at is not None:
        duration_minutes = round((at - old.started_at).total_seconds() / 60, 2)
    return Task(
        id=task_id,
        description=description or (old.description if old else ""),
        status=TaskStatus.COMPLETED,
        priority=priority if priority is not None else (old.priority if old else "medium"),
        progress="100%",
        started_at=old.started_at if old else None,
        completed_at=at,
        duration_minutes=duration_minutes,
    )


def _task_text(task_id: str, description: str) -> None:
    limits.text("task id", task_id, limits.TASK_ID_CHARS)
    limits.text(f"description of task {task_id!r}", description, limits.TASK_DESCRIPTION_CHARS)


def _newest(
    omitted: dict[str, int], field: str, items: tuple[R, ...], keep: int
) -> tuple[tuple[R, ...], dict[str, int]]:
    """The newest ``keep`` of ``items``, and ``omitted`` counting the ones cut."""
    cut = len(items) - keep
    if cut <= 0:
        return items, omitted
    return items[cut:], limits.omitted(omitted, field, cut)


def complete_task(task: Task) -> Change:
    def change(work: WorkState) -> WorkState:
        done, omitted = _newest(
            work.omitted, "completed_tasks", (*work.completed_tasks, task),
            limits.COMPLETED_TASKS,
        )  # fmt: skip
        return attrs.evolve(
            work,
            active_tasks=tuple(t for t in work.active_tasks if t.id != task.id),
            completed_tasks=done,
            recent_changes=recent(work.recent_changes, f"completed {task.id}"),
            omitted=omitted,
        )

    return change


def decide(item: Decision) -> Change:
    limits.text("decision", item.decision, limits.DECISION_CHARS)
    limits.text("decision rationale", item.rationale, limits.DECISION_CHARS)
    limits.text("decision impact", item.impact, limits.DECISION_CHARS)

    def change(work: WorkState) -> WorkState:
        kept, omitted = _newest(
            work.omitted, "decisions", (*work.decisions, item), limits.DECISIONS
        )
        return attrs.evolve(work, decisions=kept, omitted=omitted)

    return change


def change_file(path: str, ops: tuple[str, ...], changes: int | None) -> Change:
    limits.text("file path", path, limits.FILE_PATH_CHARS)
    most = limits.FILE_OPERATION_CHARS
    if len(ops) != 1 or len(ops[0]) > most:  # one short operation (the usual): kept as is
        ops = tuple([limits.clip(o, most) for o in ops])
    kept = limits.FILE_OPERATIONS

    def change(work: WorkState) -> WorkState:
        files = work.files_modified
        at = _place(files, path)
        if at is not None:
            old = files[at]
            known = old.operations
            added: tuple[str, ...] = ()
            for o in ops:  # a loop, not a comprehension: one call less
                if o not in known:
                    added = tuple(o for o in ops if o not in known)
                    break
            merged = (known + added)[:kept] if added or len(known) > kept else known
            total = old.changes if changes is None else (old.changes or 0) + changes
            line = (*work.recent_changes, f"{'/'.join(ops)} {path}")[-RECENT_KEPT:]  # recent()
            if merged is known and total == old.changes:
                # The same record and the same tuple: comparing the work with the last
                # checkpoint's then finds them identical without a field-by-field look.
                return _with_recent(work, line)
            files = (*files[:at], FileChange(path, merged, total), *files[at + 1 :])
            _placed(work.files_modified, files, None)  # the same paths in the same places
            return revise(work, files_modified=files, recent_changes=line)
        omitted = work.omitted
        if len(files) < limits.FILES_MODIFIED:
            files = (*files, FileChange(path, ops[:kept], changes))
            _placed(work.files_modified, files, path)
        else:  # counted, not stored: "... and 2,480 more file changes"
            omitted = limits.omitted(omitted, "files_modified", 1)
        # The values are records and strings built here: no converters to run again.
        return revise(
            work,
            files_modified=files,
            recent_changes=recent(work.recent_changes, f"{'/'.join(ops)} {path}"),
            omitted=omitted,
        )

    return change


#: WorkState's fields in order (read all in one call), and each one's slot setter.
_FIELDS = tuple(f.name for f in attrs.fields(WorkState))
_read = operator.attrgetter(*_FIELDS)
_PUT = tuple(getattr(WorkState, name).__set__ for name in _FIELDS)
_RECENT = _FIELDS.index("recent_changes")


def _with_recent(work: WorkState, recent_changes: tuple[str, ...]) -> WorkState:
    """``revise(work, recent_changes=...)`` (no converters run again) in three quarters of
    its time: what a change to a file already recorded as it is does on every event."""
    new: WorkState = object.__new__(WorkState)
    values = list(_read(work))
    values[_RECENT] = recent_changes
    for put, value in zip(_PUT, values, strict=True):
        put(new, value)
    return new


#: The files tuple looked up last and each path's place in it. The changes of a session
#: look up the tuple the previous change left, so a path is found without reading up to
#: FILES_MODIFIED records; any other tuple is indexed afresh (a list, so that threads
#: replace the pair in one step).
_places: list[tuple[tuple[FileChange, ...], dict[str, int]]] = [((), {})]


def _place(files: tuple[FileChange, ...], path: str) -> int | None:
    """Where ``path`` first is in ``files`` (None: not there)."""
    seen, places = _places[0]
    if seen is not files:
        places = {files[i].path: i for i in range(len(files) - 1, -1, -1)}
        _places[0] = (files, places)
    return places.get(path)


def _placed(
    before: tuple[FileChange, ...], after: tuple[FileChange, ...], added: str | None
) -> None:
    """``after`` is ``before`` with one record replaced in place, or ``added`` appended:
    its places follow from the ones known for ``before``, if those are the ones kept."""
    seen, places = _places[0]
    if seen is before:
        if added is not None:
            places = {**places, added: len(after) - 1}
        _places[0] = (after, places)


def discover(pattern: str | None, insight: str | None) -> Change:
    limits.optional_text("pattern", pattern, limits.DISCOVERY_CHARS)
    limits.optional_text("insight", insight, limits.DISCOVERY_CHARS)

    def change(work: WorkState) -> WorkState:
        d = work.discoveries
        patterns = d.patterns_found + (
            (pattern,) if pattern and pattern not in d.patterns_found else ()
        )
        insights = d.insights_gained + (
            (insight,) if insight and insight not in d.insights_gained else ()
        )
        patterns, omitted = _newest(work.omitted, "patterns_found", patterns, limits.PATTERNS)
        insights, omitted = _newest(omitted, "insights_gained", insights, limits.INSIGHTS)
        return attrs.evolve(work, discoveries=Discoveries(patterns, insights), omitted=omitted)

    return change


def _added(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return items if item in items else (*items, item)


def _removed(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return tuple(i for i in items if i != item)


def ask(question: str) -> Change:
    limits.text("open question", question, limits.QUESTION_CHARS)

    def change(work: WorkState) -> WorkState:
        if question not in work.open_questions:
            limits.room("open questions", len(work.open_questions), limits.OPEN_QUESTIONS)
        return attrs.evolve(work, open_questions=_added(work.open_questions, question))

    return change


def resolve(question: str) -> Change:
    return lambda w: attrs.evolve(w, open_questions=_removed(w.open_questions, question))


def block(blocker: str) -> Change:
    limits.text("blocker", blocker, limits.QUESTION_CHARS)

    def change(work: WorkState) -> WorkState:
        if blocker not in work.blockers:
            limits.room("blockers", len(work.blockers), limits.BLOCKERS)
        return attrs.evolve(work, blockers=_added(work.blockers, blocker))

    return change


def unblock(blocker: str) -> Change:
    return lambda w: attrs.evolve(w, blockers=_removed(w.blockers, blocker))


def error(error: str, recovery_steps: Iterable[str] | str, operation: str | None) -> ErrorContext:
    """An error record within the caps: tools write error text, so it is clipped, not
    refused (the recovery is recorded either way)."""
    steps = operations(recovery_steps)
    return ErrorContext(
        error=limits.clip(str(error), limits.ERROR_CHARS),
        recovery_steps=tuple(
            limits.clip(str(s), limits.RECOVERY_STEP_CHARS) for s in steps[: limits.RECOVERY_STEPS]
        ),
        operation=None if operation is None else limits.clip(operation, limits.ERROR_CHARS),
    )


def recover(item: ErrorContext) -> Change:
    def change(work: WorkState) -> WorkState:
        kept, omitted = _newest(work.omitted, "errors", (*work.errors, item), limits.ERRORS)
        return attrs.evolve(work, errors=kept, omitted=omitted)

    return change


def operations(value: Iterable[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def session_began(session_id: str) -> datetime | None:
    """When a session began, from its id ``session-{ts}`` (None when it is not one)."""
    try:
        return keys.parse_ts(session_id.removeprefix("session-"))
    except ValueError:
        return None


def carried(work: WorkState, since: datetime | None) -> WorkState:
    """What a resumed session carries of the work state it restores: the open work
    (open tasks, questions, blockers), the recent changes, and a window of the
    session that wrote it: its own completed tasks and decisions (at or after
    ``since``, that session's start), the newest :data:`limits.CARRIED_COMPLETED_TASKS`
    and :data:`limits.CARRIED_DECISIONS`. Everything older lives in the session
    records, the summaries and ``project_state``: a checkpoint's size does not grow
    with the number of sessions before it."""

    def own(at: datetime | None) -> bool:
        return since is None or (at is not None and at >= since)

    done = tuple(t for t in work.completed_tasks if own(t.completed_at))
    decisions = tuple(d for d in work.decisions if own(d.timestamp))
    return WorkState(
        active_tasks=work.active_tasks,
        completed_tasks=done[-limits.CARRIED_COMPLETED_TASKS :],
        open_questions=work.open_questions,
        blockers=work.blockers,
        decisions=decisions[-limits.CARRIED_DECISIONS :],
        recent_changes=work.recent_changes,
    )
