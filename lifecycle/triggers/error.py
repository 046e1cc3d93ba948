"""The error trigger: checkpoint after recovering from an error.

The checkpoint preserves the error context and the recovery steps; the reason
names the error so that the checkpoint list reads as a history of what went
wrong and how it was fixed.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from lifecycle.keys import CheckpointKind
from lifecycle.spec import Event
from lifecycle.triggers.base import Activity, CheckpointCall, SessionFacts

#: Reasons are one line in logs and reports; a stack trace as the error is cut here.
REASON_LIMIT = 500


@attrs.frozen
class ErrorSettings:
    enabled: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


def _one_line(text: str, limit: int = REASON_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


@attrs.frozen
class ErrorTrigger:
    """Checkpoint on every ``error_recovered`` event, unless disabled."""

    settings: ErrorSettings = ErrorSettings()
    name = "error"
    events = frozenset({Event.ERROR_RECOVERED})

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None:
        if activity.event is not Event.ERROR_RECOVERED or not self.settings.enabled:
            return None
        context = activity.error
        if context is None:
            reason = "recovered from an error (no error context given)"
            operation = None
        else:
            reason = f"recovered from error: {context.error}"
            if context.recovery_steps:
                reason += f"; recovery steps: {'; '.join(context.recovery_steps)}"
            operation = context.operation
        return CheckpointCall.of(
            CheckpointKind.RECOVERY,
            now,
            trigger="error-recovery",
            reason=_one_line(reason),
            operation=operation,
        )
