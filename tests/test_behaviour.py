"""One behavioural suite, run against every manager: SessionManager, and AsyncSessionManager
stepping inline and in worker threads (see tests/managers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import settings
from managers import KINDS, BlockingAsyncManager, factory

from lifecycle import (
    Checkpoint,
    IllegalTransition,
    InvalidRecord,
    Learning,
    LearningType,
    SessionState,
    codec,
    open_store,
)
from lifecycle.journal import entries, message, replay
from lifecycle.records import EventMessage, Pointer
from lifecycle.testing import LifecycleRules

S = SessionState


@pytest.fixture(params=KINDS)
def new(request: pytest.FixtureRequest, clock: Any) -> Iterator[Callable[..., Any]]:
    """``new(store=None, project="demo", **kwargs)``: a manager of the parametrized kind."""
    make = factory(request.param)
    made: list[Any] = []

    def build(store: Any = None, project: str = "demo", **kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        manager = make(store or open_store("memory://"), project, **kwargs)
        made.append(manager)
        return manager

    yield build
    for manager in made:
        if isinstance(manager, BlockingAsyncManager):
            manager.close()


def keys_and_values(store: Any) -> dict[str, bytes]:
    return {e.key: e.value for e in store.scan("")}


# -- the seed's API and the meaning of the states ----------------------------------------


def test_a_fresh_session_starts_active(new) -> None:
    m = new()
    start = m.start_session(command="impl", restore=True)
    assert (start.is_fresh_session, start.restored_state, m.state) == (True, None, S.ACTIVE)
    assert start.session_id.startswith("session-")


def test_a_checkpoint_is_restored_by_the_next_manager(new, clock) -> None:
    store = open_store("memory://")
    m = new(store)
    m.start_session(command="impl")
    clock.advance(minutes=1)
    cp = m.create_checkpoint(
        Checkpoint(
            id="cp-20260125-120000",
            timestamp=clock(),
            phase="Phase 1: Foundation",
            progress={"tasks_completed": 5, "tasks_total": 10},
            context={"current_task": "T006"},
        )
    )
    assert m.state is S.CHECKPOINTED and cp.written
    clock.advance(minutes=5)
    m2 = new(store)
    start = m2.start_session(command="impl", restore=True)
    assert (start.is_fresh_session, start.checkpoint_id) == (False, cp.checkpoint_id)
    assert start.restored_state == {
        "phase": "Phase 1: Foundation",
        "progress": {"tasks_completed": 5, "tasks_total": 10},
        "context": {"current_task": "T006"},
    }
    assert m2.state is S.RESUMED
    assert m2.report().splitlines()[:3] == [
        "Session restored:",
        "  Phase: Phase 1: Foundation",
        "  Progress: 5/10 (50%)",
    ]


def test_work_makes_the_session_active_and_a_save_checkpointed(new) -> None:
    m = new()
    m.start_session()
    m.create_checkpoint(phase="P1")
    assert (m.state, m.has_unsaved_work) == (S.CHECKPOINTED, False)
    m.record_decision("Use WAL", rationale="concurrent readers")
    assert (m.state, m.has_unsaved_work) == (S.ACTIVE, True)
    m.create_checkpoint()
    assert (m.state, m.has_unsaved_work) == (S.CHECKPOINTED, False)


def test_a_save_with_nothing_changed_is_a_no_op(new) -> None:
    m = new()
    m.start_session()
    first = m.create_checkpoint(phase="P1", progress={"completed": 1})
    again = m.create_checkpoint(phase="P1", progress={"completed": 1})
    assert (again.written, again.checkpoint_id) == (False, first.checkpoint_id)
    assert len(m.list_checkpoints()) == 1


def test_an_illegal_event_raises_and_changes_nothing(new) -> None:
    m = new()
    with pytest.raises(IllegalTransition) as err:
        m.record_decision("too early")
    assert (err.value.state, err.value.event) == ("INITIALIZING", "record")
    assert err.value.legal_events == ("complete", "load")
    assert m.state is S.INITIALIZING
    assert m.store.list_keys() == []


def test_completed_is_terminal(new) -> None:
    m = new()
    m.start_session()
    m.end_session()
    before = keys_and_values(m.store)
    for call in (m.start_session, m.tick, lambda: m.create_checkpoint(phase="x"), m.end_session):
        with pytest.raises(IllegalTransition):
            call()
    assert m.state is S.COMPLETED
    assert keys_and_values(m.store) == before


def test_end_session_writes_a_final_checkpoint_and_summary(new) -> None:
    m = new()
    m.start_session(command="impl")
    m.add_task("T1", "do it", status="in_progress")
    m.complete_task("T1")
    end = m.end_session(success=True, phase="Phase 1")
    assert end.checkpoint is not None and end.checkpoint.trigger == "session-end"
    assert (end.summary.tasks_completed, end.summary.phase) == (("T1",), "Phase 1")
    assert m.session.end_time is not None
    assert m.session.success is True
    assert {"session/current", "session/last", "checkpoints/latest"} <= set(m.store.list_keys())


def test_checkpoint_ids_are_unique_and_ordered_with_a_frozen_clock(new) -> None:
    m = new()
    m.start_session()
    ids = [m.create_checkpoint(progress={"i": i}).checkpoint_id for i in range(5)]
    assert len(set(ids)) == 5 and ids == sorted(ids)
    pointer = codec.decode(Pointer, m.store.get("checkpoints/latest").value)
    assert pointer.id == ids[-1]


def test_a_high_priority_task_completion_checkpoints(new) -> None:
    m = new()
    m.start_session()
    out = m.complete_task("TASK-006", "Refactor load", priority="high")
    assert out.checkpointed and m.state is S.CHECKPOINTED
    assert out.checkpoint.key.startswith("checkpoints/task-TASK-006-")
    assert [t.id for t in m.read_checkpoint().state.completed_tasks] == ["TASK-006"]


def test_capture_learning_stores_it_under_its_key(new, clock) -> None:
    m = new()
    m.start_session()
    res = m.capture_learning(
        Learning(
            type=LearningType.SOLUTION,
            key="learning/solutions/jwt-expiry-fix",
            content="Fixed by increasing token expiry",
            timestamp=clock(),
        )
    )
    assert (res.success, res.learning_key) == (True, "learning/solutions/jwt-expiry-fix")
    assert m.learnings_count() == 1
    stored = codec.decode(Learning, m.store.get(res.learning_key).value)
    assert stored.session_id == m.session_id


def test_attach_continues_the_open_session_with_its_unsaved_work(new) -> None:
    store = open_store("memory://")
    first = new(store, "p")
    first.start_session()
    first.create_checkpoint(phase="P1")
    first.record_decision("Use WAL")
    first.save_context()
    second = new(store, "p")
    assert second.attach() is True
    assert (second.session_id, second.state, second.work) == (
        first.session_id,
        S.ACTIVE,
        first.work,
    )
    assert second.has_unsaved_work is True
    second.create_checkpoint()
    assert second.state is S.CHECKPOINTED


# -- messages, the journal and idempotency ---------------------------------------------


def drive(m: Any, clock: Any) -> None:
    m.start_session(command="impl")
    m.add_task("T1", "first", status="in_progress", priority="high")
    clock.advance(minutes=3)
    m.complete_task("T1")
    m.record_decision("Use WAL", rationale="readers", impact="db")
    m.record_file_change("a.py", ["edit", "create"], 4)
    m.add_open_question("why?")
    m.add_blocker("CI red")
    clock.advance(minutes=40)
    m.tick()
    m.before_operation("rm -rf build", deletes=True)
    m.error_recovered("flaky test", ["retried"])
    m.clear_blocker("CI red")
    m.create_checkpoint(phase="P2", progress={"done": 1})
    m.record_discovery(pattern="p1", insight="i1")


def test_apply_a_message_is_the_same_as_calling_the_method(new, clock) -> None:
    by_call, by_message = new(project="a"), new(project="b")
    by_call.start_session()
    by_call.complete_task("T1", priority="high")
    by_message.apply(EventMessage("start_session"))
    by_message.apply(EventMessage("complete_task", {"task_id": "T1", "priority": "high"}))
    assert (by_message.state, by_message.work) == (by_call.state, by_call.work)
    assert by_message.last_checkpoint.id == by_call.last_checkpoint.id


@pytest.mark.parametrize(
    ("msg", "says"),
    [
        (EventMessage("explode"), "unknown event 'explode'"),
        (EventMessage("complete_task", {"task": "T1"}), "it takes (task_id"),
        (EventMessage("tick", {"extra": 1}), "'extra'"),
    ],
)
def test_a_bad_message_is_an_invalid_record_and_changes_nothing(new, msg, says) -> None:
    m = new()
    m.start_session()
    before = (m.state, m.work, keys_and_values(m.store))
    with pytest.raises(InvalidRecord, match=says.replace("(", r"\(")):
        m.apply(msg)
    assert (m.state, m.work, keys_and_values(m.store)) == before


def test_a_repeated_idempotency_key_changes_nothing_and_returns_the_first_result(new) -> None:
    m = new(journal=True)
    m.start_session()
    msg = message("complete_task", "T1", priority="high", idempotency_key="run-1/T1")
    first = m.apply(msg)
    state = (m.state, m.work, keys_and_values(m.store))
    again = m.apply(msg)
    assert again == first
    assert (m.state, m.work, keys_and_values(m.store)) == state
    assert [t.id for t in m.work.completed_tasks] == ["T1"]


def test_every_applied_event_is_journaled_in_order(new, clock) -> None:
    m = new(journal=True)
    drive(m, clock)
    with pytest.raises(IllegalTransition):
        m.start_session()  # refused: not journaled
    journal = list(entries(m.store, m.session_id))
    assert [e.seq for e in journal] == list(range(1, len(journal) + 1))
    assert [e.message.name for e in journal] == [
        "start_session",
        "add_task",
        "complete_task",
        "record_decision",
        "record_file_change",
        "add_open_question",
        "add_blocker",
        "tick",
        "before_operation",
        "error_recovered",
        "clear_blocker",
        "create_checkpoint",
        "record_discovery",
    ]
    assert journal[-1].state == m.state.value
    assert journal[2].checkpoint_id == m.session.checkpoints[0].id


def test_replaying_the_journal_rebuilds_the_session(new, clock) -> None:
    store = open_store("memory://")
    m = new(store, journal=True)
    drive(m, clock)
    rebuilt = replay(entries(m.store, m.session_id), project="demo", source=store)
    assert (rebuilt.state, rebuilt.work, rebuilt.phase, rebuilt.progress) == (
        m.state,
        m.work,
        m.phase,
        m.progress,
    )
    assert rebuilt.session == m.session
    assert rebuilt.last_checkpoint == m.read_checkpoint()


# -- the verification kit, on every manager ------------------------------------------------


class _RulesOnAsync(LifecycleRules):
    fault_rate = 0.15

    def make_manager(self, store: Any, clock: Any) -> Any:
        manager = BlockingAsyncManager(store=store, project=self.project, clock=clock)
        self._made = [*getattr(self, "_made", []), manager]
        return manager

    def teardown(self) -> None:
        for manager in getattr(self, "_made", []):
            manager.close()
        super().teardown()


class _RulesOnAsyncThreads(_RulesOnAsync):
    def make_manager(self, store: Any, clock: Any) -> Any:
        manager = BlockingAsyncManager(store=store, project=self.project, clock=clock, offload=True)
        self._made = [*getattr(self, "_made", []), manager]
        return manager


TestLifecycleRulesOnAsyncManager = _RulesOnAsync.TestCase
TestLifecycleRulesOnAsyncManager.settings = settings(
    TestLifecycleRulesOnAsyncManager.settings, stateful_step_count=30
)
TestLifecycleRulesOnAsyncManagerInThreads = _RulesOnAsyncThreads.TestCase
TestLifecycleRulesOnAsyncManagerInThreads.settings = settings(
    TestLifecycleRulesOnAsyncManagerInThreads.settings, stateful_step_count=30, max_examples=20
)
