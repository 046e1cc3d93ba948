"""Events as messages, the journal, idempotency, and replay (above the session).

Every event method of :class:`~lifecycle.session.SessionManager` is also a message
(:func:`message`, :data:`EVENTS`; see :mod:`lifecycle.events`) that
``manager.apply(message)`` dispatches to that method.

- One moment per event: ``apply`` reads the clock once and the event runs with that
  reading, so the same messages at the same moments rebuild the same session.
- Journal: a manager made with ``journal=True`` appends every applied event, with
  its moment and result, to ``journal/{session-id}/{seq}``
  (:mod:`lifecycle.session.journal`). :func:`replay` rebuilds a session from its
  journal; :func:`resume` continues a crashed one from it.
- Idempotency: a message whose ``idempotency_key`` the session already applied
  changes nothing and returns the first result again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import (
    CorruptRecord,
    InvalidRecord,
    LifecycleError,
    NoSession,
    StoreUnavailable,
)
from lifecycle.events import EVENTS, TABLE_EVENTS, arguments, message
from lifecycle.logs import get_logger
from lifecycle.records import Checkpoint, JournalEntry, LiveContext, Pointer
from lifecycle.session import CONTEXT, LATEST, SessionManager
from lifecycle.session.journal import (
    RESULTS_KEPT,
    Journal,
    _prefix,
    entries,
    last_seq,
    result_of,
)
from lifecycle.stores.base import ForwardingStore, Op, ProjectStore, Put, Store, check_version
from lifecycle.stores.memory import MemoryStore

__all__ = [
    "EVENTS",
    "RESULTS_KEPT",
    "TABLE_EVENTS",
    "Journal",
    "ReplayClock",
    "arguments",
    "entries",
    "flush",
    "last_seq",
    "message",
    "replay",
    "result_of",
    "resume",
]

log = get_logger(__name__)


def flush(manager: SessionManager) -> int:
    """Write the journal entries a store failure held back; return how many remain."""
    return manager.flush_journal()


class ReplayClock:
    """The clock a replay runs with: each entry's recorded moment."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _ReplayStore(ForwardingStore):
    """A memory store that, while an event replays, accepts a checkpoint only under the
    key the journal says that event wrote (none: it accepts none). In the original run
    every other checkpoint write of that event failed (a store fault, a moved pointer),
    so failing them here makes the manager take the same retries to the same result."""

    def __init__(self) -> None:
        super().__init__(MemoryStore("memory://replay"))
        self.guarded = False
        self.allowed: str | None = None

    def _guard(self, ops: Sequence[Op]) -> None:
        if not self.guarded:
            return
        for op in ops:
            key = op.key
            if f"/{keys.CHECKPOINTS_PREFIX}" not in key or key.endswith(f"/{keys.LATEST}"):
                continue
            if self.allowed is None or not key.endswith("/" + self.allowed):
                # A moved pointer is what the original saw first, if anything.
                for other in ops:
                    found = self.inner.get(other.key)
                    check_version(
                        other.key, other.expected_version, 0 if found is None else found.version
                    )
                raise StoreUnavailable(f"replay: the journaled event did not write {key}")

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        self._guard([Put(key, value, expected_version)])
        return self.inner.put(key, value, expected_version=expected_version)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        self._guard(ops)
        return self.inner.batch(ops)


def _written_key(entry: JournalEntry) -> str | None:
    """The key of the checkpoint ``entry``'s event wrote, if it wrote one."""
    result = entry.result if isinstance(entry.result, dict) else {}
    cp = result.get("checkpoint") if "checkpoint" in result else result
    if isinstance(cp, dict) and cp.get("written") and cp.get("error") is None:
        key = cp.get("key")
        return key if isinstance(key, str) else None
    return None


def replay(
    journal: Iterable[JournalEntry],
    *,
    project: str,
    source: Store | ProjectStore | None = None,
    **manager_kwargs: Any,
) -> SessionManager:
    """A new manager, on a private memory store, with the journaled events applied again
    at their recorded moments: its session equals the journaled one.

    ``source`` is the store the session ran on. The project's checkpoint history before
    the session matters (a restore reads it; ``checkpoints/latest`` orders new ids), so
    replay first copies from it the project's newest checkpoint from before the session,
    as ``latest``, and the checkpoint the session restored if that is another one. A
    session that restored a checkpoint cannot be replayed without ``source``.
    ``manager_kwargs`` (evaluators, time settings) must match the original manager's for
    the same decisions to be made. Not reproduced: other writers on the same project
    while the session ran, and learning writes that failed the first time.
    """
    items = list(journal)
    scratch = _ReplayStore()
    clock = ReplayClock(items[0].at if items else datetime.now().astimezone())
    manager = SessionManager(store=scratch, project=project, clock=clock, **manager_kwargs)
    if items:
        first = items[0]
        restored = (
            first.result.get("checkpoint_id")
            if first.message.name == "start_session" and isinstance(first.result, dict)
            else None
        )
        if source is not None:
            origin = source if isinstance(source, ProjectStore) else ProjectStore(source, project)
            _seed(origin, manager, first.session_id, None if restored is None else str(restored))
        elif restored is not None:
            raise LifecycleError(
                f"session {first.session_id} began by restoring {restored}: "
                "replay needs source= (the store it ran on) to copy that checkpoint"
            )
    for entry in items:
        clock.now = entry.at
        scratch.guarded, scratch.allowed = True, _written_key(entry)
        try:
            manager.apply(attrs.evolve(entry.message, idempotency_key=None))
        finally:
            scratch.guarded, scratch.allowed = False, None
    return manager


def _seed(
    origin: ProjectStore, manager: SessionManager, session_id: str, restored: str | None
) -> None:
    """Copy into ``manager``'s store what the session found in ``origin`` when it began."""
    reader = SessionManager(store=origin.store, project=manager.project)
    try:
        began = keys.parse_ts(session_id.removeprefix("session-"))
    except ValueError:
        began = None
    previous: Checkpoint | None = None
    if began is not None:
        for moment, key in reversed(reader.list_checkpoints()):
            if moment > began:
                continue
            entry = origin.get(key)
            if entry is None:
                continue
            try:
                cp = codec.decode(Checkpoint, entry.value, key=key)
            except (CorruptRecord, InvalidRecord):
                continue
            if cp.session_id != session_id:
                previous = cp
                break
    ops: list[Op] = []
    if previous is not None:
        ops += [
            _put(previous.key, codec.encode(previous)),
            _put(LATEST, codec.encode(Pointer(previous.key, previous.id, previous.timestamp))),
        ]
    if restored is not None and (previous is None or previous.id != restored):
        cp = reader.read_checkpoint(restored)
        ops.append(_put(cp.key, codec.encode(cp)))
    if ops:
        manager.store.batch(ops)


def _put(key: str, value: bytes) -> Op:
    return Put(key, value)


def resume(
    store: Store, project: str, session_id: str | None = None, **manager_kwargs: Any
) -> SessionManager:
    """Continue a session whose manager is gone (a crash, a killed task) from its journal.

    The journal is replayed on a private store, and the state it rebuilds (unsaved work
    included) is handed to a new journaling manager on ``store``, as ``attach`` would:
    the same session, every acknowledged event in it, every idempotency key known.
    ``session_id`` defaults to the project's ``session/current``. Journal entries that a
    store failure held back in the dead process are lost with it: their events count
    as not applied, and a retry applies them again.
    """
    target = ProjectStore(store, project)
    if session_id is None:
        from lifecycle.history import current_session

        current = current_session(target)
        if current is None:
            raise NoSession(f"project {project!r} has no session to resume")
        session_id = current[1]
    items = list(entries(target, session_id))
    if not items:
        raise NoSession(f"session {session_id} has no journal to resume from")
    clock = manager_kwargs.pop("clock", None)
    rebuilt = replay(items, project=project, source=store, **manager_kwargs)
    if rebuilt.session_id != session_id:
        raise CorruptRecord(
            _prefix(session_id), f"replay rebuilt session {rebuilt.session_id}, not {session_id}"
        )
    rebuilt.save_context()
    live_entry = rebuilt.store.get(CONTEXT)
    assert live_entry is not None
    live = codec.decode(LiveContext, live_entry.value, key=CONTEXT)
    latest = target.get(keys.LATEST)
    live = attrs.evolve(live, latest_version=None if latest is None else latest.version)
    manager = SessionManager(
        store=store, project=project, clock=clock, journal=True, **manager_kwargs
    )
    manager.store.put(CONTEXT, codec.encode(live))
    if not manager.attach():
        raise NoSession(f"session {session_id} is complete: start a new one")
    log.info("journal.resumed", session_id=session_id, events=len(items))
    return manager
