"""The transition table: the one place that decides which transitions are legal.

Everything that affects the state machine lives here, as data (after h11's
``_state.py``). The machine (:mod:`lifecycle.machine`), the diagrams, the model
checker and the docs all read :data:`TABLE`; nothing else writes a state pair.
The module knows nothing about who drives it: guards and effects are names,
and :mod:`lifecycle.machine` binds them to the session's code.

The table is validated when this module is imported (:func:`validate`): an
unreachable state, a trap state, a final state with exits, or two rows that
could both fire for one event under the same guard outcome raise
:class:`SpecError`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from enum import StrEnum

import attrs

from lifecycle.errors import LifecycleError


class SessionState(StrEnum):
    """The five states of a work session (SuperClaude's Session Lifecycle Pattern)."""

    INITIALIZING = "INITIALIZING"  # created; context not yet loaded
    ACTIVE = "ACTIVE"  # working; some work is not yet durable
    CHECKPOINTED = "CHECKPOINTED"  # the durable checkpoint equals the session's state
    RESUMED = "RESUMED"  # state was just restored from a checkpoint, unchanged since
    COMPLETED = "COMPLETED"  # final: summary written, nothing more happens

    def __str__(self) -> str:
        return self.value


class Event(StrEnum):
    """What can happen to a session, named for what happened."""

    LOAD = "load"  # session start (/sc:load)
    TASK_COMPLETED = "task_completed"  # a task was marked complete
    TICK = "tick"  # activity: the agent is working (drives the time trigger)
    BEFORE_OPERATION = "before_operation"  # an operation is about to run (risk trigger)
    ERROR_RECOVERED = "error_recovered"  # the agent recovered from an error
    RECORD = "record"  # a decision, file change, question, blocker, discovery...
    SAVE = "save"  # manual checkpoint (/sc:save --checkpoint)
    COMPLETE = "complete"  # session end

    def __str__(self) -> str:
        return self.value


class Guard(StrEnum):
    """Named facts about one event; the step computes each before the machine asks."""

    RESTORE_AVAILABLE = "restore_available"  # restore asked and a valid checkpoint exists
    CHECKPOINT_DUE = "checkpoint_due"  # a trigger evaluator calls for a checkpoint
    RISK_DUE = "risk_due"  # the risk trigger calls for one: written even with nothing unsaved
    HAS_UNSAVED = "has_unsaved"  # after the event's change, the state differs from the last
    #                              durable checkpoint (always true before the first one)
    SAVED_IS_RESTORED = "saved_is_restored"  # the last durable checkpoint is the restored one
    WRITE_FAILED = "write_failed"  # the checkpoint write failed twice (retried once)

    def __str__(self) -> str:
        return self.value


class Effect(StrEnum):
    """Named effects; run before the state changes, so a failed effect changes nothing."""

    RESTORE = "restore"  # load the latest valid checkpoint into the session
    START_FRESH = "start_fresh"  # begin a new session with empty work state
    RECORD_WORK = "record_work"  # apply the event's change to the work state
    WRITE_CHECKPOINT = "write_checkpoint"  # apply the change, then write it durably
    FINALIZE = "finalize"  # session record, summary, consolidation, cleanup
    CHECKPOINT_AND_FINALIZE = "checkpoint_and_finalize"  # a final checkpoint, then finalize

    def __str__(self) -> str:
        return self.value


#: The effects that write a durable checkpoint (and so may fail: see ``WRITE_FAILED``).
WRITING_EFFECTS: frozenset[Effect] = frozenset(
    {Effect.WRITE_CHECKPOINT, Effect.CHECKPOINT_AND_FINALIZE}
)


@attrs.frozen(cache_hash=True)
class Row:
    """One transition: ``event`` from ``source`` to ``dest`` when every guard has its value.

    ``dest`` None is an internal transition: the state does not change and no
    effect runs (``effect`` is None too).
    """

    event: Event
    source: SessionState
    dest: SessionState | None
    when: tuple[tuple[Guard, bool], ...] = ()
    effect: Effect | None = None
    note: str = ""
    # Computed once: every event's Outcome carries its row's label.
    _label: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        parts = [self.event.value]
        if self.when:
            conds = ", ".join(("" if v else "!") + g.value for g, v in self.when)
            parts.append(f"[{conds}]")
        if self.effect is not None:
            parts.append(f"/ {self.effect.value}")
        object.__setattr__(self, "_label", " ".join(parts))

    @property
    def target(self) -> SessionState:
        """The state after this row fires."""
        return self.source if self.dest is None else self.dest

    @property
    def writes(self) -> bool:
        """Whether this row writes a durable checkpoint."""
        return self.effect in WRITING_EFFECTS

    @property
    def is_failure(self) -> bool:
        """Whether this row is the path taken when a checkpoint write failed."""
        return (Guard.WRITE_FAILED, True) in self.when

    def matches(self, outcome: Mapping[Guard, bool]) -> bool:
        return all(outcome[guard] is value for guard, value in self.when)

    @property
    def label(self) -> str:
        """``event [guard, !guard] / effect``: the edge label in diagrams."""
        return self._label


S = SessionState
INITIAL: SessionState = S.INITIALIZING
FINAL: frozenset[SessionState] = frozenset({S.COMPLETED})

#: Events that report work while the session runs; each may trigger a checkpoint.
WORK_EVENTS: tuple[Event, ...] = (
    Event.TASK_COMPLETED,
    Event.TICK,
    Event.BEFORE_OPERATION,
    Event.ERROR_RECOVERED,
    Event.RECORD,
)
#: States in which the session is running (loaded and not completed).
RUNNING: tuple[SessionState, ...] = (S.ACTIVE, S.CHECKPOINTED, S.RESUMED)
#: Events whose gap since the previous event counts as active work (the time trigger).
ACTIVE_TIME_EVENTS: frozenset[Event] = frozenset(set(Event) - {Event.LOAD})
#: Events that always change the work state (a completed task, a recorded error), so the
#: state after them is never equal to the last checkpoint: they need no HAS_UNSAVED guard.
ALWAYS_CHANGE: frozenset[Event] = frozenset({Event.TASK_COMPLETED, Event.ERROR_RECOVERED})
#: Events that never change the work state: unsaved work after them is what it was before.
NEVER_CHANGE: frozenset[Event] = frozenset({Event.TICK, Event.BEFORE_OPERATION})

_DUE = Guard.CHECKPOINT_DUE
_RISK = Guard.RISK_DUE
_UNSAVED = Guard.HAS_UNSAVED
_RESTORE = Guard.RESTORE_AVAILABLE
_AT_RESTORE = Guard.SAVED_IS_RESTORED
_FAILED = Guard.WRITE_FAILED
_When = tuple[tuple[Guard, bool], ...]


def _write(
    event: Event,
    source: SessionState,
    when: _When,
    note: str,
    *,
    on_failure: SessionState | None,
    effect: Effect = Effect.WRITE_CHECKPOINT,
) -> list[Row]:
    """A row that writes a checkpoint and its declared failure row: the write is retried
    once; if it still fails the change is recorded and the session goes to ``on_failure``
    (None: it stays where it is), with a warning."""
    final = effect is Effect.CHECKPOINT_AND_FINALIZE
    dest = S.COMPLETED if final else S.CHECKPOINTED
    fallback = Effect.FINALIZE if final else (None if on_failure is None else Effect.RECORD_WORK)
    return [
        Row(event, source, dest, (*when, (_FAILED, False)), effect, note),
        Row(event, source, on_failure, (*when, (_FAILED, True)), fallback,
            "the checkpoint write failed twice: keep the work, unsaved, and warn"),
    ]  # fmt: skip


def _settle(event: Event, when: _When) -> list[Row]:
    """From ACTIVE, a change that leaves nothing unsaved returns to the state it left."""
    return [
        Row(event, S.ACTIVE, S.RESUMED, (*when, (_AT_RESTORE, True)), Effect.RECORD_WORK,
            "the change undid the unsaved work: back to the restored checkpoint"),
        Row(event, S.ACTIVE, S.CHECKPOINTED, (*when, (_AT_RESTORE, False)), Effect.RECORD_WORK,
            "the change undid the unsaved work: back to the last checkpoint"),
    ]  # fmt: skip


def _rows() -> tuple[Row, ...]:
    due, not_due = ((_DUE, True),), ((_DUE, False),)
    unsaved, saved = ((_UNSAVED, True),), ((_UNSAVED, False),)
    rows = [
        Row(Event.LOAD, S.INITIALIZING, S.RESUMED, ((_RESTORE, True),), Effect.RESTORE,
            "restore asked and a valid checkpoint exists: restore it"),
        Row(Event.LOAD, S.INITIALIZING, S.ACTIVE, ((_RESTORE, False),), Effect.START_FRESH,
            "fresh session"),
    ]  # fmt: skip
    # Rows are listed most common first for each event and state: transitions tries
    # them in order, so the usual case costs one row's guards.
    # Activity that changes nothing: in ACTIVE any trigger may write the unsaved work; in
    # CHECKPOINTED and RESUMED nothing is unsaved, so only a risk checkpoint is written.
    for event in (Event.TICK, Event.BEFORE_OPERATION):
        rows.append(Row(event, S.ACTIVE, None, not_due, None, "nothing due"))
        rows += _write(event, S.ACTIVE, due, "a trigger fired: write the checkpoint",
                       on_failure=S.ACTIVE)  # fmt: skip
        for source in (S.CHECKPOINTED, S.RESUMED):
            if event is Event.TICK:
                rows.append(Row(event, source, None, (), None, "nothing unsaved: nothing due"))
                continue
            rows.append(Row(event, source, None, ((_RISK, False),), None,
                            "not risky, and nothing unsaved"))  # fmt: skip
            rows += _write(
                event,
                source,
                ((_RISK, True),),
                "a risky operation: checkpoint before it runs",
                on_failure=None,
            )
    # A completed task or a recovered error always changes the work.
    for event in (Event.TASK_COMPLETED, Event.ERROR_RECOVERED):
        for source in RUNNING:
            rows.append(Row(event, source, S.ACTIVE, not_due, Effect.RECORD_WORK,
                            "no trigger fired: record the work only"))  # fmt: skip
            rows += _write(event, source, due, "a trigger fired: write the checkpoint",
                           on_failure=S.ACTIVE)  # fmt: skip
    # A recorded change may change nothing, or undo the unsaved work.
    for source in RUNNING:
        rows.append(Row(Event.RECORD, source, S.ACTIVE, (*unsaved, *not_due), Effect.RECORD_WORK,
                        "no trigger fired: record the work only"))  # fmt: skip
        rows += _write(
            Event.RECORD,
            source,
            (*unsaved, *due),
            "a trigger fired: write the checkpoint",
            on_failure=S.ACTIVE,
        )
        if source is S.ACTIVE:
            rows += _settle(Event.RECORD, saved)
        else:
            rows.append(Row(Event.RECORD, source, None, saved, None, "nothing changed"))
    # A manual checkpoint writes whatever is unsaved (a new phase, progress or context too).
    for source in RUNNING:
        rows += _write(Event.SAVE, source, unsaved, "manual checkpoint", on_failure=S.ACTIVE)
        if source is S.ACTIVE:
            rows += _settle(Event.SAVE, saved)
        else:
            rows.append(Row(Event.SAVE, source, None, saved, None,
                            "no-op: nothing changed since the last checkpoint"))  # fmt: skip
    # The end: a final checkpoint of anything unsaved, then the record and summary. A
    # session completed before it loaded has nothing durable, so its state is unsaved.
    rows += _write(
        Event.COMPLETE,
        S.INITIALIZING,
        (),
        "final checkpoint, then finalize",
        on_failure=S.COMPLETED,
        effect=Effect.CHECKPOINT_AND_FINALIZE,
    )
    for source in RUNNING:
        rows += _write(
            Event.COMPLETE,
            source,
            unsaved,
            "final checkpoint, then finalize",
            on_failure=S.COMPLETED,
            effect=Effect.CHECKPOINT_AND_FINALIZE,
        )
        rows.append(Row(Event.COMPLETE, source, S.COMPLETED, saved, Effect.FINALIZE,
                        "nothing unsaved: summary, consolidation, cleanup"))  # fmt: skip
    return tuple(rows)


class SpecError(LifecycleError):
    """A transition table that breaks a definition-time rule."""


@attrs.frozen(cache_hash=True)  # the machine is cached per spec: hashed on every event
class Spec:
    """A validated table with the indexes the machine and the front ends need."""

    states: tuple[SessionState, ...]
    initial: SessionState
    final: frozenset[SessionState]
    rows: tuple[Row, ...]
    # Indexes built once (every event consults them), not part of the value.
    _by_pair: dict[tuple[Event, SessionState], tuple[Row, ...]] = attrs.field(
        init=False, eq=False, repr=False
    )
    #: Each state's legal events (:meth:`legal_events` without the call, for every event).
    legal: dict[SessionState, frozenset[Event]] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        by_pair: dict[tuple[Event, SessionState], list[Row]] = {}
        for row in self.rows:
            by_pair.setdefault((row.event, row.source), []).append(row)
        object.__setattr__(self, "_by_pair", {k: tuple(v) for k, v in by_pair.items()})
        legal = {s: frozenset(e for e, src in by_pair if src is s) for s in self.states}
        object.__setattr__(self, "legal", legal)

    def rows_for(self, event: Event, source: SessionState) -> tuple[Row, ...]:
        return self._by_pair.get((event, source), ())

    def legal_events(self, state: SessionState) -> frozenset[Event]:
        return self.legal.get(state, frozenset())

    def guards_for(self, event: Event, source: SessionState) -> tuple[Guard, ...]:
        """The guards that decide between the rows for ``event`` in ``source``, in order."""
        seen: dict[Guard, None] = {}
        for row in self.rows_for(event, source):
            for guard, _ in row.when:
                seen.setdefault(guard)
        return tuple(seen)

    def resolve(
        self, event: Event, source: SessionState, outcome: Mapping[Guard, bool]
    ) -> Row | None:
        """The one row that fires for these guard values, or None if the event is illegal."""
        for row in self.rows_for(event, source):
            if row.matches(outcome):
                return row
        return None


def _successors(rows: Iterable[Row]) -> dict[SessionState, set[SessionState]]:
    graph: dict[SessionState, set[SessionState]] = {}
    for row in rows:
        graph.setdefault(row.source, set()).add(row.target)
    return graph


def _reachable(
    graph: Mapping[SessionState, set[SessionState]], start: SessionState
) -> set[SessionState]:
    seen = {start}
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def validate(
    states: Iterable[SessionState],
    initial: SessionState,
    final: Iterable[SessionState],
    rows: Iterable[Row],
) -> Spec:
    """Check a table against the definition-time rules; return it indexed, or raise SpecError."""
    states = tuple(states)
    final = frozenset(final)
    rows = tuple(rows)
    declared = set(states)
    for row in rows:
        for state in (row.source, row.dest):
            if state is not None and state not in declared:
                raise SpecError(f"row {row.label!r} names undeclared state {state}")
        if row.dest is None and row.effect is not None:
            raise SpecError(f"internal row {row.label!r} from {row.source} has an effect")
    graph = _successors(rows)
    unreachable = declared - _reachable(graph, initial)
    if unreachable:
        names = ", ".join(sorted(s.value for s in unreachable))
        raise SpecError(f"unreachable state(s) from {initial}: {names}")
    for state in states:
        if state in final:
            exits = [r.label for r in rows if r.source is state]
            if exits:
                raise SpecError(f"final state {state} has exits: {', '.join(exits)}")
        elif not _reachable(graph, state) & final:
            raise SpecError(f"trap state {state}: no final state is reachable from it")
    spec = Spec(states, initial, final, rows)
    for event, source in {(r.event, r.source) for r in rows}:
        guards = spec.guards_for(event, source)
        for values in itertools.product((True, False), repeat=len(guards)):
            outcome = dict(zip(guards, values, strict=True))
            firing = [r for r in spec.rows_for(event, source) if r.matches(outcome)]
            shown = ", ".join(f"{g}={v}" for g, v in outcome.items()) or "no guards"
            if len(firing) > 1:
                raise SpecError(
                    f"rows overlap for {event} in {source} when {shown}: "
                    + "; ".join(r.label for r in firing)
                )
            if not firing:
                raise SpecError(f"no row fires for {event} in {source} when {shown}")
    return spec


TABLE: Spec = validate(tuple(SessionState), INITIAL, FINAL, _rows())
