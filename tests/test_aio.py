"""AsyncSessionManager: cancellation at random points never leaves a half-written
checkpoint or a state that disagrees with the store; sessions run concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Sequence

import pytest

from lifecycle import SessionState, codec
from lifecycle.aio import AsyncSessionManager, run_step
from lifecycle.errors import StoreError, StoreUnavailable
from lifecycle.records import Checkpoint, Pointer
from lifecycle.stores.base import Op
from lifecycle.stores.memory import MemoryStore
from lifecycle.testing import WRITES, FaultyStore, SimulatedClock


def slow_flaky_store(seed: int, rate: float = 0.15) -> FaultyStore:
    """A memory store whose writes fail at random (before anything is written) and are
    slow *after* they are applied, so a step is still running in its thread when the
    coroutine that started it is cancelled. Its URL is not memory://, so the async
    manager steps in a worker thread."""
    store = FaultyStore(
        MemoryStore(), seed=seed, delay=0.003, delay_on=WRITES, jitter=True, url="slow://"
    )
    store.fail(WRITES, rate=rate)
    return store


def assert_state_agrees_with_store(m: AsyncSessionManager, store: FaultyStore) -> None:
    assert store.in_flight == 0, "a step was still running when its cancellation was seen"
    ps = m.store
    stored = {
        key: codec.decode(Checkpoint, ps.get(key).value) for _, key in m.sync.list_checkpoints()
    }
    refs = [] if m.session is None else [ref.key for ref in m.session.checkpoints]
    count = 0 if m.session is None else m.session.checkpoint_count
    # Every checkpoint in the store is one the session knows it wrote, and vice versa
    # (the record counts them all and keeps the newest refs).
    keys = [key for _, key in m.sync.list_checkpoints()]
    assert len(keys) == count
    assert keys[len(keys) - len(refs) :] == refs
    latest = ps.get("checkpoints/latest")
    if not refs:
        assert latest is None
        return
    pointer = codec.decode(Pointer, latest.value)
    assert pointer.key == refs[-1] and pointer.id == m.last_checkpoint.id
    assert stored[pointer.key] == m.last_checkpoint
    if m.state in (SessionState.CHECKPOINTED, SessionState.RESUMED):
        cp = stored[pointer.key]
        assert (cp.state, cp.phase, cp.progress, cp.context) == (
            m.work,
            m.phase,
            m.progress,
            m.context,
        )
    assert m.has_unsaved_work is (m.state is SessionState.ACTIVE)


async def cancel_at_random_points(seed: int) -> int:
    rng = random.Random(seed)
    store = slow_flaky_store(seed)
    clock = SimulatedClock()
    m = AsyncSessionManager(store, "p", clock=clock)
    assert m._offload is True  # a store that is not memory:// steps in a worker thread
    while m.state is SessionState.INITIALIZING:
        with contextlib.suppress(StoreError):
            await m.start_session()
    cancelled = 0
    for step in range(30):
        clock.advance(rng.randrange(0, 600))
        n = step
        makers = [
            lambda n=n: m.complete_task(f"T{n}", priority="high"),
            lambda n=n: m.create_checkpoint(progress={"step": n}),
            lambda n=n: m.record_decision(f"decision {n}"),
            lambda: m.tick(),
            lambda n=n: m.add_task(f"T{n}", status="in_progress"),
        ]
        tasks = [asyncio.create_task(rng.choice(makers)()) for _ in range(rng.randint(1, 3))]
        await asyncio.sleep(rng.random() * 0.004)
        victim = rng.choice(tasks)
        victim.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                cancelled += 1
                assert task is victim
                assert_state_agrees_with_store(m, store)
            except StoreError:
                pass
        assert_state_agrees_with_store(m, store)
    return cancelled


@pytest.mark.parametrize("seed", range(12))
def test_a_cancelled_call_is_seen_only_after_its_step_completed(seed: int) -> None:
    cancelled = asyncio.run(cancel_at_random_points(seed))
    assert cancelled > 0  # the scenario did cancel steps that were running


def test_a_cancelled_step_still_happens_entirely() -> None:
    """Cancelled mid-checkpoint: the checkpoint is written whole and the state says so."""

    async def scenario() -> None:
        store = slow_flaky_store(0, rate=0.0)
        m = AsyncSessionManager(store, "p", clock=SimulatedClock())
        await m.start_session()
        started = threading.Event()
        real_batch = store.batch

        def slow_batch(ops: Sequence[Op]) -> list[int]:
            started.set()
            time.sleep(0.05)
            return real_batch(ops)

        store.batch = slow_batch  # type: ignore[method-assign]
        task = asyncio.create_task(m.create_checkpoint(phase="P1"))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert m.state is SessionState.CHECKPOINTED
        assert (await m.read_checkpoint()).phase == "P1"
        assert_state_agrees_with_store(m, store)
        # The lock was released: the session goes on.
        assert (await m.record_decision("next")).state is SessionState.ACTIVE

    asyncio.run(scenario())


def test_a_step_error_propagates_to_the_awaiting_caller() -> None:
    def boom() -> None:
        raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable, match="down"):
        asyncio.run(run_step(boom))


def test_sessions_run_concurrently_and_each_one_in_order() -> None:
    async def agent(m: AsyncSessionManager, n: int) -> list[str]:
        await m.start_session()
        for i in range(20):
            await m.add_task(f"A{n}-{i}")
            await m.complete_task(f"A{n}-{i}", priority="high" if i % 5 == 0 else "medium")
        await m.end_session()
        return [t.id for t in m.work.completed_tasks]

    async def scenario() -> list[list[str]]:
        store = slow_flaky_store(1, rate=0.0)
        managers = [
            AsyncSessionManager(store, f"agent-{n}", clock=SimulatedClock()) for n in range(6)
        ]
        return await asyncio.gather(*(agent(m, n) for n, m in enumerate(managers)))

    results = asyncio.run(scenario())
    assert results == [[f"A{n}-{i}" for i in range(20)] for n in range(6)]


def test_the_memory_store_steps_inline_and_any_other_in_a_thread() -> None:
    assert AsyncSessionManager("memory://", "p")._offload is False
    assert AsyncSessionManager(slow_flaky_store(0), "p")._offload is True
    assert AsyncSessionManager("memory://", "p", offload=True)._offload is True


def _public(cls: type) -> dict[str, object]:
    return {
        name: value
        for klass in reversed(cls.__mro__)
        for name, value in vars(klass).items()
        if not name.startswith("_") and klass is not object
    }


def test_the_async_manager_has_every_public_name_of_the_sync_one_with_its_signature() -> None:
    import inspect

    from lifecycle.aio import AsyncSessionManager
    from lifecycle.session import SessionManager

    sync, aio = _public(SessionManager), _public(AsyncSessionManager)
    assert set(sync) - {"project"} <= set(aio), sorted(set(sync) - set(aio))
    for name, member in sync.items():
        if isinstance(member, property):
            assert isinstance(aio[name], property), name
            continue
        if not callable(member):
            continue
        twin = aio[name]
        assert inspect.iscoroutinefunction(twin), f"{name} is not awaited"
        want = inspect.signature(member)
        got = inspect.signature(twin)
        assert list(got.parameters) == list(want.parameters), name
        assert [p.kind for p in got.parameters.values()] == [
            p.kind for p in want.parameters.values()
        ], name
    init_sync = list(inspect.signature(SessionManager.__init__).parameters)
    init_aio = list(inspect.signature(AsyncSessionManager.__init__).parameters)
    assert init_aio == [*init_sync, "offload"]


def test_every_event_of_the_registry_is_awaitable_and_has_stateful_arguments() -> None:
    from lifecycle.aio import AsyncSessionManager
    from lifecycle.events import EVENTS, TABLE_EVENTS
    from lifecycle.testing import EVENT_ARGUMENTS

    assert set(EVENT_ARGUMENTS) == set(EVENTS)
    assert set(TABLE_EVENTS) == set(EVENTS)
    for name in EVENTS:
        assert callable(getattr(AsyncSessionManager, name)), name
