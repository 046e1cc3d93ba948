"""One event, decided then done.

The façade builds a :class:`Step` for each event: the facts the table's guards
read (the state before and after the event's change, the last durable
checkpoint, the restore candidate read before dispatch, and the trigger
evaluators' call on a frozen snapshot of the session's facts). The transitions
machine asks the step for guard values (pure: nothing here does I/O) and hands
it the row that fired; the step then runs that row's effect through its
:class:`Effects` collaborator and returns what the event produced.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from lifecycle.errors import LifecycleError
from lifecycle.machine import EffectFailed
from lifecycle.records import Checkpoint, CheckpointType, JSONValue, WorkState
from lifecycle.spec import Effect, Event, Guard, Row
from lifecycle.triggers.base import Activity, CheckpointCall

Change = Callable[[WorkState], WorkState]


class Snapshot(NamedTuple):
    """The session state a durable checkpoint holds (compared to decide unsaved work).

    A named tuple, not an attrs record: a work event builds one (and an ``Edit``), and a
    frozen attrs record costs more to build."""

    phase: str
    progress: dict[str, JSONValue]
    context: dict[str, JSONValue]
    work: WorkState

    @classmethod
    def of(cls, cp: Checkpoint) -> Snapshot:
        return cls(cp.phase, cp.progress, cp.context, cp.state)

    def differs(self, other: Snapshot) -> bool:
        """``self != other``, with a field both hold the same value of taken as equal
        without comparing it (an event changes one field, if any; the rest are shared)."""
        # The recent changes first (a work event adds one: two different works differ
        # there, most often), and ``not ==``: attrs' ``!=`` is a second call to its ``==``.
        work, theirs = self.work, other.work
        return (
            (
                work is not theirs
                and (
                    work.recent_changes != theirs.recent_changes or not work == theirs  # noqa: SIM201
                )
            )
            or self.phase != other.phase
            or (self.progress is not other.progress and self.progress != other.progress)
            or (self.context is not other.context and self.context != other.context)
        )


class Edit(NamedTuple):
    """What an event changes: the work (a pure function) and the scalars it sets."""

    change: Change | None = None
    phase: str | None = None
    progress: dict[str, JSONValue] | None = None
    context: dict[str, JSONValue] | None = None
    label: str | None = None  # the id a caller gave a manual checkpoint

    def apply(self, before: Snapshot) -> Snapshot:
        if self is NO_EDIT:
            return before
        return _tuple(
            Snapshot,
            (
                before.phase if self.phase is None else self.phase,
                before.progress if self.progress is None else self.progress,
                before.context if self.context is None else self.context,
                before.work if self.change is None else self.change(before.work),
            ),
        )

    @classmethod
    def of(cls, change: Change) -> Edit:
        """``Edit(change)`` (a work event's), without the named tuple's Python ``__new__``."""
        return _tuple(cls, (change, None, None, None, None))


#: A named tuple of its values in field order, built by ``tuple`` itself: the class's own
#: ``__new__`` (Python) costs more than the tuple.
_tuple = tuple.__new__


#: The edit of an event that changes nothing: its state after is the state before.
NO_EDIT = Edit()


class Effects(Protocol):
    """The persistence side: what the step calls to do a row's effect."""

    def restore(self, step: Step, checkpoint: Checkpoint) -> None: ...

    def start_fresh(self, step: Step) -> None: ...

    def record(self, step: Step) -> None: ...

    def write_checkpoint(self, step: Step) -> None:
        """Write ``step.after`` for ``step.call``; raise EffectFailed after the retry."""

    def finalize(self, step: Step, *, checkpoint: bool) -> None: ...


#: An event not yet made an :class:`Activity`: the event, its moment and the activity's
#: other fields (a task, an operation, an error).
Occurred = tuple[Event, datetime, dict[str, Any]]

#: The trigger evaluators for this event: the activity, and whether work is unsaved after it.
Evaluate = Callable[[Activity, bool], CheckpointCall | None]


class Step:
    """The facts of one event (decide) and the effect of the row that fired (do)."""

    __slots__ = (
        "_activity",
        "_after",
        "_fields",
        "_outcome",
        "at",
        "before",
        "call",
        "edit",
        "effects",
        "evaluate",
        "event",
        "failure",
        "restore",
        "saved",
        "saved_is_restored",
        "warnings",
        "write_failed",
    )

    def __init__(
        self,
        activity: Activity | Occurred,
        before: Snapshot,
        saved: Snapshot | None,
        effects: Effects,
        *,
        edit: Edit = NO_EDIT,
        evaluate: Evaluate | None = None,
        call: CheckpointCall | None = None,
        restore: Checkpoint | None = None,
        saved_is_restored: bool = False,
    ) -> None:
        self.at: datetime
        self.event: Event
        if isinstance(activity, Activity):
            self._activity: Activity | None = activity
            self.event, self.at = activity.event, activity.at
        else:  # built when an evaluator asks (most events ask none)
            self._activity = None
            self.event, self.at, self._fields = activity
        self.before = before
        self.saved = saved
        self.effects = effects
        self.edit = edit
        self.evaluate = evaluate
        self.call = call  # a manual call (save, complete); else the evaluators' call
        self.restore = restore
        self.saved_is_restored = saved_is_restored
        self.write_failed = False
        self.failure: EffectFailed | None = None
        self.warnings: list[str] = []
        self._after: Snapshot | None = None
        self._outcome: dict[Guard, bool] = {}

    @property
    def activity(self) -> Activity:
        """The event as the evaluators see it."""
        if self._activity is None:
            self._activity = Activity(self.event, self.at, **self._fields)
        return self._activity

    @property
    def after(self) -> Snapshot:
        """The session state once the event's change is applied (computed once)."""
        if self._after is None:
            self._after = self.edit.apply(self.before)
        return self._after

    @property
    def known_after(self) -> Snapshot | None:
        """:attr:`after` if this event computed it (a guard or an effect asked), else None."""
        return self._after

    def set_after(self, after: Snapshot) -> None:
        """Replace the state to write (a merge with another writer's checkpoint)."""
        self._after = after

    # decide -------------------------------------------------------------------------------

    def triggered(self) -> CheckpointCall | None:
        """The call that makes a checkpoint due: a manual one, else the evaluators'."""
        if self.call is None and self.evaluate is not None:
            self.call = self.evaluate(self.activity, self.guard(Guard.HAS_UNSAVED))
            self.evaluate = None  # asked once per event
        return self.call

    def guard(self, guard: Guard) -> bool:
        """A guard's value for this event; each is computed once (the machine may ask again)."""
        if guard is Guard.WRITE_FAILED:
            return self.write_failed
        outcome = self._outcome
        value = outcome.get(guard)
        if value is not None:
            return value
        # The guards of work events first: every one of them asks these two.
        if guard is Guard.HAS_UNSAVED:
            saved = self.saved
            if saved is None:
                value = True
            else:
                after = self._after
                if after is None:  # :attr:`after`, one call less
                    after = self._after = self.edit.apply(self.before)
                value = saved.differs(after)
        elif guard is Guard.CHECKPOINT_DUE:
            # No evaluators to ask (none can call, or a manual call): the call is known.
            value = (self.call if self.evaluate is None else self.triggered()) is not None
        elif guard is Guard.RESTORE_AVAILABLE:
            value = self.restore is not None
        elif guard is Guard.SAVED_IS_RESTORED:
            value = self.saved_is_restored
        elif guard is Guard.RISK_DUE:
            call = self.triggered()
            value = call is not None and call.type is CheckpointType.RISK
        else:  # a Guard added without a fact
            raise LifecycleError(f"no fact for guard {guard}")
        outcome[guard] = value
        return value

    # do -----------------------------------------------------------------------------------

    def do(self, row: Row) -> None:
        """Run the effect of the row that fired."""
        effect = row.effect
        if effect is None:
            return
        if effect is Effect.RESTORE:
            assert self.restore is not None
            self.effects.restore(self, self.restore)
        elif effect is Effect.START_FRESH:
            self.effects.start_fresh(self)
        elif effect is Effect.RECORD_WORK:
            self.effects.record(self)
        elif effect is Effect.WRITE_CHECKPOINT:
            self.effects.write_checkpoint(self)
        elif effect is Effect.FINALIZE:
            self.effects.finalize(self, checkpoint=False)
        elif effect is Effect.CHECKPOINT_AND_FINALIZE:
            self.effects.finalize(self, checkpoint=True)
        else:  # an Effect added without a handler
            raise LifecycleError(f"no handler for effect {effect}")
