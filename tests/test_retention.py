"""Retention: archive after 30 days, prune after 90 (configurable); learnings stay; the
newest checkpoint of each live chain always stays, ancestry protects nothing past the
age; --dry-run changes nothing. And a year
of synthetic sessions, summarized and pruned, on the real file store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from lifecycle import SessionManager, codec, open_store
from lifecycle.history import build_history
from lifecycle.records import DailySummary, WeeklySummary
from lifecycle.retention import Policy, plan, prune


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``lifecycle ARGS`` as a real process (in-process runs would reconfigure logging)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _day(store, clock, *, restore: bool, learn: str | None = None):
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=restore)
    m.add_task("T", "work")
    clock.advance(minutes=30)
    m.complete_task("T", priority="high")
    if learn:
        m.capture_learning(type="pattern", key=f"learning/patterns/{learn}", content="x")
    m.end_session()
    return m


def _everything(store) -> dict[str, bytes]:
    return {k: store.get(k).value for k in store.list_keys("")}


def test_old_sessions_are_archived_then_pruned_and_learnings_stay(clock) -> None:
    store = open_store("memory://")
    t0 = clock()
    for day in range(120):
        clock.now = t0 + timedelta(days=day)
        _day(store, clock, restore=day % 10 != 0, learn=f"l{day}" if day == 0 else None)
    ps = SessionManager(store=store, project="demo").store
    result = prune(ps, t0 + timedelta(days=120))
    sessions = ps.list_keys("session/")
    live = [k for k in sessions if k.count("/") == 1 and k[8:9].isdigit()]
    archived = [k for k in sessions if k.startswith("session/history/")]
    assert (len(live), len(archived)) == (30, 60)
    assert result.archived == 60 and result.pruned_sessions == 30
    assert ps.get("learning/patterns/l0") is not None
    # the latest chain stays inside the window; every older checkpoint went
    history = build_history(ps)
    chain = history.ancestors(history.latest_id)
    cutoff = t0 + timedelta(days=30)
    assert [n.id for n in history.nodes.values() if n.timestamp < cutoff] == []
    assert history.nodes[chain[-1]].parent_id is None  # day 110 started fresh: its root
    assert len(chain) == 10  # days 110..119: day 110 started fresh, the rest resumed


def test_only_the_latest_of_an_old_chain_stays_ancestry_protects_nothing_past_the_age(
    clock,
) -> None:
    store = open_store("memory://")
    for _ in range(5):
        _day(store, clock, restore=True)
        clock.advance(days=1)
    ps = SessionManager(store=store, project="demo").store
    latest = history_latest(ps)
    result = prune(ps, clock() + timedelta(days=400))
    assert list(build_history(ps).nodes) == [latest]
    assert len(result.plan.kept_checkpoints) == 1
    assert len(result.plan.prune_checkpoints) == 4


def history_latest(ps) -> str:
    latest = build_history(ps).latest_id
    assert latest is not None
    return latest


def test_prune_of_a_year_long_chain_keeps_the_window_and_the_open_sessions_checkpoints(
    clock,
) -> None:
    store = open_store("memory://")
    t0 = clock()
    for day in range(365):
        clock.now = t0 + timedelta(days=day)
        _day(store, clock, restore=True)
    m = SessionManager(store=store, project="demo", clock=clock)
    clock.advance(days=100)
    m.start_session()  # open, restored from the latest: 100 days old by now
    m.save_context()
    ps = m.store
    dry = prune(ps, clock(), dry_run=True)
    assert len(dry.plan.prune_checkpoints) == 364 and dry.pruned_checkpoints == 0
    result = prune(ps, clock())
    left = build_history(ps)
    assert list(left.nodes) == [m.restored_from.id]
    assert result.pruned_checkpoints == 364


def test_dry_run_lists_what_would_go_and_changes_nothing(clock) -> None:
    store = open_store("memory://")
    for day in range(100):
        _day(store, clock, restore=day % 7 != 0)
        clock.advance(days=1)
    ps = SessionManager(store=store, project="demo").store
    before = _everything(store)
    result = prune(ps, clock(), dry_run=True)
    assert _everything(store) == before
    assert result.plan.archive and result.plan.prune_sessions and result.plan.prune_checkpoints
    real = prune(ps, clock())
    assert real.plan == result.plan


def test_retention_ages_are_configurable(clock) -> None:
    store = open_store("memory://")
    t0 = clock()
    for day in range(10):
        clock.now = t0 + timedelta(days=day)
        _day(store, clock, restore=False)
    ps = SessionManager(store=store, project="demo").store
    # ages 10..1 days: 5 are over 5 days old; 3 more (ages 5, 4, 3) over 2 days
    p = plan(ps, t0 + timedelta(days=10), Policy.days(archive_after=2, prune_after=5))
    assert (len(p.archive), len(p.prune_sessions)) == (3, 5)


def test_a_negative_age_is_refused() -> None:
    from lifecycle.errors import InvalidSettings

    with pytest.raises(InvalidSettings, match="must not be negative"):
        Policy.days(-1, 90)


def test_lifecycle_prune_dry_run_and_progress(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    store = open_store(url)
    # sessions dated long ago (the CLI uses the system clock)
    for _ in range(4):
        _day(store, clock, restore=False)
        clock.advance(days=1)
    before = store.list_keys("demo/session/")
    args = ["prune", "--store", url, "--project", "demo"]
    done = _cli(*args, "--dry-run", "--format", "json")
    data = orjson.loads(done.stdout)
    assert data["dry_run"] is True and len(data["prune_sessions"]) == 3  # current one stays
    assert store.list_keys("demo/session/") == before
    done = _cli(*args, "--progress")
    assert "did prune 3 session(s)" in done.stdout
    assert done.stderr.endswith("prune: 6/6 keys\n")  # 3 sessions + 3 checkpoints
    done = _cli(*args)  # stderr is a pipe, not a terminal: no progress shown
    assert (done.returncode, done.stderr) == (0, "")
    done = _cli(*args, "--archive-after", "30", "--prune-after", "10")
    assert done.returncode == 2 and "must not be shorter" in done.stderr


def test_a_year_of_sessions_is_summarized_and_pruned(tmp_path, clock, capsys) -> None:
    """365 days x 3 sessions, simulated clock (memory store by default; the file store
    with LIFECYCLE_YEAR_STORE=file://TMP). The first session of each day starts fresh,
    the others resume; timings are reported, not asserted."""
    url = os.environ.get("LIFECYCLE_YEAR_STORE", "memory://").replace("TMP", str(tmp_path))
    store = open_store(url)
    summary_seconds: list[float] = []
    import lifecycle.summaries as summaries

    real = summaries.fold_session

    def timed(*a, **kw):
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            summary_seconds.append(time.perf_counter() - t)

    summaries.fold_session = timed
    try:
        t0 = clock()
        for _day_no in range(365):
            clock.now = t0 + timedelta(days=_day_no)
            for s in range(3):
                m = SessionManager(store=store, project="demo", clock=clock)
                m.start_session(restore=s > 0)
                m.add_task(f"T{s}", "work")
                clock.advance(minutes=40)
                m.complete_task(f"T{s}", priority="high")
                m.record_decision(f"decision {_day_no}.{s}", rationale="because")
                m.record_discovery(pattern=f"pattern {s}", insight=f"topic{s}: seen {_day_no}")
                m.end_session()
                clock.advance(hours=2)
    finally:
        summaries.fold_session = real
    ps = SessionManager(store=store, project="demo").store
    days = ps.list_keys("summaries/daily/")
    weeks = ps.list_keys("summaries/weekly/")
    assert (len(days), len(summary_seconds)) == (365, 1095)
    assert len(weeks) in (53, 54)
    last = codec.decode(DailySummary, ps.get(days[-1]).value)
    assert last.totals.sessions == 3
    week = codec.decode(WeeklySummary, ps.get(weeks[10]).value)
    assert week.totals.sessions == 21
    t = time.perf_counter()
    result = prune(ps, clock.now)
    prune_seconds = time.perf_counter() - t
    remaining = ps.list_keys("checkpoints/")
    assert result.pruned_sessions > 0 and result.pruned_checkpoints > 0
    history = build_history(ps)
    assert history.latest_id in history.nodes
    assert all(
        n.id in history.nodes for n in map(history.nodes.get, history.ancestors(history.latest_id))
    )
    first100 = sorted(summary_seconds[:100])[50]
    last100 = sorted(summary_seconds[-100:])[50]
    summary_seconds.sort()
    with capsys.disabled():
        print(
            f"\nyear of sessions (1095, {url.split(':')[0]} store): consolidation per session: "
            f"first 100 median {first100 * 1000:.2f} ms, last 100 median {last100 * 1000:.2f} ms, "
            f"max {summary_seconds[-1] * 1000:.2f} ms, "
            f"total {sum(summary_seconds):.2f} s; prune {prune_seconds:.2f} s "
            f"(archived {result.archived}, pruned {result.pruned_sessions} sessions and "
            f"{result.pruned_checkpoints} checkpoints; {len(remaining)} checkpoints left)"
        )


def test_summaries_after_deletes_old_summaries_and_decision_segments_and_nothing_else(
    clock,
) -> None:
    store = open_store("memory://")
    t0 = clock()
    for day in range(20):
        clock.now = t0 + timedelta(days=day)
        m = SessionManager(store=store, project="demo", clock=clock)
        m.start_session()
        m.record_decision(f"decision {day}")
        m.end_session()
    ps = SessionManager(store=store, project="demo").store
    assert len(ps.list_keys("project_state/decisions/")) == 20
    now = t0 + timedelta(days=20)
    assert prune(ps, now, dry_run=True).plan.prune_summaries == ()  # off by default
    cut = (t0 + timedelta(days=10)).date().isoformat()
    result = prune(ps, now, Policy.days(30, 90, summaries_after=10))
    gone = result.plan.prune_summaries
    assert [k for k in gone if k.startswith("summaries/daily/")] == [
        f"summaries/daily/{(t0 + timedelta(days=d)).date().isoformat()}" for d in range(10)
    ]
    assert all(k.rsplit("/", 1)[1] < cut for k in gone if not k.startswith("summaries/weekly/"))
    assert len(ps.list_keys("summaries/daily/")) == 10
    assert len(ps.list_keys("project_state/decisions/")) == 10
    assert ps.get("project_state/decisions_log") is not None  # the newest stay


def test_prune_deletes_the_journals_of_sessions_past_the_age_and_keeps_the_open_ones(
    clock,
) -> None:
    store = open_store("memory://")
    t0 = clock()
    for day in range(100):
        clock.now = t0 + timedelta(days=day)
        m = SessionManager(store=store, project="demo", clock=clock, journal=True)
        m.start_session()
        m.add_task("T", "work")
        m.end_session()
    ps = SessionManager(store=store, project="demo").store
    folders = {k.split("/")[1] for k in ps.list_keys("journal/")}
    assert len(folders) == 100
    result = prune(ps, t0 + timedelta(days=100))
    left = {k.split("/")[1] for k in ps.list_keys("journal/")}
    assert len(left) == 90  # days 10..99: within 90 days
    assert {k.split("/")[1] for k in result.plan.prune_journal} == folders - left
