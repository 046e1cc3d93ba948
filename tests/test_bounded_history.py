"""State stays bounded across many sessions: 400 restoring sessions keep the restored
checkpoint and the live record within their caps, and flat; the decisions log is
append-only by day; the hook's step lists no folder that grows with history."""

from __future__ import annotations

from datetime import timedelta

from lifecycle import SessionManager, codec, limits
from lifecycle.records import DecisionsLog
from lifecycle.stores.memory import MemoryStore
from lifecycle.testing import ForwardingStore, SimulatedClock

WORDS = [
    "parse",
    "the",
    "config",
    "loader",
    "and",
    "keep",
    "the",
    "cache",
    "warm",
    "across",
    "restarts",
]


def text(n: int, words: int) -> str:
    return " ".join(WORDS[(n + i) % len(WORDS)] for i in range(words)) + f" #{n}"


def one_session(store, clock, n: int) -> SessionManager:
    """A session as the benchmark drives it: 3 tasks (one left open for the next), 3
    decisions, 10 files, 2 learnings, a question (the previous one resolved)."""
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(command="work")
    for q in m.work.open_questions:
        m.resolve_question(q)
    for t in m.work.active_tasks:
        m.complete_task(t.id)
    for i in range(3):
        m.add_task(f"T{n}-{i}", text(n + i, 12), status="in_progress")
        clock.advance(600)
        if i < 2:
            m.complete_task(f"T{n}-{i}")
        m.record_decision(text(n * 3 + i, 10), rationale=text(i, 14), impact="local")
    for f in range(10):
        m.record_file_change(f"src/pkg{f % 4}/module_{(n + f) % 37}.py", "edit", 5)
    for k in range(2):
        m.capture_learning(type="pattern", key=f"pattern-{(n + k) % 40}", content=text(n, 30))
    m.add_open_question(f"should {text(n, 6)}?")
    m.update_context({"branch": f"feat/{n % 9}"})
    clock.advance(1800)
    return m


def test_400_restoring_sessions_keep_the_restored_checkpoint_and_live_record_flat() -> None:
    store, clock = MemoryStore(), SimulatedClock()
    restored_sizes: dict[int, int] = {}
    live_sizes: dict[int, int] = {}
    for n in range(1, 401):
        m = one_session(store, clock, n)
        cp = m.restored_from
        if cp is not None:
            restored_sizes[n] = len(store.get(f"demo/{cp.key}").value)
        m.save_context()
        live_sizes[n] = len(store.get("demo/session/context").value)
        m.end_session()
        clock.advance(3 * 3600)
    assert max(restored_sizes.values()) < limits.CHECKPOINT_WARN_BYTES
    assert max(live_sizes.values()) < limits.LIVE_CONTEXT_BYTES
    # flat: what session 400 restores is no bigger than what session 30 restored (+10%)
    assert restored_sizes[400] <= 1.1 * restored_sizes[30]
    assert live_sizes[400] <= 1.1 * live_sizes[30]


def test_the_decisions_log_keeps_the_newest_and_every_decision_stays_in_its_day() -> None:
    store, clock = MemoryStore(), SimulatedClock()
    for n in range(60):
        m = SessionManager(store=store, project="demo", clock=clock)
        m.start_session()
        for i in range(3):
            m.record_decision(f"decision {n}.{i}")
        m.end_session()
        clock.advance(timedelta(days=1).total_seconds())
    ps = SessionManager(store=store, project="demo").store
    days = ps.list_keys("project_state/decisions/")
    assert len(days) == 60
    assert days[0] == "project_state/decisions/2026-01-25"
    segments = [codec.decode(DecisionsLog, ps.get(k).value) for k in days]
    assert [len(s.entries) for s in segments] == [3] * 60
    log = codec.decode(DecisionsLog, ps.get("project_state/decisions_log").value)
    assert len(log.entries) == limits.DECISIONS_LOG_ENTRIES and log.total == 180
    assert log.entries[-1].decision == "decision 59.2"


class Listing(ForwardingStore):
    """Counts the prefixes listed and scanned."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.listed: list[str] = []

    def list_keys(self, prefix="", *, reverse=False, limit=None):
        self.listed.append(prefix)
        return super().list_keys(prefix, reverse=reverse, limit=limit)

    def scan(self, prefix="", *, reverse=False, limit=None):
        self.listed.append(prefix)
        return super().scan(prefix, reverse=reverse, limit=limit)


def test_a_hook_step_and_a_session_end_list_nothing_that_grows_with_history() -> None:
    inner, clock = MemoryStore(), SimulatedClock()
    for n in range(5):
        one_session(inner, clock, n).end_session()
    m = SessionManager(store=inner, project="demo", clock=clock, journal=True)
    m.start_session()
    m.add_task("T", "work")
    m.save_context()
    store = Listing(inner)
    for event in range(3):  # three hook steps: attach, one event, save
        step = SessionManager(store=store, project="demo", clock=clock, journal=True)
        assert step.attach()
        step.add_task(f"T{event}", "more", priority="low")
        step.save_context()
    last = SessionManager(store=store, project="demo", clock=clock, journal=True)
    assert last.attach()
    last.end_session()
    assert store.listed == []
