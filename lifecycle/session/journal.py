"""The journal: each applied event, with its moment and result, at ``journal/{session}/{seq}``.

A manager made with ``journal=True`` appends every applied event (direct method
calls included: they are routed through ``apply``). Idempotency: a message whose
``idempotency_key`` the session already applied changes nothing and returns the
first result again. Keys are remembered in memory (the last :data:`RESULTS_KEPT`
results) and, with a journal, durably: a manager that resumes the session, or
restores a checkpoint, knows exactly the keys whose effects its state holds.

An event that raised (illegal, store down) changed nothing and is not journaled.
A journal write that fails is kept in memory and retried before the next one, in
order; the event itself stands (it already happened) and is logged.
Replaying and resuming a session from its journal is :mod:`lifecycle.journal`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

import attrs
import cattrs

from lifecycle import codec, keys
from lifecycle.errors import CheckpointNotFound, CorruptRecord, StoreError, VersionConflict
from lifecycle.logs import get_logger
from lifecycle.records import Checkpoint, EventMessage, JournalEntry
from lifecycle.session import results
from lifecycle.stores import ProjectStore

log = get_logger(__name__)

#: How many results of idempotency keys a manager keeps in memory (the journal keeps all).
RESULTS_KEPT = 256
#: How many restored-from sessions back the idempotency keys of a restore are looked up.
RESTORE_DEPTH = 8
#: What :func:`lookup` returns for a key the session never applied.
MISSING: Any = object()


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


def _written_checkpoint(result: Any) -> str | None:
    cp = getattr(result, "checkpoint", result)
    if getattr(cp, "written", False) and getattr(cp, "error", None) is None:
        found: str | None = getattr(cp, "checkpoint_id", None)
        return found
    return None


def append(
    journal: Journal,
    store: ProjectStore,
    session_id: str | None,
    state: str,
    msg: EventMessage,
    moment: datetime,
    result: Any,
) -> None:
    """Journal an applied event (then write what is pending)."""
    if session_id is None:  # a learning captured before any session: nothing to order
        return
    if journal.session_id != session_id:
        journal.session_id = session_id
        journal.seq = last_seq(store, session_id)
    journal.seq += 1
    entry = JournalEntry(
        session_id=session_id,
        seq=journal.seq,
        at=moment,
        message=msg,
        state=state,
        result_type=type(result).__name__,
        result=codec.converter.unstructure(result),
        checkpoint_id=_written_checkpoint(result),
    )
    if msg.idempotency_key is not None:
        journal.keys[msg.idempotency_key] = (session_id, entry.seq)
    journal.pending.append(entry)
    log.debug("journal.append", session_id=session_id, seq=entry.seq, name=msg.name)
    flush(journal, store)


def resume_at(journal: Journal, session_id: str, seq: int) -> None:
    """Continue ``session_id``'s journal after ``seq``, the last seq the live record kept:
    the next entry is written without listing the journal (a stale seq is caught by the
    entry's compare-and-swap, which then looks the last one up)."""
    if journal.session_id != session_id:
        journal.session_id = session_id
        journal.seq = seq


def flush(journal: Journal, store: ProjectStore) -> int:
    """Write the journal entries a store failure held back, in order; return how many
    are still pending."""
    # The caller holds the session's lock.
    while journal.pending:
        entry = journal.pending[0]
        key = keys.journal_key(entry.session_id, entry.seq)
        body = codec.encode(entry)
        try:
            store.put(key, body, expected_version=0)
        except VersionConflict:
            stored = store.get(key)
            if stored is None or stored.value != body:
                # Another writer continued this session: keep both, ours after theirs.
                log.error("journal.conflict", key=key, session_id=entry.session_id)
                journal.seq = last_seq(store, entry.session_id) + 1
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
    return keys.journal_prefix(session_id)


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
    cls = getattr(results, entry.result_type, None)
    if cls is None or not attrs.has(cls):
        return entry.result
    try:
        return codec.converter.structure(entry.result, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        raise CorruptRecord(
            keys.journal_key(entry.session_id, entry.seq), f"result does not fit: {exc}"
        ) from None


#: Reads a checkpoint by id (the session's own reader).
ReadCheckpoint = Callable[[str], Checkpoint]


def lookup(
    journal: Journal,
    store: ProjectStore,
    session_id: str | None,
    restored_from: str | None,
    read_checkpoint: ReadCheckpoint,
    key: str,
) -> Any:
    """The result the session returned for idempotency ``key``, or :data:`MISSING`."""
    if key in journal.results:
        return journal.results[key]
    if session_id is not None and journal.loaded_for != session_id:
        journal.loaded_for = session_id
        journal.keys.update(durable_keys(store, session_id, restored_from, read_checkpoint))
    ref = journal.keys.get(key)
    if ref is None:
        return MISSING
    if journal.pending and any((e.session_id, e.seq) == ref for e in journal.pending):
        entry = next(e for e in journal.pending if (e.session_id, e.seq) == ref)
    else:
        stored = store.get(keys.journal_key(*ref))
        if stored is None:
            return MISSING
        entry = codec.decode(JournalEntry, stored.value, key=keys.journal_key(*ref))
    result = result_of(entry)
    journal.remember(key, result)
    return result


def durable_keys(
    store: ProjectStore,
    session_id: str,
    restored: str | None,
    read_checkpoint: ReadCheckpoint,
) -> dict[str, tuple[str, int]]:
    """The idempotency keys whose effects this session's state holds: every key in its
    own journal, and, when it was restored from a checkpoint, the keys applied up to
    that checkpoint's write in the session that wrote it (and so on back)."""
    found: dict[str, tuple[str, int]] = {}
    own = list(entries(store, session_id))
    for e in own:
        if e.message.idempotency_key is not None:
            found[e.message.idempotency_key] = (session_id, e.seq)
    for _ in range(RESTORE_DEPTH):
        if restored is None:
            break
        try:
            cp = read_checkpoint(restored)
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


class Driven(Protocol):
    """What :func:`apply` needs of the session's driver (``session.driver.Driver``)."""

    journal: Journal | None
    live: Any
    pinned: datetime | None
    store: ProjectStore

    @property
    def checkpoints(self) -> Any: ...

    @property
    def state(self) -> Any: ...

    def now(self, *, peek: bool = False) -> datetime: ...


def apply(manager: Any, driver: Driven, message: EventMessage) -> Any:
    """``SessionManager.apply``: run ``message``'s event on ``manager`` (whose ``driver``
    this is), once per idempotency key, and journal it when the journal is on. The
    caller holds the session's lock."""
    from lifecycle.events import EVENTS, arguments

    journal = driver.journal
    if journal is None:
        journal = driver.journal = Journal(enabled=False)
    kwargs = arguments(message)  # checks the name and the payload
    method = EVENTS[message.name]
    key = message.idempotency_key
    live = driver.live
    session_id = None if live is None else live.session.id
    if key is not None:
        restored_from = None if live is None else live.session.restored_from
        found = lookup(
            journal, driver.store, session_id, restored_from, driver.checkpoints.by_id, key
        )
        if found is not MISSING:
            log.info(
                "event.duplicate", session_id=session_id, name=message.name, idempotency_key=key
            )
            return found
    # The moment the event runs at, as the manager would take it (strictly after its
    # last one): pinned for the whole event, and journaled, so replay takes it.
    moment = driver.now(peek=True)
    driver.pinned = moment
    journal.applying = True
    try:
        result = method(manager, **kwargs)
    finally:
        driver.pinned = None
        journal.applying = False
    if key is not None:
        journal.remember(key, result)
    if journal.enabled:
        live = driver.live
        session_id = None if live is None else live.session.id
        append(journal, driver.store, session_id, driver.state.value, message, moment, result)
    return result
