"""The error trigger: checkpoint after recovering from an error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lifecycle.keys import format_ts
from lifecycle.records import CheckpointType, ErrorContext
from lifecycle.spec import Event
from lifecycle.triggers import (
    Activity,
    CheckpointCall,
    CheckpointKind,
    ErrorSettings,
    ErrorTrigger,
    SessionFacts,
)

NOW = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)


def recovered(error: ErrorContext | None) -> Activity:
    return Activity(Event.ERROR_RECOVERED, NOW, error=error)


def test_recovery_yields_a_recovery_checkpoint_with_the_error_and_steps() -> None:
    error = ErrorContext(
        error="ImportError: no module named jwt",
        recovery_steps=("pip install pyjwt", "rerun tests"),
        operation="pytest -q",
    )
    assert ErrorTrigger().evaluate(recovered(error), SessionFacts(), NOW) == CheckpointCall(
        type=CheckpointType.RECOVERY,
        trigger="error-recovery",
        key=f"checkpoints/recovery-{format_ts(NOW)}",
        reason=(
            "recovered from error: ImportError: no module named jwt; "
            "recovery steps: pip install pyjwt; rerun tests"
        ),
        operation="pytest -q",
        kind=CheckpointKind.RECOVERY,
    )


def test_recovery_without_steps_names_only_the_error() -> None:
    call = ErrorTrigger().evaluate(recovered(ErrorContext(error="timeout")), SessionFacts(), NOW)
    assert call is not None
    assert (call.reason, call.operation) == ("recovered from error: timeout", None)


def test_recovery_without_context_still_checkpoints() -> None:
    assert ErrorTrigger().evaluate(recovered(None), SessionFacts(), NOW) == CheckpointCall(
        type=CheckpointType.RECOVERY,
        trigger="error-recovery",
        key=f"checkpoints/recovery-{format_ts(NOW)}",
        reason="recovered from an error (no error context given)",
        operation=None,
        kind=CheckpointKind.RECOVERY,
    )


@pytest.mark.parametrize(("length", "clipped"), [(499, False), (500, False), (501, True)])
def test_a_reason_of_up_to_500_characters_is_kept_whole(length: int, clipped: bool) -> None:
    error = "x" * (length - len("recovered from error: "))
    call = ErrorTrigger().evaluate(recovered(ErrorContext(error=error)), SessionFacts(), NOW)
    assert call is not None
    whole = f"recovered from error: {error}"
    assert call.reason == (whole[:497] + "..." if clipped else whole)
    assert len(call.reason) == min(length, 500)


def test_a_traceback_becomes_one_clipped_line() -> None:
    trace = "Traceback (most recent call last):\n" + "  File x.py, line 1\n" * 100
    call = ErrorTrigger().evaluate(recovered(ErrorContext(error=trace)), SessionFacts(), NOW)
    assert call is not None
    assert "\n" not in call.reason
    assert len(call.reason) == 500
    assert call.reason.endswith("...")


def test_disabled_error_trigger_never_calls() -> None:
    trigger = ErrorTrigger(ErrorSettings(enabled=False))
    assert trigger.evaluate(recovered(ErrorContext(error="x")), SessionFacts(), NOW) is None


def test_enabled_must_be_a_bool() -> None:
    with pytest.raises(TypeError):
        ErrorSettings(enabled="no")  # type: ignore[arg-type]


@pytest.mark.parametrize("event", [e for e in Event if e is not Event.ERROR_RECOVERED])
def test_only_error_recoveries_are_evaluated(event: Event) -> None:
    activity = Activity(event, NOW, error=ErrorContext(error="x"))
    assert ErrorTrigger().evaluate(activity, SessionFacts(), NOW) is None
