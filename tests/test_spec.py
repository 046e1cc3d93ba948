"""The transition table and its definition-time checks."""

from __future__ import annotations

import itertools

import pytest

from lifecycle import spec
from lifecycle.spec import (
    FINAL,
    INITIAL,
    RUNNING,
    TABLE,
    WORK_EVENTS,
    Effect,
    Event,
    Guard,
    Row,
    SessionState,
    SpecError,
    validate,
)

S = SessionState


def rows_without(predicate) -> list[Row]:
    return [r for r in TABLE.rows if not predicate(r)]


def test_states_are_the_five_seed_states() -> None:
    assert [s.value for s in SessionState] == [
        "INITIALIZING",
        "ACTIVE",
        "CHECKPOINTED",
        "RESUMED",
        "COMPLETED",
    ]


def test_completed_has_no_legal_events() -> None:
    assert TABLE.legal_events(S.COMPLETED) == frozenset()


def test_resumed_is_entered_by_a_restore_or_by_undoing_the_unsaved_work_since_it() -> None:
    into = [r for r in TABLE.rows if r.dest is S.RESUMED]
    settle = ((Guard.HAS_UNSAVED, False), (Guard.SAVED_IS_RESTORED, True))
    assert [(r.source, r.event, r.when, r.effect) for r in into] == [
        (S.INITIALIZING, Event.LOAD, ((Guard.RESTORE_AVAILABLE, True),), Effect.RESTORE),
        (S.ACTIVE, Event.RECORD, settle, Effect.RECORD_WORK),
        (S.ACTIVE, Event.SAVE, settle, Effect.RECORD_WORK),
    ]


def test_every_entry_into_checkpointed_writes_a_checkpoint_or_finds_nothing_unsaved() -> None:
    for row in TABLE.rows:
        if row.dest is S.CHECKPOINTED and not row.writes:
            assert row.source is S.ACTIVE, row.label
            assert (Guard.HAS_UNSAVED, False) in row.when, row.label
            assert (Guard.SAVED_IS_RESTORED, False) in row.when, row.label


def test_complete_is_legal_in_every_state_but_completed() -> None:
    for state in SessionState:
        assert (Event.COMPLETE in TABLE.legal_events(state)) is (state not in FINAL)


def test_work_events_are_illegal_before_load() -> None:
    assert TABLE.legal_events(S.INITIALIZING) == {Event.LOAD, Event.COMPLETE}


def test_exactly_one_row_fires_for_every_guard_outcome() -> None:
    for state, event in itertools.product(SessionState, Event):
        guards = TABLE.guards_for(event, state)
        for values in itertools.product((True, False), repeat=len(guards)):
            outcome = dict(zip(guards, values, strict=True))
            firing = [r for r in TABLE.rows_for(event, state) if r.matches(outcome)]
            legal = event in TABLE.legal_events(state)
            assert len(firing) == (1 if legal else 0), (state, event, outcome)


def test_a_due_work_event_with_unsaved_work_checkpoints_from_every_running_state() -> None:
    due = {Guard.CHECKPOINT_DUE: True, Guard.RISK_DUE: True, Guard.HAS_UNSAVED: True}
    for event, state in itertools.product(WORK_EVENTS, RUNNING):
        if event is Event.TICK and state is not S.ACTIVE:
            continue  # a tick changes nothing: in CHECKPOINTED and RESUMED nothing is unsaved
        row = TABLE.resolve(event, state, {**due, Guard.WRITE_FAILED: False})
        assert row is not None
        assert (row.dest, row.effect) == (S.CHECKPOINTED, Effect.WRITE_CHECKPOINT)


def test_save_without_changes_is_an_internal_no_op() -> None:
    for state in RUNNING:
        if state is S.ACTIVE:
            continue  # ACTIVE always has something unsaved, or the change just undid it
        row = TABLE.resolve(Event.SAVE, state, {Guard.HAS_UNSAVED: False})
        assert row is not None
        assert (row.dest, row.effect, row.target) == (None, None, state)


def test_validate_rejects_an_unreachable_state() -> None:
    rows = rows_without(lambda r: r.dest is S.RESUMED)
    rows = [r for r in rows if r.source is not S.RESUMED]
    # restore the guard coverage of load without the RESUMED row
    rows = [
        Row(r.event, r.source, r.dest, (), r.effect) if r.event is Event.LOAD else r for r in rows
    ]
    with pytest.raises(SpecError, match="unreachable state.*RESUMED"):
        validate(tuple(SessionState), INITIAL, FINAL, rows)


def test_validate_rejects_a_trap_state() -> None:
    rows = rows_without(lambda r: r.source is S.RESUMED and r.event is Event.COMPLETE)
    rows = [r for r in rows if not (r.source is S.RESUMED and r.target is not S.RESUMED)]
    with pytest.raises(SpecError, match="trap state RESUMED"):
        validate(tuple(SessionState), INITIAL, FINAL, rows)


def test_validate_rejects_a_final_state_with_exits() -> None:
    rows = [*TABLE.rows, Row(Event.LOAD, S.COMPLETED, S.ACTIVE)]
    with pytest.raises(SpecError, match="final state COMPLETED has exits"):
        validate(tuple(SessionState), INITIAL, FINAL, rows)


def test_validate_rejects_two_rows_that_fire_under_the_same_guard_outcome() -> None:
    rows = [*TABLE.rows, Row(Event.SAVE, S.ACTIVE, S.ACTIVE, ((Guard.HAS_UNSAVED, True),))]
    with pytest.raises(SpecError, match="rows overlap for save in ACTIVE when has_unsaved=True"):
        validate(tuple(SessionState), INITIAL, FINAL, rows)


def test_validate_rejects_a_guard_outcome_no_row_covers() -> None:
    rows = rows_without(
        lambda r: r.event is Event.SAVE and r.source is S.RESUMED and r.dest is None
    )
    with pytest.raises(SpecError, match="no row fires for save in RESUMED when has_unsaved=False"):
        validate(tuple(SessionState), INITIAL, FINAL, rows)


def test_validate_rejects_an_internal_row_with_an_effect() -> None:
    rows = [
        Row(r.event, r.source, r.dest, r.when, Effect.RECORD_WORK)
        if r.dest is None and r.event is Event.SAVE
        else r
        for r in TABLE.rows
    ]
    with pytest.raises(SpecError, match="internal row"):
        validate(tuple(SessionState), INITIAL, FINAL, rows)


def test_labels_show_guards_and_effects() -> None:
    row = TABLE.resolve(
        Event.RECORD, S.ACTIVE, {Guard.CHECKPOINT_DUE: False, Guard.HAS_UNSAVED: True}
    )
    assert row is not None
    assert row.label == "record [has_unsaved, !checkpoint_due] / record_work"


def test_the_table_is_the_only_place_state_pairs_are_written() -> None:
    """Rule 1: no module but spec.py names a destination state in code."""
    import pathlib
    import re

    package = pathlib.Path(spec.__file__).parent
    pattern = re.compile(
        r"SessionState\.(ACTIVE|CHECKPOINTED|RESUMED|COMPLETED|INITIALIZING)|\bS\.[A-Z]{6,}"
    )
    offenders = []
    for path in package.rglob("*.py"):
        if path.name in ("spec.py", "verify.py", "testing.py"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []


def test_overlapping_rows_with_no_guards_are_reported_as_no_guards() -> None:
    rows = [*TABLE.rows, Row(Event.TICK, S.CHECKPOINTED, None, (), None)]
    with pytest.raises(SpecError) as info:
        validate(tuple(SessionState), INITIAL, FINAL, rows)
    assert str(info.value) == "rows overlap for tick in CHECKPOINTED when no guards: tick; tick"


def test_a_state_the_table_does_not_declare_has_no_legal_events() -> None:
    small = validate(
        (S.INITIALIZING, S.COMPLETED),
        INITIAL,
        FINAL,
        [Row(Event.COMPLETE, S.INITIALIZING, S.COMPLETED, (), Effect.FINALIZE)],
    )
    assert small.legal_events(S.INITIALIZING) == frozenset({Event.COMPLETE})
    for state in (S.ACTIVE, S.CHECKPOINTED, S.RESUMED):
        assert small.legal_events(state) == frozenset()


def test_the_events_that_always_or_never_change_the_work_are_declared_exactly() -> None:
    """A completed task or a recovered error always changes the work; a tick or an
    operation about to run never does; a record may or may not."""
    assert {Event.TASK_COMPLETED, Event.ERROR_RECOVERED} == spec.ALWAYS_CHANGE
    assert {Event.TICK, Event.BEFORE_OPERATION} == spec.NEVER_CHANGE
    maybe = set(WORK_EVENTS) - spec.ALWAYS_CHANGE - spec.NEVER_CHANGE
    assert maybe == {Event.RECORD}


def test_the_rows_that_write_are_the_checkpoint_and_final_checkpoint_rows() -> None:
    assert {Effect.WRITE_CHECKPOINT, Effect.CHECKPOINT_AND_FINALIZE} == spec.WRITING_EFFECTS
    for row in TABLE.rows:
        assert row.writes is (row.effect in (Effect.WRITE_CHECKPOINT,
                                             Effect.CHECKPOINT_AND_FINALIZE))  # fmt: skip
    assert {r.source for r in TABLE.rows if r.effect is Effect.CHECKPOINT_AND_FINALIZE} == {
        S.INITIALIZING,
        *RUNNING,
    }
