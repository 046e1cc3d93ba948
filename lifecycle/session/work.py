"""Pure work-state transforms: each event's change, as a function of the work state.

Nothing here reads a clock, a store or a session: the façade passes the moment
in, and the step applies the change only when the table's row says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import attrs

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
#: How many one-line "recent changes" a work state keeps.
RECENT_KEPT = 10


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
    """Add or update an open task."""

    def change(work: WorkState) -> WorkState:
        old = next((t for t in work.active_tasks if t.id == task_id), None)
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


def complete_task(task: Task) -> Change:
    def change(work: WorkState) -> WorkState:
        return attrs.evolve(
            work,
            active_tasks=tuple(t for t in work.active_tasks if t.id != task.id),
            completed_tasks=(*work.completed_tasks, task),
            recent_changes=recent(work.recent_changes, f"completed {task.id}"),
        )

    return change


def decide(item: Decision) -> Change:
    return lambda w: attrs.evolve(w, decisions=(*w.decisions, item))


def change_file(path: str, ops: tuple[str, ...], changes: int | None) -> Change:
    def change(work: WorkState) -> WorkState:
        files = work.files_modified
        for i, old in enumerate(files):
            if old.path == path:
                merged = old.operations + tuple(o for o in ops if o not in old.operations)
                total = old.changes if changes is None else (old.changes or 0) + changes
                if merged != old.operations or total != old.changes:
                    files = (*files[:i], FileChange(path, merged, total), *files[i + 1 :])
                # else the same record and the same tuple: comparing the work with the
                # last checkpoint's then finds them identical without a field-by-field look
                break
        else:
            files = (*files, FileChange(path, ops, changes))
        # The values are records and strings built here: no converters to run again.
        return revise(
            work,
            files_modified=files,
            recent_changes=recent(work.recent_changes, f"{'/'.join(ops)} {path}"),
        )

    return change


def discover(pattern: str | None, insight: str | None) -> Change:
    def change(work: WorkState) -> WorkState:
        d = work.discoveries
        patterns = d.patterns_found + (
            (pattern,) if pattern and pattern not in d.patterns_found else ()
        )
        insights = d.insights_gained + (
            (insight,) if insight and insight not in d.insights_gained else ()
        )
        return attrs.evolve(work, discoveries=Discoveries(patterns, insights))

    return change


def _added(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return items if item in items else (*items, item)


def _removed(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return tuple(i for i in items if i != item)


def ask(question: str) -> Change:
    return lambda w: attrs.evolve(w, open_questions=_added(w.open_questions, question))


def resolve(question: str) -> Change:
    return lambda w: attrs.evolve(w, open_questions=_removed(w.open_questions, question))


def block(blocker: str) -> Change:
    return lambda w: attrs.evolve(w, blockers=_added(w.blockers, blocker))


def unblock(blocker: str) -> Change:
    return lambda w: attrs.evolve(w, blockers=_removed(w.blockers, blocker))


def recover(item: ErrorContext) -> Change:
    return lambda w: attrs.evolve(w, errors=(*w.errors, item))


def operations(value: Iterable[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
