"""Events as messages: ``manager.apply(message)``, the journal, idempotency and replay.

Every event method of :class:`~lifecycle.session.SessionManager` (``start_session``,
``complete_task``, ``tick``, ``create_checkpoint``, ...: :data:`EVENTS`) is also a
message, :class:`~lifecycle.records.EventMessage` ``(name, payload)``, that
``manager.apply(message)`` dispatches to that method: the orchestrator-friendly API
(messages are plain data: queue them, send them over a wire, retry them).

- One moment per event: ``apply`` reads the clock once and the event runs with that
  reading, so the same messages at the same moments rebuild the same session.
- Journal: a manager made with ``journal=True`` appends every applied event, with
  its moment and result, to ``journal/{session-id}/{seq}`` (direct method calls
  included: they are routed through ``apply``). :func:`replay` rebuilds a session
  from its journal; :func:`resume` continues a crashed one from it.
- Idempotency: a message whose ``idempotency_key`` the session already applied
  changes nothing and returns the first result again. Keys are remembered in
  memory (the last :data:`RESULTS_KEPT` results) and, with a journal, durably: a
  manager that resumes the session (:func:`resume`), or restores a checkpoint, knows
  exactly the keys whose effects its state holds.

An event that raised (illegal, store down) changed nothing and is not journaled.
A journal write that fails is kept in memory and retried before the next one, in
order; the event itself stands (it already happened) and is logged.
"""

from __future__ import annotations

import functools
import inspect
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import attrs
import cattrs

from lifecycle import codec, keys
from lifecycle.errors import (
    CheckpointNotFound,
    CorruptRecord,
    InvalidRecord,
    LifecycleError,
    NoSession,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from lifecycle.logs import get_logger
from lifecycle.records import Checkpoint, EventMessage, JournalEntry, Learning, Pointer, utc

if TYPE_CHECKING:
    from lifecycle.session import SessionManager
    from lifecycle.stores.base import Entry, Op, ProjectStore, Store

log = get_logger("lifecycle")

P = ParamSpec("P")
R = TypeVar("R")

#: Every event a message may name: the manager's undecorated method, by name.
EVENTS: dict[str, Callable[..., Any]] = {}
_SIGNATURES: dict[str, inspect.Signature] = {}
#: Payload fields that hold a record, and its class (the rest are JSON as is).
_RECORD_FIELDS: dict[str, type] = {"checkpoint": Checkpoint, "learning": Learning}
#: How many results of idempotency keys a manager keeps in memory (the journal keeps all).
RESULTS_KEPT = 256
#: How many restored-from sessions back the idempotency keys of a restore are looked up.
RESTORE_DEPTH = 8
_MISSING: Any = object()


def event(method: Callable[P, R]) -> Callable[P, R]:
    """Declare a manager method an event: it may be named by a message, runs under the
    session's lock, and is journaled when the manager keeps a journal."""
    name = method.__name__
    EVENTS[name] = method
    _SIGNATURES[name] = inspect.signature(method)

    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        self: SessionManager = args[0]  # type: ignore[assignment]
        journal = self._journal
        if journal is None or not journal.enabled or journal.applying:
            with self._lock:
                return method(*args, **kwargs)
        result: R = apply(self, _message(name, args[1:], kwargs, None))
        return result

    functools.update_wrapper(call, method)
    return call


# -- messages ------------------------------------------------------------------------------


def message(
    name: str, /, *args: Any, idempotency_key: str | None = None, **kwargs: Any
) -> EventMessage:
    """The message for calling event ``name`` with these arguments, e.g.
    ``message("complete_task", "T1", priority="high", idempotency_key="run-7/T1")``."""
    return _message(name, args, kwargs, idempotency_key)


def _message(
    name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], idempotency_key: str | None
) -> EventMessage:
    signature = _signature(name)
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        raise InvalidRecord(f"event {name!r}: {exc}; it takes {_params(name)}") from None
    payload: dict[str, Any] = {}
    for param, value in list(bound.arguments.items())[1:]:
        if signature.parameters[param].kind is inspect.Parameter.VAR_KEYWORD:
            payload.update({k: _plain(v) for k, v in value.items()})
        else:
            payload[param] = _plain(value)
    if name == "before_operation":
        payload = {"operation": _operation_payload(payload)}
    return EventMessage(name, payload, idempotency_key=idempotency_key)


def _operation_payload(payload: dict[str, Any]) -> Any:
    """``before_operation("rm -rf x", deletes=True)`` and ``before_operation(Operation(...))``
    both become one ``operation`` mapping."""
    from lifecycle.triggers.base import Operation

    operation = payload.pop("operation")
    if isinstance(operation, str):
        try:
            operation = codec.converter.unstructure(Operation(command=operation, **payload))
        except TypeError as exc:
            raise InvalidRecord(f"event 'before_operation': {exc}") from None
    return operation


def _plain(value: Any) -> Any:
    """A JSON-ready form of an argument (records and enums unstructured, iterables listed)."""
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if attrs.has(type(value)):
        return codec.converter.unstructure(value)
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        return [_plain(v) for v in value]
    return value


def _signature(name: str) -> inspect.Signature:
    if name not in _SIGNATURES:
        import lifecycle.session  # noqa: F401 - registers the events

    signature = _SIGNATURES.get(name)
    if signature is None:
        known = ", ".join(sorted(EVENTS))
        raise InvalidRecord(f"unknown event {name!r}; events are: {known}")
    return signature


def _params(name: str) -> str:
    params = list(_SIGNATURES[name].parameters.values())[1:]
    return "(" + ", ".join(str(p).split(":")[0] for p in params) + ")"


def arguments(msg: EventMessage) -> dict[str, Any]:
    """The keyword arguments ``msg`` calls its event method with (records restructured)."""
    from lifecycle.triggers.base import Operation

    signature = _signature(msg.name)
    kwargs = dict(msg.payload)
    try:
        for field, cls in _RECORD_FIELDS.items():
            if isinstance(kwargs.get(field), dict):
                kwargs[field] = codec.converter.structure(kwargs[field], cls)
        if msg.name == "before_operation" and isinstance(kwargs.get("operation"), dict):
            kwargs["operation"] = codec.converter.structure(kwargs["operation"], Operation)
        if isinstance(kwargs.get("at"), str):
            kwargs["at"] = utc(kwargs["at"])
        signature.bind(None, **kwargs)
    except (TypeError, ValueError, cattrs.BaseValidationError) as exc:
        raise InvalidRecord(
            f"event {msg.name!r} with payload {sorted(msg.payload)}: {exc}; "
            f"it takes {_params(msg.name)}"
        ) from None
    return kwargs


# -- the per-manager journal state -----------------------------------------------------


class Journal:
    """What one manager knows of its session's journal and applied keys."""

    __slots__ = (
        "applying",
        "enabled",
        "keys",
        "loaded_for",
        "pending",
        "results",
        "seq",
        "session_id",
    )

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.applying = False
        self.session_id: str | None = None
        self.seq = 0
        self.pending: list[JournalEntry] = []
        #: idempotency key -> the result returned the first time (most recent first out)
        self.results: OrderedDict[str, Any] = OrderedDict()
        #: idempotency key -> (session id, seq) of the journal entry that applied it
        self.keys: dict[str, tuple[str, int]] = {}
        self.loaded_for: str | None = None

    def remember(self, key: str, result: Any) -> None:
        self.results[key] = result
        self.results.move_to_end(key)
        while len(self.results) > RESULTS_KEPT:
            self.results.popitem(last=False)


def _fixed(moment: datetime) -> datetime:
    return moment


def apply(manager: SessionManager, msg: EventMessage) -> Any:
    """Apply ``msg`` to ``manager``'s session (see :meth:`SessionManager.apply`)."""
    with manager._lock:
        journal = manager._journal
        if journal is None:
            journal = manager._journal = Journal(enabled=False)
        method = EVENTS.get(msg.name)
        kwargs = arguments(msg)
        assert method is not None  # arguments() checked the name
        key = msg.idempotency_key
        if key is not None:
            found = _lookup(manager, journal, key)
            if found is not _MISSING:
                log.info(
                    "event.duplicate",
                    session_id=manager.session_id,
                    name=msg.name,
                    idempotency_key=key,
                )
                return found
        # The moment the event runs at, as the manager would take it (strictly after its
        # last one): pinned for the whole event, and journaled, so replay takes it too.
        moment = manager._now(peek=True)
        clock = manager._clock
        manager._clock = functools.partial(_fixed, moment)
        journal.applying = True
        try:
            result = method(manager, **kwargs)
        finally:
            manager._clock = clock
            journal.applying = False
        if key is not None:
            journal.remember(key, result)
        if journal.enabled:
            _append(manager, journal, msg, moment, result)
        return result


def _written_checkpoint(result: Any) -> str | None:
    cp = getattr(result, "checkpoint", result)
    if getattr(cp, "written", False) and getattr(cp, "error", None) is None:
        found: str | None = getattr(cp, "checkpoint_id", None)
        return found
    return None


def _append(
    manager: SessionManager, journal: Journal, msg: EventMessage, moment: datetime, result: Any
) -> None:
    session_id = manager.session_id
    if session_id is None:  # a learning captured before any session: nothing to order
        return
    if journal.session_id != session_id:
        journal.session_id = session_id
        journal.seq = last_seq(manager.store, session_id)
    journal.seq += 1
    entry = JournalEntry(
        session_id=session_id,
        seq=journal.seq,
        at=moment,
        message=msg,
        state=manager.state.value,
        result_type=type(result).__name__,
        result=codec.converter.unstructure(result),
        checkpoint_id=_written_checkpoint(result),
    )
    if msg.idempotency_key is not None:
        journal.keys[msg.idempotency_key] = (session_id, entry.seq)
    journal.pending.append(entry)
    log.debug("journal.append", session_id=session_id, seq=entry.seq, name=msg.name)
    flush(manager)


def flush(manager: SessionManager) -> int:
    """Write the journal entries a store failure held back, in order; return how many
    are still pending."""
    journal = manager._journal
    if journal is None:
        return 0
    with manager._lock:
        while journal.pending:
            entry = journal.pending[0]
            key = keys.journal_key(entry.session_id, entry.seq)
            body = codec.encode(entry)
            try:
                manager.store.put(key, body, expected_version=0)
            except VersionConflict:
                stored = manager.store.get(key)
                if stored is None or stored.value != body:
                    # Another writer continued this session: keep both, ours after theirs.
                    log.error("journal.conflict", key=key, session_id=entry.session_id)
                    journal.seq = last_seq(manager.store, entry.session_id) + 1
                    journal.pending[0] = attrs.evolve(entry, seq=journal.seq)
                    continue
            except StoreError as exc:
                log.warning(
                    "journal.write_failed", key=key, error=str(exc), pending=len(journal.pending)
                )
                return len(journal.pending)
            journal.pending.pop(0)
        return 0


# -- reading the journal -----------------------------------------------------------------


def _prefix(session_id: str) -> str:
    return f"journal/{keys.slug(session_id)}/"


def last_seq(store: ProjectStore, session_id: str) -> int:
    """The highest seq journaled for ``session_id`` (0 if none)."""
    found = store.list_keys(_prefix(session_id), reverse=True, limit=1)
    return int(found[0].rsplit("/", 1)[1]) if found else 0


def entries(store: ProjectStore, session_id: str) -> Iterator[JournalEntry]:
    """The session's journal, oldest first."""
    for item in store.scan(_prefix(session_id)):
        yield codec.decode(JournalEntry, item.value, key=item.key)


def result_of(entry: JournalEntry) -> Any:
    """The result object ``entry``'s event returned (rebuilt from its stored form)."""
    from lifecycle import session

    cls = getattr(session, entry.result_type, None)
    if cls is None or not attrs.has(cls):
        return entry.result
    try:
        return codec.converter.structure(entry.result, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise CorruptRecord(
            keys.journal_key(entry.session_id, entry.seq), f"result does not fit: {exc}"
        ) from None


def _lookup(manager: SessionManager, journal: Journal, key: str) -> Any:
    if key in journal.results:
        return journal.results[key]
    session_id = manager.session_id
    if session_id is not None and journal.loaded_for != session_id:
        journal.loaded_for = session_id
        journal.keys.update(_durable_keys(manager, session_id))
    ref = journal.keys.get(key)
    if ref is None:
        return _MISSING
    if journal.pending and any((e.session_id, e.seq) == ref for e in journal.pending):
        entry = next(e for e in journal.pending if (e.session_id, e.seq) == ref)
    else:
        stored = manager.store.get(keys.journal_key(*ref))
        if stored is None:
            return _MISSING
        entry = codec.decode(JournalEntry, stored.value, key=keys.journal_key(*ref))
    result = result_of(entry)
    journal.remember(key, result)
    return result


def _durable_keys(manager: SessionManager, session_id: str) -> dict[str, tuple[str, int]]:
    """The idempotency keys whose effects this session's state holds: every key in its
    own journal, and, when it was restored from a checkpoint, the keys applied up to
    that checkpoint's write in the session that wrote it (and so on back)."""
    found: dict[str, tuple[str, int]] = {}
    store = manager.store
    own = list(entries(store, session_id))
    for e in own:
        if e.message.idempotency_key is not None:
            found[e.message.idempotency_key] = (session_id, e.seq)
    record = manager.session
    restored = None if record is None else record.restored_from
    for _ in range(RESTORE_DEPTH):
        if restored is None:
            break
        try:
            cp = manager.read_checkpoint(restored)
        except (CheckpointNotFound, StoreError):
            break
        earlier = list(entries(store, cp.session_id))
        upto = next((e.seq for e in earlier if e.checkpoint_id == cp.id), None)
        if upto is None:  # no journaled event wrote it: nothing is provably in it
            break
        for e in earlier:
            k = e.message.idempotency_key
            if e.seq <= upto and k is not None and k not in found:
                found[k] = (cp.session_id, e.seq)
        first = earlier[0] if earlier else None
        restored = (
            None
            if first is None
            or first.message.name != "start_session"
            or not isinstance(first.result, dict)
            else first.result.get("checkpoint_id")
        )
    return found


# -- replay and resume -------------------------------------------------------------------


class ReplayClock:
    """The clock a replay runs with: each entry's recorded moment."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _ReplayStore:
    """A memory store that, while an event replays, accepts a checkpoint only under the
    key the journal says that event wrote (none: it accepts none). In the original run
    every other checkpoint write of that event failed (a store fault, a moved pointer),
    so failing them here makes the manager take the same retries to the same result."""

    def __init__(self) -> None:
        from lifecycle.stores.memory import MemoryStore

        self.inner = MemoryStore("memory://replay")
        self.url = self.inner.url
        self.guarded = False
        self.allowed: str | None = None

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        return self.inner.list_keys(prefix, reverse=reverse, limit=limit)

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        return self.inner.scan(prefix, reverse=reverse, limit=limit)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        return self.inner.delete(key, expected_version=expected_version)

    def close(self) -> None:
        self.inner.close()

    def _guard(self, ops: Sequence[Op]) -> None:
        if not self.guarded:
            return
        for op in ops:
            key = op.key
            if "/checkpoints/" not in key or key.endswith("/checkpoints/latest"):
                continue
            if self.allowed is None or not key.endswith("/" + self.allowed):
                # A moved pointer is what the original saw first, if anything.
                for other in ops:
                    if other.expected_version is not None:
                        found = self.inner.get(other.key)
                        version = 0 if found is None else found.version
                        if version != other.expected_version:
                            raise VersionConflict(other.key, other.expected_version, version)
                raise StoreUnavailable(f"replay: the journaled event did not write {key}")

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        from lifecycle.stores.base import Put

        self._guard([Put(key, value, expected_version)])
        return self.inner.put(key, value, expected_version=expected_version)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        self._guard(ops)
        return self.inner.batch(ops)

    def get(self, key: str) -> Entry | None:
        return self.inner.get(key)


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
    from lifecycle.session import SessionManager
    from lifecycle.stores.base import ProjectStore

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
    from lifecycle.session import LATEST, SessionManager

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
    from lifecycle.stores.base import Put

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
    from lifecycle.session import CONTEXT, SessionManager
    from lifecycle.stores.base import ProjectStore

    target = ProjectStore(store, project)
    if session_id is None:
        pointer = target.get("session/current")
        if pointer is None:
            raise NoSession(f"project {project!r} has no session to resume")
        session_id = codec.decode(Pointer, pointer.value, key="session/current").id
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
    from lifecycle.records import LiveContext

    live = codec.decode(LiveContext, live_entry.value, key=CONTEXT)
    latest = target.get("checkpoints/latest")
    live = attrs.evolve(live, latest_version=None if latest is None else latest.version)
    manager = SessionManager(
        store=store, project=project, clock=clock, journal=True, **manager_kwargs
    )
    manager.store.put(CONTEXT, codec.encode(live))
    if not manager.attach():
        raise NoSession(f"session {session_id} is complete: start a new one")
    log.info("journal.resumed", session_id=session_id, events=len(items))
    return manager
