"""Consulting the evaluators together: precedence risk, error, task, time; first call wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifecycle.records import ErrorContext, Task
from lifecycle.spec import Event
from lifecycle.triggers import (
    PRECEDENCE,
    Activity,
    Operation,
    RiskSettings,
    SessionFacts,
    TimeSettings,
    default_evaluators,
    evaluate_all,
)

NOW = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)


FACTS = SessionFacts()
TIME_DUE = SessionFacts(active_seconds=3600.0)
AUTO = "30-minute-interval"


def test_default_evaluators_come_in_precedence_order() -> None:
    assert (
        tuple(e.name for e in default_evaluators())
        == PRECEDENCE
        == (
            "risk",
            "error",
            "task",
            "time",
        )
    )


@pytest.mark.parametrize(
    ("activity", "trigger"),
    [
        (
            Activity(Event.BEFORE_OPERATION, NOW, operation=Operation(command="git reset --hard")),
            "risk:deletion",
        ),
        (Activity(Event.ERROR_RECOVERED, NOW, error=ErrorContext(error="x")), "error-recovery"),
        (Activity(Event.TASK_COMPLETED, NOW, task=Task(id="T1", priority="high")), "task-complete"),
        (Activity(Event.TASK_COMPLETED, NOW, task=Task(id="T1", priority="low")), AUTO),
        (Activity(Event.BEFORE_OPERATION, NOW, operation=Operation(command="ls")), AUTO),
        (Activity(Event.TICK, NOW), AUTO),
    ],
)
def test_the_first_evaluator_that_calls_wins_over_a_due_time_checkpoint(
    activity: Activity, trigger: str
) -> None:
    call = evaluate_all(default_evaluators(), activity, TIME_DUE, NOW)
    assert call is not None
    assert call.trigger == trigger


def test_no_call_when_nothing_is_due() -> None:
    assert evaluate_all(default_evaluators(), Activity(Event.TICK, NOW), FACTS, NOW) is None


def test_no_evaluators_never_call() -> None:
    assert evaluate_all((), Activity(Event.TICK, NOW), TIME_DUE, NOW) is None


def test_default_evaluators_use_the_settings_given() -> None:
    evaluators = default_evaluators(
        time=TimeSettings(interval=timedelta(minutes=10)), risk=RiskSettings(max_files=1)
    )
    view = SessionFacts(active_seconds=600.0)
    tick = evaluate_all(evaluators, Activity(Event.TICK, NOW), view, NOW)
    assert tick is not None
    assert tick.trigger == "10-minute-interval"
    op = Operation(paths=("a.txt", "b.txt"))
    before = Activity(Event.BEFORE_OPERATION, NOW, operation=op)
    call = evaluate_all(evaluators, before, FACTS, NOW)
    assert call is not None
    assert call.trigger == "risk:bulk"
