"""SessionManager specifics (the behaviours every manager shares are in test_behaviour.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from lifecycle import (
    CheckpointType,
    InvalidKey,
    SessionManager,
    SessionState,
    codec,
    open_store,
)
from lifecycle.records import Pointer

S = SessionState


def test_restore_false_starts_fresh_even_with_a_checkpoint(make_manager) -> None:
    store = open_store("memory://")
    m = make_manager()
    m = SessionManager(store=store, project="demo")
    m.start_session()
    m.create_checkpoint(phase="P")
    m2 = SessionManager(store=store, project="demo")
    assert m2.start_session(restore=False).is_fresh_session is True
    assert m2.state is S.ACTIVE


@pytest.mark.parametrize(
    "change", [{"phase": "P2"}, {"progress": {"completed": 2}}, {"context": {"task": "T2"}}]
)
def test_a_new_phase_progress_or_context_is_a_change(make_manager, change) -> None:
    m = make_manager()
    m.start_session()
    m.create_checkpoint(phase="P1", progress={"completed": 1}, context={"task": "T1"})
    assert m.create_checkpoint(**change).written is True
    assert len(m.list_checkpoints()) == 2


def test_resumed_stays_resumed_until_something_changes(make_manager, clock) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="p", clock=clock)
    m.start_session()
    m.create_checkpoint(phase="P")
    m2 = SessionManager(store=store, project="p", clock=clock)
    m2.start_session()
    assert m2.create_checkpoint().written is False
    assert m2.state is S.RESUMED
    m2.add_open_question("why?")
    assert m2.state is S.ACTIVE


def test_end_with_nothing_unsaved_writes_no_extra_checkpoint(make_manager) -> None:
    m = make_manager()
    m.start_session()
    m.create_checkpoint(phase="P")
    end = m.end_session()
    assert end.checkpoint is None
    assert len(m.list_checkpoints()) == 1


def test_latest_pointer_names_the_newest_checkpoint(make_manager) -> None:
    m = make_manager()
    m.start_session()
    m.create_checkpoint(phase="a")
    last = m.create_checkpoint(phase="b")
    pointer = codec.decode(Pointer, m.store.get("checkpoints/latest").value)
    assert (pointer.id, pointer.key) == (last.checkpoint_id, last.key)


def test_medium_priority_task_completion_only_records(make_manager) -> None:
    m = make_manager()
    m.start_session()
    out = m.complete_task("T2", priority="medium")
    assert out.checkpoint is None
    assert m.state is S.ACTIVE


def test_a_learning_under_the_wrong_folder_suggests_the_right_one(make_manager, clock) -> None:
    m = make_manager()
    m.start_session()
    with pytest.raises(InvalidKey) as err:
        m.capture_learning(type="pattern", key="learning/solutions/x", content="c")
    assert err.value.suggestion == "learning/patterns/x"
    with pytest.raises(InvalidKey) as err:
        m.capture_learning(type="pattern", key="learnings/pattern/x", content="c")
    assert err.value.suggestion == "learning/patterns/x"
    assert m.store.list_keys("learning/") == []


def test_a_bare_learning_name_goes_under_its_type_folder(make_manager) -> None:
    m = make_manager()
    m.start_session()
    res = m.capture_learning(type="insight", key="Sessions-enable-learning", content="c")
    assert res.learning_key == "learning/insights/Sessions-enable-learning"


def test_two_projects_in_one_store_do_not_see_each_other(clock) -> None:
    store = open_store("memory://")
    a = SessionManager(store=store, project="a", clock=clock)
    a.start_session()
    a.create_checkpoint(phase="A")
    b = SessionManager(store=store, project="b", clock=clock)
    assert b.start_session().is_fresh_session is True


def test_restore_a_chosen_checkpoint_by_id(make_manager, clock) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="p", clock=clock)
    m.start_session()
    first = m.create_checkpoint(phase="one")
    m.create_checkpoint(phase="two")
    m2 = SessionManager(store=store, project="p", clock=clock)
    start = m2.start_session(checkpoint_id=first.checkpoint_id)
    assert start.restored_state["phase"] == "one"


def test_the_clock_must_be_aware(make_manager) -> None:
    from lifecycle.errors import InvalidRecord

    m = make_manager(clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(InvalidRecord, match="aware"):
        m.start_session()
    assert m.state is S.INITIALIZING


def test_checkpoint_records_the_seed_fields(make_manager) -> None:
    m = make_manager()
    m.start_session()
    m.add_task("TASK-008", status="in_progress", progress="50%")
    m.add_open_question("How to handle checkpoint size limits?")
    res = m.create_checkpoint(phase="P")
    cp = m.read_checkpoint(res.checkpoint_id)
    assert cp.type is CheckpointType.MANUAL
    assert cp.session_id == m.session_id
    assert cp.state.active_tasks[0].progress == "50%"
    assert cp.state.open_questions == ("How to handle checkpoint size limits?",)
    assert cp.state.blockers == ()
    assert cp.recovery_info.restore_command == f"lifecycle session start --checkpoint {cp.id}"
    assert m.session.checkpoints[-1].id == cp.id


def test_attach_after_the_session_ended_finds_nothing(clock) -> None:
    store = open_store("memory://")
    first = SessionManager(store=store, project="p", clock=clock)
    first.start_session()
    first.save_context()
    first.end_session()
    second = SessionManager(store=store, project="p", clock=clock)
    assert second.attach() is False
    assert second.state is S.INITIALIZING


def test_attach_with_no_saved_context_finds_nothing(make_manager) -> None:
    m = make_manager()
    assert m.attach() is False
    assert m.state is S.INITIALIZING


def test_the_session_record_stays_small_however_many_checkpoints(make_manager, clock) -> None:
    from lifecycle.records import RECENT_CHECKPOINTS

    m = make_manager()
    m.start_session()
    for i in range(RECENT_CHECKPOINTS + 15):
        clock.advance(seconds=1)
        m.create_checkpoint(progress={"i": i})
    record = m.session
    assert record.checkpoint_count == RECENT_CHECKPOINTS + 15
    assert len(record.checkpoints) == RECENT_CHECKPOINTS
    assert record.checkpoints[-1].id == m.last_checkpoint.id
    assert record.checkpoint_bytes > 0
    assert m.end_session().summary.checkpoints == RECENT_CHECKPOINTS + 15
    assert len(codec.encode(m.session)) < 10_000
