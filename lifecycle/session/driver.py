"""The driver: one session's live state and the step that moves it.

:class:`Driver` holds what the façade would otherwise keep in two dozen
attributes: the live record (``session/context``'s content), the state, the last
durable checkpoint and what it holds, the restored checkpoint, the warnings and
the clock. Each event goes through it the same way: :meth:`Driver.begin` checks
the event is legal, :meth:`Driver.step` gathers its facts, :meth:`Driver.dispatch`
fires it on the transitions machine and adopts what the row's effect built. The
façade (:mod:`lifecycle.session.manager`) turns arguments into an event and the
driver's result into the public result; it holds the session's lock around both.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from lifecycle.errors import IllegalTransition, InvalidRecord, StoreError
from lifecycle.logs import get_logger
from lifecycle.machine import STATE_NAMES, fire
from lifecycle.records import Checkpoint, LiveContext, WorkState, assemble, revise
from lifecycle.session.checkpoints import Checkpoints, Latest
from lifecycle.session.effects import Begin, Env, EventEffects
from lifecycle.session.learnings import Learnings
from lifecycle.session.step import NO_EDIT, Change, Edit, Evaluate, Occurred, Snapshot, Step
from lifecycle.spec import ACTIVE_TIME_EVENTS, TABLE, Event, Row
from lifecycle.stores import ProjectStore
from lifecycle.triggers import evaluate_all
from lifecycle.triggers.base import Activity, CheckpointCall, Evaluator, SessionFacts
from lifecycle.triggers.time import TimeSettings, TimeTrigger, counted

if TYPE_CHECKING:
    from collections.abc import Callable

    from lifecycle.merge import Merged
    from lifecycle.session import journal as journaling

    Clock = Callable[[], datetime]

log = get_logger(__name__)
#: Per event: the evaluators it asks, and the active seconds below which none calls.
_Maps = tuple[dict[Event, tuple[Evaluator, ...]], dict[Event, float | None]]
_std = logging.getLogger(__name__)  # the standard logger ``log`` writes to

#: Warnings a session keeps (the newest), in memory and in ``session/context``.
WARNINGS_KEPT = 50

#: What a session holds before its load: nothing (a Snapshot is immutable, so shared).
_EMPTY = Snapshot("", {}, {}, WorkState())


class Driver:
    """One session's live state, moved only by the events :meth:`dispatch` fires."""

    def __init__(
        self,
        store: ProjectStore,
        env: Env,
        clock: Clock,
        time_settings: TimeSettings,
        evaluators: Sequence[Evaluator],
    ) -> None:
        self.store = store
        self.env = env
        self.checkpoints: Checkpoints = env.checkpoints
        self.learnings: Learnings = env.learnings
        self.clock = clock
        self.time_settings = time_settings
        self.evaluators = tuple(evaluators)
        # The evaluators each event asks, in order, and per event the active seconds below
        # which none of those can call for a checkpoint (None: no such bound known): such
        # an event builds no facts for them. Shared by the managers of one evaluator tuple.
        self._asked, self._quiet = _asked(self.evaluators)
        # The session's whole live state: one frozen record (``session/context``) and the
        # field changes of the events since, not folded into it (a pair replaced whole,
        # its dict never changed once held: a reader without the lock sees one pair).
        self._held: tuple[LiveContext | None, dict[str, Any]] = (None, {})
        self._folded: tuple[tuple[LiveContext | None, dict[str, Any]], LiveContext] | None
        self._folded = None  # the last pair read whole, and the record it makes
        self.state = TABLE.initial
        self.saved: Checkpoint | None = None  # the last durable checkpoint
        self.saved_at: Snapshot | None = None  # what it holds, for has_unsaved
        self.last_after: Snapshot | None = None  # the state the last event computed
        self.restored: Checkpoint | None = None  # the checkpoint this session restored
        self.floor: datetime | None = None  # the clock floor before a session exists
        self.warnings: list[str] = []
        self.last_merge: Merged | None = None
        #: The journal (``journal=True``, or made by the first ``apply``).
        self.journal: journaling.Journal | None = None
        self.pinned: datetime | None = None  # the moment the event being applied runs at
        #: The version of ``session/context`` attach read (0: none), for save_context's
        #: compare-and-swap; None when unknown (no attach, or an unreadable record).
        self.context_version: int | None = None

    @property
    def live(self) -> LiveContext | None:
        """The session's live record, with every event's changes."""
        held = self._held
        live, changes = held
        if not changes:
            return live
        folded = self._folded
        if folded is not None and folded[0] is held:
            return folded[1]
        assert live is not None
        record = revise(live, **changes)
        self._folded = (held, record)  # right for this pair whoever stores it, and when
        return record

    @live.setter
    def live(self, value: LiveContext | None) -> None:
        self._held = (value, {})

    # -- facts -------------------------------------------------------------------------

    def now(self, *, peek: bool = False) -> datetime:
        """The clock (the pinned moment while a message is applied), made strictly
        increasing so ids and keys never collide."""
        now = self.clock() if self.pinned is None else self.pinned
        if now.tzinfo is None:
            raise InvalidRecord("the clock must return an aware datetime (UTC)")
        now = now.astimezone(UTC)
        live, changes = self._held
        last = self.floor if live is None else changes.get("last_moment", live.last_moment)
        if last is not None and now <= last:
            now = last + timedelta(microseconds=1)
        if not peek:
            if live is None:
                self.floor = now
            else:
                self._held = (live, {**changes, "last_moment": now})
        return now

    def legal(self, event: Event) -> None:
        """Raise IllegalTransition before anything is read, evaluated or written."""
        legal = TABLE.legal_events(self.state)
        if event not in legal:
            raise IllegalTransition(self.state.value, event.value, (e.value for e in legal))

    def snapshot(self) -> Snapshot:
        """What the session holds now (phase, progress, context, work)."""
        live, changes = self._held  # a field changed since: in ``changes``
        if live is None:
            return Snapshot("", {}, {}, WorkState())
        phase, progress = changes.get("phase", live.phase), changes.get("progress", live.progress)
        context, work = changes.get("context", live.context), changes.get("work", live.work)
        last = self.last_after  # the state the last event left, if the live record holds it
        if (
            last is not None
            and last.work is work
            and last.phase is phase
            and last.progress is progress
            and last.context is context
        ):
            return last
        return Snapshot(phase, progress, context, work)

    def unsaved(self) -> bool:
        return self.saved_at != self.snapshot()

    # -- the step ----------------------------------------------------------------------

    def begin(self, event: Event, *, success: bool | None = None) -> EventEffects:
        """Check the event is legal, retry queued learnings, and start its effects."""
        if event not in TABLE.legal_events(self.state):
            self.legal(event)  # raises, naming the legal events
        if self.learnings.pending:
            self.learnings.retry(self.learned)
        return self.effects(success=success)

    def effects(self, *, success: bool | None = None) -> EventEffects:
        return EventEffects(
            self.env, *self._held, self.saved, self.restored,
            success=success, floor=self.floor,
        )  # fmt: skip

    def step(
        self,
        activity: Activity | Occurred,
        edit: Edit,
        effects: EventEffects | None = None,
        *,
        call: CheckpointCall | None = None,
    ) -> Step:
        """The event's facts. Active time first counts the gap up to this event (the time
        trigger reads it), in the event's effects: the live record changes only if the
        event does."""
        if isinstance(activity, Activity):
            event, at = activity.event, activity.at
        else:
            event, at, _ = activity
        live, changes = self._held  # a field changed since: in ``changes``
        active, last_auto, tasks = 0.0, None, 0
        if live is not None:
            active = changes.get("active_seconds", live.active_seconds)
            last_auto = changes.get("last_auto_checkpoint_at", live.last_auto_checkpoint_at)
            tasks = changes.get("tasks_since_checkpoint", live.tasks_since_checkpoint)
            if event in ACTIVE_TIME_EVENTS:
                last_activity = changes.get("last_activity_at", live.last_activity_at)
                active, last_activity = counted(active, last_activity, at, self.time_settings)
                if effects is not None:
                    effects.count(active, last_activity)
        if event is Event.TASK_COMPLETED:
            tasks += 1  # the completion being evaluated counts
        saved = self.saved
        quiet = self._quiet[event]
        if call is not None or (quiet is not None and active < quiet):
            evaluate = None  # a manual call, or no evaluator can call for one now
        else:
            evaluate = self._evaluate(event, active, last_auto, tasks)
        return Step(
            activity,
            self.snapshot(),
            self.saved_at,
            effects if effects is not None else self.effects(),
            edit=edit,
            evaluate=evaluate,
            call=call,
            saved_is_restored=saved is not None and saved is self.restored,
        )

    def _evaluate(
        self, event: Event, active: float, last_auto: datetime | None, tasks: int
    ) -> Evaluate:
        """The evaluators' question for this event, with the session's facts now."""
        state, evaluators = self.state, self._asked[event]
        last_at = None if self.saved is None else self.saved.timestamp

        def evaluate(a: Activity, unsaved: bool) -> CheckpointCall | None:
            # The facts come from the live record, already checked: no validators again.
            # In SessionFacts' field order: state, active seconds, the last checkpoint's
            # and the last automatic one's moments, completions since, unsaved work.
            facts = assemble(SessionFacts, state, float(active), last_at, last_auto, tasks, unsaved)
            return evaluate_all(evaluators, a, facts, a.at)

        return evaluate

    def work(
        self, event: Event, change: Change | None, *, edit: Edit | None = None, **activity: Any
    ) -> tuple[Row, EventEffects]:
        """A work event: ``change`` applied to the work (and ``edit``'s scalars)."""
        # begin() and effects(), one call less each on the commonest events.
        if event not in TABLE.legal[self.state]:
            self.legal(event)  # raises, naming the legal events
        if self.learnings.pending:
            self.learnings.retry(self.learned)
        effects = EventEffects(
            self.env, *self._held, self.saved, self.restored, floor=self.floor
        )  # fmt: skip
        if edit is None:
            edit = NO_EDIT if change is None else Edit.of(change)
        else:
            edit = edit._replace(change=change)
        # The Activity is built only if an evaluator is asked.
        step = self.step((event, self.now(peek=True), activity), edit, effects)
        return self.dispatch(event, step, effects), effects

    def load(
        self, begin: Begin, latest: Latest | None, warnings: Sequence[str]
    ) -> tuple[str, tuple[str, ...]]:
        """The load event: restore ``latest.checkpoint`` (read before dispatch, resumed) or
        start fresh (None: no restore asked, so ``checkpoints/latest`` is read now for the
        key it names). Returns the new session's id and the load's warnings."""
        if latest is None:
            key = self.checkpoints.latest_key()
            restore = None
        else:
            key, restore = latest.key, latest.checkpoint
        if key is not None:
            begin = Begin(begin.command, begin.change_id, begin.latest_version, key)
        effects = EventEffects(self.env, None, {}, None, None, begin=begin, floor=self.floor)
        step = Step(
            Activity(Event.LOAD, self.now(peek=True)), _EMPTY, None, effects, restore=restore
        )
        step.warnings.extend(warnings)
        self.dispatch(Event.LOAD, step, effects)
        base = self._held[0]
        assert base is not None
        return base.session.id, tuple(step.warnings)

    def dispatch(self, event: Event, step: Step, effects: EventEffects) -> Row:
        """Fire the event; adopt what its effects built. An event that raises changes
        nothing, not even the clock floor or the active time."""
        source = self.state
        logs_on = _std.isEnabledFor(logging.INFO)  # log.enabled(), one call less
        started = time.perf_counter() if logs_on else 0.0
        row, state = fire(source, event, step)
        self._held = effects.commit(STATE_NAMES[state], step.at)
        self.last_after = step.known_after
        self.state = state
        if effects.saved is not self.saved:
            self.saved_at = None if effects.saved is None else Snapshot.of(effects.saved)
        self.saved, self.restored = effects.saved, effects.restored
        if effects.merged is not None:
            self.last_merge = effects.merged
        if step.warnings:
            self.warn(*step.warnings)
        if logs_on:
            written = effects.written
            live = self.live
            log.info(
                "transition",
                session_id=None if live is None else live.session.id,
                source=source.value,
                dest=state.value,
                trigger=event.value,
                reason=(written.trigger if written else row.note),
                checkpoint_id=written.checkpoint_id if written else None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
        return row

    def would_checkpoint(self) -> bool:
        """Would a tick now write a checkpoint? The table's answer, nothing changed."""
        if Event.TICK not in TABLE.legal_events(self.state):
            return False
        step = self.step(Activity(Event.TICK, self.now(peek=True)), Edit())
        row = TABLE.resolve(Event.TICK, self.state, _Guards(step))
        return row is not None and row.writes

    # -- small state -------------------------------------------------------------------

    def warn(self, *warnings: str) -> None:
        self.warnings.extend(warnings)
        del self.warnings[:-WARNINGS_KEPT]

    def learned(self, key: str) -> None:
        """Note in the session record that the learning at ``key`` was written."""
        live = self.live
        if live is not None and key not in live.session.learnings:
            session = attrs.evolve(live.session, learnings=(*live.session.learnings, key))
            self.live = attrs.evolve(live, session=session)

    def read_restore(self, checkpoint_id: str | None, warnings: list[str]) -> Latest | None:
        """The checkpoint a load restores, the pointer's version and the key it names,
        read before dispatch (the guard only asks whether one was found); None when the
        pointer was not read (a restore by id, or a failed read: :meth:`load` reads it).
        A store that cannot be read starts a fresh session, with a warning ("Checkpoint
        read failure")."""
        try:
            # Resumed (its open work and a window of its session): what the session holds.
            if checkpoint_id is not None:
                cp = self.checkpoints.by_id(checkpoint_id, resume=True)
                return Latest(cp, None, self.checkpoints.latest_key())
            return self.checkpoints.latest_valid(warnings, resume=True)
        except (StoreError, OSError) as exc:
            log.warning("restore.failed", error=str(exc))
            warnings.append(f"could not read checkpoints ({exc}); starting a fresh session")
            return None


#: The last few evaluator tuples' maps (by identity, the tuple held): the managers that
#: share the default evaluators share them.
_ASKED: dict[int, tuple[tuple[Evaluator, ...], _Maps]] = {}


def _asked(evaluators: tuple[Evaluator, ...]) -> _Maps:
    """The evaluators each event asks, in order (those that can call for it), and each
    event's quiet bound (:func:`_quiet`); both read only."""
    hit = _ASKED.get(id(evaluators))
    if hit is not None and hit[0] is evaluators:
        return hit[1]
    asked = {
        event: tuple(e for e in evaluators if event in getattr(e, "events", (event,)))
        for event in Event
    }
    maps = (asked, {event: _quiet(each) for event, each in asked.items()})
    if len(_ASKED) >= 8:
        _ASKED.clear()
    _ASKED[id(evaluators)] = (evaluators, maps)
    return maps


def _quiet(asked: tuple[Evaluator, ...]) -> float | None:
    """The active seconds below which none of ``asked`` calls for a checkpoint: none asked,
    never; the time trigger alone (not a subclass: its ``evaluate`` is known), below its
    interval; else None (each is asked)."""
    if not asked:
        return math.inf
    if len(asked) == 1 and type(asked[0]) is TimeTrigger:
        return asked[0].settings.interval.total_seconds()
    return None


class _Guards(dict):  # type: ignore[type-arg]
    """A step's guard values as a mapping, for ``Spec.resolve`` (asked lazily)."""

    def __init__(self, step: Step) -> None:
        super().__init__()
        self._step = step

    def __missing__(self, guard: Any) -> bool:
        value: bool = self._step.guard(guard)
        return value
