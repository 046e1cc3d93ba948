"""One session driven from eight threads: every public method is serialized per session
by the manager's lock (no LockedMachine), so the lifecycle rules hold as if one thread
had sent the events in some order."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from lifecycle import SessionManager, SessionState, codec, open_store
from lifecycle.records import Checkpoint, EventMessage, Pointer

THREADS = 8
ROUNDS = 30  # each round: add, complete (high: checkpoints), decide, save, tick


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter can, to provoke interleavings."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_eight_threads_on_one_session_keep_every_lifecycle_rule(busy_switching) -> None:
    m = SessionManager(store=open_store("memory://"), project="p")  # the real clock
    m.start_session()
    start = threading.Barrier(THREADS + 1)
    done = threading.Event()
    failures: list[BaseException] = []
    observed: list[tuple[SessionState, bool]] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(ROUNDS):
                m.add_task(f"T{n}-{i}", status="in_progress")
                m.complete_task(f"T{n}-{i}", priority="high")
                m.record_decision(f"decision {n}-{i}")
                m.create_checkpoint(progress={"thread": n, "round": i})
                m.tick()
        except BaseException as exc:  # reported below, with the thread's traceback
            failures.append(exc)

    def checker() -> None:
        start.wait()
        while not done.is_set():
            with m._lock:  # the lock the public methods take: a consistent moment
                observed.append((m.state, m.has_unsaved_work))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    watcher = threading.Thread(target=checker)
    for t in (*threads, watcher):
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    watcher.join(timeout=10)
    assert failures == []

    # No lost update: every thread's tasks and decisions are there once, or counted as
    # left out past their caps (lifecycle.limits keeps the newest).
    completed = [t.id for t in m.work.completed_tasks]
    expected = {f"T{n}-{i}" for n in range(THREADS) for i in range(ROUNDS)}
    assert len(set(completed)) == len(completed) and set(completed) <= expected
    omitted = m.work.omitted
    assert len(completed) + omitted.get("completed_tasks", 0) == len(expected)
    assert len(m.work.decisions) + omitted.get("decisions", 0) == THREADS * ROUNDS
    assert m.work.active_tasks == ()

    # Checkpoint ids are unique and sort in creation order; each one is in the store and
    # checkpoints/latest names the newest.
    keys = [key for _, key in m.list_checkpoints()]  # oldest first, from the store
    ids = [codec.decode(Checkpoint, m.store.get(key).value).id for key in keys]
    assert len(ids) >= THREADS * ROUNDS  # every high-priority completion checkpointed
    assert len(ids) == m.session.checkpoint_count
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    recent = [ref.key for ref in m.session.checkpoints]  # the record keeps the newest
    assert keys[len(keys) - len(recent) :] == recent
    pointer = codec.decode(Pointer, m.store.get("checkpoints/latest").value)
    assert pointer.id == ids[-1]

    # The states meant what they say at every moment the checker looked, and at the end.
    assert observed, "the checker never ran"
    for state, unsaved in observed:
        assert unsaved is (state is SessionState.ACTIVE)
    assert m.has_unsaved_work is (m.state is SessionState.ACTIVE)
    if m.state is SessionState.CHECKPOINTED:
        assert m.read_checkpoint().state == m.work


def test_every_public_method_of_the_manager_takes_the_session_lock() -> None:
    """Each public method, called while another thread holds the lock, waits for it."""
    m = SessionManager(store=open_store("memory://"), project="p")
    m.start_session()
    calls = {
        "add_task": lambda: m.add_task("T1"),
        "complete_task": lambda: m.complete_task("T1"),
        "record_decision": lambda: m.record_decision("d"),
        "record_file_change": lambda: m.record_file_change("a.py"),
        "record_discovery": lambda: m.record_discovery(pattern="p"),
        "add_open_question": lambda: m.add_open_question("q"),
        "resolve_question": lambda: m.resolve_question("q"),
        "add_blocker": lambda: m.add_blocker("b"),
        "clear_blocker": lambda: m.clear_blocker("b"),
        "tick": m.tick,
        "before_operation": lambda: m.before_operation("ls"),
        "error_recovered": lambda: m.error_recovered("e"),
        "create_checkpoint": lambda: m.create_checkpoint(phase="x"),
        "capture_learning": lambda: m.capture_learning(type="insight", key="k", content="c"),
        "should_create_checkpoint": m.should_create_checkpoint,
        "read_checkpoint": m.read_checkpoint,
        "save_context": m.save_context,
        "report": m.report,
        "session": lambda: m.session,
        "has_unsaved_work": lambda: m.has_unsaved_work,
        "apply": lambda: m.apply(EventMessage("tick")),
        "end_session": m.end_session,
    }
    for name, call in calls.items():
        entered = threading.Event()
        finished = threading.Event()

        def run(call=call, entered=entered, finished=finished) -> None:  # type: ignore[no-untyped-def]
            entered.set()
            call()
            finished.set()

        with m._lock:
            t = threading.Thread(target=run)
            t.start()
            entered.wait(5)
            assert not finished.wait(0.05), f"{name} ran while another thread held the lock"
        t.join(10)
        assert finished.is_set(), f"{name} did not finish once the lock was free"


def test_reading_the_work_without_the_lock_while_events_run_loses_no_change(
    busy_switching,
) -> None:
    """The properties read the live record without the lock (a record and its unfolded
    changes, held as one pair): a reader never sees the work go back, and no event's
    change is lost to a read."""
    m = SessionManager(store=open_store("memory://"), project="p")
    m.start_session(restore=False)
    done = threading.Event()
    seen: list[list[int]] = [[], [], []]

    def reader(mine: list[int]) -> None:
        while not done.is_set():
            mine.append(len(m.work.files_modified))
            m.phase, m.active_seconds  # noqa: B018 - more reads of the same pair

    threads = [threading.Thread(target=reader, args=(mine,)) for mine in seen]
    for t in threads:
        t.start()
    for i in range(300):
        m.record_file_change(f"src/f{i}.py")
        m.tick()
    done.set()
    for t in threads:
        t.join(10)
    assert len(m.work.files_modified) == 300
    assert all(mine == sorted(mine) for mine in seen)  # no reader saw fewer files later
