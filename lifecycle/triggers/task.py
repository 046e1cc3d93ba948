"""The task trigger: checkpoint when a major task completes.

Every ``task_completed`` event is evaluated. A task whose priority is in
``force_priorities`` (default: ``high``) always gets a checkpoint; any other
task gets one only when ``every_n_completions`` is set and the session has
completed that many tasks since its last checkpoint.

The count is ``SessionFacts.tasks_completed_since_checkpoint``: completions
since the last checkpoint, *including* the one being evaluated (the session
counts the event before it asks, as it does for active time).
"""

from __future__ import annotations

from datetime import datetime

import attrs

from lifecycle.errors import InvalidSettings
from lifecycle.keys import CheckpointKind
from lifecycle.spec import Event
from lifecycle.triggers.base import Activity, CheckpointCall, SessionFacts


def _priorities(value: object) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, frozenset | set | tuple | list):
        raise InvalidSettings(
            f"force_priorities must be a set of priority names, got {value!r}; e.g. {{'high'}}"
        )
    return frozenset(str(v).lower() for v in value)


def _every_n(_: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidSettings(f"{attribute.name} must be None or a positive integer, got {value!r}")


@attrs.frozen
class TaskSettings:
    #: Completing a task with one of these priorities always checkpoints.
    force_priorities: frozenset[str] = attrs.field(
        default=frozenset({"high"}), converter=_priorities
    )
    #: Also checkpoint after this many completions (of any priority); None: never.
    every_n_completions: int | None = attrs.field(default=None, validator=_every_n)


@attrs.frozen
class TaskTrigger:
    """Checkpoint on high-priority task completion (and every n completions if set)."""

    settings: TaskSettings = TaskSettings()
    name = "task"
    events = frozenset({Event.TASK_COMPLETED})

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None:
        if activity.event is not Event.TASK_COMPLETED:
            return None
        task = activity.task
        task_id = task.id if task is not None else None
        label = f"task {task_id}" if task_id else "a task"
        if task is not None and task.priority.value in self.settings.force_priorities:
            reason = f"{label} with priority {task.priority.value} completed"
        else:
            n = self.settings.every_n_completions
            count = facts.tasks_completed_since_checkpoint
            if n is None or count < n:
                return None
            reason = f"{label} completed: {count} completions since the last checkpoint"
        return CheckpointCall.of(
            CheckpointKind.TASK,
            now,
            trigger="task-complete",
            reason=reason,
            key_name=task_id,
        )
