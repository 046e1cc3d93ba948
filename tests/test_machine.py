"""The machine and the table it is built from, checked afresh at test time.

``lifecycle.spec.TABLE`` and the shared machine are built once, at import; these
tests build both again (so that a change to how they are built is seen here, as
mutation testing needs) and drive every row, under every guard outcome, through a
host that answers the guards as told and records the effects it is asked to run.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from transitions import MachineError

from lifecycle import coverage, machine, spec
from lifecycle.errors import IllegalTransition, LifecycleError
from lifecycle.machine import Driver, EffectFailed, fire
from lifecycle.spec import TABLE, Effect, Event, Guard, Row, SessionState

#: The table, row by row: "source -> dest: label". Reviewed by hand: every row is one the
#: public API can fire (tests/test_every_row.py fires each one).
GOLDEN = """
INITIALIZING -> RESUMED: load [restore_available] / restore
INITIALIZING -> ACTIVE: load [!restore_available] / start_fresh
ACTIVE -> (internal): tick [!checkpoint_due]
ACTIVE -> CHECKPOINTED: tick [checkpoint_due, !write_failed] / write_checkpoint
ACTIVE -> ACTIVE: tick [checkpoint_due, write_failed] / record_work
CHECKPOINTED -> (internal): tick
RESUMED -> (internal): tick
ACTIVE -> (internal): before_operation [!checkpoint_due]
ACTIVE -> CHECKPOINTED: before_operation [checkpoint_due, !write_failed] / write_checkpoint
ACTIVE -> ACTIVE: before_operation [checkpoint_due, write_failed] / record_work
CHECKPOINTED -> (internal): before_operation [!risk_due]
CHECKPOINTED -> CHECKPOINTED: before_operation [risk_due, !write_failed] / write_checkpoint
CHECKPOINTED -> (internal): before_operation [risk_due, write_failed]
RESUMED -> (internal): before_operation [!risk_due]
RESUMED -> CHECKPOINTED: before_operation [risk_due, !write_failed] / write_checkpoint
RESUMED -> (internal): before_operation [risk_due, write_failed]
ACTIVE -> ACTIVE: task_completed [!checkpoint_due] / record_work
ACTIVE -> CHECKPOINTED: task_completed [checkpoint_due, !write_failed] / write_checkpoint
ACTIVE -> ACTIVE: task_completed [checkpoint_due, write_failed] / record_work
CHECKPOINTED -> ACTIVE: task_completed [!checkpoint_due] / record_work
CHECKPOINTED -> CHECKPOINTED: task_completed [checkpoint_due, !write_failed] / write_checkpoint
CHECKPOINTED -> ACTIVE: task_completed [checkpoint_due, write_failed] / record_work
RESUMED -> ACTIVE: task_completed [!checkpoint_due] / record_work
RESUMED -> CHECKPOINTED: task_completed [checkpoint_due, !write_failed] / write_checkpoint
RESUMED -> ACTIVE: task_completed [checkpoint_due, write_failed] / record_work
ACTIVE -> ACTIVE: error_recovered [!checkpoint_due] / record_work
ACTIVE -> CHECKPOINTED: error_recovered [checkpoint_due, !write_failed] / write_checkpoint
ACTIVE -> ACTIVE: error_recovered [checkpoint_due, write_failed] / record_work
CHECKPOINTED -> ACTIVE: error_recovered [!checkpoint_due] / record_work
CHECKPOINTED -> CHECKPOINTED: error_recovered [checkpoint_due, !write_failed] / write_checkpoint
CHECKPOINTED -> ACTIVE: error_recovered [checkpoint_due, write_failed] / record_work
RESUMED -> ACTIVE: error_recovered [!checkpoint_due] / record_work
RESUMED -> CHECKPOINTED: error_recovered [checkpoint_due, !write_failed] / write_checkpoint
RESUMED -> ACTIVE: error_recovered [checkpoint_due, write_failed] / record_work
ACTIVE -> ACTIVE: record [has_unsaved, !checkpoint_due] / record_work
ACTIVE -> CHECKPOINTED: record [has_unsaved, checkpoint_due, !write_failed] / write_checkpoint
ACTIVE -> ACTIVE: record [has_unsaved, checkpoint_due, write_failed] / record_work
ACTIVE -> RESUMED: record [!has_unsaved, saved_is_restored] / record_work
ACTIVE -> CHECKPOINTED: record [!has_unsaved, !saved_is_restored] / record_work
CHECKPOINTED -> ACTIVE: record [has_unsaved, !checkpoint_due] / record_work
CHECKPOINTED -> CHECKPOINTED: record [has_unsaved, checkpoint_due, !write_failed] / write_checkpoint
CHECKPOINTED -> ACTIVE: record [has_unsaved, checkpoint_due, write_failed] / record_work
CHECKPOINTED -> (internal): record [!has_unsaved]
RESUMED -> ACTIVE: record [has_unsaved, !checkpoint_due] / record_work
RESUMED -> CHECKPOINTED: record [has_unsaved, checkpoint_due, !write_failed] / write_checkpoint
RESUMED -> ACTIVE: record [has_unsaved, checkpoint_due, write_failed] / record_work
RESUMED -> (internal): record [!has_unsaved]
ACTIVE -> CHECKPOINTED: save [has_unsaved, !write_failed] / write_checkpoint
ACTIVE -> ACTIVE: save [has_unsaved, write_failed] / record_work
ACTIVE -> RESUMED: save [!has_unsaved, saved_is_restored] / record_work
ACTIVE -> CHECKPOINTED: save [!has_unsaved, !saved_is_restored] / record_work
CHECKPOINTED -> CHECKPOINTED: save [has_unsaved, !write_failed] / write_checkpoint
CHECKPOINTED -> ACTIVE: save [has_unsaved, write_failed] / record_work
CHECKPOINTED -> (internal): save [!has_unsaved]
RESUMED -> CHECKPOINTED: save [has_unsaved, !write_failed] / write_checkpoint
RESUMED -> ACTIVE: save [has_unsaved, write_failed] / record_work
RESUMED -> (internal): save [!has_unsaved]
INITIALIZING -> COMPLETED: complete [!write_failed] / checkpoint_and_finalize
INITIALIZING -> COMPLETED: complete [write_failed] / finalize
ACTIVE -> COMPLETED: complete [has_unsaved, !write_failed] / checkpoint_and_finalize
ACTIVE -> COMPLETED: complete [has_unsaved, write_failed] / finalize
ACTIVE -> COMPLETED: complete [!has_unsaved] / finalize
CHECKPOINTED -> COMPLETED: complete [has_unsaved, !write_failed] / checkpoint_and_finalize
CHECKPOINTED -> COMPLETED: complete [has_unsaved, write_failed] / finalize
CHECKPOINTED -> COMPLETED: complete [!has_unsaved] / finalize
RESUMED -> COMPLETED: complete [has_unsaved, !write_failed] / checkpoint_and_finalize
RESUMED -> COMPLETED: complete [has_unsaved, write_failed] / finalize
RESUMED -> COMPLETED: complete [!has_unsaved] / finalize
""".strip().splitlines()

FAILURE_NOTE = "the checkpoint write failed twice: keep the work, unsaved, and warn"


def _line(row: Row) -> str:
    dest = "(internal)" if row.dest is None else row.dest.value
    return f"{row.source.value} -> {dest}: {row.label}"


def test_the_table_is_the_reviewed_one() -> None:
    fresh = spec.validate(tuple(SessionState), spec.INITIAL, spec.FINAL, spec._rows())
    assert [_line(r) for r in fresh.rows] == GOLDEN
    assert fresh == TABLE


def test_every_writing_row_has_a_declared_failure_row_that_writes_nothing() -> None:
    for row in TABLE.rows:
        if not row.writes:
            continue
        assert (Guard.WRITE_FAILED, False) in row.when
        outcome = {g: v for g, v in row.when if g is not Guard.WRITE_FAILED}
        failure = TABLE.resolve(row.event, row.source, {**outcome, Guard.WRITE_FAILED: True})
        assert failure is not None and failure.is_failure and not failure.writes
        assert failure.note == FAILURE_NOTE
        if row.source is SessionState.ACTIVE or row.event is not Event.BEFORE_OPERATION:
            expected = row.target if row.target is SessionState.COMPLETED else SessionState.ACTIVE
            assert failure.target is expected
        else:  # a risk checkpoint with nothing unsaved: the state stays as it was
            assert failure.target is row.source


def test_work_events_get_only_the_guards_they_really_have() -> None:
    S = SessionState
    assert TABLE.guards_for(Event.TICK, S.CHECKPOINTED) == ()
    assert TABLE.guards_for(Event.TICK, S.ACTIVE) == (Guard.CHECKPOINT_DUE, Guard.WRITE_FAILED)
    assert TABLE.guards_for(Event.BEFORE_OPERATION, S.RESUMED) == (
        Guard.RISK_DUE,
        Guard.WRITE_FAILED,
    )
    for event in spec.ALWAYS_CHANGE | spec.NEVER_CHANGE:
        for source in spec.RUNNING:
            assert Guard.HAS_UNSAVED not in TABLE.guards_for(event, source)
    assert Guard.SAVED_IS_RESTORED in TABLE.guards_for(Event.RECORD, S.ACTIVE)
    assert Guard.SAVED_IS_RESTORED not in TABLE.guards_for(Event.RECORD, S.CHECKPOINTED)


def test_active_time_is_counted_for_every_event_but_load() -> None:
    assert frozenset(Event) - {Event.LOAD} == spec.ACTIVE_TIME_EVENTS


def test_the_table_starts_in_initializing_and_ends_only_in_completed() -> None:
    assert spec.INITIAL is SessionState.INITIALIZING
    assert frozenset({SessionState.COMPLETED}) == spec.FINAL
    assert spec.RUNNING == (SessionState.ACTIVE, SessionState.CHECKPOINTED, SessionState.RESUMED)


def test_enum_values_print_as_themselves() -> None:
    assert [str(s) for s in SessionState] == [s.value for s in SessionState]
    assert str(Event.BEFORE_OPERATION) == "before_operation"
    assert str(Guard.CHECKPOINT_DUE) == "checkpoint_due"
    assert str(Effect.WRITE_CHECKPOINT) == "write_checkpoint"


def test_legal_events_are_exactly_those_with_a_row() -> None:
    work = set(spec.WORK_EVENTS)
    running = work | {Event.SAVE, Event.COMPLETE}
    assert TABLE.legal_events(SessionState.INITIALIZING) == {Event.LOAD, Event.COMPLETE}
    for state in spec.RUNNING:
        assert TABLE.legal_events(state) == running
    assert TABLE.legal_events(SessionState.COMPLETED) == frozenset()


def test_guards_for_lists_the_deciding_guards_in_row_order() -> None:
    assert TABLE.guards_for(Event.RECORD, SessionState.ACTIVE) == (
        Guard.HAS_UNSAVED,
        Guard.CHECKPOINT_DUE,
        Guard.WRITE_FAILED,
        Guard.SAVED_IS_RESTORED,
    )
    assert TABLE.guards_for(Event.SAVE, SessionState.RESUMED) == (
        Guard.HAS_UNSAVED,
        Guard.WRITE_FAILED,
    )
    assert TABLE.guards_for(Event.COMPLETE, SessionState.INITIALIZING) == (Guard.WRITE_FAILED,)
    assert TABLE.guards_for(Event.LOAD, SessionState.ACTIVE) == ()


def test_resolve_returns_none_for_an_event_with_no_row() -> None:
    assert TABLE.resolve(Event.TICK, SessionState.INITIALIZING, {}) is None


def test_row_target_is_the_source_for_internal_rows() -> None:
    internal = Row(Event.SAVE, SessionState.ACTIVE, None, ((Guard.HAS_UNSAVED, False),))
    assert internal.target is SessionState.ACTIVE
    assert internal.label == "save [!has_unsaved]"
    moving = Row(Event.COMPLETE, SessionState.ACTIVE, SessionState.COMPLETED, (), Effect.FINALIZE)
    assert moving.target is SessionState.COMPLETED
    assert moving.label == "complete / finalize"


def test_row_matches_only_when_every_guard_has_its_value() -> None:
    row = Row(
        Event.TICK,
        SessionState.ACTIVE,
        SessionState.ACTIVE,
        ((Guard.CHECKPOINT_DUE, False), (Guard.HAS_UNSAVED, True)),
    )
    both = {Guard.CHECKPOINT_DUE: False, Guard.HAS_UNSAVED: True}
    assert row.matches(both)
    assert not row.matches({**both, Guard.HAS_UNSAVED: False})
    assert not row.matches({**both, Guard.CHECKPOINT_DUE: True})


# -- a freshly built machine drives every row ----------------------------------------------


class ScriptedDecider:
    """Answers each guard from ``outcome``; records the guards asked and rows done. With
    ``fail``, doing a writing row raises it (EffectFailed: the write failed)."""

    def __init__(self, outcome: dict[Guard, bool], fail: Exception | None = None) -> None:
        self.outcome = outcome
        self.fail = fail
        self.asked: list[Guard] = []
        self.done: list[Row] = []
        self.write_failed = False
        self.failure: EffectFailed | None = None

    def guard(self, guard: Guard) -> bool:
        self.asked.append(guard)
        if guard is Guard.WRITE_FAILED:
            return self.write_failed
        return self.outcome[guard]

    def do(self, row: Row) -> None:
        if self.fail is not None and (row.writes or not isinstance(self.fail, EffectFailed)):
            raise self.fail
        self.done.append(row)


@pytest.fixture(scope="module")
def reversed_table() -> spec.Spec:
    """The table with its rows in reverse order: one the machine cache has not seen."""
    rows = tuple(reversed(TABLE.rows))
    return spec.validate(TABLE.states, TABLE.initial, TABLE.final, rows)


@pytest.fixture
def fresh(reversed_table: spec.Spec) -> spec.Spec:
    """The reversed table, with the machine cache emptied before each test, so that every
    test that fires an event builds its machine again (``machine.build`` runs in the test:
    mutation testing sees which tests build the machine, and runs them all)."""
    machine.build.cache_clear()
    return reversed_table


def _cases() -> list[tuple[Event, SessionState, dict[Guard, bool]]]:
    cases = []
    for event, source in sorted({(r.event, r.source) for r in TABLE.rows}):
        guards = TABLE.guards_for(event, source)
        for values in itertools.product((True, False), repeat=len(guards)):
            cases.append((event, source, dict(zip(guards, values, strict=True))))
    return cases


@pytest.mark.parametrize(("event", "source", "outcome"), _cases())
def test_fire_moves_to_the_resolved_rows_target_and_runs_its_effect_once(
    fresh: spec.Spec,
    event: Event,
    source: SessionState,
    outcome: dict[Guard, bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(coverage, "_enabled", True)
    monkeypatch.setattr(coverage, "_fired", set())
    wanted_failure = outcome.pop(Guard.WRITE_FAILED, False)
    fail = EffectFailed(RuntimeError("disk full")) if wanted_failure else None
    decider = ScriptedDecider(outcome, fail)
    row, state = fire(source, event, decider, fresh)
    expected = fresh.resolve(event, source, {**outcome, Guard.WRITE_FAILED: decider.write_failed})
    assert row is expected
    assert state is row.target
    assert decider.done == [row]
    assert set(decider.asked) <= {*outcome, Guard.WRITE_FAILED}
    assert coverage.fired() == {fresh.rows.index(row)}
    assert (decider.failure is fail) if decider.write_failed else decider.failure is None


def test_a_failed_write_takes_the_declared_failure_row(fresh: spec.Spec) -> None:
    cause = RuntimeError("disk full")
    decider = ScriptedDecider({Guard.HAS_UNSAVED: True}, fail=EffectFailed(cause))
    row, state = fire(SessionState.CHECKPOINTED, Event.SAVE, decider, fresh)
    assert row.label == "save [has_unsaved, write_failed] / record_work"
    assert state is SessionState.ACTIVE
    assert decider.write_failed and decider.failure is not None
    assert decider.failure.cause is cause


@pytest.mark.parametrize("state", list(SessionState))
def test_an_illegal_event_raises_before_any_guard_and_changes_nothing(
    fresh: spec.Spec, state: SessionState
) -> None:
    for event in set(Event) - fresh.legal_events(state):
        decider = ScriptedDecider({})
        with pytest.raises(IllegalTransition) as info:
            fire(state, event, decider, fresh)
        assert (info.value.state, info.value.event) == (state.value, event.value)
        assert info.value.legal_events == tuple(sorted(e.value for e in fresh.legal_events(state)))
        assert decider.asked == []
        assert decider.done == []


def test_a_failing_effect_propagates(fresh: spec.Spec) -> None:
    decider = ScriptedDecider({Guard.HAS_UNSAVED: True}, fail=RuntimeError("disk full"))
    with pytest.raises(RuntimeError, match="disk full"):
        fire(SessionState.CHECKPOINTED, Event.SAVE, decider, fresh)
    assert decider.done == []


def test_a_new_driver_starts_in_the_initial_state() -> None:
    assert Driver().state == "INITIALIZING"


def test_the_built_machine_has_no_auto_transitions_and_one_trigger_per_event(
    fresh: spec.Spec,
) -> None:
    built = machine.build(fresh)
    assert set(built.events) == {e.value for e in Event}
    assert built.initial == "INITIALIZING"
    assert set(built.states) == {s.value for s in SessionState}
    assert machine.build(fresh) is built  # built once per table


def test_the_built_machine_adopts_no_model(fresh: spec.Spec) -> None:
    """Events are fired on a throwaway Driver; the machine is nobody's model, not even its
    own (transitions' default), so it gains no trigger methods or state of its own."""
    built = machine.build(fresh)
    assert built.models == []
    assert not hasattr(built, "state")
    assert not hasattr(built, "load")


def test_the_built_machine_itself_refuses_an_event_with_no_row_in_the_state(
    fresh: spec.Spec,
) -> None:
    """fire() checks legality first, and the machine refuses too: an event with no row in
    the driver's state raises, it is not silently ignored."""
    built = machine.build(fresh)
    decider = ScriptedDecider({})
    with pytest.raises(MachineError, match="Can't trigger event load from state ACTIVE!"):
        built.events["load"].trigger(Driver(SessionState.ACTIVE), decider=decider, fired=[])
    assert decider.asked == decider.done == []


# -- rows the default manager reaches only in particular situations ---------------------------


def _resumed(make_manager: Any, clock: Any, **kwargs: Any) -> Any:
    """A manager that restored a checkpoint holding the open question "q"."""
    first = make_manager()
    first.start_session(restore=False)
    first.add_open_question("q")
    first.create_checkpoint(phase="Phase 1")
    from lifecycle import SessionManager

    second = SessionManager(store=first.store.store, project=first.project, clock=clock, **kwargs)
    assert second.start_session(restore=True).is_fresh_session is False
    assert second.state is SessionState.RESUMED
    return second


def _ticks(manager: Any, clock: Any, minutes: int) -> None:
    for _ in range(minutes // 5):
        clock.advance(minutes=5)
        manager.tick()


def test_recording_nothing_new_is_internal_in_every_running_state(
    make_manager: Any, clock: Any
) -> None:
    active = make_manager()
    active.start_session(restore=False)
    active.add_open_question("q")
    assert (
        active.add_open_question("q").transition
        == "record [has_unsaved, !checkpoint_due] / record_work"
    )
    assert active.state is SessionState.ACTIVE
    active.create_checkpoint()
    assert active.add_open_question("q").state is SessionState.CHECKPOINTED
    resumed = _resumed(make_manager, clock)
    outcome = resumed.add_open_question("q")
    assert (outcome.state, outcome.checkpoint) == (SessionState.RESUMED, None)


def test_a_resumed_session_checkpoints_a_high_priority_completion(
    make_manager: Any, clock: Any
) -> None:
    resumed = _resumed(make_manager, clock)
    outcome = resumed.complete_task("T001", priority="high")
    assert outcome.transition == "task_completed [checkpoint_due, !write_failed] / write_checkpoint"
    assert outcome.state is SessionState.CHECKPOINTED
    assert outcome.checkpoint is not None and outcome.checkpoint.trigger == "task-complete"


def test_a_harmless_operation_leaves_a_resumed_session_resumed(
    make_manager: Any, clock: Any
) -> None:
    resumed = _resumed(make_manager, clock)
    clearance = resumed.before_operation("git status")
    assert (clearance.proceed, clearance.state, clearance.checkpoint) == (
        True,
        SessionState.RESUMED,
        None,
    )


def test_an_error_recovery_with_no_error_trigger_only_records_it(
    make_manager: Any, clock: Any
) -> None:
    resumed = _resumed(make_manager, clock, evaluators=())
    outcome = resumed.error_recovered("timeout", ["retried"])
    assert outcome.transition == "error_recovered [!checkpoint_due] / record_work"
    assert outcome.state is SessionState.ACTIVE


def test_ticks_checkpoint_unsaved_work_after_an_interval_of_activity(
    make_manager: Any, clock: Any
) -> None:
    manager = make_manager()
    manager.start_session(restore=False)
    clock.advance(minutes=1)  # the manager nudges a second event at one moment by 1 µs
    manager.record_decision("use SQLite")
    _ticks(manager, clock, 25)
    assert manager.state is SessionState.ACTIVE
    clock.advance(minutes=5)
    outcome = manager.tick()
    assert outcome.transition == "tick [checkpoint_due, !write_failed] / write_checkpoint"
    assert outcome.checkpoint is not None
    assert outcome.checkpoint.key is not None
    assert outcome.checkpoint.key.startswith("checkpoints/auto-")


@pytest.mark.parametrize("saved", ["checkpointed", "resumed"])
def test_a_record_after_an_interval_of_saved_activity_checkpoints(
    make_manager: Any, clock: Any, saved: str
) -> None:
    if saved == "resumed":
        manager = _resumed(make_manager, clock)
    else:
        manager = make_manager()
        manager.start_session(restore=False)
    clock.advance(minutes=1)  # the manager nudges a second event at one moment by 1 µs
    manager.tick()
    if saved == "checkpointed":
        manager.create_checkpoint(phase="Phase 1")
    before = manager.state
    _ticks(manager, clock, 30)  # nothing unsaved: the ticks checkpoint nothing
    assert manager.state is before
    outcome = manager.record_decision("split the module")
    assert (
        outcome.transition
        == "record [has_unsaved, checkpoint_due, !write_failed] / write_checkpoint"
    )
    assert outcome.state is SessionState.CHECKPOINTED


# -- what a broken table says, exactly -------------------------------------------------------


def _table(rows: list[Row], states: tuple[SessionState, ...] = tuple(SessionState)) -> spec.Spec:
    return spec.validate(states, spec.INITIAL, spec.FINAL, rows)


def _complete_from(*sources: SessionState) -> list[Row]:
    return [Row(Event.COMPLETE, s, SessionState.COMPLETED, (), Effect.FINALIZE) for s in sources]


def test_a_row_naming_an_undeclared_state_is_named() -> None:
    rows = _complete_from(SessionState.INITIALIZING)
    with pytest.raises(spec.SpecError) as info:
        _table(rows, states=(SessionState.INITIALIZING,))
    assert str(info.value) == "row 'complete / finalize' names undeclared state COMPLETED"


def test_every_unreachable_state_is_named_in_order() -> None:
    rows = _complete_from(SessionState.INITIALIZING, SessionState.ACTIVE, SessionState.RESUMED)
    with pytest.raises(spec.SpecError) as info:
        _table(rows, states=(SessionState.INITIALIZING, SessionState.ACTIVE, *spec.FINAL,
                             SessionState.RESUMED))  # fmt: skip
    assert str(info.value) == "unreachable state(s) from INITIALIZING: ACTIVE, RESUMED"


def test_every_exit_of_a_final_state_is_named() -> None:
    rows = [
        *_complete_from(SessionState.INITIALIZING),
        Row(Event.LOAD, SessionState.COMPLETED, SessionState.INITIALIZING),
        Row(Event.SAVE, SessionState.COMPLETED, SessionState.INITIALIZING),
    ]
    with pytest.raises(spec.SpecError) as info:
        _table(rows, states=(SessionState.INITIALIZING, SessionState.COMPLETED))
    assert str(info.value) == "final state COMPLETED has exits: load, save"


def test_overlapping_rows_are_named_with_the_guard_values_that_overlap() -> None:
    due = ((Guard.CHECKPOINT_DUE, True), (Guard.HAS_UNSAVED, True))
    rows = [
        *_complete_from(SessionState.INITIALIZING),
        Row(Event.TICK, SessionState.INITIALIZING, SessionState.COMPLETED, due[:1]),
        Row(Event.TICK, SessionState.INITIALIZING, SessionState.COMPLETED, due),
        Row(Event.TICK, SessionState.INITIALIZING, None, ((Guard.CHECKPOINT_DUE, False),)),
    ]
    with pytest.raises(spec.SpecError) as info:
        _table(rows, states=(SessionState.INITIALIZING, SessionState.COMPLETED))
    assert str(info.value) == (
        "rows overlap for tick in INITIALIZING when checkpoint_due=True, has_unsaved=True: "
        "tick [checkpoint_due]; tick [checkpoint_due, has_unsaved]"
    )


def test_a_guard_outcome_no_row_covers_is_named() -> None:
    rows = [
        *_complete_from(SessionState.INITIALIZING),
        Row(Event.TICK, SessionState.INITIALIZING, None, ((Guard.CHECKPOINT_DUE, True),)),
        Row(
            Event.TICK,
            SessionState.INITIALIZING,
            None,
            ((Guard.CHECKPOINT_DUE, False), (Guard.HAS_UNSAVED, True)),
        ),
    ]
    with pytest.raises(spec.SpecError) as info:
        _table(rows, states=(SessionState.INITIALIZING, SessionState.COMPLETED))
    assert str(info.value) == (
        "no row fires for tick in INITIALIZING when checkpoint_due=False, has_unsaved=False"
    )


def test_fire_on_an_unvalidated_incomplete_table_says_so_and_keeps_the_state() -> None:
    # Spec() without validate(): a tick row only for "due", so a tick that is not due fires
    # nothing.
    rows = (
        *_complete_from(SessionState.ACTIVE),
        Row(Event.TICK, SessionState.ACTIVE, None, ((Guard.CHECKPOINT_DUE, True),)),
    )
    broken = spec.Spec(tuple(SessionState), spec.INITIAL, spec.FINAL, rows)
    decider = ScriptedDecider({Guard.CHECKPOINT_DUE: False})
    with pytest.raises(LifecycleError) as info:
        fire(SessionState.ACTIVE, Event.TICK, decider, broken)
    assert str(info.value) == "no row fired for tick in ACTIVE: the table is incomplete"
    assert decider.done == []


def test_an_effect_failure_carries_its_cause_and_says_what_the_cause_says() -> None:
    cause = OSError("disk full")
    failure = EffectFailed(cause)
    assert failure.cause is cause
    assert str(failure) == "disk full"
    assert isinstance(failure, LifecycleError)


def test_an_event_in_a_state_the_table_does_not_declare_is_illegal_with_no_legal_events() -> None:
    small = _table(_complete_from(SessionState.INITIALIZING),
                   states=(SessionState.INITIALIZING, SessionState.COMPLETED))  # fmt: skip
    decider = ScriptedDecider({})
    with pytest.raises(IllegalTransition) as info:
        fire(SessionState.ACTIVE, Event.COMPLETE, decider, small)
    assert (info.value.state, info.value.event, info.value.legal_events) == (
        "ACTIVE",
        "complete",
        (),
    )
    assert decider.asked == []
