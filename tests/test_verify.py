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
CHANGES = Guard.CHANGES_WORK
UNSAVED = Guard.HAS_UNSAVED
REPO = Path(__file__).resolve().parents[1]

FRESH = "load[restore_available=False]"


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
    assert (report.depth, report.machine_states, report.rows) == (8, 5, 57)
    assert "result: OK, all 10 rules hold" in report.format()


def _literal_sequences(spec: Spec, depth: int) -> tuple[int, int]:
    """Walk every sequence one by one: (sequences of length 1..depth, of length depth)."""
    total = 0
    full = 0

    def walk(state: S, left: int) -> None:
        nonlocal total, full
        if left == 0:
            full += 1
            return
        for event in Event:
            guards = spec.guards_for(event, state)
            for values in range(2 ** len(guards)):
                outcome = {g: bool(values >> i & 1) for i, g in enumerate(guards)}
                row = spec.resolve(event, state, outcome)
                total += 1
                walk(state if row is None else row.target, left - 1)

    walk(spec.initial, depth)
    return total, full


@pytest.mark.parametrize("depth", [0, 1, 2, 4])
def test_sequence_count_equals_walking_every_sequence(depth: int) -> None:
    report = model_check(TABLE, depth=depth)
    assert (report.sequences, report.full_sequences) == _literal_sequences(TABLE, depth)


def test_row_leaving_completed_breaks_rule_1_after_complete() -> None:
    rows = (*TABLE.rows, Row(Event.RECORD, S.COMPLETED, S.ACTIVE, (), Effect.RECORD_WORK))
    report = model_check(_unchecked(rows))
    assert _broken(report) == {"1": ("complete", "record")}
    assert report.violations[0].detail == (
        "row 'record / record_work' from COMPLETED leaves final state COMPLETED"
    )


def test_save_into_checkpointed_without_write_breaks_rule_3() -> None:
    old = _row(Event.SAVE, S.ACTIVE, S.CHECKPOINTED, ((UNSAVED, True),))
    spec = _checked(_replace(old, attrs.evolve(old, effect=None)))
    report = model_check(spec)
    assert _broken(report) == {"3": (FRESH, "save[has_unsaved=True]")}
    assert report.violations[0].detail == (
        "row 'save [has_unsaved]' from ACTIVE enters CHECKPOINTED without write_checkpoint"
    )


def test_tick_due_landing_in_active_breaks_rule_8() -> None:
    old = _row(Event.TICK, S.ACTIVE, S.CHECKPOINTED, ((DUE, True),))
    new = attrs.evolve(old, dest=S.ACTIVE, effect=Effect.RECORD_WORK)
    report = model_check(_checked(_replace(old, new)))
    assert _broken(report) == {"8": (FRESH, "tick[checkpoint_due=True][changes_work=True]")}
    assert report.violations[0].detail == (
        "row 'tick [checkpoint_due] / record_work' from ACTIVE fires with "
        "checkpoint_due=True but does not write_checkpoint"
    )


def test_write_checkpoint_landing_in_active_breaks_rule_3() -> None:
    old = _row(Event.TICK, S.RESUMED, S.CHECKPOINTED, ((DUE, True),))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=S.ACTIVE))))
    path = ("load[restore_available=True]", "tick[checkpoint_due=True][changes_work=True]")
    assert _broken(report) == {"3": path, "active": path}


def test_row_into_resumed_from_active_breaks_rule_2() -> None:
    old = _row(Event.RECORD, S.ACTIVE, S.ACTIVE, ((DUE, False), (CHANGES, True)))
    report = model_check(_checked(_replace(old, attrs.evolve(old, dest=S.RESUMED))))
    assert _broken(report) == {"2": (FRESH, "record[checkpoint_due=False][changes_work=True]")}


def test_before_operation_without_checkpoint_due_breaks_rule_7() -> None:
    rows = tuple(
        r for r in TABLE.rows if not (r.event is Event.BEFORE_OPERATION and r.source is S.ACTIVE)
    )
    unguarded = Row(Event.BEFORE_OPERATION, S.ACTIVE, S.ACTIVE, (), Effect.RECORD_WORK)
    report = model_check(_checked((*rows, unguarded)))
    assert _broken(report) == {"7": (FRESH, "before_operation")}
    assert (
        report.violations[0].detail == "before_operation in ACTIVE does not consult checkpoint_due"
    )


def test_trap_state_breaks_rule_4_at_the_shortest_path_into_it() -> None:
    # Only ACTIVE's internal rows stay: ACTIVE is a trap, and most outcomes fire nothing.
    rows = tuple(r for r in TABLE.rows if r.source is not S.ACTIVE or r.dest is None)
    report = model_check(_unchecked(rows))
    assert _broken(report) == {
        "4": (FRESH,),
        "determinism": (FRESH, "task_completed[checkpoint_due=True][changes_work=True]"),
    }


def test_overlapping_rows_break_determinism() -> None:
    duplicate = Row(Event.COMPLETE, S.ACTIVE, S.COMPLETED, (), Effect.FINALIZE)
    report = model_check(_unchecked((*TABLE.rows, duplicate)))
    assert _broken(report) == {"determinism": (FRESH, "complete")}


def test_report_prints_the_shortest_sequence_with_rows() -> None:
    old = _row(Event.SAVE, S.ACTIVE, S.CHECKPOINTED, ((UNSAVED, True),))
    spec = _checked(_replace(old, attrs.evolve(old, effect=None)))
    text = model_check(spec, depth=3).format()
    save_index = spec.rows.index(attrs.evolve(old, effect=None))
    assert "    FAIL 3           " + RULES["3"] in text
    assert "         shortest sequence (2 events):" in text
    assert "           1. load [restore_available=False]: row 1 " in text
    assert (
        f"           2. save [has_unsaved=True]: row {save_index} (save [has_unsaved]) "
        "ACTIVE -> CHECKPOINTED"
    ) in text
    assert text.endswith(f"  result: FAILED, 1 of {len(RULES)} rules broken")


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
    assert done.stdout.endswith("  result: OK, all 10 rules hold\n")


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
