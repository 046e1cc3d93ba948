"""AsyncSessionManager: the SessionManager's API, awaited, for orchestrators on asyncio.

Design: an async façade over the one synchronous core, not transitions'
``AsyncMachine``. The core already does everything that must be right (the table
in :mod:`lifecycle.spec`, guards, effects, checkpoints, journal), so the façade adds
only what asyncio needs, and no second implementation can drift from the first:

- Per session, one ``asyncio.Lock``: a session's events run one at a time, in the
  order their coroutines reach the lock; sessions run concurrently.
- No blocking I/O on the loop: each step runs in a worker thread
  (``asyncio.to_thread``) unless the store is ``memory://`` (no I/O: a thread
  would cost more than the step). The core calls the store from inside guards and
  effects, so a native async driver (psycopg's) would need an async twin of the
  whole core; a pooled sync connection in a thread is the same round trip.
- Cancellation-safe: a thread cannot be stopped half-way, and neither may a step
  (a checkpoint and its ``latest`` pointer, then the session's state). A cancelled
  call therefore waits for its step to finish, shielded, and only then raises
  ``CancelledError``: when the cancellation is seen, the state and the store agree,
  and the step either happened entirely or not at all. Nothing is half-written
  because the core writes a checkpoint and its pointer in one atomic batch and
  changes its state only after the batch succeeded.

Reading properties (``state``, ``work``, ...) is immediate; ``session`` and
``has_unsaved_work`` wait for a step running in a thread (they take the core's lock).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from lifecycle.merge import Merged
from lifecycle.records import (
    Checkpoint,
    EventMessage,
    JSONValue,
    Learning,
    SessionRecord,
    WorkState,
)
from lifecycle.session import (
    CheckpointResult,
    Clearance,
    Clock,
    ConflictPolicy,
    EndResult,
    LearningResult,
    LifecycleHooks,
    Outcome,
    SessionManager,
    StartResult,
)
from lifecycle.spec import SessionState
from lifecycle.stores import ProjectStore, Store
from lifecycle.triggers.base import Evaluator, Operation
from lifecycle.triggers.time import TimeSettings

__all__ = ["AsyncSessionManager", "run_step"]

P = ParamSpec("P")
R = TypeVar("R")


async def run_step(step: Callable[[], R], *, offload: bool = True) -> R:
    """Run one synchronous step without blocking the loop; if the caller is cancelled
    meanwhile, finish the step first, then raise CancelledError."""
    if not offload:
        return step()
    task = asyncio.ensure_future(asyncio.to_thread(step))
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():  # the thread never started (the loop is closing)
                raise
            cancelled = True  # keep waiting: the step is running and must complete
        except BaseException:  # noqa: S110 - the step's own error, raised below
            pass
    if cancelled:
        if not task.cancelled():
            task.exception()  # retrieved: the caller asked to stop, not for the result
        raise asyncio.CancelledError
    return task.result()


def _awaited(
    method: Callable[Concatenate[SessionManager, P], R],
) -> Callable[Concatenate[AsyncSessionManager, P], Coroutine[Any, Any, R]]:
    """The awaited twin of a SessionManager method: same parameters, same result."""

    async def call(self: AsyncSessionManager, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._run(functools.partial(method, self._sync, *args, **kwargs))

    call.__name__ = method.__name__
    call.__qualname__ = f"AsyncSessionManager.{method.__name__}"
    call.__doc__ = method.__doc__
    call.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return call


class AsyncSessionManager:
    """One work session, driven from asyncio: every SessionManager method, awaited.

    Takes the same arguments as :class:`~lifecycle.session.SessionManager`, plus
    ``offload``: run each step in a worker thread (default: unless the store is
    ``memory://``).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        project: str = "default",
        clock: Clock | None = None,
        *,
        evaluators: Sequence[Evaluator] | None = None,
        time_settings: TimeSettings | None = None,
        hooks: Iterable[LifecycleHooks] = (),
        strict: bool = False,
        conflict: ConflictPolicy | str = ConflictPolicy.LAST_WRITE_WINS,
        journal: bool = False,
        snapshot: str | None = None,
        work_tree: str | os.PathLike[str] | None = None,
        offload: bool | None = None,
    ) -> None:
        self._sync = SessionManager(
            store,
            project,
            clock,
            evaluators=evaluators,
            time_settings=time_settings,
            hooks=hooks,
            strict=strict,
            conflict=conflict,
            journal=journal,
            snapshot=snapshot,
            work_tree=work_tree,
        )
        self._lock = asyncio.Lock()
        self._offload = (
            offload if offload is not None else not self._sync.store.url.startswith("memory:")
        )

    @classmethod
    def wrap(cls, manager: SessionManager, *, offload: bool | None = None) -> AsyncSessionManager:
        """An async façade over an existing manager (e.g. one from ``journal.resume``)."""
        self = cls.__new__(cls)
        self._sync = manager
        self._lock = asyncio.Lock()
        self._offload = (
            offload if offload is not None else not manager.store.url.startswith("memory:")
        )
        return self

    async def _run(self, step: Callable[[], R]) -> R:
        async with self._lock:
            return await run_step(step, offload=self._offload)

    # -- reads (no I/O) ------------------------------------------------------------------

    @property
    def sync(self) -> SessionManager:
        """The synchronous core this façade drives."""
        return self._sync

    @property
    def busy(self) -> bool:
        """Whether a step of this session is running (or waiting for the session)."""
        return self._lock.locked()

    @property
    def project(self) -> str:
        return self._sync.project

    @property
    def store(self) -> ProjectStore:
        return self._sync.store

    @property
    def state(self) -> SessionState:
        return self._sync.state

    @property
    def session_id(self) -> str | None:
        return self._sync.session_id

    @property
    def session(self) -> SessionRecord | None:
        return self._sync.session

    @property
    def work(self) -> WorkState:
        return self._sync.work

    @property
    def phase(self) -> str:
        return self._sync.phase

    @property
    def progress(self) -> dict[str, JSONValue]:
        return self._sync.progress

    @property
    def context(self) -> dict[str, JSONValue]:
        return self._sync.context

    @property
    def active_seconds(self) -> float:
        return self._sync.active_seconds

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._sync.last_checkpoint

    @property
    def last_checkpoint_at(self) -> datetime | None:
        return self._sync.last_checkpoint_at

    @property
    def last_auto_checkpoint_at(self) -> datetime | None:
        return self._sync.last_auto_checkpoint_at

    @property
    def tasks_completed_since_checkpoint(self) -> int:
        return self._sync.tasks_completed_since_checkpoint

    @property
    def has_unsaved_work(self) -> bool:
        return self._sync.has_unsaved_work

    @property
    def warnings(self) -> tuple[str, ...]:
        return self._sync.warnings

    @property
    def pending_learnings(self) -> tuple[Learning, ...]:
        return self._sync.pending_learnings

    @property
    def last_merge(self) -> Merged | None:
        return self._sync.last_merge

    @property
    def restored_from(self) -> Checkpoint | None:
        return self._sync.restored_from

    # -- the API, awaited ------------------------------------------------------------------

    start_session = _awaited(SessionManager.start_session)
    should_create_checkpoint = _awaited(SessionManager.should_create_checkpoint)
    create_checkpoint = _awaited(SessionManager.create_checkpoint)
    capture_learning = _awaited(SessionManager.capture_learning)
    end_session = _awaited(SessionManager.end_session)
    report = _awaited(SessionManager.report)
    snapshot = _awaited(SessionManager.snapshot)
    apply = _awaited(SessionManager.apply)
    save_context = _awaited(SessionManager.save_context)
    attach = _awaited(SessionManager.attach)
    add_task = _awaited(SessionManager.add_task)
    complete_task = _awaited(SessionManager.complete_task)
    record_decision = _awaited(SessionManager.record_decision)
    record_file_change = _awaited(SessionManager.record_file_change)
    record_discovery = _awaited(SessionManager.record_discovery)
    add_open_question = _awaited(SessionManager.add_open_question)
    resolve_question = _awaited(SessionManager.resolve_question)
    add_blocker = _awaited(SessionManager.add_blocker)
    clear_blocker = _awaited(SessionManager.clear_blocker)
    update_context = _awaited(SessionManager.update_context)
    tick = _awaited(SessionManager.tick)
    error_recovered = _awaited(SessionManager.error_recovered)
    read_checkpoint = _awaited(SessionManager.read_checkpoint)
    list_checkpoints = _awaited(SessionManager.list_checkpoints)
    learnings_count = _awaited(SessionManager.learnings_count)

    async def before_operation(self, operation: Operation | str, **fields: Any) -> Clearance:
        """Ask before running an operation (see SessionManager.before_operation)."""
        return await self._run(functools.partial(self._sync.before_operation, operation, **fields))

    flush_journal = _awaited(SessionManager.flush_journal)


# Results, re-exported so that async users import one module.
__all__ += [
    "CheckpointResult",
    "Clearance",
    "EndResult",
    "EventMessage",
    "LearningResult",
    "Outcome",
    "StartResult",
]
