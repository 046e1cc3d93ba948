"""What trigger evaluators see and say.

An evaluator is a small pure object: ``evaluate(activity, session, now)``
returns a :class:`CheckpointCall` ("checkpoint now, under this key, for this
reason") or None. Evaluators do no I/O and read no clock of their own; the
machine's ``checkpoint_due`` guard consults them, in :data:`PRECEDENCE` order,
and the first call wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from lifecycle.records import CheckpointType, ErrorContext, Task, _strs
from lifecycle.spec import Event, SessionState


@attrs.frozen
class Operation:
    """An operation the agent is about to run (a shell command, an edit, a refactor)."""

    name: str = ""
    command: str | None = None
    paths: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    #: How many files the operation touches, when the caller knows more than ``paths``.
    files_count: int | None = None
    deletes: bool = False
    #: A caller's own classification: "architecture", "security", "deletion", ...
    kind: str | None = None

    @property
    def touched(self) -> int:
        return self.files_count if self.files_count is not None else len(self.paths)


@attrs.frozen
class Activity:
    """One event as the evaluators see it."""

    event: Event
    at: datetime
    task: Task | None = None
    operation: Operation | None = None
    error: ErrorContext | None = None


@attrs.frozen
class CheckpointCall:
    """An evaluator's verdict: write a checkpoint of ``type`` under ``key``."""

    type: CheckpointType
    trigger: str  # "30-minute-interval", "user-requested", "task-complete", ...
    key: str
    reason: str
    operation: str | None = None


class SessionView(Protocol):
    """What evaluators may read of a session (no methods, no I/O).

    Optional, read with ``getattr`` when present: ``tasks_completed_since_checkpoint``
    (int), the task completions since the last checkpoint including the one being
    evaluated; the task trigger's ``every_n_completions`` needs it.
    """

    @property
    def state(self) -> SessionState: ...

    @property
    def active_seconds(self) -> float:
        """Active work time since the last durable checkpoint (idle gaps excluded)."""

    @property
    def last_checkpoint_at(self) -> datetime | None:
        """When the last durable checkpoint of any kind was written; None before the first."""

    @property
    def last_auto_checkpoint_at(self) -> datetime | None:
        """When the time trigger last wrote a checkpoint (``checkpoints/auto-{ts}``).

        The time trigger never fires within one interval of it (lifecycle rule 8).
        """


class Evaluator(Protocol):
    name: str

    def evaluate(
        self, activity: Activity, session: SessionView, now: datetime
    ) -> CheckpointCall | None: ...
