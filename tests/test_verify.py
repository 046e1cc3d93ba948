"""The model checker: the real table keeps every rule; broken copies are caught, shortest first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from lifecycle import verify
from lifecycle.spec import (
    TABLE,
    Effect,
    Event,
    Guard,
    Row,
    SessionState,
    Spec,
    validate,
)
from lifecycle.verify import RULES, VerifyReport, model_check

S = SessionState
DUE = Guard.CHECKPOINT_DUE
RISK = Guard.RISK_DUE
UNSAVED = Guard.HAS_UNSAVED
FAILED = Guard.WRITE_FAILED
AT_RESTORE = Guard.SAVED_IS_RESTORED
REPO = Path(__file__).resolve().parents[1]

FRESH = "load[restore_available=False]"
RESTORE = "load[restore_available=True]"


def _row(event: Event, source: S, dest: S | None, when: tuple[tuple[Guard, bool], ...]) -> Row:
    """The one row of the real table with this event, source, destination and guards."""
    (row,) = [
        r
        for r in TABLE.rows
        if r.event is event and r.source is source and r.dest is dest and r.when == when
    ]
    return row


def _replace(old: Row, new: Row) -> tuple[Row, ...]:
    return tuple(new if r is old else r for r in TABLE.rows)


def _unchecked(rows: tuple[Row, ...]) -> Spec:
    """A Spec that skips validate(): for tables that validate() itself would refuse."""
    return Spec(TABLE.states, TABLE.initial, TABLE.final, rows)


def _checked(rows: tuple[Row, ...]) -> Spec:
    return validate(TABLE.states, TABLE.initial, TABLE.final, rows)


def _broken(report: VerifyReport) -> dict[str, tuple[str, ...]]:
    return {v.rule: v.events for v in report.violations}


def test_real_table_keeps_every_rule_at_depth_8() -> None:
    report = model_check(TABLE, depth=8)
    assert report.violations == ()
    assert report.ok is True
    assert (report.depth, report.machine_states, report.rows) == (8, 5, len(TABLE.rows))
    assert f"result: OK, all {len(RULES)} rules hold" in report.format()


def _literal_sequences(spec: Spec, depth: int) -> tuple[int, int]:
    """Walk every sequence one by one: (sequences of length 1..depth, of length depth)."""
    total = 0
    full = 0

    def walk(model: verify.Model, left: int) -> None:
        nonlocal total, full
        if left == 0:
            full += 1
            return
        for event in Event:
            guards = spec.guards_for(event, model.state)
            for outcome in verify._outcomes(model, event, guards):
                row = spec.resolve(event, model.state, outcome)
                total += 1
                after = (
                    model if row is None else model.apply(row, model.unsaved_after(event, outcome))
                )
                walk(after, left - 1)

    walk(verify.Model(spec.initial), depth)
    return total, full


@pytest.mark.parametrize("depth", [0, 1, 2, 4])
def test_sequence_count_equals_walking_every_sequence(depth: int) -> None:
    report = model_check(TABLE, depth=depth)
    assert (report.sequences, report.full_sequences) == _literal_sequences(TABLE, depth)


def test_guards_the_model_decides_are_not_explored_both_ways() -> None:
    fresh = verify.Model(S.ACTIVE, unsaved=True)  # nothing durable: all work is unsaved
    outcomes = list(verify._outcomes(fresh, Event.RECORD, TABLE.guards_for(Event.RECORD, S.ACTIVE)))
    assert {o[UNSAVED] for o in outcomes} == {True}
    assert {o[AT_RESTORE] for o in outcomes} == {False}
    resumed = verify.Model(S.RESUMED, durable=True, at_restore=True, restored=True)
    tick = list(verify._outcomes(resumed, Event.TICK, TABLE.guards_for(Event.TICK, S.RESUMED)))
    assert tick == [{}]
    risky = TABLE.guards_for(Event.BEFORE_OPERATION, S.RESUMED)
    assert len(list(verify._outcomes(resumed, Event.BEFORE_OPERATION, risky))) == 4


def test_row_leaving_completed_breaks_rule_1_after_complete() -> None:
    rows = (*TABLE.rows, Row(Event.RECORD, S.COMPLETED, S.ACTIVE, (), Effect.RECORD_WORK))
    report = model_check(_unchecked(rows))
    assert _broken(report)["1"] == ("complete[write_failed=True]", "record")
    assert report.violations[0].detail == (
        "row 'record / record_work' from COMPLETED leaves final state COMPLETED"
    )


def test_save_into_checkpointed_without_a_write_breaks_the_states_meaning() -> None:
    old = _row(Event.SAVE, S.ACTIVE, S.CHECKPOINTED, ((UNSAVED, True), (FAILED, False)))
    spec = _checked(_replace(old, attrs.evolve(old, effect=None)))
    report = model_check(spec)
    broken = _broken(report)
    assert broken["meaning"] == (
        FRESH,
        "save[has_unsaved=True][write_failed=False][saved_is_restored=False]",
    )
    # and, one event later, a failed risk write then leaves that unsaved work there
    assert set(broken) == {"meaning", "failure"}
    assert report.violations[0].detail == (
        "after row 'save [has_unsaved, !write_failed]' from ACTIVE the session is "
        "CHECKPOINTED with unsaved work"
    )


def test_a_lost_failure_row_is_caught_with_the_shortest_sequence() -> None:
    old = _row(
        Event.RECORD,
        S.CHECKPOINTED,
        S.CHECKPOINTED,
        ((UNSAVED, True), (DUE, True), (FAILED, False)),
    )
    failure = _row(
        Event.RECORD, S.CHECKPOINTED, S.ACTIVE, ((UNSAVED, True), (DUE, True), (FAILED, True))
    )
    rows = tuple(
        attrs.evolve(r, when=r.when[:2]) if r is old else r for r in TABLE.rows if r is not failure
    )
    report = model_check(_checked(rows))
    assert _broken(report) == {
        "failure": (
            RESTORE,
            "task_completed[checkpoint_due=True][write_failed=False]",
            "record[has_unsaved=True][checkpoint_due=True]",
        )
    }
    assert report.violations[0].detail == (
        "row 'record [has_unsaved, checkpoint_due] / write_checkpoint' from CHECKPOINTED "
        "writes a checkpoint with no write_failed path"
    )


def test_an_undone_change_routed_to_active_is_caught_with_the_shortest_sequence() -> None:
    old = _row(Event.RECORD, S.ACTIVE, S.RESUMED, ((UNSAVED, False), (AT_RESTORE, True)))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=S.ACTIVE))))
    assert _broken(report) == {
        "meaning": (
            RESTORE,
            "task_completed[checkpoint_due=True][write_failed=True]",
            "record[has_unsaved=False][checkpoint_due=True][write_failed=True][saved_is_restored=True]",
        )
    }


def test_a_failure_row_that_keeps_checkpointed_breaks_the_failure_rule() -> None:
    old = _row(Event.SAVE, S.CHECKPOINTED, S.ACTIVE, ((UNSAVED, True), (FAILED, True)))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=S.CHECKPOINTED))))
    broken = _broken(report)
    assert set(broken) == {"meaning", "failure"}
    assert broken["failure"][-1] == "save[has_unsaved=True][write_failed=True]"


def test_tick_due_landing_in_active_breaks_rule_8() -> None:
    old = _row(Event.TICK, S.ACTIVE, S.CHECKPOINTED, ((DUE, True), (FAILED, False)))
    new = attrs.evolve(old, dest=S.ACTIVE, effect=Effect.RECORD_WORK)
    report = model_check(_checked(_replace(old, new)))
    assert _broken(report) == {"8": (FRESH, "tick[checkpoint_due=True][write_failed=False]")}
    assert report.violations[0].detail == (
        "row 'tick [checkpoint_due, !write_failed] / record_work' from ACTIVE fires with "
        "checkpoint_due=True and unsaved work but writes nothing"
    )


def test_write_checkpoint_landing_in_active_breaks_rule_3() -> None:
    old = _row(Event.BEFORE_OPERATION, S.RESUMED, S.CHECKPOINTED, ((RISK, True), (FAILED, False)))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=S.ACTIVE))))
    path = (RESTORE, "before_operation[risk_due=True][write_failed=False]")
    assert _broken(report) == {"3": path, "meaning": path, "active": path}


def test_a_risky_operation_let_through_breaks_rule_7() -> None:
    old = _row(Event.BEFORE_OPERATION, S.RESUMED, S.CHECKPOINTED, ((RISK, True), (FAILED, False)))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=None, effect=None))))
    assert _broken(report) == {
        "7": (RESTORE, "before_operation[risk_due=True][write_failed=False]")
    }


def test_row_into_resumed_from_active_breaks_rule_2() -> None:
    old = _row(Event.RECORD, S.ACTIVE, S.ACTIVE, ((UNSAVED, True), (DUE, False)))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=S.RESUMED))))
    broken = _broken(report)
    assert broken["2"] == (
        FRESH,
        "record[has_unsaved=True][checkpoint_due=False][write_failed=True][saved_is_restored=False]",
    )


def test_trap_state_breaks_rule_4_at_the_shortest_path_into_it() -> None:
    # Only ACTIVE's internal rows stay: ACTIVE is a trap, and most outcomes fire nothing.
    rows = tuple(r for r in TABLE.rows if r.source is not S.ACTIVE or r.dest is None)
    report = model_check(_unchecked(rows))
    broken = _broken(report)
    assert broken["4"] == (FRESH,)
    assert broken["determinism"][0] == FRESH and len(broken["determinism"]) == 2


def test_overlapping_rows_break_determinism() -> None:
    duplicate = Row(Event.COMPLETE, S.ACTIVE, S.COMPLETED, (), Effect.FINALIZE)
    report = model_check(_unchecked((*TABLE.rows, duplicate)))
    assert _broken(report) == {
        "determinism": (FRESH, "complete[has_unsaved=True][write_failed=True]")
    }


def test_report_prints_the_shortest_sequence_with_rows() -> None:
    old = _row(Event.SAVE, S.ACTIVE, S.CHECKPOINTED, ((UNSAVED, True), (FAILED, False)))
    spec = _checked(_replace(old, attrs.evolve(old, effect=None)))
    text = model_check(spec, depth=3).format()
    save_index = spec.rows.index(attrs.evolve(old, effect=None))
    assert "    FAIL meaning     " + RULES["meaning"] in text
    assert "         shortest sequence (2 events):" in text
    assert "           1. load [restore_available=False]: row 1 " in text
    assert (
        f"           2. save [has_unsaved=True, write_failed=False, saved_is_restored=False]: "
        f"row {save_index} (save [has_unsaved, !write_failed]) ACTIVE -> CHECKPOINTED"
    ) in text
    assert text.endswith(f"  result: FAILED, 2 of {len(RULES)} rules broken")


def test_main_exits_1_on_a_broken_table(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = (*TABLE.rows, Row(Event.RECORD, S.COMPLETED, S.ACTIVE, (), Effect.RECORD_WORK))
    monkeypatch.setattr(verify, "TABLE", _unchecked(rows))
    assert verify.main(["--depth", "2"]) == 1
    assert "FAIL 1 " in capsys.readouterr().out


def test_negative_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="depth must be 0 or more, not -1"):
        model_check(TABLE, depth=-1)


def test_module_entry_point_prints_report_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle.verify", "--depth", "8"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "  depth:      8 events" in done.stdout
    assert done.stdout.endswith(f"  result: OK, all {len(RULES)} rules hold\n")


def test_module_entry_point_refuses_a_bad_depth() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle.verify", "--depth", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert "depth must be 0 or more, not -3" in done.stderr
