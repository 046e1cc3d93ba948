"""The driver (``session/driver.py``): the facts an event is decided on, the session's
clock, the table's answer to "would a checkpoint be written now?", and what each
transition logs. Each test names the rule it checks."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from lifecycle import SessionManager, keys, open_store
from lifecycle.errors import InvalidRecord
from lifecycle.records import EventMessage
from lifecycle.session.driver import WARNINGS_KEPT
from lifecycle.spec import TABLE, WORK_EVENTS, Event
from lifecycle.stores import file as file_store
from lifecycle.stores.file import FileStore
from lifecycle.testing import FaultyStore
from lifecycle.triggers import default_evaluators
from lifecycle.triggers.base import Activity, CheckpointCall, Operation, SessionFacts

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def logs_on() -> Iterator[None]:
    """The application turned lifecycle's logging on (info and above)."""
    logger = logging.getLogger("lifecycle")
    level = logger.level
    logger.setLevel(logging.INFO)
    structlog.reset_defaults()
    try:
        yield
    finally:
        logger.setLevel(level)
        structlog.reset_defaults()


class Clock:
    """A clock the test moves by hand (``step`` seconds on each read, 0: standing)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = T0
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        at = self.now
        self.now += self.step
        return at


class Recorder:
    """An evaluator that keeps the facts it was given and never asks for a checkpoint."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[Activity, SessionFacts]] = []

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None:
        self.seen.append((activity, facts))
        return None


def test_the_evaluators_get_the_sessions_facts_as_they_stand_before_the_event() -> None:
    recorder = Recorder()
    clock = Clock()
    m = SessionManager(
        store=open_store("memory://"),
        project="p",
        clock=clock,
        evaluators=[recorder, *default_evaluators()],
    )
    m.start_session(restore=False)
    saved = m.create_checkpoint(phase="Phase 1")
    clock.now += timedelta(minutes=2)
    m.complete_task("T1")
    clock.now += timedelta(minutes=3)
    m.complete_task("T2")
    last_activity, facts = recorder.seen[-1]
    assert last_activity.event.value == "task_completed"
    assert facts.state is m.state  # ACTIVE after T1
    assert facts.last_checkpoint_at == saved.timestamp
    assert facts.last_auto_checkpoint_at is None
    # the completion being evaluated counts: T1 and T2 since the checkpoint
    assert facts.tasks_completed_since_checkpoint == 2
    assert facts.has_unsaved is True
    assert facts.active_seconds == pytest.approx(300.0, abs=1e-3)
    _, first = recorder.seen[-2]
    assert first.tasks_completed_since_checkpoint == 1
    assert first.state.value == "CHECKPOINTED"


class TaskOnly(Recorder):
    """A recorder that says it can only call for a checkpoint at a task completion."""

    events = frozenset({Event.TASK_COMPLETED})


def test_an_evaluator_that_names_its_events_is_asked_only_about_those() -> None:
    every, tasks = Recorder(), TaskOnly()
    m = SessionManager(store=open_store("memory://"), project="p", evaluators=[every, tasks])
    m.start_session(restore=False)
    m.tick()
    m.record_decision("keep going")
    m.complete_task("T1")
    m.before_operation(Operation(name="edit"))
    assert [a.event for a, _ in every.seen] == [
        Event.TICK, Event.RECORD, Event.TASK_COMPLETED, Event.BEFORE_OPERATION,
    ]  # fmt: skip
    assert [a.event for a, _ in tasks.seen] == [Event.TASK_COMPLETED]


def test_the_default_evaluators_name_the_events_they_can_call_for() -> None:
    named = {e.name: e.events for e in default_evaluators()}
    assert named == {
        "risk": {Event.BEFORE_OPERATION},
        "error": {Event.ERROR_RECOVERED},
        "task": {Event.TASK_COMPLETED},
        "time": set(WORK_EVENTS),
    }


def test_should_create_checkpoint_is_the_tables_answer_for_a_tick_and_changes_nothing() -> None:
    clock = Clock()
    m = SessionManager(store=open_store("memory://"), project="p", clock=clock)
    assert m.should_create_checkpoint() is False  # INITIALIZING: a tick is not legal
    m.start_session(restore=False)
    for _ in range(28):  # 28 minutes of active work, a minute apart
        clock.now += timedelta(minutes=1)
        m.record_decision("keep going")
    assert m.should_create_checkpoint() is False  # 28 minutes: not due yet
    clock.now += timedelta(minutes=4)  # no event yet; the gap counts (under 5 minutes idle)
    before = (m.state, m.active_seconds, m.work, m.session)
    assert m.should_create_checkpoint() is True  # a tick now: 32 minutes, work unsaved
    assert m.should_create_checkpoint() is True  # asking twice changes nothing
    assert (m.state, m.active_seconds, m.work, m.session) == before
    assert m.last_checkpoint is None
    m.end_session()
    assert m.should_create_checkpoint() is False  # COMPLETED: nothing more


def test_asking_whether_a_checkpoint_is_due_does_not_move_the_sessions_clock() -> None:
    m = SessionManager(store=open_store("memory://"), project="p", clock=Clock())
    m.start_session(restore=False)
    first = m.create_checkpoint(phase="one")
    for _ in range(3):
        m.should_create_checkpoint()
    second = m.create_checkpoint(phase="two")
    assert second.timestamp == first.timestamp + timedelta(microseconds=1)


def test_should_create_checkpoint_is_false_with_nothing_unsaved_however_long_the_work() -> None:
    clock = Clock()
    m = SessionManager(store=open_store("memory://"), project="p", clock=clock)
    m.start_session(restore=False)
    for _ in range(31):
        clock.now += timedelta(minutes=1)
        m.tick()
    m.create_checkpoint(phase="saved")
    clock.now += timedelta(minutes=1)
    assert m.state.value == "CHECKPOINTED"
    assert m.should_create_checkpoint() is False


def test_moments_are_strictly_increasing_by_one_microsecond_on_a_standing_clock() -> None:
    m = SessionManager(store=open_store("memory://"), project="p", clock=Clock())
    m.capture_learning(type="pattern", key="early", content="before the session")
    learned = m.store.get("learning/patterns/early")
    assert learned is not None
    start = m.start_session(restore=False)
    first = m.create_checkpoint(phase="one")
    second = m.create_checkpoint(phase="two")
    m.capture_learning(type="pattern", key="late", content="in the session")
    third = m.create_checkpoint(phase="three")
    assert start.session_id
    session = m.session
    assert session is not None
    one = timedelta(microseconds=1)
    # the learning before the session moved the floor; the session starts after it
    assert session.start_time == T0 + one
    assert first.timestamp == session.start_time + one
    assert second.timestamp == first.timestamp + one
    # the learning in the session took second + 1 us, so the next checkpoint is after it
    assert third.timestamp == second.timestamp + 2 * one


def test_a_clock_without_a_time_zone_is_refused() -> None:
    m = SessionManager(
        store=open_store("memory://"), project="p", clock=lambda: datetime(2026, 3, 1, 9)
    )
    with pytest.raises(InvalidRecord, match=r"^the clock must return an aware datetime \(UTC\)$"):
        m.start_session(restore=False)


def test_an_applied_event_runs_at_one_moment_however_often_it_reads_the_clock() -> None:
    clock = Clock(step=1.0)  # every read is a second later
    m = SessionManager(store=open_store("memory://"), project="p", clock=clock, journal=True)
    m.start_session(restore=False)
    before = clock.now
    m.apply(EventMessage("complete_task", {"task_id": "T1", "priority": "high"}))
    task = m.work.completed_tasks[-1]
    checkpoint = m.last_checkpoint
    assert checkpoint is not None
    # the moment pinned before the event is the task's and its checkpoint's
    assert task.completed_at == before
    assert checkpoint.timestamp == before


def test_a_session_keeps_its_newest_warnings_only() -> None:
    m = SessionManager(store=open_store("memory://"), project="p", clock=Clock(step=1.0))
    m.start_session(restore=False)
    driver = m._driver  # the driver's own rule, below any event that warns
    for i in range(WARNINGS_KEPT + 10):
        driver.warn(f"warning {i}")
    assert m.warnings == tuple(f"warning {i}" for i in range(10, WARNINGS_KEPT + 10))


def test_a_new_manager_has_nothing_restored_merged_or_saved() -> None:
    m = SessionManager(store=open_store("memory://"), project="p")
    assert m.restored_from is None
    assert m.last_merge is None
    assert m.last_checkpoint is None


def test_the_load_keeps_its_command_and_the_newest_checkpoint_at_its_start() -> None:
    store = open_store("memory://")
    first = SessionManager(store=store, project="p", clock=Clock(step=1.0))
    first.start_session(restore=False)
    written = first.create_checkpoint(phase="one")
    first.end_session()
    second = SessionManager(store=store, project="p", clock=Clock(step=1.0))
    second.start_session(command="/sc:load --resume", change_id="CH-7")
    session = second.session
    assert session is not None
    assert session.command == "/sc:load --resume"
    assert written.key is not None
    assert session.latest_at_start == written.key


@pytest.mark.skipif(file_store.boot_tag() is None, reason="this machine has no boot id")
def test_a_restore_reads_the_pointer_and_its_checkpoint_once_and_makes_one_durable_write(
    tmp_path: Path, flushes: list[str]
) -> None:
    inner, clock = FileStore(tmp_path / "store"), Clock(step=1.0)
    first = SessionManager(inner, project="p", clock=clock, snapshot="never")
    first.start_session(restore=False)
    written = first.create_checkpoint(phase="one")
    store = FaultyStore(inner, record=True)
    second = SessionManager(store, project="p", clock=clock, snapshot="never")
    flushes.clear()  # counted from here
    second.start_session(restore=True)
    assert written.key is not None
    assert [(c.operation, c.keys) for c in store.history] == [
        ("get", ("p/checkpoints/latest",)),
        ("get", (f"p/{written.key}",)),
        ("batch", (f"p/{keys.session_key(clock.now - clock.step)}", "p/session/current")),
    ]
    assert flushes == ["fsync", "fsync"]  # the session record's bytes, then its folder
    session = second.session
    assert session is not None and session.latest_at_start == written.key


def test_a_queued_learning_is_written_before_the_next_event_and_kept_in_the_session() -> None:
    store = FaultyStore(open_store("memory://"))
    m = SessionManager(store=store, project="p", clock=Clock(step=1.0))
    m.start_session(restore=False)
    store.fail("put", prefix="p/learning/", times=1)
    queued = m.capture_learning(type="pattern", key="retry-me", content="x")
    assert queued.queued and not queued.success
    m.tick()  # the next event retries it first
    assert m.pending_learnings == ()
    session = m.session
    assert session is not None
    assert "learning/patterns/retry-me" in session.learnings


@pytest.mark.usefixtures("logs_on")
def test_every_transition_is_logged_with_its_facts_when_logging_is_on() -> None:
    with capture_logs() as logs:
        m = SessionManager(store=open_store("memory://"), project="p", clock=Clock(1.0))
        m.start_session(restore=False)
        recorded = m.record_file_change("a.py")
        written = m.create_checkpoint(phase="P")
    lines = [line for line in logs if line["event"] == "transition"]
    assert [(x["source"], x["dest"], x["trigger"]) for x in lines] == [
        ("INITIALIZING", "ACTIVE", "load"),
        ("ACTIVE", "ACTIVE", "record"),
        ("ACTIVE", "CHECKPOINTED", "save"),
    ]
    session_id = m.session_id
    assert all(x["session_id"] == session_id for x in lines)
    assert lines[-1]["checkpoint_id"] == written.checkpoint_id
    assert lines[-1]["reason"] == written.trigger == "user-requested"
    assert lines[1]["checkpoint_id"] is None
    (row,) = [
        r for r in TABLE.rows if r.label == recorded.transition and r.source.value == "ACTIVE"
    ]
    assert lines[1]["reason"] == row.note  # no checkpoint: the row's own note
    for line in lines:
        ms = line["duration_ms"]
        assert isinstance(ms, float) and 0 <= ms < 10_000 and ms == round(ms, 3)


@pytest.mark.usefixtures("logs_on")
def test_a_store_that_cannot_be_read_at_load_starts_fresh_with_a_warning_and_a_log() -> None:
    store = FaultyStore(open_store("memory://"))
    earlier = SessionManager(store=store, project="p", clock=Clock(1.0))
    earlier.start_session(restore=False)
    earlier.create_checkpoint(phase="one")
    earlier.end_session()
    store.fail(prefix="p/checkpoints/")
    with capture_logs() as logs:
        m = SessionManager(store=store, project="p", clock=Clock(1.0))
        result = m.start_session()
    assert result.is_fresh_session
    assert any("starting a fresh session" in w for w in result.warnings)
    failed = [x for x in logs if x["event"] == "restore.failed"]
    assert len(failed) == 1 and failed[0]["log_level"] == "warning"
    (warning,) = [w for w in result.warnings if "starting a fresh session" in w]
    assert warning == f"could not read checkpoints ({failed[0]['error']}); starting a fresh session"
    assert failed[0]["error"] not in ("", "None")
