"""10,000 live sessions in one process: memory per session and events per second.

    python bench/many_sessions.py [--sessions 10000] [--rounds 3] [--journal]

Every session is a SessionManager on its own project in one shared ``memory://``
store (an orchestrator running one agent per project). Each is started, then
driven for ``rounds`` rounds of: add a task, record a decision, tick, complete
the task (high priority every other round: that one writes a checkpoint).

Two passes: one timed (no tracing), one under tracemalloc (after gc) for the
memory. Memory per session counts everything the sessions keep alive, the store's
contents included; the store's share is printed beside it. A measurement, not a
test: nothing here asserts a time (tests/test_many_sessions.py bounds the memory).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lifecycle.session import SessionManager  # noqa: E402
from lifecycle.stores.memory import MemoryStore  # noqa: E402

#: Events each round sends to a session (start_session is one more per session).
EVENTS_PER_ROUND = 4


class StepClock:
    """A fast simulated clock: moves only when the driver says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def create(n: int, clock: StepClock, **kwargs: Any) -> tuple[MemoryStore, list[SessionManager]]:
    store = MemoryStore()
    managers = [
        SessionManager(store=store, project=f"agent-{i:05d}", clock=clock, **kwargs)
        for i in range(n)
    ]
    for m in managers:
        m.start_session(command="work", restore=False)
    return store, managers


def drive(managers: list[SessionManager], clock: StepClock, rounds: int) -> int:
    """Drive every session for ``rounds`` rounds; return the number of events sent."""
    events = 0
    for r in range(rounds):
        priority = "high" if r % 2 else "medium"
        clock.advance(60)
        for m in managers:
            m.add_task(f"T{r}", "a task", status="in_progress")
            m.record_decision(f"decision {r}", rationale="because")
            m.tick()
            m.complete_task(f"T{r}", priority=priority)
            events += EVENTS_PER_ROUND
    return events


def timed_pass(n: int, rounds: int, **kwargs: Any) -> dict[str, float]:
    clock = StepClock()
    gc.collect()
    started = time.perf_counter()
    _, managers = create(n, clock, **kwargs)
    created = time.perf_counter()
    events = drive(managers, clock, rounds)
    done = time.perf_counter()
    return {
        "create_and_start_per_s": n / (created - started),
        "events": events,
        "events_per_s": events / (done - created),
    }


def memory_pass(n: int, rounds: int, **kwargs: Any) -> dict[str, float]:
    """Bytes per live session (tracemalloc, after gc), and the store's share of them."""
    clock = StepClock()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        store, managers = create(n, clock, **kwargs)
        drive(managers, clock, rounds)
        gc.collect()
        total = tracemalloc.get_traced_memory()[0] - base
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    payload = sum(len(e.value) for e in store.scan(""))
    in_store_module = sum(
        s.size
        for s in snapshot.statistics("filename")
        if s.traceback[0].filename.endswith(("stores/memory.py", "lifecycle/codec.py"))
    )
    del managers, store
    return {
        "bytes_per_session": total / n,
        "store_payload_bytes_per_session": payload / n,
        "store_module_bytes_per_session": in_store_module / n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--journal", action="store_true", help="managers keep a journal")
    args = parser.parse_args(argv)
    from lifecycle.logs import configure

    configure("warning")  # an orchestrator logs transitions at info only when asked
    kwargs: dict[str, Any] = {"journal": True} if args.journal else {}
    t = timed_pass(args.sessions, args.rounds, **kwargs)
    m = memory_pass(args.sessions, args.rounds, **kwargs)
    print(f"sessions: {args.sessions}, rounds: {args.rounds}, journal: {args.journal}")
    print(f"create + start_session: {t['create_and_start_per_s']:,.0f} sessions/s")
    print(f"work events: {t['events']:,.0f} in total, {t['events_per_s']:,.0f} events/s")
    print(
        f"memory per live session: {m['bytes_per_session'] / 1024:.1f} KB "
        f"(store payload {m['store_payload_bytes_per_session'] / 1024:.1f} KB, "
        f"allocated in store+codec {m['store_module_bytes_per_session'] / 1024:.1f} KB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
