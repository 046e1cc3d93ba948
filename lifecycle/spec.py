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
    """The five states of a work session (seed: "Session States")."""

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
    """Named conditions; the machine binds each to the session's evaluators."""

    RESTORE_AVAILABLE = "restore_available"  # restore asked and a valid checkpoint exists
    CHECKPOINT_DUE = "checkpoint_due"  # a trigger evaluator says "checkpoint now"
    CHANGES_WORK = "changes_work"  # the event changes the session's work state
    HAS_UNSAVED = "has_unsaved"  # the state differs from the last durable checkpoint

    def __str__(self) -> str:
        return self.value


class Effect(StrEnum):
    """Named effects; run before the state changes, so a failed effect changes nothing."""

    RESTORE = "restore"  # load the latest valid checkpoint into the session
    START_FRESH = "start_fresh"  # begin a new session with empty work state
    RECORD_WORK = "record_work"  # apply the event's change to the work state
    WRITE_CHECKPOINT = "write_checkpoint"  # apply the change, then write it durably
    FINALIZE = "finalize"  # final checkpoint, summary, consolidation, cleanup

    def __str__(self) -> str:
        return self.value


@attrs.frozen(cache_hash=True)
class Row:
    """One transition: ``event`` from ``source`` to ``dest`` when every guard has its value.

    ``dest`` None is an internal transition: the state does not change and no
    effect runs beyond ``effect`` (which is then None too).
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

_DUE = Guard.CHECKPOINT_DUE
_CHANGES = Guard.CHANGES_WORK
_UNSAVED = Guard.HAS_UNSAVED
_RESTORE = Guard.RESTORE_AVAILABLE


def _rows() -> tuple[Row, ...]:
    rows = [
        Row(Event.LOAD, S.INITIALIZING, S.RESUMED, ((_RESTORE, True),), Effect.RESTORE,
            "restore asked and a valid checkpoint exists: restore it"),
        Row(Event.LOAD, S.INITIALIZING, S.ACTIVE, ((_RESTORE, False),), Effect.START_FRESH,
            "fresh session"),
    ]  # fmt: skip
    for event, source in itertools.product(WORK_EVENTS, RUNNING):
        rows += [
            Row(event, source, S.CHECKPOINTED, ((_DUE, True),), Effect.WRITE_CHECKPOINT,
                "a trigger fired: write the checkpoint first"),
            Row(event, source, S.ACTIVE, ((_DUE, False), (_CHANGES, True)), Effect.RECORD_WORK,
                "no trigger fired: record the work only"),
            Row(event, source, None, ((_DUE, False), (_CHANGES, False)), None,
                "nothing to record and nothing due"),
        ]  # fmt: skip
    for source in RUNNING:
        rows += [
            Row(Event.SAVE, source, S.CHECKPOINTED, ((_UNSAVED, True),), Effect.WRITE_CHECKPOINT,
                "manual checkpoint"),
            Row(Event.SAVE, source, None, ((_UNSAVED, False),), None,
                "no-op: nothing changed since the last checkpoint"),
        ]  # fmt: skip
    for source in (S.INITIALIZING, *RUNNING):
        rows.append(
            Row(Event.COMPLETE, source, S.COMPLETED, (), Effect.FINALIZE,
                "final checkpoint, summary, consolidation, cleanup")
        )  # fmt: skip
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
    _legal: dict[SessionState, frozenset[Event]] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        by_pair: dict[tuple[Event, SessionState], list[Row]] = {}
        for row in self.rows:
            by_pair.setdefault((row.event, row.source), []).append(row)
        object.__setattr__(self, "_by_pair", {k: tuple(v) for k, v in by_pair.items()})
        legal = {s: frozenset(e for e, src in by_pair if src is s) for s in self.states}
        object.__setattr__(self, "_legal", legal)

    def rows_for(self, event: Event, source: SessionState) -> tuple[Row, ...]:
        return self._by_pair.get((event, source), ())

    def legal_events(self, state: SessionState) -> frozenset[Event]:
        return self._legal.get(state, frozenset())

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
