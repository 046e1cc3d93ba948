"""At COMPLETED: consolidation into summaries/* and project_state/*, context stats,
size limits, and the resumption summary's cap."""

from __future__ import annotations

import attrs
import pytest
from structlog.testing import capture_logs

from lifecycle import SessionManager, codec, open_store
from lifecycle.errors import CheckpointTooLarge, StoreUnavailable
from lifecycle.records import (
    ContextEnhanced,
    DailySummary,
    DecisionsLog,
    InsightSummary,
    PatternsDiscovered,
    SessionRecord,
    SessionSummary,
    WeeklySummary,
)
from lifecycle.report import resumption_summary
from lifecycle.session.checkpoints import encode_sized
from lifecycle.summaries import fold_session, insight_topic
from lifecycle.testing import FaultyStore, ForwardingStore


def _get(m, cls, key):
    entry = m.store.get(key)
    assert entry is not None, key
    return codec.decode(cls, entry.value, key=key)


def _work_session(store, clock, n: int, *, restore=True):
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=restore)
    m.add_task(f"T{n}", f"task {n}")
    clock.advance(minutes=20)
    m.complete_task(f"T{n}", priority="high")
    m.record_decision(f"decision {n}", rationale=f"reason {n}", impact="architectural")
    m.record_discovery(pattern="atomic rename", insight=f"storage: insight {n}")
    m.record_discovery(insight=f"plain insight {n}")
    m.add_open_question(f"question {n}?")
    m.end_session(success=True, phase=f"Phase {n}")
    clock.advance(hours=2)
    return m


def test_completion_writes_every_summary_and_project_state_record(clock) -> None:
    store = open_store("memory://")
    m = _work_session(store, clock, 1)
    day = _get(m, DailySummary, "summaries/daily/2026-01-25")
    assert [(s.session_id, s.tasks_completed, s.decisions) for s in day.sessions] == [
        (m.session_id, ("T1",), 1)
    ]
    week = _get(m, WeeklySummary, "summaries/weekly/2026-W04")
    assert (week.totals.sessions, week.totals.tasks_completed, week.phases) == (1, 1, ("Phase 1",))
    log = _get(m, DecisionsLog, "project_state/decisions_log")
    assert [(e.decision, e.rationale, e.impact) for e in log.entries] == [
        ("decision 1", "reason 1", "architectural")
    ]
    patterns = _get(m, PatternsDiscovered, "project_state/patterns_discovered")
    assert [(p.pattern, p.sessions) for p in patterns.patterns] == [("atomic rename", 1)]
    ctx = _get(m, ContextEnhanced, "project_state/context_enhanced")
    assert (ctx.sessions_total, ctx.phase, ctx.open_questions) == (1, "Phase 1", ("question 1?",))
    assert [e.text for e in _get(m, InsightSummary, "summaries/insights/storage").entries] == [
        "storage: insight 1"
    ]
    assert [e.text for e in _get(m, InsightSummary, "summaries/insights/general").entries] == [
        "plain insight 1"
    ]


def test_sessions_accumulate_and_the_same_session_folded_twice_counts_once(clock) -> None:
    store = open_store("memory://")
    first = _work_session(store, clock, 1)
    second = _work_session(store, clock, 2)
    day = _get(second, DailySummary, "summaries/daily/2026-01-25")
    assert day.totals.sessions == 2
    assert (
        _get(second, PatternsDiscovered, "project_state/patterns_discovered").patterns[0].sessions
        == 2
    )
    # fold the second session in again: nothing changes
    before = {k: second.store.get(k).value for k in second.store.list_keys("summaries/")}
    before["ctx"] = second.store.get("project_state/context_enhanced").value
    record = second.session
    summary = codec.decode(SessionSummary, second.store.get("session/last").value)
    fold_session(second.store, record, summary, [])
    after = {k: second.store.get(k).value for k in second.store.list_keys("summaries/")}
    after["ctx"] = second.store.get("project_state/context_enhanced").value
    assert after == before
    assert first.session_id != second.session_id


def test_insight_topics_come_from_a_leading_label() -> None:
    assert [insight_topic(t) for t in ("Storage: fsync", "no label here", "a b: c", ":x")] == [
        "storage",
        "general",
        "a-b",
        "general",
    ]


def test_a_failing_consolidation_does_not_stop_the_session_completing(clock) -> None:
    store = FaultyStore(open_store("memory://"))
    store.fail(
        "batch",
        prefix="demo/summaries/",
        error=lambda _: StoreUnavailable("injected fault on summaries"),
    )
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session()
    m.add_task("T1")
    with capture_logs() as logs:
        m.end_session()
    assert m.state.value == "COMPLETED"
    assert "summaries not updated: injected fault on summaries" in m.warnings
    assert any(e["event"] == "summaries.failed" for e in logs)
    assert store.get("demo/session/last") is not None


def test_concurrent_completions_both_land_by_compare_and_swap(clock) -> None:
    store = open_store("memory://")
    a = SessionManager(store=store, project="demo", clock=clock)
    b = SessionManager(store=store, project="demo", clock=clock)
    a.start_session(restore=False)
    b.start_session(restore=False)
    a.record_decision("from a")
    b.record_decision("from b")

    class Interleave(ForwardingStore):
        """Before a's summaries batch, b completes: a's CAS fails once and retries."""

        fired = False

        def batch(self, ops):
            if not self.fired and any("/summaries/daily/" in op.key for op in ops):
                self.fired = True
                b.end_session()
            return super().batch(ops)

    a._store.store = Interleave(store)
    a.end_session()
    log = _get(a, DecisionsLog, "project_state/decisions_log")
    assert sorted(e.decision for e in log.entries) == ["from a", "from b"]
    assert _get(a, DailySummary, "summaries/daily/2026-01-25").totals.sessions == 2


# -- context stats --------------------------------------------------------------------------


def test_context_stats_are_the_stored_bytes(clock) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=False)
    m.add_task("T1")
    m.create_checkpoint(phase="p")
    m.capture_learning(type="insight", key="learning/insights/x", content="c" * 100)
    m.end_session()
    stored = codec.decode(
        SessionRecord, store.get(f"demo/{m.store.list_keys('session/2')[0]}").value
    )
    stats = stored.context.context_stats
    cps = sum(len(store.get(f"demo/{r.key}").value) for r in stored.checkpoints)
    assert stats.user_content_size == len(store.get("demo/learning/insights/x").value)
    assert stats.session_data_size > cps > 0
    framework_keys = [
        *(f"demo/{k}" for k in m.store.list_keys("summaries/")),
        *(f"demo/{k}" for k in m.store.list_keys("project_state/")),
        "demo/checkpoints/latest",
        "demo/session/current",
    ]
    assert stats.framework_content_size == sum(len(store.get(k).value) for k in framework_keys)
    assert stats.total_context_bytes == (
        stats.session_data_size + stats.framework_content_size + stats.user_content_size
    )
    assert stats.retention_ratio == 1.0  # nothing saved before: nothing lost
    assert stored.context.final_context_size == stats.total_context_bytes


@pytest.mark.parametrize(
    ("how", "ratio"), [("latest", 1.0), ("fresh", 0.0), ("older", None)], ids=str
)
def test_retention_ratio_is_restored_over_saved_work_state_bytes(clock, how, ratio) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=False)
    first = m.create_checkpoint(phase="p")
    for i in range(5):
        m.add_open_question(f"a longer open question number {i}?")
    m.end_session()
    clock.advance(hours=1)
    m2 = SessionManager(store=store, project="demo", clock=clock)
    if how == "latest":
        m2.start_session()
    elif how == "fresh":
        m2.start_session(restore=False)
    else:
        m2.start_session(checkpoint_id=first.checkpoint_id)
    m2.end_session()
    got = m2.session.context.context_stats.retention_ratio
    if ratio is None:
        assert 0.0 < got < 1.0
    else:
        assert got == ratio


# -- size limits ----------------------------------------------------------------------------


def test_a_checkpoint_over_50kb_warns(make_manager) -> None:
    m = make_manager()
    m.start_session()
    for i in range(30):
        m.record_decision(f"d{i} " + "y" * 1_900)
    with capture_logs() as logs:
        assert m.create_checkpoint().written
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["checkpoint.large"]


def test_an_oversize_checkpoint_names_its_largest_fields(make_manager) -> None:
    m = make_manager()
    m.start_session()
    for i in range(30):
        m.add_open_question(f"q{i} " + "y" * 990)
    m.create_checkpoint()
    cp = attrs.evolve(m.read_checkpoint(), context={"blob": "x" * 210_000})
    with pytest.raises(CheckpointTooLarge) as err:
        encode_sized(cp)
    assert [name for name, _ in err.value.largest][:2] == ["context", "state.open_questions"]
    assert "largest fields: context (" in str(err.value)


def test_session_metadata_over_10kb_warns(make_manager) -> None:
    m = make_manager()
    m.start_session()
    for i in range(120):
        m.record_file_change(f"src/module_{i:04d}/a_fairly_long_file_name.py", ["edit"], 3)
    with capture_logs() as logs:
        m.end_session()
    assert "session.large" in [e["event"] for e in logs if e["log_level"] == "warning"]


def test_checkpoint_size_does_not_grow_with_the_checkpoints_before_it(make_manager, clock) -> None:
    m = make_manager()
    m.start_session()
    m.add_task("T1", "steady work")
    m.record_decision("keep state, not history", rationale="size")
    sizes = []
    for i in range(1002):
        clock.advance(seconds=1)
        # the same work state each time; only the progress counter (a fixed width) moves
        m.create_checkpoint(progress={"n": 1000 + i % 2})
        if i in (1, 1001):  # checkpoint N and N+1000, both with a parent
            key = m.last_checkpoint.key
            sizes.append(len(m.store.get(key).value))
    assert sizes[1] == sizes[0]  # timestamps and ids are fixed-width


# -- the resumption summary -----------------------------------------------------------------


def test_the_resumption_summary_shows_the_previous_session_and_open_work(clock) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=False)
    m.add_task("T1", "design")
    m.add_task("T2", "build", status="in_progress", progress="50%")
    m.complete_task("T1", "design")
    m.add_open_question("full context in auto checkpoints?")
    m.add_blocker("waiting on review")
    m.record_decision("one file per key", rationale="atomic rename", impact="architectural")
    m.end_session(success=True, phase="Phase 1")
    clock.advance(hours=1)
    m2 = SessionManager(store=store, project="demo", clock=clock)
    m2.start_session()
    text = resumption_summary(m2.snapshot())
    assert f"  Previous session: {m.session_id} (ended 2026-01-25 12:00Z, success" in text
    for line in (
        "  Done so far:\n    - task completed: T1: design",
        "  Open:\n    - task: T2: build [in_progress, 50%]",
        "    - question: full context in auto checkpoints?",
        "    - blocker: waiting on review",
        "  Decisions:\n    - one file per key (because atomic rename) [architectural]",
    ):
        assert line in text


def test_a_crashed_previous_session_is_described_from_its_checkpoint(clock) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=False)
    m.complete_task("T9", "half done", priority="high")
    clock.advance(hours=1)
    m2 = SessionManager(store=store, project="demo", clock=clock)
    m2.start_session()
    text = resumption_summary(m2.snapshot())
    assert f"Previous session: {m.session_id} (cut short; last checkpoint" in text
    assert "  Done so far:\n    - task completed: T9: half done" in text


def test_long_sections_say_how_many_more_and_the_whole_fits_the_limit(clock) -> None:
    store = open_store("memory://")
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=False)
    for i in range(40):
        m.add_open_question(f"question {i:02d} " + "z" * 300)
    m.create_checkpoint()
    text = resumption_summary(m.snapshot(), max_items=10)
    assert "    ... 30 more" in text
    small = resumption_summary(m.snapshot(), limit_chars=1500, max_items=40)
    assert len(small) <= 1500
    assert small.splitlines()[-1].endswith(
        "more lines (cut at 1,500 characters; `lifecycle report` has them all)"
    )


def test_a_risky_operation_run_again_is_one_line_naming_the_checkpoint_before_its_last_run(
    clock,
) -> None:
    from lifecycle.report import render_context

    m = SessionManager(store=open_store("memory://"), project="demo", clock=clock)
    m.start_session(restore=False)
    m.update_context(
        {
            "risky_operations": [
                {"operation": "rm -rf build/", "checkpoint_id": "cp-1"},
                {"operation": "git reset --hard", "checkpoint_id": "cp-2"},
                {"operation": "rm -rf build/", "checkpoint_id": "cp-3"},
                {"operation": "rm -rf build/", "checkpoint_id": "cp-4"},
                {"operation": "git push --force"},
            ]
        }
    )
    lines = [line.strip() for line in render_context(m.snapshot()).splitlines()]
    risky = [line for line in lines if line.startswith("- risky operation")]
    assert risky == [
        "- risky operation 'git reset --hard', checkpoint cp-2 written before it ran",
        "- risky operation 'rm -rf build/' (3 times), checkpoint cp-4 written before the last run",
        "- risky operation 'git push --force', not checkpointed",
    ]
