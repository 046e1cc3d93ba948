"""The automatic checkpoint triggers (time, task, risk, error recovery).

Four pure evaluators, consulted in :data:`PRECEDENCE` order; the first call wins:

- :class:`RiskTrigger` before a high-risk operation (``checkpoints/risk-{operation}-{ts}``),
- :class:`ErrorTrigger` after recovering from an error (``checkpoints/recovery-{ts}``),
- :class:`TaskTrigger` when a high-priority task completes (``checkpoints/task-{id}-{ts}``),
- :class:`TimeTrigger` after 30 minutes of active work (``checkpoints/auto-{ts}``).

Risk comes first because it is the only one that must be written *before*
something happens; a risk checkpoint also resets the active-time account, so a
time checkpoint due at the same event is not lost, only merged into it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lifecycle.keys import CheckpointKind
from lifecycle.spec import Event
from lifecycle.triggers.base import (
    Activity,
    CheckpointCall,
    Evaluator,
    Operation,
    SessionFacts,
    SessionView,
)
from lifecycle.triggers.error import ErrorSettings, ErrorTrigger
from lifecycle.triggers.task import TaskSettings, TaskTrigger
from lifecycle.triggers.time import ActiveTime, TimeSettings, TimeTrigger, advance, reset

if TYPE_CHECKING:
    from lifecycle.triggers.risk import (
        CommandPattern,
        PathPattern,
        RiskCategory,
        RiskMatch,
        RiskSettings,
        RiskTrigger,
        classify,
    )

#: Imported from lifecycle.triggers.risk on first use: compiling its ~90 default
#: patterns costs tens of milliseconds, and most processes (a Claude Code hook per
#: event) never see an operation to classify.
_RISK_NAMES = frozenset(
    {"CommandPattern", "PathPattern", "RiskCategory", "RiskMatch", "RiskSettings", "RiskTrigger",
     "classify"}
)  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _RISK_NAMES:
        return getattr(importlib.import_module("lifecycle.triggers.risk"), name)
    raise AttributeError(f"module 'lifecycle.triggers' has no attribute {name!r}")


class DeferredRiskTrigger:
    """The default :class:`~lifecycle.triggers.risk.RiskTrigger`, built on the first
    operation it is asked about (see :data:`_RISK_NAMES`); the same verdicts."""

    name = "risk"
    events = frozenset({Event.BEFORE_OPERATION})

    def __init__(self) -> None:
        self._trigger: Evaluator | None = None

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None:
        if activity.event is not Event.BEFORE_OPERATION or activity.operation is None:
            return None
        if self._trigger is None:
            from lifecycle.triggers.risk import RiskTrigger

            self._trigger = RiskTrigger()
        return self._trigger.evaluate(activity, facts, now)


#: The order in which the machine's ``checkpoint_due`` guard consults the evaluators.
PRECEDENCE: tuple[str, ...] = ("risk", "error", "task", "time")


def default_evaluators(
    *,
    risk: RiskSettings | None = None,
    error: ErrorSettings | None = None,
    task: TaskSettings | None = None,
    time: TimeSettings | None = None,
) -> tuple[Evaluator, ...]:
    """The four evaluators in :data:`PRECEDENCE` order, with default settings unless given."""
    if risk is None:
        risky: Evaluator = DeferredRiskTrigger()
    else:
        from lifecycle.triggers.risk import RiskTrigger

        risky = RiskTrigger(risk)
    return (
        risky,
        ErrorTrigger(error or ErrorSettings()),
        TaskTrigger(task or TaskSettings()),
        TimeTrigger(time or TimeSettings()),
    )


def evaluate_all(
    evaluators: Iterable[Evaluator], activity: Activity, facts: SessionFacts, now: datetime
) -> CheckpointCall | None:
    """The first evaluator's call, in the order given; None when none calls for a checkpoint."""
    for evaluator in evaluators:
        call = evaluator.evaluate(activity, facts, now)
        if call is not None:
            return call
    return None


__all__ = [
    "PRECEDENCE",
    "ActiveTime",
    "Activity",
    "CheckpointCall",
    "CheckpointKind",
    "CommandPattern",
    "ErrorSettings",
    "ErrorTrigger",
    "Evaluator",
    "Operation",
    "PathPattern",
    "RiskCategory",
    "RiskMatch",
    "RiskSettings",
    "RiskTrigger",
    "SessionFacts",
    "SessionView",
    "TaskSettings",
    "TaskTrigger",
    "TimeSettings",
    "TimeTrigger",
    "advance",
    "classify",
    "default_evaluators",
    "evaluate_all",
    "reset",
]
