"""What evaluators see (SessionFacts, a frozen record) and say (CheckpointCall and its kind)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

from lifecycle.errors import InvalidRecord
from lifecycle.keys import CheckpointKind
from lifecycle.records import CheckpointType
from lifecycle.spec import SessionState
from lifecycle.triggers import CheckpointCall, SessionFacts, SessionView
from lifecycle.triggers.base import CHECKPOINT_TYPE

NOW = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)


# -- SessionFacts -----------------------------------------------------------------------


def test_session_view_is_the_old_name_of_session_facts() -> None:
    assert SessionView is SessionFacts


def test_the_default_facts_are_a_session_just_created() -> None:
    assert attrs.asdict(SessionFacts(), recurse=False) == {
        "state": SessionState.INITIALIZING,
        "active_seconds": 0.0,
        "last_checkpoint_at": None,
        "last_auto_checkpoint_at": None,
        "tasks_completed_since_checkpoint": 0,
        "has_unsaved": False,
    }


def test_facts_are_frozen() -> None:
    facts = SessionFacts()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        facts.active_seconds = 1.0  # type: ignore[misc]


def test_facts_are_given_by_name_only() -> None:
    with pytest.raises(TypeError):
        SessionFacts(SessionState.ACTIVE)  # type: ignore[misc]


def test_facts_keep_every_value_given() -> None:
    facts = SessionFacts(
        state=SessionState.RESUMED,
        active_seconds=12.5,
        last_checkpoint_at=NOW,
        last_auto_checkpoint_at=NOW - timedelta(hours=1),
        tasks_completed_since_checkpoint=3,
        has_unsaved=True,
    )
    assert (
        facts.state,
        facts.active_seconds,
        facts.last_checkpoint_at,
        facts.last_auto_checkpoint_at,
        facts.tasks_completed_since_checkpoint,
        facts.has_unsaved,
    ) == (SessionState.RESUMED, 12.5, NOW, NOW - timedelta(hours=1), 3, True)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("active_seconds", 0),
        ("active_seconds", 0.0),
        ("active_seconds", 1),
        ("active_seconds", 1e9),
        ("tasks_completed_since_checkpoint", 0),
        ("tasks_completed_since_checkpoint", 1),
        ("last_checkpoint_at", NOW.astimezone(timezone(timedelta(hours=2)))),
        ("last_auto_checkpoint_at", NOW),
        ("has_unsaved", True),
        ("state", SessionState.COMPLETED),
    ],
)
def test_facts_accept_values_in_range(field: str, value: object) -> None:
    assert getattr(SessionFacts(**{field: value}), field) == value


_MOMENT = "None or a timezone-aware datetime"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("state", "active", "a SessionState"),
        ("active_seconds", -0.000001, "a finite number of seconds >= 0"),
        ("active_seconds", -1, "a finite number of seconds >= 0"),
        ("active_seconds", math.nan, "a finite number of seconds >= 0"),
        ("active_seconds", math.inf, "a finite number of seconds >= 0"),
        ("active_seconds", True, "a finite number of seconds >= 0"),
        ("active_seconds", "60", "a finite number of seconds >= 0"),
        ("active_seconds", None, "a finite number of seconds >= 0"),
        ("last_checkpoint_at", datetime(2025, 1, 31, 14, 30), _MOMENT),
        ("last_checkpoint_at", "2025-01-31T14:30:00Z", _MOMENT),
        ("last_auto_checkpoint_at", datetime(2025, 1, 31, 14, 30), _MOMENT),
        ("last_auto_checkpoint_at", 0, _MOMENT),
        ("tasks_completed_since_checkpoint", -1, "an integer >= 0"),
        ("tasks_completed_since_checkpoint", True, "an integer >= 0"),
        ("tasks_completed_since_checkpoint", 1.0, "an integer >= 0"),
        ("tasks_completed_since_checkpoint", None, "an integer >= 0"),
        ("has_unsaved", 1, "a bool"),
        ("has_unsaved", None, "a bool"),
    ],
)
def test_a_bad_fact_raises_invalid_record_naming_the_field(
    field: str, value: object, expected: str
) -> None:
    with pytest.raises(InvalidRecord) as raised:
        SessionFacts(**{field: value})
    assert str(raised.value) == f"SessionFacts.{field} must be {expected}, got {value!r}"


# -- CheckpointCall.kind ----------------------------------------------------------------


def test_each_kind_has_one_checkpoint_type() -> None:
    assert CHECKPOINT_TYPE == {
        CheckpointKind.MANUAL: CheckpointType.MANUAL,
        CheckpointKind.AUTO: CheckpointType.AUTOMATIC,
        CheckpointKind.TASK: CheckpointType.AUTOMATIC,
        CheckpointKind.RISK: CheckpointType.RISK,
        CheckpointKind.RECOVERY: CheckpointType.RECOVERY,
    }


def test_the_kinds_are_named_as_the_key_grammar_names_them() -> None:
    assert [k.value for k in CheckpointKind] == ["manual", "auto", "task", "risk", "recovery"]


def call(type: object, **kind: object) -> CheckpointCall:
    return CheckpointCall(type=type, trigger="t", key="checkpoints/latest", reason="r", **kind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("type", "kind"),
    [
        (CheckpointType.MANUAL, CheckpointKind.MANUAL),
        (CheckpointType.AUTOMATIC, CheckpointKind.AUTO),
        (CheckpointType.RISK, CheckpointKind.RISK),
        (CheckpointType.RECOVERY, CheckpointKind.RECOVERY),
    ],
)
def test_a_call_that_names_only_its_type_gets_the_one_kind_of_that_type(
    type: CheckpointType, kind: CheckpointKind
) -> None:
    assert call(type).kind is kind


def test_a_task_call_is_automatic_and_says_so_by_its_kind() -> None:
    made = call(CheckpointType.AUTOMATIC, kind=CheckpointKind.TASK)
    assert (made.type, made.kind) == (CheckpointType.AUTOMATIC, CheckpointKind.TASK)


def test_the_kind_is_given_by_name_only() -> None:
    with pytest.raises(TypeError):
        CheckpointCall(CheckpointType.RISK, "t", "k", "r", None, CheckpointKind.RISK)  # type: ignore[misc]


@pytest.mark.parametrize("kind", list(CheckpointKind))
def test_a_kind_of_another_type_raises_invalid_record(kind: CheckpointKind) -> None:
    for other in CheckpointType:
        if other is CHECKPOINT_TYPE[kind]:
            assert call(other, kind=kind).kind is kind
            continue
        with pytest.raises(InvalidRecord) as raised:
            call(other, kind=kind)
        assert str(raised.value) == (
            f"a {kind.value} checkpoint call has type {CHECKPOINT_TYPE[kind].value}, not {other!r}"
        )


def test_a_kind_given_as_a_string_raises_invalid_record() -> None:
    with pytest.raises(InvalidRecord) as raised:
        call(CheckpointType.AUTOMATIC, kind="task")
    assert str(raised.value) == "CheckpointCall.kind must be a CheckpointKind, got 'task'"


def test_a_call_of_an_unknown_type_raises_invalid_record() -> None:
    with pytest.raises(InvalidRecord) as raised:
        call("hourly")
    assert str(raised.value) == "CheckpointCall.type must be a CheckpointType, got 'hourly'"


_KEYS = {
    CheckpointKind.MANUAL: "checkpoints/20250131T143000.000000Z",
    CheckpointKind.AUTO: "checkpoints/auto-20250131T143000.000000Z",
    CheckpointKind.TASK: "checkpoints/task-T-1-20250131T143000.000000Z",
    CheckpointKind.RISK: "checkpoints/risk-T-1-20250131T143000.000000Z",
    CheckpointKind.RECOVERY: "checkpoints/recovery-20250131T143000.000000Z",
}


@pytest.mark.parametrize("kind", list(CheckpointKind))
def test_a_call_of_a_kind_has_the_type_and_the_key_of_that_kind(kind: CheckpointKind) -> None:
    made = CheckpointCall.of(kind, NOW, trigger="t", reason="r", key_name="T 1", operation="op")
    assert made == CheckpointCall(
        CHECKPOINT_TYPE[kind], "t", _KEYS[kind], "r", "op", kind=kind, key_name="T 1"
    )


def test_a_call_of_a_kind_has_no_operation_and_no_key_name_unless_given() -> None:
    made = CheckpointCall.of(CheckpointKind.TASK, NOW, trigger="t", reason="r")
    assert (made.operation, made.key_name, made.key) == (
        None,
        None,
        "checkpoints/task-task-20250131T143000.000000Z",
    )


def test_a_call_of_a_kind_given_as_a_string_raises_invalid_record() -> None:
    with pytest.raises(InvalidRecord) as raised:
        CheckpointCall.of("risk", NOW, trigger="t", reason="r")  # type: ignore[arg-type]
    assert str(raised.value) == "CheckpointCall.kind must be a CheckpointKind, got 'risk'"


@pytest.mark.parametrize("kind", list(CheckpointKind))
def test_a_call_at_another_moment_gets_the_key_of_its_kind_for_that_moment(
    kind: CheckpointKind,
) -> None:
    made = CheckpointCall.of(kind, NOW, trigger="t", reason="r", key_name="T 1", operation="op")
    later = NOW + timedelta(microseconds=1)
    moved = made.at(later)
    assert moved == attrs.evolve(made, key=_KEYS[kind].replace(".000000Z", ".000001Z"))


def test_a_call_built_from_its_type_is_keyed_again_by_its_kind_alone() -> None:
    old = CheckpointCall(CheckpointType.RISK, "risk:ci", "checkpoints/risk-ci-change-x", "r")
    assert old.at(NOW).key == "checkpoints/risk-operation-20250131T143000.000000Z"


# -- the package: lazy risk names, the deferred risk trigger ----------------------------


def test_the_risk_names_come_from_the_risk_module_on_first_use() -> None:
    import lifecycle.triggers as package
    from lifecycle.triggers import risk

    for name in sorted(package._RISK_NAMES):
        assert getattr(package, name) is getattr(risk, name)


def test_an_unknown_name_of_the_package_raises_attribute_error() -> None:
    import lifecycle.triggers as package

    with pytest.raises(AttributeError) as raised:
        package.NoSuchTrigger  # noqa: B018
    assert str(raised.value) == "module 'lifecycle.triggers' has no attribute 'NoSuchTrigger'"


def test_the_deferred_risk_trigger_builds_the_risk_trigger_at_the_first_operation() -> None:
    from lifecycle.spec import Event
    from lifecycle.triggers import Activity, DeferredRiskTrigger, Operation, RiskTrigger

    deferred = DeferredRiskTrigger()
    risky = Operation(command="rm -rf build")
    assert (
        deferred.evaluate(Activity(Event.TICK, NOW, operation=risky), SessionFacts(), NOW) is None
    )
    assert deferred.evaluate(Activity(Event.BEFORE_OPERATION, NOW), SessionFacts(), NOW) is None
    assert deferred._trigger is None
    before = Activity(Event.BEFORE_OPERATION, NOW, operation=risky)
    call = deferred.evaluate(before, SessionFacts(), NOW)
    assert call == RiskTrigger().evaluate(before, SessionFacts(), NOW)
    built = deferred._trigger
    assert built == RiskTrigger()
    assert deferred.evaluate(before, SessionFacts(), NOW) == call
    assert deferred._trigger is built
