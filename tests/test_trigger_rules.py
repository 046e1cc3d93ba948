"""design.md rules 7 and 8 through the real SessionManager, over long random timelines
with a simulated clock and a store that fails at random."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle import SessionManager, SessionState, open_store
from lifecycle.records import CheckpointType
from lifecycle.testing import FlakyStore, SimulatedClock
from lifecycle.triggers.base import Operation
from lifecycle.triggers.risk import RiskSettings, classify

INTERVAL = timedelta(minutes=30)
IDLE = timedelta(minutes=5)

RISKY = [
    "rm -rf build",
    "git push --force origin main",
    "git reset --hard HEAD~3",
    "DROP TABLE users;",
]
SAFE = ["ls -la", "pytest -q", "git status", "git push origin main", "echo hello"]

steps = st.lists(
    st.tuples(
        st.sampled_from(["tick", "task_high", "task_low", "risky", "safe", "decision"]),
        st.integers(min_value=0, max_value=9 * 60),  # seconds since the previous event
    ),
    min_size=1,
    max_size=120,
)


def _manager(rate: float, seed: int) -> tuple[SessionManager, FlakyStore, SimulatedClock]:
    clock = SimulatedClock()
    store = FlakyStore(open_store("memory://"), rate, seed=seed)
    manager = SessionManager(store=store, project="rules", clock=clock)
    return manager, store, clock


def _durable_keys(store: FlakyStore) -> set[str]:
    return set(store.inner.list_keys("rules/checkpoints/"))


def test_the_default_risky_commands_here_are_risky_and_the_safe_ones_not() -> None:
    settings_ = RiskSettings()
    assert all(classify(Operation(command=c), settings_) for c in RISKY)
    assert not any(classify(Operation(command=c), settings_) for c in SAFE)


@settings(max_examples=40)
@given(timeline=steps, rate=st.sampled_from([0.0, 0.2, 0.5]), seed=st.integers(0, 1000))
def test_rule_7_high_priority_and_risky_operations_always_checkpoint_first(
    timeline: list[tuple[str, int]], rate: float, seed: int
) -> None:
    manager, store, clock = _manager(rate, seed)
    while True:  # starting may fail under faults; it changes nothing then
        try:
            manager.start_session(restore=False)
            break
        except Exception:
            assert manager.state is SessionState.INITIALIZING
    for n, (kind, gap) in enumerate(timeline):
        clock.advance(gap)
        before = _durable_keys(store)
        if kind == "task_high":
            out = manager.complete_task(f"T{n}", priority="high")
            after = _durable_keys(store)
            if out.checkpoint is not None and out.checkpoint.written:
                assert out.checkpoint.key.startswith(f"checkpoints/task-T{n}-")
                assert f"rules/{out.checkpoint.key}" in after - before
                assert manager.state is SessionState.CHECKPOINTED
            else:
                # The write failed twice: the work is kept, unsaved, and tracked.
                assert out.checkpoint is not None and out.checkpoint.written is False
                assert manager.state is SessionState.ACTIVE
                assert manager.work.completed_tasks[-1].id == f"T{n}"
        elif kind in ("risky", "safe"):
            command = RISKY[n % len(RISKY)] if kind == "risky" else SAFE[n % len(SAFE)]
            clearance = manager.before_operation(command)
            after = _durable_keys(store)
            if kind == "safe":
                assert clearance.proceed is True
                assert clearance.checkpoint is None
            elif clearance.proceed:
                # Go-ahead only once the risk checkpoint is durable in the store.
                assert clearance.checkpoint is not None and clearance.checkpoint.written
                assert clearance.checkpoint.type is CheckpointType.RISK
                assert f"rules/{clearance.checkpoint.key}" in after - before
            else:
                assert after == before
        elif kind == "task_low":
            manager.complete_task(f"T{n}", priority="low")
        elif kind == "decision":
            manager.record_decision(f"decision {n}")
        else:
            manager.tick()


@settings(max_examples=40)
@given(timeline=steps)
def test_rule_8_active_time_between_checkpoints_is_bounded_and_auto_ones_are_spaced(
    timeline: list[tuple[str, int]],
) -> None:
    manager, _store, clock = _manager(0.0, 0)
    manager.start_session(restore=False)
    auto_times = []
    active = 0.0
    largest_gap = 0.0
    for kind, gap in timeline:
        clock.advance(gap)
        if gap <= IDLE.total_seconds():
            active += gap
            largest_gap = max(largest_gap, gap)
        # Something to save, so the time trigger has a reason to write.
        out = manager.record_decision(f"{kind} at {clock.now.isoformat()}")
        if out.checkpoint is None:
            out = manager.tick()
        if out.checkpointed:
            assert out.checkpoint is not None
            if out.checkpoint.key.startswith("checkpoints/auto-"):
                auto_times.append(out.checkpoint.timestamp)
                # Fired only after a full interval of active (not idle) work.
                assert active >= INTERVAL.total_seconds()
            active = 0.0
        # Never more than one interval (plus the event spacing) of active work unsaved.
        assert active <= INTERVAL.total_seconds() + largest_gap
    for earlier, later in itertools.pairwise(auto_times):
        assert later - earlier >= INTERVAL
