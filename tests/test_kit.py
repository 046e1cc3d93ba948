"""The verification kit (lifecycle.testing): its strategies, its fault injection, and
that each of its rules fails on a manager that breaks it."""

from __future__ import annotations

import importlib.util
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from lifecycle import codec, keys, testing
from lifecycle.errors import StoreUnavailable
from lifecycle.records import Checkpoint, CheckpointType, Learning, WorkState
from lifecycle.session import SessionManager
from lifecycle.spec import Event
from lifecycle.stores import open_store
from lifecycle.testing import (
    FaultSchedule,
    FlakyStore,
    LifecycleRules,
    activities,
    checkpoints,
    decisions,
    error_contexts,
    fault_schedules,
    file_changes,
    learnings,
    tasks,
    work_states,
)
from lifecycle.triggers import (
    ErrorTrigger,
    RiskTrigger,
    TaskTrigger,
    TimeSettings,
    TimeTrigger,
    default_evaluators,
)

ROOT = Path(__file__).resolve().parent.parent

# -- strategies ------------------------------------------------------------------------------

RECORDS: dict[str, st.SearchStrategy[Any]] = {
    "task": tasks(),
    "decision": decisions(),
    "file_change": file_changes(),
    "error_context": error_contexts(),
    "work_state": work_states(),
    "checkpoint": checkpoints(),
    "learning": learnings(),
}


@pytest.mark.parametrize("name", sorted(RECORDS))
@given(data=st.data())
def test_every_record_strategy_builds_records_the_codec_round_trips(
    name: str, data: st.DataObject
) -> None:
    record = data.draw(RECORDS[name])
    if isinstance(record, Checkpoint | Learning):  # stored on their own: the full codec
        assert codec.decode(type(record), codec.encode(record)) == record
        return
    fields = {
        "task": "active_tasks",
        "decision": "decisions",
        "file_change": "files_modified",
        "error_context": "errors",
    }
    # Parts of a checkpoint are stored inside its work state.
    work = record if name == "work_state" else WorkState(**{fields[name]: (record,)})
    assert codec.converter.loads(codec.converter.dumps(work), WorkState) == work


@attrs.frozen
class Reviewer:
    id: str = attrs.field(validator=attrs.validators.min_len(1))
    when: datetime | None = None


@attrs.frozen
class WorkStateWithMore(WorkState):
    """WorkState with new fields (as if added to records.py)."""

    notes: tuple[str, ...] = ()
    reviewers: tuple[Reviewer, ...] = ()
    owner: str | None = None
    budget: dict[str, int] = attrs.field(factory=dict)


FIND_ONE = settings(database=None, max_examples=2000, phases=[Phase.generate])


def test_a_field_added_to_the_work_state_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "WorkState", WorkStateWithMore)
    found = find(
        testing.work_states(),
        lambda w: bool(w.notes and w.reviewers and w.owner and w.budget and w.active_tasks),
        settings=FIND_ONE,
    )
    assert type(found) is WorkStateWithMore
    assert all(note for note in found.notes)  # items of a tuple are non-empty text
    assert all(r.id for r in found.reviewers)  # a min_len validator is respected


def _default(field: Any) -> Any:
    default = field.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def test_every_field_of_a_generated_work_state_varies() -> None:
    for field in attrs.fields(WorkState):
        if field.name != "schema_version":
            default = _default(field)
            find(
                work_states(),
                lambda w, n=field.name, d=default: getattr(w, n) != d,
                settings=FIND_ONE,
            )


def test_records_of_names_a_field_it_cannot_generate_and_refuses_unknown_fields() -> None:
    @attrs.frozen
    class Odd:
        when: complex = 0j

    with pytest.raises(TypeError, match=r"no strategy for .*Odd\.when of type <class 'complex'>"):
        testing.records_of(Odd)
    with pytest.raises(TypeError, match="WorkState has no field nope"):
        testing.records_of(WorkState, nope=st.just(1))


@given(checkpoints())
def test_checkpoint_strategy_agrees_on_id_key_and_timestamp(cp: Checkpoint) -> None:
    from lifecycle import keys

    parsed = keys.parse_checkpoint_key(cp.key)
    assert parsed is not None
    assert parsed[1] == cp.timestamp
    assert cp.id == f"cp-{keys.format_ts(cp.timestamp)}"
    assert (parsed[0] == "risk") is (cp.type is CheckpointType.RISK)


@given(learnings())
def test_learning_strategy_keys_live_under_their_type(learning: Learning) -> None:
    from lifecycle import keys

    assert learning.key.startswith(learning.type.prefix)
    assert keys.is_valid(learning.key)


@given(activities())
def test_activities_carry_exactly_what_their_event_carries(activity: Any) -> None:
    assert (activity.task is not None) is (activity.event is Event.TASK_COMPLETED)
    assert (activity.operation is not None) is (activity.event is Event.BEFORE_OPERATION)
    if activity.error is not None:
        assert activity.event is Event.ERROR_RECOVERED
    assert activity.at.utcoffset() == timedelta(0)


@given(fault_schedules(rate=0.1, horizon=50))
def test_fault_schedules_stay_within_the_horizon_and_rate(schedule: FaultSchedule) -> None:
    assert all(0 <= n < 50 for n in schedule.writes)
    assert len(schedule.writes) <= 5
    assert schedule.reads == frozenset()


def test_fault_schedule_rejects_a_rate_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match=r"rate must be between 0 and 1, got 1\.5"):
        fault_schedules(rate=1.5)


def test_flaky_store_fails_exactly_the_scheduled_writes_and_changes_nothing_then() -> None:
    store = FlakyStore(open_store("memory://"), schedule=FaultSchedule(writes={1, 3}))
    outcomes = []
    for i in range(5):
        try:
            store.put(f"memories/k{i}", b"v")
            outcomes.append("ok")
        except StoreUnavailable as exc:
            outcomes.append(str(exc))
    assert outcomes == [
        "ok",
        "injected fault on put (store write #1)",
        "ok",
        "injected fault on put (store write #3)",
        "ok",
    ]
    assert store.list_keys("memories/") == ["memories/k0", "memories/k2", "memories/k4"]
    assert store.failures == 2


def test_flaky_store_fails_scheduled_reads_only_when_the_schedule_names_them() -> None:
    inner = open_store("memory://")
    inner.put("memories/a", b"1")
    store = FlakyStore(inner, schedule=FaultSchedule(reads={0}))
    with pytest.raises(StoreUnavailable, match="get"):
        store.get("memories/a")
    assert store.get("memories/a") is not None
    store.put("memories/b", b"2")  # writes are not scheduled to fail
    assert store.failures == 1


# -- each rule of the kit fails on a manager that breaks it ----------------------------------

FIND = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate],  # finding the break is the point; shrinking only costs time
    suppress_health_check=list(HealthCheck),
)


def _broken(evaluators: Any, time: TimeSettings | None = None) -> type[LifecycleRules]:
    class Broken(LifecycleRules):
        fault_rate = 0.0

        def make_manager(self, store: Any, clock: Any) -> SessionManager:
            return SessionManager(
                store=store,
                project=self.project,
                clock=clock,
                evaluators=evaluators,
                time_settings=time,
            )

    return Broken


def _failure(rules: type[LifecycleRules]) -> str:
    with pytest.raises(AssertionError) as info:
        run_state_machine_as_test(rules, settings=FIND)
    return str(info.value)


def test_rule_7_fails_when_high_priority_completions_do_not_checkpoint() -> None:
    no_task = _broken((RiskTrigger(), ErrorTrigger(), TimeTrigger()))
    assert "a high-priority completion did not checkpoint" in _failure(no_task)


def test_rule_7_fails_when_a_risky_operation_may_proceed_without_a_checkpoint() -> None:
    no_risk = _broken((ErrorTrigger(), TaskTrigger(), TimeTrigger()))
    assert "a risky operation may proceed with no checkpoint" in _failure(no_risk)


def test_rule_8_fails_when_an_interval_of_work_goes_without_a_checkpoint() -> None:
    # The manager checkpoints after 30 minutes of work; the rules were promised 5.
    promised = TimeSettings(interval=timedelta(minutes=5))

    class Late(_broken(default_evaluators())):  # type: ignore[misc]
        time_settings = promised

    assert re.search(r"\d+\.\d+s of active work and no checkpoint", _failure(Late))


def test_rule_8_fails_when_idle_gaps_count_as_work() -> None:
    lax = TimeSettings(idle_threshold=timedelta(hours=24))  # every gap counts as work
    assert re.search(
        r"active time \d+\.\d+s, expected \d+\.\d+s",
        _failure(_broken(default_evaluators(time=lax), lax)),
    )


def test_rule_8_fails_when_two_automatic_checkpoints_are_closer_than_the_interval() -> None:
    rules = LifecycleRules()
    try:

        def auto(minutes: int) -> Checkpoint:
            at = datetime(2026, 1, 25, 9, tzinfo=UTC) + timedelta(minutes=minutes)
            return Checkpoint(id="cp-1", timestamp=at, key=keys.checkpoint_key("auto", at))

        rules.written = [auto(0), auto(29)]
        with pytest.raises(AssertionError, match="automatic checkpoints at"):
            rules.automatic_checkpoints_an_interval_apart()
        rules.written[1] = auto(30)
        rules.automatic_checkpoints_an_interval_apart()
    finally:
        rules.teardown()


def test_a_subclass_drops_an_invariant_by_overriding_it_without_the_decorator() -> None:
    no_task = _broken((RiskTrigger(), ErrorTrigger(), TimeTrigger()))

    class Tolerant(no_task):  # type: ignore[misc,valid-type]
        def high_priority_completion_checkpoints(self) -> None:
            """Not checked: this manager has no task trigger."""

    run_state_machine_as_test(Tolerant, settings=settings(FIND, max_examples=50))


def test_check_trigger_rules_false_turns_rules_7_and_8_off() -> None:
    class Off(_broken(())):  # type: ignore[misc]
        check_trigger_rules = False

    run_state_machine_as_test(Off, settings=settings(FIND, max_examples=50))


# -- the example in docs/testing.md ------------------------------------------------------------


def _load_example() -> Any:
    spec = importlib.util.spec_from_file_location("kit_example", ROOT / "examples/kit_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_show_the_kit_example_exactly_as_the_suite_runs_it() -> None:
    doc = (ROOT / "docs/testing.md").read_text(encoding="utf-8")
    code = (ROOT / "examples/kit_example.py").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in doc


#: The example itself, collected and run as the user would run it.
TestKitExample = _load_example().TestSQLiteRules
