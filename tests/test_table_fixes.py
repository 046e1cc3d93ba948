"""What the table-driven session fixed, each as the rule it now keeps."""

from __future__ import annotations

from typing import Any

from lifecycle import SessionManager, open_store
from lifecycle.session import CheckpointStatus
from lifecycle.spec import SessionState
from lifecycle.testing import WRITES, FaultyStore, SimulatedClock
from lifecycle.triggers import TaskSettings, default_evaluators

S = SessionState


def _failing() -> FaultyStore:
    return FaultyStore(open_store("memory://"))


def _manager(store: Any = None, **kwargs: Any) -> tuple[SessionManager, SimulatedClock]:
    clock = SimulatedClock()
    store = store if store is not None else open_store("memory://")
    return SessionManager(store=store, project="fixes", clock=clock, **kwargs), clock


def test_a_failed_high_priority_checkpoint_says_it_was_due_and_the_write_failed() -> None:
    store = _failing()
    m, clock = _manager(store)
    m.start_session(restore=False)
    store.fail(WRITES)
    clock.advance(60)
    outcome = m.complete_task("T1", priority="high")
    assert outcome.transition == "task_completed [checkpoint_due, write_failed] / record_work"
    assert outcome.state is S.ACTIVE
    assert outcome.checkpoint is not None
    assert outcome.checkpoint.status is CheckpointStatus.FAILED
    assert [t.id for t in m.work.completed_tasks] == ["T1"]
    assert any("checkpoint not written after 2 attempts" in w for w in m.warnings)


def test_an_undone_change_returns_to_checkpointed_with_nothing_unsaved() -> None:
    m, clock = _manager()
    m.start_session(restore=False)
    m.create_checkpoint(phase="P")
    clock.advance(60)
    assert m.add_blocker("x").state is S.ACTIVE
    outcome = m.clear_blocker("x")
    assert (outcome.state, m.has_unsaved_work) == (S.CHECKPOINTED, False)
    assert m.create_checkpoint().status is CheckpointStatus.UNCHANGED


def test_an_undone_change_after_a_restore_returns_to_resumed() -> None:
    store = open_store("memory://")
    first, clock = _manager(store)
    first.start_session(restore=False)
    first.create_checkpoint(phase="P")
    first.end_session()
    clock.advance(60)
    m = SessionManager(store=store, project="fixes", clock=clock)
    m.start_session(restore=True)
    m.update_context({"branch": "main"})
    assert m.state is S.ACTIVE
    assert m.update_context({"branch": None}).state is S.RESUMED


def test_a_failed_risk_checkpoint_with_nothing_unsaved_stays_and_blocks_the_operation() -> None:
    store = _failing()
    m, clock = _manager(store)
    m.start_session(restore=False)
    m.create_checkpoint(phase="P")
    store.fail(WRITES)
    clock.advance(60)
    clearance = m.before_operation("rm -rf build/")
    assert (clearance.proceed, clearance.state) == (False, S.CHECKPOINTED)
    assert clearance.transition == "before_operation [risk_due, write_failed]"


def test_warnings_survive_continuing_the_session_in_another_process() -> None:
    store = _failing()
    m, clock = _manager(store)
    m.start_session(restore=False)
    fault = store.fail(WRITES)
    clock.advance(60)
    m.create_checkpoint(phase="P")
    store.clear(fault)
    m.save_context()
    other, _ = _manager(store)
    assert other.attach()
    assert other.warnings == m.warnings
    assert other.warnings != ()


def test_a_checkpoint_records_its_own_size() -> None:
    m, _ = _manager()
    m.start_session(restore=False)
    result = m.create_checkpoint(phase="P", context={"notes": "x" * 997})
    assert result.key is not None
    stored = m.store.get(result.key)
    assert stored is not None
    assert m.read_checkpoint().context_snapshot.size_bytes == len(stored.value)
    assert m.last_checkpoint is not None
    assert m.last_checkpoint.context_snapshot.size_bytes == len(stored.value)


def test_every_n_completions_checkpoints_on_the_nth_through_the_manager() -> None:
    evaluators = default_evaluators(task=TaskSettings(every_n_completions=3))
    m, clock = _manager(evaluators=evaluators)
    m.start_session(restore=False)
    states = []
    for n in range(1, 7):
        clock.advance(10)
        states.append(m.complete_task(f"T{n}", priority="low").checkpointed)
    assert states == [False, False, True, False, False, True]
