"""A verification kit: hypothesis strategies and a stateful test of the lifecycle rules.

Subclass :class:`LifecycleRules` with your own store, triggers and invariants::

    from lifecycle.testing import LifecycleRules

    class MyStoreRules(LifecycleRules):
        def make_store(self):
            return open_store("sqlite:///" + tempfile.mktemp(suffix=".db"))

    TestMyStore = MyStoreRules.TestCase

Every step fires one random event (legal or not) with a simulated clock and,
when ``fault_rate`` > 0, a store that fails at random. After every step the
rules of design.md are checked (see each ``@invariant``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lifecycle import codec
from lifecycle.errors import IllegalTransition, StoreError, StoreUnavailable
from lifecycle.records import Checkpoint, Pointer
from lifecycle.session import SessionManager
from lifecycle.spec import TABLE, Event, SessionState
from lifecycle.stores import open_store
from lifecycle.stores.base import Entry, Op, Store

__all__ = [
    "FlakyStore",
    "LifecycleRules",
    "SimulatedClock",
    "decisions",
    "operations",
    "task_ids",
]

task_ids = st.sampled_from([f"T{i:03d}" for i in range(1, 8)])
priorities = st.sampled_from(["low", "medium", "high"])
decisions = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=40
)
operations = st.sampled_from(
    ["ls -la", "pytest -q", "rm -rf build", "git push --force", "git status", "make test"]
)


class SimulatedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FlakyStore:
    """Wraps a store; each write fails with StoreUnavailable with probability ``rate``.

    A failed write changes nothing (the fault is raised before the inner call),
    like a server that is unreachable. Reads fail too when ``fail_reads``.
    """

    def __init__(
        self, inner: Store, rate: float, seed: int = 0, *, fail_reads: bool = False
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.rate = rate
        self.fail_reads = fail_reads
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.failures = 0

    def _maybe_fail(self, what: str) -> None:
        if self.rate and self.random.random() < self.rate:
            self.failures += 1
            raise StoreUnavailable(f"injected fault on {what}")

    def get(self, key: str) -> Entry | None:
        if self.fail_reads:
            self._maybe_fail("get")
        return self.inner.get(key)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        self._maybe_fail("put")
        return self.inner.put(key, value, expected_version=expected_version)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        self._maybe_fail("delete")
        return self.inner.delete(key, expected_version=expected_version)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        if self.fail_reads:
            self._maybe_fail("list_keys")
        return self.inner.list_keys(prefix, reverse=reverse, limit=limit)

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        return self.inner.scan(prefix, reverse=reverse, limit=limit)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        self._maybe_fail("batch")
        return self.inner.batch(ops)

    def close(self) -> None:
        self.inner.close()


def _snapshot(store: Store) -> dict[str, tuple[bytes, int]]:
    return {e.key: (e.value, e.version) for e in store.scan("")}


class LifecycleRules(RuleBasedStateMachine):
    """Random event sequences against a real manager; design.md rules 1-6 as invariants."""

    project = "rules"
    #: Probability that a store write fails (rules must hold under faults).
    fault_rate = 0.1

    def make_store(self) -> Store:
        """Override to test your own store (each example gets a new, empty one)."""
        return open_store("memory://")

    def make_manager(self, store: Store, clock: SimulatedClock) -> SessionManager:
        """Override to add your own triggers, hooks or settings."""
        return SessionManager(store=store, project=self.project, clock=clock)

    def __init__(self) -> None:
        super().__init__()
        self.clock = SimulatedClock()
        self.real = self.make_store()
        self.store = FlakyStore(self.real, self.fault_rate, seed=7)
        self.manager = self.make_manager(self.store, self.clock)
        self.written_ids: list[str] = []
        self.previous_state = SessionState.INITIALIZING
        self.last_event: Event | None = None
        self.restore_candidate: Checkpoint | None = None

    # -- setup: sometimes there is history to restore ------------------------------------

    @initialize(history=st.integers(0, 2))
    def seed_history(self, history: int) -> None:
        if not history:
            return
        earlier = self.make_manager(self.real, self.clock)
        earlier.start_session(restore=False)
        for i in range(history):
            earlier.create_checkpoint(phase=f"earlier-{i}", progress={"done": i})
            self.written_ids.append(earlier.read_checkpoint().id)
        self.clock.advance(60)

    # -- events ----------------------------------------------------------------------------

    def _fire(self, event: Event, call: Any) -> None:
        manager = self.manager
        self.previous_state = manager.state
        self.last_event = event
        legal = event in TABLE.legal_events(manager.state)
        before_store = _snapshot(self.real)
        before_state = manager.state
        before_work = manager.work
        before_latest = manager.last_checkpoint
        if event is Event.LOAD and legal:
            try:
                self.restore_candidate = manager.read_checkpoint()
            except Exception:
                self.restore_candidate = None
        try:
            result = call()
        except IllegalTransition:
            # Rule 5: an illegal event changes nothing, in memory or in the store.
            assert not legal, f"{event} is legal in {before_state} but was refused"
            assert manager.state is before_state
            assert manager.work == before_work
            assert _snapshot(self.real) == before_store
            return
        except StoreError:
            # A failed store write may abort an event (start, end); the state must
            # then be unchanged.
            assert manager.state is before_state
            return
        assert legal, f"{event} is illegal in {before_state} but was accepted"
        checkpoint = getattr(result, "checkpoint", None)
        if (
            event is not Event.LOAD
            and manager.last_checkpoint is not before_latest
            and manager.last_checkpoint is not None
        ):
            self.written_ids.append(manager.last_checkpoint.id)
        if manager.state is SessionState.CHECKPOINTED and before_state is not manager.state:
            # Rule 3: entering CHECKPOINTED wrote exactly one durable checkpoint equal to
            # the session's state at that moment.
            assert manager.last_checkpoint is not before_latest
            stored = manager.read_checkpoint()
            assert stored.id == manager.last_checkpoint.id  # type: ignore[union-attr]
            assert stored.state == manager.work
            assert (stored.phase, stored.progress, stored.context) == (
                manager.phase,
                manager.progress,
                manager.context,
            )
        del checkpoint

    @rule()
    def load(self) -> None:
        self._fire(Event.LOAD, lambda: self.manager.start_session(restore=True))

    @rule()
    def load_fresh(self) -> None:
        self._fire(Event.LOAD, lambda: self.manager.start_session(restore=False))

    @rule(task=task_ids, priority=priorities, minutes=st.integers(0, 40))
    def complete_task(self, task: str, priority: str, minutes: int) -> None:
        self.clock.advance(minutes * 60)
        self._fire(
            Event.TASK_COMPLETED, lambda: self.manager.complete_task(task, priority=priority)
        )

    @rule(text=decisions)
    def record_decision(self, text: str) -> None:
        self._fire(Event.RECORD, lambda: self.manager.record_decision(text))

    @rule(minutes=st.integers(0, 20))
    def tick(self, minutes: int) -> None:
        self.clock.advance(minutes * 60)
        self._fire(Event.TICK, self.manager.tick)

    @rule(command=operations)
    def before_operation(self, command: str) -> None:
        self._fire(Event.BEFORE_OPERATION, lambda: self.manager.before_operation(command))

    @rule(error=decisions)
    def error_recovered(self, error: str) -> None:
        self._fire(Event.ERROR_RECOVERED, lambda: self.manager.error_recovered(error, ["retried"]))

    @rule(phase=st.sampled_from(["", "Phase 1", "Phase 2"]), done=st.integers(0, 3))
    def save(self, phase: str, done: int) -> None:
        self._fire(
            Event.SAVE,
            lambda: self.manager.create_checkpoint(phase=phase, progress={"done": done}),
        )

    @rule(success=st.booleans())
    def complete(self, success: bool) -> None:
        self._fire(Event.COMPLETE, lambda: self.manager.end_session(success=success))

    # -- the rules ---------------------------------------------------------------------------

    @invariant()
    def completed_is_terminal(self) -> None:
        """Rule 1: once COMPLETED, always COMPLETED (no legal events remain)."""
        if self.previous_state is SessionState.COMPLETED:
            assert self.manager.state is SessionState.COMPLETED
        if self.manager.state is SessionState.COMPLETED:
            assert TABLE.legal_events(SessionState.COMPLETED) == frozenset()

    @invariant()
    def resumed_only_by_a_restore(self) -> None:
        """Rule 2: RESUMED is entered only from INITIALIZING, only when a valid checkpoint
        existed, and the restored state equals that checkpoint's."""
        m = self.manager
        if m.state is SessionState.RESUMED and self.previous_state is not SessionState.RESUMED:
            assert self.previous_state is SessionState.INITIALIZING
            assert self.restore_candidate is not None
            assert m.last_checkpoint is not None
            assert m.last_checkpoint.id == self.restore_candidate.id
            assert m.work == self.restore_candidate.state
            assert m.phase == self.restore_candidate.phase
            assert m.progress == self.restore_candidate.progress

    @invariant()
    def states_mean_what_they_say(self) -> None:
        """ACTIVE: unsaved work (or nothing durable yet); CHECKPOINTED and RESUMED: the
        durable checkpoint equals the session's state."""
        m = self.manager
        if m.state in (SessionState.CHECKPOINTED, SessionState.RESUMED):
            assert not m.has_unsaved_work
        if m.state is SessionState.ACTIVE:
            assert m.has_unsaved_work

    @invariant()
    def completed_is_reachable(self) -> None:
        """Rule 4: COMPLETED is reachable from every other state (complete is legal)."""
        if self.manager.state is not SessionState.COMPLETED:
            assert Event.COMPLETE in TABLE.legal_events(self.manager.state)

    @invariant()
    def ids_unique_ordered_and_latest_is_newest(self) -> None:
        """Rule 6: checkpoint ids are unique and sort by creation order; the latest
        pointer resolves to the newest written checkpoint."""
        ids = self.written_ids
        assert len(ids) == len(set(ids))
        assert ids == sorted(ids)
        entry = self.real.get(f"{self.project}/checkpoints/latest")
        if ids:
            assert entry is not None
            pointer = codec.decode(Pointer, entry.value)
            assert pointer.id == ids[-1]
        else:
            assert entry is None

    def teardown(self) -> None:
        self.real.close()
