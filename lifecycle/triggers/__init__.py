from __future__ import annotations

from typing import Any


def default_evaluators(time: Any = None) -> tuple[Any, ...]:
    from lifecycle.triggers.error import ErrorTrigger
    from lifecycle.triggers.task import TaskTrigger
    from lifecycle.triggers.time import TimeSettings, TimeTrigger

    return (ErrorTrigger(), TaskTrigger(), TimeTrigger(time or TimeSettings()))
