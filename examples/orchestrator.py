"""An asyncio orchestrator: several agent sessions at once, a crash, and a resume.

    python examples/orchestrator.py [--store URL] [--agents 4]

Each agent is one session (its own project) driven by a script of event messages,
each with an idempotency key. The managers keep a journal, the clock is simulated
(four minutes per step), so automatic checkpoints come from the time trigger (30
minutes of active work) and from high-priority task completions.

Midway, agent-2's task is cancelled while a step is running and its manager is
dropped without end_session: a crash. The orchestrator resumes the session from its
journal (same session, unsaved work included) and, not knowing whether the message in
flight was applied, re-sends the last few acknowledged messages too: the idempotency
keys make the repeats change nothing. Then every session ends, and agent-1's journal
is replayed to show it rebuilds the session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lifecycle import open_store
from lifecycle.aio import AsyncSessionManager
from lifecycle.journal import entries, message, replay, resume
from lifecycle.records import EventMessage

TASKS = 6
CRASH_AGENT = "agent-2"
CRASH_AFTER = 13  # messages acknowledged before the crash
RESEND = 3  # acknowledged messages the orchestrator sends again after the resume


class StepClock:
    """Simulated time: each agent's clock moves only when its orchestrator says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def script(agent: str) -> list[EventMessage]:
    """The messages an agent's work produces, each with its own idempotency key."""
    steps: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
    for i in range(1, TASKS + 1):
        task = f"T{i}"
        steps += [
            ("add_task", (task, f"{agent} task {i}"), {"status": "in_progress"}),
            ("record_file_change", (f"src/{agent}/{task.lower()}.py", ["edit"], i), {}),
            ("record_decision", (f"{task}: approach {i}",), {"rationale": "simplest"}),
            ("tick", (), {}),
            ("complete_task", (task,), {"priority": "high" if i % 3 == 0 else "medium"}),
        ]
    return [
        message(name, *args, idempotency_key=f"{agent}/{n}", **kwargs)
        for n, (name, args, kwargs) in enumerate(steps, 1)
    ]


async def drive(
    manager: AsyncSessionManager, clock: StepClock, todo: list[EventMessage], acked: list[str]
) -> None:
    for msg in todo:
        clock.advance(4)
        await manager.apply(msg)
        assert msg.idempotency_key is not None
        acked.append(msg.idempotency_key)
        await asyncio.sleep(0)  # let the other agents run


async def crash_midway(
    task: asyncio.Task[None], manager: AsyncSessionManager, acked: list[str]
) -> None:
    while len(acked) < CRASH_AFTER or not manager.busy:
        await asyncio.sleep(0)
    task.cancel()  # while the next step runs in its thread: it finishes, unacknowledged
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def orchestrate(url: str, agents: int) -> int:
    store = open_store(url)
    names = [f"agent-{n}" for n in range(1, agents + 1)]
    clocks = {name: StepClock() for name in names}
    scripts = {name: script(name) for name in names}
    acked: dict[str, list[str]] = {name: [] for name in names}
    managers = {
        name: AsyncSessionManager(store, name, clock=clocks[name], journal=True) for name in names
    }
    print(f"orchestrator: {agents} agents, {len(scripts[names[0]])} messages each, on {url}")
    for name in names:
        await managers[name].start_session(command=f"work {name}", restore=False)

    tasks = {
        name: asyncio.create_task(drive(managers[name], clocks[name], scripts[name], acked[name]))
        for name in names
    }
    await crash_midway(tasks[CRASH_AGENT], managers[CRASH_AGENT], acked[CRASH_AGENT])
    crashed = managers.pop(CRASH_AGENT)
    session_id = crashed.session_id
    del crashed  # dropped: no end_session, no save_context
    done = len(acked[CRASH_AGENT])
    print(f"{CRASH_AGENT}: crashed after {done} acknowledged messages (task cancelled mid-step)")

    # Resume from the journal, in a worker thread (it reads and replays the journal).
    resumed = await asyncio.to_thread(
        resume, store, CRASH_AGENT, session_id, clock=clocks[CRASH_AGENT]
    )
    manager = AsyncSessionManager.wrap(resumed)
    managers[CRASH_AGENT] = manager
    journaled = len(list(entries(manager.store, manager.session_id)))
    same = manager.session_id == session_id
    in_flight = "applied" if journaled - 1 > done else "not applied"
    print(
        f"{CRASH_AGENT}: resumed the same session: {same}; {journaled} journaled events "
        f"(the message in flight was {in_flight}), state {manager.state.value}"
    )
    before = journaled
    restart = max(0, done - RESEND)
    tasks[CRASH_AGENT] = asyncio.create_task(
        drive(manager, clocks[CRASH_AGENT], scripts[CRASH_AGENT][restart:], acked[CRASH_AGENT])
    )
    await asyncio.gather(*tasks.values())
    applied_again = len(list(entries(manager.store, manager.session_id))) - before
    expected_new = len(scripts[CRASH_AGENT]) - (journaled - 1)  # minus start_session's entry
    twice = applied_again - expected_new
    print(
        f"{CRASH_AGENT}: re-sent {done - restart} acknowledged messages and the rest: "
        f"{twice} applied twice"
    )

    ok = True
    for name in names:
        m = managers[name]
        end = await m.end_session(success=True, phase="done")
        record = m.session
        assert record is not None
        kinds: dict[str, int] = {}
        for ref in record.checkpoints:
            kinds[ref.trigger] = kinds.get(ref.trigger, 0) + 1
        completed = [t.id for t in m.work.completed_tasks]
        good = completed == [f"T{i}" for i in range(1, TASKS + 1)] and m.state.value == "COMPLETED"
        ok = ok and good
        triggers = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        print(
            f"{name}: {m.state.value} tasks={len(completed)} decisions={len(m.work.decisions)} "
            f"checkpoints={len(record.checkpoints)} ({triggers}) "
            f"summary={end.summary.phase!r}"
        )
    first = managers[names[0]]
    journal = list(entries(first.store, first.session_id))
    rebuilt = replay(journal, project=names[0], source=store)
    matches = (rebuilt.state, rebuilt.work, rebuilt.session) == (
        first.state,
        first.work,
        first.session,
    )
    print(f"all sessions completed with every task once: {ok}")
    print(f"replay of {names[0]}'s journal ({len(journal)} events) matches: {matches}")
    store.close()
    return 0 if ok and matches and twice == 0 and same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="store URL (default: a file store in a temp dir)")
    parser.add_argument("--agents", type=int, default=4)
    args = parser.parse_args(argv)
    from lifecycle.logs import configure

    configure("warning")
    if args.store:
        return asyncio.run(orchestrate(args.store, args.agents))
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(orchestrate(f"file://{tmp}/lifecycle", args.agents))


if __name__ == "__main__":
    sys.exit(main())
