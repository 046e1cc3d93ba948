"""The decide-then-do step (lifecycle.session.step), rule by rule.

A :class:`Step` holds one event's facts and answers the table's guards from them; the
machine hands it the row that fired and it runs that row's effect. These tests build
steps directly: the facts are plain values, the evaluators a function that counts its
calls, and the persistence side an :class:`Effects` that records what it is asked to do
(the step's only collaborator, so what it records is exactly what the step did).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pytest

from lifecycle.errors import LifecycleError
from lifecycle.machine import EffectFailed, fire
from lifecycle.records import Checkpoint, CheckpointType, Task, WorkState
from lifecycle.session.step import Edit, Snapshot, Step
from lifecycle.spec import TABLE, Effect, Event, Guard, Row, SessionState
from lifecycle.triggers.base import Activity, CheckpointCall, CheckpointKind

S = SessionState
AT = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)
EMPTY = Snapshot("", {}, {}, WorkState())
WORK = WorkState(active_tasks=(Task(id="T1", description="write the step tests"),))
SAVED = Snapshot("build", {"done": 1}, {"branch": "main"}, WORK)
CHECKPOINT = Checkpoint(id="cp-1", timestamp=AT, phase="build", progress={"done": 1},
                        context={"branch": "main"}, state=WORK)  # fmt: skip


def call_of(kind: CheckpointKind) -> CheckpointCall:
    return CheckpointCall.of(kind, AT, trigger=f"test-{kind.value}", reason="a test asked")


class Recorder:
    """The persistence side: records each call it gets, in order, with its arguments."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def restore(self, step: Step, checkpoint: Checkpoint) -> None:
        self.calls.append(("restore", step, checkpoint))

    def start_fresh(self, step: Step) -> None:
        self.calls.append(("start_fresh", step))

    def record(self, step: Step) -> None:
        self.calls.append(("record", step))

    def write_checkpoint(self, step: Step) -> None:
        self.calls.append(("write_checkpoint", step))
        if self.fail is not None:
            raise self.fail

    def finalize(self, step: Step, *, checkpoint: bool) -> None:
        self.calls.append(("finalize", step, checkpoint))


class Evaluators:
    """The trigger evaluators: return ``result`` and remember each question asked."""

    def __init__(self, result: CheckpointCall | None) -> None:
        self.result = result
        self.asked: list[tuple[Activity, bool]] = []

    def __call__(self, activity: Activity, unsaved: bool) -> CheckpointCall | None:
        self.asked.append((activity, unsaved))
        return self.result


def make_step(
    event: Event = Event.RECORD,
    *,
    before: Snapshot = SAVED,
    saved: Snapshot | None = SAVED,
    effects: Recorder | None = None,
    **kwargs: Any,
) -> Step:
    return Step(Activity(event, AT), before, saved, effects or Recorder(), **kwargs)


# -- Snapshot and Edit -------------------------------------------------------------------------


def test_a_snapshot_of_a_checkpoint_holds_its_phase_progress_context_and_work() -> None:
    assert Snapshot.of(CHECKPOINT) == Snapshot("build", {"done": 1}, {"branch": "main"}, WORK)


def test_an_empty_edit_keeps_every_field_as_the_same_object() -> None:
    after = Edit().apply(SAVED)
    assert after == SAVED
    assert after.phase is SAVED.phase
    assert after.progress is SAVED.progress
    assert after.context is SAVED.context
    assert after.work is SAVED.work


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (Edit(phase="ship"), Snapshot("ship", {"done": 1}, {"branch": "main"}, WORK)),
        (Edit(progress={"done": 2}), Snapshot("build", {"done": 2}, {"branch": "main"}, WORK)),
        (Edit(context={"b": "x"}), Snapshot("build", {"done": 1}, {"b": "x"}, WORK)),
        (
            Edit(lambda w: WorkState(blockers=("ci red",))),
            Snapshot("build", {"done": 1}, {"branch": "main"}, WorkState(blockers=("ci red",))),
        ),
        (Edit(label="cp-mine"), SAVED),
    ],
    ids=["phase", "progress", "context", "change", "label"],
)
def test_edit_apply_sets_what_it_names_and_keeps_every_unchanged_field(
    edit: Edit, expected: Snapshot
) -> None:
    assert edit.apply(SAVED) == expected


def test_edit_apply_sets_an_empty_phase_progress_and_context_too() -> None:
    """An empty value is a value: only None means "unchanged"."""
    edit = Edit(phase="", progress={}, context={})
    assert edit.apply(SAVED) == Snapshot("", {}, {}, WORK)


def test_the_change_is_given_the_work_before_the_event() -> None:
    seen: list[WorkState] = []
    Edit(lambda w: seen.append(w) or w).apply(SAVED)
    assert seen == [WORK]


# -- the facts ---------------------------------------------------------------------------------


def test_the_state_after_the_event_is_computed_once() -> None:
    seen: list[WorkState] = []

    def change(work: WorkState) -> WorkState:
        seen.append(work)
        return WorkState(blockers=("x",))

    step = make_step(edit=Edit(change))
    first = step.after
    assert step.after is first
    assert seen == [WORK]
    assert first.work == WorkState(blockers=("x",))


def test_set_after_replaces_the_state_to_write() -> None:
    step = make_step(edit=Edit(phase="ship"))
    merged = Snapshot("merged", {}, {}, WorkState(blockers=("theirs",)))
    step.set_after(merged)
    assert step.after is merged


def test_a_new_step_has_no_failure_no_warnings_and_its_moment_is_the_activitys() -> None:
    step = make_step()
    assert step.write_failed is False
    assert step.failure is None
    assert step.warnings == []
    assert step.at == AT


def test_has_unsaved_compares_the_state_after_the_event_with_the_last_durable_checkpoint() -> None:
    assert make_step(edit=Edit()).guard(Guard.HAS_UNSAVED) is False
    assert make_step(edit=Edit(phase="ship")).guard(Guard.HAS_UNSAVED) is True
    assert make_step(edit=Edit(), before=EMPTY).guard(Guard.HAS_UNSAVED) is True
    # before the first checkpoint everything is unsaved, even an empty session
    assert make_step(edit=Edit(), before=EMPTY, saved=None).guard(Guard.HAS_UNSAVED) is True


def test_restore_is_available_only_with_a_restore_candidate() -> None:
    assert make_step(Event.LOAD).guard(Guard.RESTORE_AVAILABLE) is False
    assert make_step(Event.LOAD, restore=CHECKPOINT).guard(Guard.RESTORE_AVAILABLE) is True


def test_saved_is_restored_is_false_unless_the_facade_says_so() -> None:
    assert make_step().guard(Guard.SAVED_IS_RESTORED) is False
    assert make_step(saved_is_restored=True).guard(Guard.SAVED_IS_RESTORED) is True


@pytest.mark.parametrize("kind", list(CheckpointKind))
def test_a_checkpoint_is_due_when_the_evaluators_call_for_one_and_risk_only_for_risk(
    kind: CheckpointKind,
) -> None:
    step = make_step(evaluate=Evaluators(call_of(kind)))
    assert step.guard(Guard.CHECKPOINT_DUE) is True
    assert step.guard(Guard.RISK_DUE) is (call_of(kind).type is CheckpointType.RISK)
    assert step.guard(Guard.RISK_DUE) is (kind is CheckpointKind.RISK)


def test_no_checkpoint_is_due_when_the_evaluators_call_for_none() -> None:
    step = make_step(evaluate=Evaluators(None))
    assert step.guard(Guard.CHECKPOINT_DUE) is False
    assert step.guard(Guard.RISK_DUE) is False
    assert step.triggered() is None


def test_no_checkpoint_is_due_without_evaluators_or_a_manual_call() -> None:
    step = make_step()
    assert step.triggered() is None
    assert step.guard(Guard.CHECKPOINT_DUE) is False
    assert step.guard(Guard.RISK_DUE) is False


def test_the_evaluators_are_asked_once_per_event_with_the_activity_and_has_unsaved() -> None:
    evaluators = Evaluators(call_of(CheckpointKind.RISK))
    step = make_step(Event.BEFORE_OPERATION, edit=Edit(phase="ship"), evaluate=evaluators)
    for _ in range(3):
        assert step.guard(Guard.CHECKPOINT_DUE) is True
        assert step.guard(Guard.RISK_DUE) is True
        assert step.triggered() == call_of(CheckpointKind.RISK)
    assert evaluators.asked == [(Activity(Event.BEFORE_OPERATION, AT), True)]
    assert step.call == call_of(CheckpointKind.RISK)


def test_evaluators_that_call_for_nothing_are_still_asked_only_once() -> None:
    evaluators = Evaluators(None)
    step = make_step(edit=Edit(), evaluate=evaluators)
    assert step.triggered() is None
    assert step.guard(Guard.RISK_DUE) is False
    assert step.guard(Guard.CHECKPOINT_DUE) is False
    assert step.triggered() is None
    assert evaluators.asked == [(Activity(Event.RECORD, AT), False)]


def test_the_evaluators_are_not_asked_at_all_for_a_manual_call() -> None:
    evaluators = Evaluators(call_of(CheckpointKind.RISK))
    manual = call_of(CheckpointKind.MANUAL)
    step = make_step(Event.SAVE, call=manual, evaluate=evaluators)
    assert step.triggered() is manual
    assert step.guard(Guard.CHECKPOINT_DUE) is True
    assert step.guard(Guard.RISK_DUE) is False
    assert evaluators.asked == []


def test_the_guard_cache_asks_each_fact_once_so_a_later_change_to_it_is_not_seen() -> None:
    step = make_step(Event.LOAD, restore=CHECKPOINT, saved_is_restored=True)
    assert step.guard(Guard.RESTORE_AVAILABLE) is True
    assert step.guard(Guard.SAVED_IS_RESTORED) is True
    step.restore = None
    step.saved_is_restored = False
    assert step.guard(Guard.RESTORE_AVAILABLE) is True
    assert step.guard(Guard.SAVED_IS_RESTORED) is True


def test_the_guard_cache_keeps_each_guards_own_value() -> None:
    step = make_step(restore=CHECKPOINT, saved_is_restored=False)
    assert step.guard(Guard.RESTORE_AVAILABLE) is True
    assert step.guard(Guard.SAVED_IS_RESTORED) is False
    assert step.guard(Guard.HAS_UNSAVED) is False
    assert step.guard(Guard.RESTORE_AVAILABLE) is True


def test_write_failed_is_never_cached() -> None:
    step = make_step()
    assert step.guard(Guard.WRITE_FAILED) is False
    step.write_failed = True
    assert step.guard(Guard.WRITE_FAILED) is True
    step.write_failed = False
    assert step.guard(Guard.WRITE_FAILED) is False


class NewGuard(StrEnum):
    """A guard added to the table without a fact in the step."""

    REVIEWED = "reviewed"


class NewEffect(StrEnum):
    """An effect added to the table without a handler in the step."""

    NOTIFY = "notify"


def test_a_guard_the_step_has_no_fact_for_is_a_named_error() -> None:
    with pytest.raises(LifecycleError) as info:
        make_step().guard(NewGuard.REVIEWED)  # type: ignore[arg-type]
    assert str(info.value) == "no fact for guard reviewed"


# -- do ----------------------------------------------------------------------------------------


def _row(effect: Effect | None) -> Row:
    dest = None if effect is None else S.CHECKPOINTED
    return Row(Event.SAVE, S.ACTIVE, dest, (), effect)


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        (Effect.RESTORE, ("restore", CHECKPOINT)),
        (Effect.START_FRESH, ("start_fresh",)),
        (Effect.RECORD_WORK, ("record",)),
        (Effect.WRITE_CHECKPOINT, ("write_checkpoint",)),
        (Effect.FINALIZE, ("finalize", False)),
        (Effect.CHECKPOINT_AND_FINALIZE, ("finalize", True)),
    ],
)
def test_do_runs_exactly_the_rows_effect_once(effect: Effect, expected: tuple[Any, ...]) -> None:
    effects = Recorder()
    step = make_step(effects=effects, restore=CHECKPOINT)
    step.do(_row(effect))
    assert len(effects.calls) == 1
    name, given, *args = effects.calls[0]
    assert (name, *args) == expected
    assert given is step
    assert [type(a) for a in args] == [type(a) for a in expected[1:]]  # False, not None


def test_do_runs_nothing_for_a_row_without_an_effect() -> None:
    effects = Recorder()
    make_step(effects=effects).do(_row(None))
    assert effects.calls == []


def test_do_refuses_an_effect_it_has_no_handler_for() -> None:
    effects = Recorder()
    row = Row(Event.SAVE, S.ACTIVE, S.CHECKPOINTED, (), NewEffect.NOTIFY)  # type: ignore[arg-type]
    with pytest.raises(LifecycleError) as info:
        make_step(effects=effects).do(row)
    assert str(info.value) == "no handler for effect notify"
    assert effects.calls == []


# -- the step driven by the machine ------------------------------------------------------------


def test_a_save_through_the_machine_asks_the_table_and_writes_once() -> None:
    effects = Recorder()
    step = make_step(Event.SAVE, effects=effects, edit=Edit(phase="ship"),
                     call=call_of(CheckpointKind.MANUAL))  # fmt: skip
    row, state = fire(S.CHECKPOINTED, Event.SAVE, step)
    assert row.label == "save [has_unsaved, !write_failed] / write_checkpoint"
    assert state is S.CHECKPOINTED
    assert effects.calls == [("write_checkpoint", step)]
    assert step.failure is None and step.write_failed is False


def test_a_failed_write_through_the_machine_takes_the_failure_row_and_keeps_the_failure() -> None:
    cause = OSError("disk full")
    effects = Recorder(fail=EffectFailed(cause))
    step = make_step(Event.SAVE, effects=effects, edit=Edit(phase="ship"),
                     call=call_of(CheckpointKind.MANUAL))  # fmt: skip
    row, state = fire(S.CHECKPOINTED, Event.SAVE, step)
    assert row == TABLE.resolve(Event.SAVE, S.CHECKPOINTED,
                                {Guard.HAS_UNSAVED: True, Guard.WRITE_FAILED: True})  # fmt: skip
    assert state is S.ACTIVE
    assert effects.calls == [("write_checkpoint", step), ("record", step)]
    assert step.write_failed is True
    assert step.failure is not None and step.failure.cause is cause


def test_a_load_through_the_machine_restores_the_candidate_read_before_dispatch() -> None:
    effects = Recorder()
    step = make_step(Event.LOAD, effects=effects, before=EMPTY, saved=None, restore=CHECKPOINT)
    row, state = fire(S.INITIALIZING, Event.LOAD, step)
    assert (row.effect, state) == (Effect.RESTORE, S.RESUMED)
    assert effects.calls == [("restore", step, CHECKPOINT)]
