"""Reading and writing checkpoints over a :class:`~lifecycle.stores.ProjectStore`.

The checkpoint writer is the persistence side of the table's ``write_checkpoint``
effect: it builds nothing of the session's state itself (the step hands it the
state to write), commits the checkpoint and its ``checkpoints/latest`` pointer
in one atomic batch with compare-and-swap, re-keys on a lost race, merges under
the ``merge`` policy, enforces the size limits, and retries a failed write once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from lifecycle import codec, keys, limits
from lifecycle.errors import (
    CheckpointNotFound,
    CheckpointTooLarge,
    CorruptRecord,
    InvalidKey,
    InvalidRecord,
    StaleRecord,
    StoreError,
    VersionConflict,
)
from lifecycle.logs import get_logger
from lifecycle.records import Checkpoint, LiveContext, Pointer, WorkState, revise
from lifecycle.session.work import carried, session_began
from lifecycle.stores import ProjectStore, Put
from lifecycle.triggers.base import CheckpointCall

if TYPE_CHECKING:
    from lifecycle.snapshots import Snapshots

log = get_logger(__name__)

LATEST = keys.LATEST
#: Soft and hard checkpoint size limits ("<50KB typical, <200KB maximum").
WARN_BYTES = limits.CHECKPOINT_WARN_BYTES
MAX_BYTES = limits.CHECKPOINT_MAX_BYTES
#: How many times a checkpoint is re-keyed after losing a race for the pointer.
RACE_ATTEMPTS = 50


@attrs.frozen
class Committed:
    """A durable checkpoint: the record, its encoded size, the pointer's new version."""

    checkpoint: Checkpoint
    size: int
    latest_version: int
    #: What had to be trimmed to fit the hard limit (empty: nothing).
    trimmed: tuple[str, ...] = ()


class WriteFailed(StoreError):
    """A checkpoint write failed twice (it was retried once)."""

    def __init__(self, call: CheckpointCall, error: Exception) -> None:
        self.call = call
        self.error = error
        super().__init__(f"checkpoint not written after 2 attempts: {error}")


@attrs.frozen
class Latest:
    """What a restore found by following ``checkpoints/latest``."""

    #: The checkpoint to restore: the pointer's, else the newest valid (None: none).
    checkpoint: Checkpoint | None = None
    #: The pointer's version (None: no pointer).
    version: int | None = None
    #: The key the pointer names (None: no pointer, or one that could not be read).
    key: str | None = None


#: Builds the checkpoint to write for a call at a moment (called again after a re-key).
Build = Callable[[CheckpointCall, datetime], Checkpoint]
#: Folds another writer's checkpoint into the one being written (conflict="merge").
MergeFrom = Callable[[Checkpoint], None]


class Checkpoints:
    """The project's checkpoints: the latest valid, by id, by key; and the writer."""

    def __init__(self, store: ProjectStore, snapshots: Snapshots | None = None) -> None:
        self.store = store
        #: Takes the work tree's git snapshot a checkpoint is due (None: never).
        self.snapshots = snapshots
        self._where = (store.url, store.project)

    # reading ---------------------------------------------------------------------------

    def listing(self) -> list[tuple[datetime, str]]:
        """(timestamp, key) of every checkpoint, oldest first (names only, no reads)."""
        found = []
        for key in self.store.list_keys(keys.CHECKPOINTS_PREFIX):
            parsed = keys.parse_checkpoint_key(key)
            if parsed is not None:
                found.append((parsed[1], key))
        found.sort()
        return found

    def read_key(
        self, key: str, warnings: list[str] | None = None, *, resume: bool = False
    ) -> Checkpoint | None:
        """The checkpoint at ``key`` (None: none, or corrupt); ``resume``: as a session
        restoring it holds it (:func:`resumed`, worked out once per decoded record)."""
        try:
            entry = self.store.get(key)
            if entry is None:
                return None
            cp = DECODED.decode(Checkpoint, self._where, key, entry.value)
            return _fresh(RESUMED.of(cp) if resume else cp)
        except (CorruptRecord, InvalidRecord, InvalidKey) as exc:
            if warnings is not None:
                warnings.append(f"skipped corrupt checkpoint {key}: {exc}")
            log.warning("checkpoint.corrupt", key=key, error=str(exc))
            return None

    def by_id(
        self, checkpoint_id: str, *, key: str | None = None, resume: bool = False
    ) -> Checkpoint:
        """One read when the caller knows its ``key`` (the live record keeps it); else
        one name listing and at most one read: an id is ``cp-{ts}`` and its key ends in
        that same ``{ts}``, which no other checkpoint shares. ``resume`` as for
        :meth:`read_key`."""
        if key is not None and keys.parse_checkpoint_key(key) is not None:
            cp = self.read_key(key, resume=resume)
            if cp is not None and cp.id == checkpoint_id:
                return cp
        from lifecycle.history import checkpoint_key_for

        key = checkpoint_key_for(self.store, checkpoint_id)
        cp = None if key is None else self.read_key(key, resume=resume)
        if cp is None or cp.id != checkpoint_id:
            raise CheckpointNotFound(checkpoint_id)
        return cp

    def latest_key(self) -> str | None:
        """The key ``checkpoints/latest`` names (None: no pointer, or unreadable)."""
        try:
            entry = self.store.get(LATEST)
            if entry is None:
                return None
            return DECODED.decode(Pointer, self._where, LATEST, entry.value).key
        except (CorruptRecord, InvalidRecord, StoreError):
            return None

    def latest_valid(self, warnings: list[str], *, resume: bool = False) -> Latest:
        """Follow ``checkpoints/latest``; when it or its target is missing or corrupt, fall
        back to the newest valid checkpoint by timestamp, with a warning. Also says the
        pointer's version and the key it names (what :meth:`latest_key` would read).
        ``resume`` as for :meth:`read_key`."""
        pointer_entry = None
        named = None
        try:
            pointer_entry = self.store.get(LATEST)
            if pointer_entry is not None:
                pointer = DECODED.decode(Pointer, self._where, LATEST, pointer_entry.value)
                named = pointer.key
                cp = self.read_key(named, resume=resume)
                if cp is not None:
                    return Latest(cp, pointer_entry.version, named)
                warnings.append(f"latest checkpoint {named} is missing or corrupt")
        except StaleRecord:
            # Left unflushed before the machine restarted (Put(lazy=True)): maybe older
            # than the newest checkpoint, which the listing finds. Nothing is wrong.
            log.info("restore.pointer_from_an_earlier_boot")
        except (CorruptRecord, InvalidRecord) as exc:
            warnings.append(f"{LATEST} is unreadable ({exc})")
        version = None if pointer_entry is None else pointer_entry.version
        for _, key in reversed(self.listing()):
            cp = self.read_key(key, warnings, resume=resume)
            if cp is not None:
                if pointer_entry is not None or warnings:
                    warnings.append(f"restored from the newest valid checkpoint {cp.id} instead")
                    log.warning("restore.fallback", checkpoint_id=cp.id, warnings=warnings)
                return Latest(cp, version, named)
        return Latest(None, version, named)

    # writing ---------------------------------------------------------------------------

    def write(
        self,
        build: Build,
        call: CheckpointCall,
        at: datetime,
        latest_version: int | None,
        merge_from: MergeFrom | None,
    ) -> Committed:
        """Commit the checkpoint ``build`` makes; retry once (then raise WriteFailed)."""
        error: StoreError | None = None
        for attempt in (1, 2):
            try:
                return self._commit(build, call, at, latest_version, merge_from)
            except StoreError as exc:
                error = exc
                log.warning("checkpoint.write_failed", attempt=attempt, error=str(exc))
        assert error is not None
        log.error("checkpoint.gave_up", error=str(error))
        raise WriteFailed(call, error)

    def _commit(
        self,
        build: Build,
        call: CheckpointCall,
        at: datetime,
        latest_version: int | None,
        merge_from: MergeFrom | None,
    ) -> Committed:
        """Write the checkpoint and move ``checkpoints/latest`` to it, in one batch.

        The pointer is a compare-and-swap on the version last seen; when another writer
        moved it, re-read it and take a later timestamp, so ids stay unique and in
        creation order across processes (last write wins, or merge)."""
        torn = False  # the stored pointer is unreadable: overwrite it, no compare
        for _ in range(RACE_ATTEMPTS):
            cp = build(call, at)
            if self.snapshots is not None:  # the work tree's snapshot, before the record names it
                cp = self.snapshots.attach(cp)
            trimmed: tuple[str, ...] = ()
            try:
                cp, body = encode_sized(cp)
            except CheckpointTooLarge:
                # Never stuck: the largest fields are cut (and counted) until it fits.
                cp, body, trimmed = fit(cp)
            pointer = codec.encode_pointer(Pointer(cp.key, cp.id, cp.timestamp))
            expected: int | None = None if torn else (latest_version or 0)
            try:
                versions = self.store.batch(
                    [
                        Put(cp.key, body, expected_version=0),
                        Put(LATEST, pointer, expected_version=expected, sync=False, lazy=True),
                    ]
                )
            except CorruptRecord:
                if torn:
                    raise
                torn = True  # a CAS cannot compare against a torn pointer
                continue
            except VersionConflict:
                if self.snapshots is not None:  # re-keyed: the snapshot ref of this id goes
                    self.snapshots.discard(cp)
                try:
                    entry = self.store.get(LATEST)
                except CorruptRecord:
                    torn = True
                    continue
                latest_version = None if entry is None else entry.version
                at = at + timedelta(microseconds=1)
                if entry is not None:
                    try:
                        other = codec.decode(Pointer, entry.value, key=LATEST)
                    except (CorruptRecord, InvalidRecord):
                        other = None
                    if other is not None:
                        at = max(at, other.timestamp + timedelta(microseconds=1))
                        theirs = self.read_key(other.key) if merge_from is not None else None
                        if merge_from is not None and theirs is not None:
                            merge_from(theirs)
                call = call.at(at)  # the same kind of checkpoint, keyed for the later moment
                continue
            if trimmed:
                log.warning("checkpoint.trimmed", checkpoint_id=cp.id, trimmed=list(trimmed))
            return Committed(cp, len(body), versions[1], trimmed)
        raise StoreError(f"could not move {LATEST}: too many concurrent writers")


R = TypeVar("R")


class Decoded:
    """The records of the last few checkpoint and pointer reads, each kept with the bytes
    it was decoded from: the same bytes read again (the latest checkpoint, restored by
    every session and read by every ``read_checkpoint``) are not decoded again.

    Nothing is taken on trust: every read still reads the record from the store (its
    checksum checked there), and only bytes equal to those a record was decoded from
    give that record, so a write by another process, a deleted and rewritten key or a
    damaged file is seen exactly as without the memo. Decoding is a function of the
    bytes alone, which is what makes this safe; the place (store, project, key) only
    says which slot to look in."""

    SLOTS = 8

    def __init__(self) -> None:
        self._slots: dict[tuple[type, tuple[str, str], str], tuple[bytes, object]] = {}
        self._lock = threading.Lock()

    def decode(self, cls: type[R], where: tuple[str, str], key: str, raw: bytes) -> R:
        slot = (cls, where, key)
        hit = self._slots.get(slot)
        if hit is not None and hit[0] == raw:
            return hit[1]  # type: ignore[return-value]
        record = codec.decode(cls, raw, key=key)
        with self._lock:
            self._slots.pop(slot, None)
            while len(self._slots) >= self.SLOTS:
                self._slots.pop(next(iter(self._slots)))
            self._slots[slot] = (raw, record)
        return record

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


#: The process's memo of decoded checkpoints and pointers (shared by every manager).
DECODED = Decoded()


class Resumed:
    """:func:`resumed` of the last few decoded checkpoints (the memo's own records,
    never handed out, so never changed): every session that restores the latest
    checkpoint works out what it carries of it once, not once per start. Keyed by the
    record's identity, which it holds, so an id is never reused while it is kept."""

    SLOTS = Decoded.SLOTS

    def __init__(self) -> None:
        self._slots: dict[int, tuple[Checkpoint, Checkpoint]] = {}
        self._lock = threading.Lock()

    def of(self, cp: Checkpoint) -> Checkpoint:
        hit = self._slots.get(id(cp))
        if hit is not None and hit[0] is cp:
            return hit[1]
        out = resumed(cp)
        with self._lock:
            while len(self._slots) >= self.SLOTS:
                self._slots.pop(next(iter(self._slots)))
            self._slots[id(cp)] = (cp, out)
        return out


RESUMED = Resumed()


def _fresh(cp: Checkpoint) -> Checkpoint:
    """``cp`` with its own copies of the containers a caller could change (progress,
    context, the work's ``omitted`` counts): the memo's record is never handed out."""
    state = cp.state
    return revise(
        cp,
        progress=_copied(cp.progress),
        context=_copied(cp.context),
        state=revise(state, omitted=dict(state.omitted)),
    )


def _copied(value: Any) -> Any:
    """A JSON value with fresh dicts and lists (strings and numbers are shared)."""
    kind = type(value)
    if kind is dict:
        return {k: _copied(v) for k, v in value.items()}
    if kind is list:
        return [_copied(v) for v in value]
    return value


def encode_sized(cp: Checkpoint) -> tuple[Checkpoint, bytes]:
    """The checkpoint with ``context_snapshot.size_bytes`` set to the length of its
    bytes, and those bytes; refused over :data:`MAX_BYTES`, naming the largest fields."""
    sized = codec.dumps_sized(cp, "context_snapshot")  # None: patched below
    if sized is not None:  # orjson's bytes: the stores copy what they keep
        body, size = sized
        snapshot = revise(cp.context_snapshot, size_bytes=size)
        return _checked(revise(cp, context_snapshot=snapshot), body)
    raw = codec.dumps(cp)
    marker = b'"size_bytes":0'
    at = raw.rfind(marker)  # the snapshot's own field: JSON escapes quotes in strings
    if cp.context_snapshot.size_bytes == 0 and at >= 0:
        size = len(raw) - 1
        size += len(str(size + len(str(size))))  # the digits are part of the size
        view = memoryview(raw)  # one copy of the bytes, right-sized (see codec.encode)
        body = b"".join((view[:at], b'"size_bytes":%d' % size, view[at + len(marker) :]))
        snapshot = revise(cp.context_snapshot, size_bytes=size)
        cp = revise(cp, context_snapshot=snapshot)
    else:
        body = memoryview(raw).tobytes()
    return _checked(cp, body)


def _checked(cp: Checkpoint, body: bytes) -> tuple[Checkpoint, bytes]:
    size = len(body)
    if size > MAX_BYTES:
        raise too_large(cp, size)
    if size > WARN_BYTES:
        log.warning("checkpoint.large", size=size, limit=WARN_BYTES, checkpoint_id=cp.id)
    return cp, body


def too_large(cp: Checkpoint, size: int) -> CheckpointTooLarge:
    return CheckpointTooLarge(size, MAX_BYTES, field_sizes(cp)[:3])


def field_sizes(cp: Checkpoint) -> list[tuple[str, int]]:
    """Bytes of each work-state field, the progress and the context; largest first."""
    sizes = [
        (f"state.{f.name}", len(codec.converter.dumps(getattr(cp.state, f.name))))
        for f in attrs.fields(WorkState)
    ]
    sizes += [
        ("progress", len(codec.converter.dumps(cp.progress))),
        ("context", len(codec.converter.dumps(cp.context))),
    ]
    sizes.sort(key=lambda p: -p[1])
    return sizes


def resumed(cp: Checkpoint) -> Checkpoint:
    """``cp`` as a session restoring it holds it: its open work and a window of the
    session that wrote it (:func:`~lifecycle.session.work.carried`). The same object
    when that is all it holds."""
    state = carried(cp.state, session_began(cp.session_id))
    return cp if state == cp.state else revise(cp, state=state)


def fit(cp: Checkpoint) -> tuple[Checkpoint, bytes, tuple[str, ...]]:
    """``cp`` cut down to the hard limit: the largest field is halved (oldest items
    first, counted in ``state.omitted``; open tasks keep their ids and lose their
    descriptions; the largest progress or context values go), until it fits."""
    notes: list[str] = []
    for _ in range(64):
        try:
            out, body = encode_sized(cp)
            return out, body, tuple(notes)
        except CheckpointTooLarge:
            cp, note = _cut(cp, [name for name, _ in field_sizes(cp)])
            notes.append(note)
    out, body = encode_sized(_bare(cp))
    return out, body, (*notes, "the whole work state but the open tasks' ids")


def _bare(cp: Checkpoint) -> Checkpoint:
    tasks = tuple(revise(t, description="", progress=None) for t in cp.state.active_tasks)
    state = WorkState(active_tasks=tasks, omitted=cp.state.omitted)
    return revise(cp, state=state, progress={}, context={})


def _cut(cp: Checkpoint, largest_first: list[str]) -> tuple[Checkpoint, str]:
    for name in largest_first:
        if name.startswith("state."):
            field = name.removeprefix("state.")
            state = cp.state
            value = getattr(state, field)
            if field == "active_tasks" and any(len(t.description) > 100 for t in value):
                tasks = tuple(revise(t, description=limits.clip(t.description, 100)) for t in value)
                return revise(cp, state=revise(state, active_tasks=tasks)), name + " (descriptions)"
            if field == "discoveries":
                d = value
                half_p, half_i = len(d.patterns_found) // 2, len(d.insights_gained) // 2
                if not (half_p or half_i):
                    continue
                omitted = limits.omitted(state.omitted, "patterns_found", half_p)
                omitted = limits.omitted(omitted, "insights_gained", half_i)
                d = revise(
                    d, patterns_found=d.patterns_found[half_p:],
                    insights_gained=d.insights_gained[half_i:],
                )  # fmt: skip
                return revise(cp, state=revise(state, discoveries=d, omitted=omitted)), name
            if isinstance(value, tuple) and value:
                half = max(1, len(value) // 2)
                omitted = limits.omitted(state.omitted, field, half)
                state = revise(state, **{field: value[half:], "omitted": omitted})
                return revise(cp, state=state), f"{name} ({half} left out)"
        elif name in ("progress", "context"):
            value = getattr(cp, name)
            if value:
                big = max(value, key=lambda k: len(codec.converter.dumps(value[k])))
                rest = {k: v for k, v in value.items() if k != big}
                return revise(cp, **{name: rest}), f"{name}.{big}"
    return _bare(cp), "the whole work state but the open tasks' ids"


def fit_live(live: LiveContext) -> tuple[LiveContext, tuple[str, ...]]:
    """The live record with its work, progress and context cut as :func:`fit` cuts a
    checkpoint's, so that ``session/context`` (which holds the work twice) stays under
    :data:`limits.LIVE_CONTEXT_BYTES`."""
    probe = Checkpoint(
        id="cp-live", timestamp=live.session.start_time, phase=live.phase,
        progress=live.progress, context=live.context, state=live.work,
    )  # fmt: skip
    cp, _, notes = fit(probe)
    return revise(live, work=cp.state, progress=cp.progress, context=cp.context), notes
