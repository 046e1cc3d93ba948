"""What trigger evaluators see and say.

An evaluator is a small pure object: ``evaluate(activity, facts, now)`` reads
the event (:class:`Activity`) and a frozen snapshot of the session
(:class:`SessionFacts`) and returns a :class:`CheckpointCall` ("checkpoint
now, under this key, for this reason, of this kind") or None. Evaluators do no
I/O, read no clock of their own and never see the session manager; the
machine's ``checkpoint_due`` guard consults them, in :data:`PRECEDENCE` order,
and the first call wins.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Protocol

import attrs

from lifecycle.errors import InvalidRecord
from lifecycle.keys import CheckpointKind, checkpoint_key
from lifecycle.records import CheckpointType, ErrorContext, Task, _strs
from lifecycle.spec import INITIAL, Event, SessionState


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


#: The checkpoint record's ``type`` for each kind of call (task and time are both automatic).
CHECKPOINT_TYPE: dict[CheckpointKind, CheckpointType] = {
    CheckpointKind.MANUAL: CheckpointType.MANUAL,
    CheckpointKind.AUTO: CheckpointType.AUTOMATIC,
    CheckpointKind.TASK: CheckpointType.AUTOMATIC,
    CheckpointKind.RISK: CheckpointType.RISK,
    CheckpointKind.RECOVERY: CheckpointType.RECOVERY,
}

#: The kind a call gets when its maker names only the type (the time trigger's for automatic).
_DEFAULT_KIND: dict[CheckpointType, CheckpointKind] = {
    CheckpointType.MANUAL: CheckpointKind.MANUAL,
    CheckpointType.AUTOMATIC: CheckpointKind.AUTO,
    CheckpointType.RISK: CheckpointKind.RISK,
    CheckpointType.RECOVERY: CheckpointKind.RECOVERY,
}


def _check_kind(call: CheckpointCall, _: attrs.Attribute[CheckpointKind], kind: object) -> None:
    if not isinstance(kind, CheckpointKind):
        raise InvalidRecord(f"CheckpointCall.kind must be a CheckpointKind, got {kind!r}")
    if CHECKPOINT_TYPE[kind] != call.type:
        raise InvalidRecord(
            f"a {kind.value} checkpoint call has type {CHECKPOINT_TYPE[kind].value}, "
            f"not {call.type!r}"
        )


@attrs.frozen
class CheckpointCall:
    """An evaluator's verdict: write a checkpoint of ``type`` under ``key``.

    ``kind`` says which rule asked. Evaluators build calls with :meth:`of`, which takes
    the type from the kind and builds the key from the kind, the moment and
    ``key_name`` (the task id or the operation's slug), so that :meth:`at` can build
    the key again for another moment without reading the old key. A call built from
    ``type`` alone gets the one kind of that type (the time trigger's ``AUTO`` for
    ``AUTOMATIC``) and no ``key_name``."""

    type: CheckpointType
    trigger: str  # "30-minute-interval", "user-requested", "task-complete", "risk:deletion", ...
    key: str
    reason: str
    operation: str | None = None
    kind: CheckpointKind = attrs.field(kw_only=True, validator=_check_kind)
    #: The task id (task calls) or operation slug (risk calls) that ``key`` names.
    key_name: str | None = attrs.field(default=None, kw_only=True)

    @kind.default
    def _kind_of_type(self) -> CheckpointKind:
        kind = _DEFAULT_KIND.get(self.type)
        if kind is None:
            raise InvalidRecord(f"CheckpointCall.type must be a CheckpointType, got {self.type!r}")
        return kind

    @classmethod
    def of(
        cls,
        kind: CheckpointKind,
        moment: datetime,
        *,
        trigger: str,
        reason: str,
        key_name: str | None = None,
        operation: str | None = None,
    ) -> CheckpointCall:
        """A call of ``kind`` at ``moment``: the type follows from the kind, and the key
        from the kind, the moment and ``key_name`` (:func:`~lifecycle.keys.checkpoint_key`)."""
        if not isinstance(kind, CheckpointKind):
            raise InvalidRecord(f"CheckpointCall.kind must be a CheckpointKind, got {kind!r}")
        key = checkpoint_key(kind, moment, task_id=key_name, operation=key_name)
        return cls(
            CHECKPOINT_TYPE[kind], trigger, key, reason, operation, kind=kind, key_name=key_name
        )

    def at(self, moment: datetime) -> CheckpointCall:
        """This call under its kind's key for ``moment`` (say, a timestamp after another
        writer's checkpoint); built from ``kind`` and ``key_name``, never from ``key``."""
        key = checkpoint_key(self.kind, moment, task_id=self.key_name, operation=self.key_name)
        return attrs.evolve(self, key=key)


def _fail(name: str, value: object, expected: str) -> None:
    raise InvalidRecord(f"SessionFacts.{name} must be {expected}, got {value!r}")


def _check_state(_: object, attribute: attrs.Attribute[SessionState], value: object) -> None:
    if not isinstance(value, SessionState):
        _fail(attribute.name, value, "a SessionState")


def _check_seconds(_: object, attribute: attrs.Attribute[float], value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        _fail(attribute.name, value, "a finite number of seconds >= 0")


def _check_moment(_: object, attribute: attrs.Attribute[datetime | None], value: object) -> None:
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        _fail(attribute.name, value, "None or a timezone-aware datetime")


def _check_count(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(attribute.name, value, "an integer >= 0")


def _check_flag(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        _fail(attribute.name, value, "a bool")


@attrs.frozen(kw_only=True)
class SessionFacts:
    """What evaluators know of a session at one event: a frozen snapshot, taken by the
    session after it has counted the event (its active time, its task completion) and
    before it asks the evaluators. No methods, no I/O, no manager.

    The defaults describe a session just created (``INITIAL``: nothing done, nothing
    saved); a session gives every field. A bad value raises
    :class:`~lifecycle.errors.InvalidRecord`.
    """

    state: SessionState = attrs.field(default=INITIAL, validator=_check_state)
    #: Active work time since the last durable checkpoint (idle gaps excluded).
    active_seconds: float = attrs.field(default=0.0, validator=_check_seconds)
    #: When the last durable checkpoint of any kind was written; None before the first.
    last_checkpoint_at: datetime | None = attrs.field(default=None, validator=_check_moment)
    #: When the time trigger last wrote a checkpoint (``checkpoints/auto-{ts}``); the time
    #: trigger never fires within one interval of it (lifecycle rule 8).
    last_auto_checkpoint_at: datetime | None = attrs.field(default=None, validator=_check_moment)
    #: Task completions since the last checkpoint, including the one being evaluated
    #: (the task trigger's ``every_n_completions``).
    tasks_completed_since_checkpoint: int = attrs.field(default=0, validator=_check_count)
    #: The work state differs from the last durable checkpoint (what ACTIVE means).
    has_unsaved: bool = attrs.field(default=False, validator=_check_flag)


#: The old name of :class:`SessionFacts` (a Protocol the session manager satisfied).
SessionView = SessionFacts


class Evaluator(Protocol):
    """``evaluate`` says whether a checkpoint is due at one event. An evaluator may also
    have ``events``: the only events it can ever call for (a frozenset of
    :class:`~lifecycle.spec.Event`); a session then asks it about no other. Without
    ``events`` it is asked at every event."""

    name: str

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None: ...
