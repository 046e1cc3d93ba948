"""``LifecycleSaver``: a LangGraph checkpointer on any lifecycle store.

    saver = LifecycleSaver(store=open_store("sqlite:///graph.db"))
    saver = LifecycleSaver.from_url("postgresql://...", project="agents")
    graph = builder.compile(checkpointer=saver)

Every method of ``BaseCheckpointSaver``, sync and async: ``put``, ``put_writes``,
``get_tuple``, ``list``, ``delete_thread``, ``delete_for_runs``, ``copy_thread``,
``prune``. Records and keys are :mod:`.records`'s; values go through LangGraph's
JSON-plus serde, never pickle (:mod:`.serde`).

What a lifecycle store adds: every record carries a crc32 checked on read, and the
newest checkpoint of a thread that fails it (a torn write, an edited row) is skipped
with a ``langgraph.checkpoint.corrupt`` warning in favour of the newest valid one;
asked for by id, a corrupt checkpoint is a :class:`~lifecycle.errors.CorruptRecord`.
Records have schema versions with upcasters (:mod:`lifecycle.codec`), and ``prune``
bounds a thread's history.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

import attrs
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from lifecycle.errors import CorruptRecord, InvalidRecord, InvalidSettings, VersionConflict
from lifecycle.integrations.langgraph import records as rec
from lifecycle.integrations.langgraph.serde import NoPickleSerializer
from lifecycle.logs import get_logger
from lifecycle.stores.base import Delete, Op, ProjectStore, Put, Store

log = get_logger(__name__)

T = TypeVar("T")


class Entry(NamedTuple):
    """A store entry keyed under the project (a tuple: cheaper to make than the
    store's own entries, and every read makes one or more)."""

    key: str
    value: bytes
    version: int


#: A checkpoint read: the entry, its record and its body (checkpoint, metadata bytes).
Found = tuple[Entry, rec.GraphCheckpoint, list[memoryview]]
#: The entries of a checkpoint's pending writes.
Writes = list[Entry]

DEFAULT_PROJECT = "langgraph"
PRUNE_STRATEGIES = ("keep_latest", "delete")
#: Metadata keys of a checkpoint written by a graph with a DeltaChannel (beta in
#: LangGraph): keep_latest would cut the history such a channel is rebuilt from.
DELTA_METADATA = ("counters_since_delta_snapshot", "delta_writes_versioned")
#: Ops per store batch when deleting or copying a thread.
BATCH = 256
#: Tuples an async ``alist`` takes from the store per worker-thread hop.
ALIST_CHUNK = 32
#: Tries of a pending-writes merge that lost a race with another writer.
WRITE_TRIES = 8


class PruneRefused(InvalidSettings):
    """``prune(strategy="keep_latest")`` of threads whose graph uses a DeltaChannel."""

    def __init__(self, thread_ids: Sequence[str]) -> None:
        self.thread_ids = tuple(thread_ids)
        super().__init__(
            "keep_latest cannot prune threads that use a DeltaChannel (their latest value "
            f"is rebuilt from older checkpoints): {', '.join(self.thread_ids)}; nothing was "
            'pruned; use strategy="delete" or leave them'
        )


class LifecycleSaver(BaseCheckpointSaver[int]):
    """A LangGraph checkpoint saver on a lifecycle :class:`~lifecycle.stores.Store`.

    ``project`` names the key space in the store (a store holds many projects);
    ``serde`` may be a ``JsonPlusSerializer`` of your own (an allowlist, say), never
    one with ``pickle_fallback``.
    """

    def __init__(
        self,
        store: Store,
        *,
        project: str = DEFAULT_PROJECT,
        serde: JsonPlusSerializer | None = None,
        owns_store: bool = False,
    ) -> None:
        self._serde = NoPickleSerializer(serde)
        super().__init__(serde=self._serde)
        self.store = ProjectStore(store, project)
        self.project = self.store.project
        # Reads and the hot writes go to the store itself, under the project's prefix:
        # ProjectStore's copy of each entry (attrs.evolve) was a tenth of a get_tuple,
        # and its check of a new key against the whole grammar 8% of a put's CPU (the
        # saver checks its keys against the grammar's rule for them: records.KEY).
        self._raw = store
        self._root = self.project + "/"
        #: This saver's place in the memo of decoded records (:data:`.records.MEMO`).
        self._where = (store.url, self.project)
        self._owns_store = owns_store
        # memory:// does no I/O: the async methods run inline rather than in a thread.
        self._inline = store.url.startswith("memory://")

    @classmethod
    def from_url(
        cls, url: str, *, project: str = DEFAULT_PROJECT, serde: JsonPlusSerializer | None = None
    ) -> LifecycleSaver:
        """A saver on the store ``url`` names (``file://``, ``sqlite:///``, ``postgresql://``,
        ...), which :meth:`close` closes."""
        from lifecycle.stores import open_store

        return cls(open_store(url), project=project, serde=serde, owns_store=True)

    def close(self) -> None:
        """Close the store, if this saver opened it (:meth:`from_url`)."""
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> LifecycleSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> LifecycleSaver:
        """A shallow copy whose serializer also allows ``extra_allowlist`` (LangGraph calls
        this when it compiles a graph with strict msgpack)."""
        inner = self._serde.inner.with_msgpack_allowlist(extra_allowlist)
        if inner is self._serde.inner:
            return self
        clone = copy.copy(self)
        clone._serde = NoPickleSerializer(inner)
        clone.serde = clone._serde
        return clone

    # -- reading ---------------------------------------------------------------------------

    def _scan(self, prefix: str, *, reverse: bool = False, limit: int | None = None) -> Writes:
        """``self.store.scan``'s entries, keyed under the project as there (a list: every
        caller reads them all)."""
        cut = len(self._root)
        found = self._raw.scan(self._root + prefix, reverse=reverse, limit=limit)
        return [Entry(e.key[cut:], e.value, e.version) for e in found]

    def _load(self, type_: str, data: bytes | memoryview, key: str) -> Any:
        return self._serde.load((type_, data), key)

    def _metadata(self, found: Found) -> Any:
        entry, record, parts = found
        return self._load(record.metadata_type, parts[1], entry.key)

    def _pending_writes(self, record: rec.GraphCheckpoint, writes: Sequence[Entry]) -> Any:
        if not writes:
            return []
        tasks = []
        for entry in writes:
            task, parts = rec.MEMO.decode(rec.GraphWrites, self._where, entry.key, entry.value)
            if len(parts) != len(task.writes):
                raise CorruptRecord(entry.key, "its parts do not match its writes")
            if task.thread_id == record.thread_id and task.checkpoint_ns == record.checkpoint_ns:
                tasks.append((entry.key, task, parts))
        # LangGraph's writes_sort_key: (task_path, task_id, idx); each record is in idx order.
        tasks.sort(key=lambda ktp: (ktp[1].task_path, ktp[1].task_id))
        pending: list[PendingWrite] = [
            (task.task_id, w.channel, self._load(w.type, data, key))
            for key, task, parts in tasks
            for w, data in zip(task.writes, parts, strict=True)
        ]
        return pending

    def _tuple(self, found: Found, writes: Sequence[Entry]) -> CheckpointTuple:
        entry, record, parts = found
        configurable = {
            "thread_id": record.thread_id,
            "checkpoint_ns": record.checkpoint_ns,
            "checkpoint_id": record.checkpoint_id,
        }
        parent: RunnableConfig | None = None
        if record.parent_checkpoint_id is not None:
            parent = {
                "configurable": {**configurable, "checkpoint_id": record.parent_checkpoint_id}
            }
        return CheckpointTuple(
            config={"configurable": configurable},
            checkpoint=self._load(record.checkpoint_type, parts[0], entry.key),
            metadata=self._metadata(found),
            parent_config=parent,
            pending_writes=self._pending_writes(record, writes),
        )

    def _checkpoint(self, entry: Entry) -> Found:
        """``entry`` read as a checkpoint record; CorruptRecord (or InvalidRecord) if not."""
        record, parts = rec.MEMO.decode(rec.GraphCheckpoint, self._where, entry.key, entry.value)
        if len(parts) != 2:
            raise CorruptRecord(entry.key, "a checkpoint record has two parts")
        return entry, record, parts

    def _valid(self, entries: Iterable[Entry]) -> Iterator[Found]:
        """The checkpoint records among ``entries``; a corrupt one is skipped, with a warning."""
        for entry in entries:
            if rec.kind_of_key(entry.key) != rec.CHECKPOINTS:
                continue
            try:
                yield self._checkpoint(entry)
            except (CorruptRecord, InvalidRecord) as exc:
                log.warning("langgraph.checkpoint.corrupt", key=entry.key, error=str(exc))

    def _read(self, key: str) -> tuple[Entry | None, list[Entry]]:
        """The checkpoint at ``key`` and its writes' entries, in one scan (its prefix
        also holds any checkpoint whose id starts with this one's: they are left out)."""
        return _split(list(self._scan(key)), key)

    def _newest(self, prefix: str) -> tuple[Entry | None, list[Entry]]:
        """The newest checkpoint under a namespace's ``prefix`` and its writes' entries.

        Keys in reverse order are: the newest checkpoint's writes, then the checkpoint.
        So the first entry is the newest checkpoint (which then has no writes: one
        query, one row), or the last write of a checkpoint X, with the newest checkpoint
        among the keys starting with X (X itself, unless an id like X-2 sorts between
        X's writes and X): one more scan, of those keys."""
        peek = self._scan(prefix, reverse=True, limit=1)
        if not peek:
            return None, []
        first = peek[0].key
        if rec.kind_of_key(first) == rec.CHECKPOINTS:
            return peek[0], []
        entries = self._scan(first.rpartition("/")[0])
        checkpoints = [e.key for e in entries if rec.kind_of_key(e.key) == rec.CHECKPOINTS]
        if not checkpoints:
            return None, []  # writes whose checkpoint is gone
        return _split(entries, max(checkpoints))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns = _thread(config), _namespace(config)
        checkpoint_id = get_checkpoint_id(config)
        if checkpoint_id:
            entry, writes = self._read(rec.checkpoint_key(thread_id, ns, checkpoint_id))
            if entry is None:
                return None
            found = self._checkpoint(entry)
            if (found[1].thread_id, found[1].checkpoint_ns) != (thread_id, ns):
                return None  # another part with the same hash (never seen in practice)
            return self._tuple(found, writes)
        prefix = rec.namespace_prefix(thread_id, ns)
        entry, writes = self._newest(prefix)
        if entry is not None:
            try:
                found = self._checkpoint(entry)
                if (found[1].thread_id, found[1].checkpoint_ns) == (thread_id, ns):
                    return self._tuple(found, writes)
            except (CorruptRecord, InvalidRecord) as exc:
                log.warning("langgraph.checkpoint.corrupt", key=entry.key, error=str(exc))
        # The newest is corrupt (or its writes lost their checkpoint): the newest valid.
        below = entry.key if entry is not None else None
        for key in self.store.list_keys(prefix, reverse=True):
            if rec.kind_of_key(key) != rec.CHECKPOINTS or (below is not None and key >= below):
                continue
            older, older_writes = self._read(key)
            if older is None:
                continue
            for found in self._valid(iter([older])):
                if (found[1].thread_id, found[1].checkpoint_ns) != (thread_id, ns):
                    continue
                log.warning(
                    "langgraph.checkpoint.fallback",
                    thread_id=thread_id,
                    checkpoint_ns=ns,
                    checkpoint_id=found[1].checkpoint_id,
                )
                return self._tuple(found, older_writes)
        return None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        thread_id = ns = checkpoint_id = None
        if config is not None:
            thread_id = _thread(config)
            ns = config["configurable"].get("checkpoint_ns")
            checkpoint_id = get_checkpoint_id(config)
        before_id = get_checkpoint_id(before) if before is not None else None
        candidates: Iterator[tuple[Found, list[Entry]]]
        if thread_id is not None and ns is not None:
            # One namespace: its keys (no values) newest first, then each checkpoint
            # with its writes as it is reached, so that a limit reads no more.
            candidates = self._one_namespace(rec.namespace_prefix(thread_id, ns))
        else:
            prefix = rec.ROOT if thread_id is None else rec.thread_prefix(thread_id)
            entries = self._scan(prefix)
            writes: dict[str, list[Entry]] = {}
            for entry in entries:
                if rec.kind_of_key(entry.key) == rec.WRITES:
                    writes.setdefault(entry.key.rpartition("/")[0], []).append(entry)
            every = [(f, writes.get(f[0].key, [])) for f in self._valid(iter(entries))]
            every.sort(key=lambda fw: fw[0][1].checkpoint_id, reverse=True)
            candidates = iter(every)
        count = 0
        for found, found_writes in candidates:
            record = found[1]
            if limit is not None and count >= limit:
                return
            if thread_id is not None and record.thread_id != thread_id:
                continue
            if ns is not None and record.checkpoint_ns != ns:
                continue
            if checkpoint_id and record.checkpoint_id != checkpoint_id:
                continue
            if before_id and not record.checkpoint_id < before_id:
                continue
            if filter:
                metadata = self._metadata(found)
                if not all(metadata.get(k) == v for k, v in filter.items()):
                    continue
            yield self._tuple(found, found_writes)
            count += 1

    def _one_namespace(self, prefix: str) -> Iterator[tuple[Found, Writes]]:
        for key in self.store.list_keys(prefix, reverse=True):
            if rec.kind_of_key(key) != rec.CHECKPOINTS:
                continue
            entry, writes = self._read(key)
            if entry is not None:
                for found in self._valid(iter([entry])):
                    yield found, writes

    # -- writing ---------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, ns = _thread(config), _namespace(config)
        c_type, c_data = self.serde.dumps_typed(checkpoint)
        m_type, m_data = self.serde.dumps_typed(
            get_serializable_checkpoint_metadata(config, metadata)
        )
        record = rec.GraphCheckpoint(
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint["id"],
            parent_checkpoint_id=get_checkpoint_id(config) or None,
            checkpoint_type=c_type,
            metadata_type=m_type,
        )
        key = rec.checkpoint_key(thread_id, ns, checkpoint["id"])
        self._raw.put(self._root + rec.checked_key(key), rec.encode(record, (c_data, m_data)))
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's writes to a checkpoint. As LangGraph's own savers do, a write
        at an index already stored is kept, unless every write of the call is to a
        special channel (error, interrupt, resume, scheduled), which replaces."""
        thread_id, ns = _thread(config), _namespace(config)
        checkpoint_id = str(config["configurable"]["checkpoint_id"])
        new: list[tuple[rec.WriteHead, bytes | memoryview]] = []
        for idx, (channel, value) in enumerate(writes):
            type_, data = self.serde.dumps_typed(value)
            new.append((rec.WriteHead(WRITES_IDX_MAP.get(channel, idx), channel, type_), data))
        if not new:
            return
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        key = rec.writes_key(thread_id, ns, checkpoint_id, task_id)
        for attempt in range(WRITE_TRIES):
            entry = self.store.get(key)
            by_idx: dict[int, tuple[rec.WriteHead, bytes | memoryview]] = {}
            if entry is not None:
                stored, parts = rec.MEMO.decode(rec.GraphWrites, self._where, key, entry.value)
                by_idx = {w.idx: (w, p) for w, p in zip(stored.writes, parts, strict=True)}
            before = dict(by_idx)
            for w, payload in new:
                if replace or w.idx not in by_idx:
                    by_idx[w.idx] = (w, payload)
            if entry is not None and by_idx == before:
                return  # every write is stored already
            record = rec.GraphWrites(
                thread_id=thread_id,
                checkpoint_ns=ns,
                checkpoint_id=checkpoint_id,
                task_id=task_id,
                task_path=task_path,
                writes=tuple(by_idx[i][0] for i in sorted(by_idx)),
            )
            value = rec.encode(record, [by_idx[i][1] for i in sorted(by_idx)])
            try:
                self._raw.put(
                    self._root + rec.checked_key(key),
                    value,
                    expected_version=0 if entry is None else entry.version,
                )
                return
            except VersionConflict:
                if attempt == WRITE_TRIES - 1:
                    raise
                log.debug("langgraph.writes.retry", key=key, attempt=attempt)

    def _apply(self, ops: Sequence[Op]) -> None:
        for start in range(0, len(ops), BATCH):
            self.store.batch(ops[start : start + BATCH])

    def delete_thread(self, thread_id: str) -> None:
        keys = self.store.list_keys(rec.thread_prefix(str(thread_id)))
        self._apply([Delete(k) for k in keys])

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints whose metadata names one of ``run_ids``, with their
        pending writes. Reads every checkpoint of the project (its metadata holds the run)."""
        wanted = {str(r) for r in run_ids}
        if not wanted:
            return
        doomed: list[Op] = []
        for found in self._valid(self._scan(rec.ROOT)):
            if self._metadata(found).get("run_id") in wanted:
                doomed.append(Delete(found[0].key))
                doomed += [Delete(k) for k in self.store.list_keys(_writes_of(found[1]))]
        self._apply(doomed)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and pending write of one thread to another (whatever the
        target held under the same ids is replaced). A corrupt record stops the copy."""
        source, target = str(source_thread_id), str(target_thread_id)
        if source == target:
            return
        ops: list[Op] = []
        for entry in self._scan(rec.thread_prefix(source)):
            kind = rec.kind_of_key(entry.key)
            if kind == rec.CHECKPOINTS:
                cp, parts = rec.decode(rec.GraphCheckpoint, entry.value, entry.key)
                if cp.thread_id != source:
                    continue
                key = rec.checkpoint_key(target, cp.checkpoint_ns, cp.checkpoint_id)
                ops.append(Put(key, rec.encode(attrs.evolve(cp, thread_id=target), parts)))
            elif kind == rec.WRITES:
                task, parts = rec.decode(rec.GraphWrites, entry.value, entry.key)
                if task.thread_id != source:
                    continue
                key = rec.writes_key(target, task.checkpoint_ns, task.checkpoint_id, task.task_id)
                ops.append(Put(key, rec.encode(attrs.evolve(task, thread_id=target), parts)))
        self._apply(ops)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest`` keeps each namespace's newest checkpoint and its pending writes
        and deletes the rest of the thread; ``delete`` deletes the threads. keep_latest
        refuses (:class:`PruneRefused`, nothing pruned) threads that use a DeltaChannel."""
        if isinstance(thread_ids, str):
            raise InvalidSettings(
                f"prune takes a sequence of thread ids, not the string {thread_ids!r}"
            )
        if strategy not in PRUNE_STRATEGIES:
            raise InvalidSettings(
                f"unknown prune strategy {strategy!r}; use one of: {', '.join(PRUNE_STRATEGIES)}"
            )
        threads = [str(t) for t in thread_ids]
        if strategy == "delete":
            for thread_id in threads:
                self.delete_thread(thread_id)
            return
        plans: list[list[Op]] = []
        delta: list[str] = []
        for thread_id in threads:
            entries = self._scan(rec.thread_prefix(thread_id))
            checkpoints = [f for f in self._valid(iter(entries)) if f[1].thread_id == thread_id]
            if any(k in self._metadata(f) for f in checkpoints for k in DELTA_METADATA):
                delta.append(thread_id)
                continue
            newest: dict[str, str] = {}
            for _, r, _ in checkpoints:
                if r.checkpoint_id > newest.get(r.checkpoint_ns, ""):
                    newest[r.checkpoint_ns] = r.checkpoint_id
            keep = {rec.checkpoint_key(thread_id, ns, cid) for ns, cid in newest.items()}
            keep_writes = tuple(rec.writes_prefix(thread_id, ns, cid) for ns, cid in newest.items())
            plans.append(
                [
                    Delete(e.key)
                    for e in entries
                    if e.key not in keep and not e.key.startswith(keep_writes)
                ]
            )
        if delta:
            raise PruneRefused(delta)
        for ops in plans:
            self._apply(ops)

    # -- async: the same calls in a worker thread ------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._inline:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._run(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = self.list(config, filter=filter, before=before, limit=limit)
        while True:
            chunk = await self._run(_take, found, ALIST_CHUNK)
            for item in chunk:
                yield item
            if len(chunk) < ALIST_CHUNK:
                return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._run(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._run(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._run(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._run(self.prune, thread_ids, strategy=strategy)


def _thread(config: RunnableConfig) -> str:
    try:
        return str(config["configurable"]["thread_id"])
    except KeyError:
        raise InvalidSettings(
            'a LangGraph checkpoint config needs configurable["thread_id"]'
        ) from None


def _namespace(config: RunnableConfig) -> str:
    return str(config["configurable"].get("checkpoint_ns", ""))


def _split(entries: Sequence[Entry], key: str) -> tuple[Entry | None, list[Entry]]:
    """The entry at ``key`` and the entries of its writes (``key/...``)."""
    inside = key + "/"
    found = next((e for e in entries if e.key == key), None)
    return found, [e for e in entries if e.key.startswith(inside)]


def _writes_of(record: rec.GraphCheckpoint) -> str:
    return rec.writes_prefix(record.thread_id, record.checkpoint_ns, record.checkpoint_id)


def _take(items: Iterator[T], n: int) -> list[T]:
    out = []
    for item in items:
        out.append(item)
        if len(out) == n:
            break
    return out
