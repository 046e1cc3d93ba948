"""The task trigger: high-priority completions always checkpoint (design.md rule 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.errors import InvalidSettings
from lifecycle.keys import format_ts, is_valid, parse_checkpoint_key
from lifecycle.records import CheckpointType, Priority, Task
from lifecycle.spec import Event, SessionState
from lifecycle.triggers import (
    Activity,
    CheckpointCall,
    CheckpointKind,
    SessionFacts,
    TaskSettings,
    TaskTrigger,
    default_evaluators,
    evaluate_all,
)

NOW = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)


def done(task: Task | None) -> Activity:
    return Activity(Event.TASK_COMPLETED, NOW, task=task)


def test_high_priority_completion_yields_a_task_checkpoint() -> None:
    task = Task(id="T006", description="JWT auth", priority="high")
    assert TaskTrigger().evaluate(done(task), SessionFacts(), NOW) == CheckpointCall(
        type=CheckpointType.AUTOMATIC,
        trigger="task-complete",
        key=f"checkpoints/task-T006-{format_ts(NOW)}",
        reason="task T006 with priority high completed",
        kind=CheckpointKind.TASK,
        key_name="T006",
    )


@pytest.mark.parametrize("priority", [Priority.LOW, Priority.MEDIUM])
def test_other_priorities_do_not_checkpoint_by_default(priority: Priority) -> None:
    task = Task(id="T1", priority=priority)
    assert (
        TaskTrigger().evaluate(done(task), SessionFacts(tasks_completed_since_checkpoint=99), NOW)
        is None
    )


def test_force_priorities_are_configurable() -> None:
    trigger = TaskTrigger(TaskSettings(force_priorities={"high", "MEDIUM"}))
    assert trigger.evaluate(done(Task(id="T1", priority="medium")), SessionFacts(), NOW) is not None
    assert trigger.evaluate(done(Task(id="T2", priority="low")), SessionFacts(), NOW) is None


def test_a_single_priority_name_is_accepted() -> None:
    assert TaskSettings(force_priorities="medium").force_priorities == frozenset({"medium"})


def test_every_n_completions_checkpoints_on_the_nth() -> None:
    trigger = TaskTrigger(TaskSettings(every_n_completions=3))
    task = Task(id="T9", priority="low")
    assert (
        trigger.evaluate(done(task), SessionFacts(tasks_completed_since_checkpoint=2), NOW) is None
    )
    call = trigger.evaluate(done(task), SessionFacts(tasks_completed_since_checkpoint=3), NOW)
    assert call is not None
    assert call.key == f"checkpoints/task-T9-{format_ts(NOW)}"
    assert call.reason == "task T9 completed: 3 completions since the last checkpoint"


def test_every_n_completions_needs_the_count_from_the_session() -> None:
    trigger = TaskTrigger(TaskSettings(every_n_completions=1))
    assert trigger.evaluate(done(Task(id="T1", priority="low")), SessionFacts(), NOW) is None


def test_completion_without_a_task_counts_but_is_keyed_as_task() -> None:
    trigger = TaskTrigger(TaskSettings(every_n_completions=1))
    assert (
        TaskTrigger().evaluate(done(None), SessionFacts(tasks_completed_since_checkpoint=5), NOW)
        is None
    )
    call = trigger.evaluate(done(None), SessionFacts(tasks_completed_since_checkpoint=1), NOW)
    assert call == CheckpointCall(
        type=CheckpointType.AUTOMATIC,
        trigger="task-complete",
        key=f"checkpoints/task-task-{format_ts(NOW)}",
        reason="a task completed: 1 completions since the last checkpoint",
        kind=CheckpointKind.TASK,
        key_name=None,
    )


@pytest.mark.parametrize("event", [e for e in Event if e is not Event.TASK_COMPLETED])
def test_only_task_completions_are_evaluated(event: Event) -> None:
    activity = Activity(event, NOW, task=Task(id="T1", priority="high"))
    assert TaskTrigger().evaluate(activity, SessionFacts(), NOW) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TaskSettings(every_n_completions=0), "positive integer"),
        (lambda: TaskSettings(every_n_completions=True), "positive integer"),
        (lambda: TaskSettings(force_priorities=3), "set of priority names"),
    ],
)
def test_bad_settings_raise_invalid_settings(build: object, message: str) -> None:
    with pytest.raises(InvalidSettings, match=message):
        build()  # type: ignore[operator]


# -- rule 7: a high-priority task completion always checkpoints -------------------------

_views = st.builds(
    SessionFacts,
    state=st.sampled_from(SessionState),
    active_seconds=st.floats(0, 1e6),
    last_checkpoint_at=st.none() | st.just(NOW - timedelta(minutes=1)),
    last_auto_checkpoint_at=st.none() | st.just(NOW - timedelta(seconds=1)),
    tasks_completed_since_checkpoint=st.integers(0, 100),
)


@given(
    task_id=st.text(min_size=1, max_size=60),
    view=_views,
    moment=st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
)
def test_every_high_priority_completion_yields_a_call_from_the_default_evaluators(
    task_id: str, view: SessionFacts, moment: datetime
) -> None:
    task = Task(id=task_id, priority="high")
    call = evaluate_all(
        default_evaluators(), Activity(Event.TASK_COMPLETED, moment, task=task), view, moment
    )
    assert call is not None
    assert (call.type, call.trigger) == (CheckpointType.AUTOMATIC, "task-complete")
    assert is_valid(call.key)
    parsed = parse_checkpoint_key(call.key)
    assert parsed is not None
    assert parsed[0] == "task"
