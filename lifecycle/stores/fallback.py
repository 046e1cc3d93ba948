"""``fallback://?primary=URL&local=DIR``: a primary store backed by a local file store.

For a primary that can go away (a Serena server, a database across the network),
SuperClaude's Session Lifecycle Pattern asks to "queue locally, retry on next
operation" and, when the primary is unavailable, to "use cached local state".
Build the URL with :func:`fallback_url`, which percent-encodes the primary's URL
(a literal ``+``, ``&`` or ``?`` in it must be encoded)::

    fallback_url("serena+stdio://...", ".lifecycle")
    # 'fallback://?primary=serena%2Bstdio%3A%2F%2F...&local=.lifecycle'

``local`` is a folder or a ``file://`` URL and defaults to ``.lifecycle``.

Writes. Every successful primary write is mirrored into the local store (a cache,
with the primary's versions). A write the primary fails (any StoreError but a
VersionConflict, or an OSError) is written to the local store and appended to a
retry queue, one durably written file per failed call in ``<local>/recovery/``
(named by a zero-padded sequence number, so they sort in order); a warning is
logged and the call succeeds, because the write is durable locally. While the
queue is not empty, writes go to the queue too, so they reach the primary in the
order they were acknowledged. Compare-and-swaps of queued writes are checked
against the local cache, and the versions they return are the cache's: provisional
until the queue drains. All writes through one local folder are serialised by a
lock on ``recovery/.lock`` (threads and processes alike).

Draining. Every operation first replays the queue to the primary, oldest first,
stopping at the first failure. Replay is idempotent by content: before applying a
queued call, the primary's current value of each key it touches is read; if the
primary already holds the call's result (the same bytes, or no key for a delete),
for instance because an earlier replay was applied but its answer was lost, the
call is not applied again. Otherwise it is applied with a compare-and-swap on the
versions just read, so a concurrent writer makes the replay retry rather than be
overwritten blindly. Queued writes are last-write-wins against writers elsewhere.
A queued call the primary refuses outright (not a failure but, say, an InvalidKey
from a stricter primary) is moved to ``recovery/rejected/`` with an error log.

Reads go to the primary; keys with queued writes are read from the local cache
(the primary does not have them yet), and when the primary fails the local cache
answers and a warning is logged. The cache holds what was written through this
folder, not what others wrote to the primary.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote, unquote

import orjson

from lifecycle.errors import (
    CorruptRecord,
    InvalidStoreURL,
    LifecycleError,
    StoreError,
    StoreUnavailable,
    VersionConflict,
    hide_secrets,
)
from lifecycle.logs import get_logger
from lifecycle.stores.base import (
    Delete,
    Entry,
    Op,
    Put,
    Store,
    check_ops,
    check_prefix,
    check_storage_key,
    plan_batch,
    split_url,
)
from lifecycle.stores.file import (
    FILE_MODE,
    FileStore,
    decode_record,
    encode_record,
    make_dirs,
    root_of_url,
    write_durably,
)

log = get_logger(__name__)

QUEUE_DIR = "recovery"
REJECTED_DIR = "rejected"
QUEUE_SUFFIX = ".op"
DEFAULT_LOCAL = ".lifecycle"


def fallback_url(primary: str, local: str | Path = DEFAULT_LOCAL) -> str:
    """The URL of a fallback store over ``primary`` with its cache and queue in ``local``."""
    return f"fallback://?primary={quote(primary, safe='')}&local={quote(str(local), safe='/~.')}"


def _is_failure(exc: BaseException) -> bool:
    """Whether the primary failed (retry later), as opposed to answering (a conflict)."""
    return isinstance(exc, StoreError | OSError) and not isinstance(exc, VersionConflict)


def _encode_ops(ops: Sequence[Op], reason: str) -> bytes:
    items = [
        {"op": "put", "key": op.key, "value": base64.b64encode(op.value).decode("ascii")}
        if isinstance(op, Put)
        else {"op": "delete", "key": op.key}
        for op in ops
    ]
    return encode_record(1, orjson.dumps({"ops": items, "reason": reason}))


def _decode_ops(name: str, data: bytes) -> list[Op]:
    _, body = decode_record(name, data)
    try:
        items = orjson.loads(body)["ops"]
        return [
            Put(item["key"], base64.b64decode(item["value"], validate=True))
            if item["op"] == "put"
            else Delete(item["key"])
            for item in items
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CorruptRecord(name, f"queued operation does not decode: {exc}") from None


class FallbackStore:
    """A :class:`~lifecycle.stores.base.Store` that survives its primary going away."""

    def __init__(self, primary: Store, local: FileStore, url: str | None = None) -> None:
        self.primary = primary
        self.local = local
        self.url = url if url is not None else fallback_url(primary.url, local.url)
        self.queue_dir = local.root / QUEUE_DIR
        make_dirs(self.queue_dir)
        self._lock_path = str(self.queue_dir / ".lock")

    # -- the queue -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _queued(self) -> list[str]:
        with os.scandir(self.queue_dir) as entries:
            return sorted(e.name for e in entries if e.name.endswith(QUEUE_SUFFIX) and e.is_file())

    def pending(self) -> int:
        """How many failed calls wait in the retry queue."""
        return len(self._queued())

    def drain(self) -> int:
        """Replay the queue to the primary, oldest first; return how many calls were applied."""
        if not self._queued():
            return 0
        with self._locked():
            return self._drain_locked()

    def _drain_locked(self) -> int:
        loaded: list[tuple[str, list[Op]]] = []
        for name in self._queued():
            try:
                loaded.append((name, _decode_ops(name, (self.queue_dir / name).read_bytes())))
            except CorruptRecord as exc:
                self._reject(name, exc)
        last_call = {op.key: i for i, (_, ops) in enumerate(loaded) for op in ops}
        applied = 0
        for i, (name, ops) in enumerate(loaded):
            try:
                results = self._replay(ops)
            except Exception as exc:
                if _is_failure(exc) or isinstance(exc, VersionConflict):
                    log.warning(
                        "store.fallback_drain_stopped",
                        url=self.url,
                        pending=len(loaded) - i,
                        error=str(exc),
                    )
                    break
                if isinstance(exc, LifecycleError):
                    self._reject(name, exc)
                    continue
                raise
            # Refresh the cache only where no later queued call will change the key again.
            self._mirror([item for item in results if last_call[item[0]] == i])
            (self.queue_dir / name).unlink()
            applied += 1
        if applied:
            log.info("store.fallback_drained", url=self.url, applied=applied)
        return applied

    def _reject(self, name: str, exc: Exception) -> None:
        rejected = self.queue_dir / REJECTED_DIR
        make_dirs(rejected)
        os.replace(self.queue_dir / name, rejected / name)
        log.error(
            "store.fallback_queued_call_rejected",
            url=self.url,
            file=str(rejected / name),
            error=str(exc),
        )

    def _replay(self, ops: Sequence[Op]) -> list[tuple[str, bytes | None, int]]:
        """Apply one queued call to the primary unless it already holds its result."""
        final: dict[str, bytes | None] = {}
        for op in ops:
            final[op.key] = op.value if isinstance(op, Put) else None
        current = {key: self.primary.get(key) for key in final}
        done = all(
            (cur is None) if value is None else (cur is not None and cur.value == value)
            for (key, value), cur in zip(final.items(), current.values(), strict=True)
        )
        if done:
            return [(key, final[key], e.version if e else 0) for key, e in current.items()]
        # Compare-and-swap on what was just read: a writer in between makes this retry.
        seen: set[str] = set()
        cas_ops: list[Op] = []
        for op in ops:
            expected = None
            if op.key not in seen:
                seen.add(op.key)
                entry = current[op.key]
                expected = entry.version if entry else 0
            cas_ops.append(
                Put(op.key, op.value, expected) if isinstance(op, Put) else Delete(op.key, expected)
            )
        versions = self._primary_apply(cas_ops)
        by_key = {op.key: v for op, v in zip(ops, versions, strict=True)}
        return [(key, value, by_key[key]) for key, value in final.items()]

    def _enqueue(self, ops: Sequence[Op], reason: str) -> tuple[list[int], bool | None]:
        """Under the lock: check CAS on the cache, queue the call durably, update the cache.

        Returns the cache's new versions and, for a single delete, whether the cache held
        the key (the best answer to "was something deleted" the primary cannot give now).
        """
        cached: dict[str, int | None] = {}

        def cached_version(key: str, expected: int | None) -> int | None:
            try:
                entry = self.local.get(key)
                cached[key] = entry.version if entry else 0
            except CorruptRecord:
                cached[key] = None  # unknown: only a blind write may replace it
            return cached[key]

        plan_batch(ops, cached_version)
        names = self._queued()
        seq = int(names[-1].removesuffix(QUEUE_SUFFIX)) + 1 if names else 1
        name = f"{seq:020d}{QUEUE_SUFFIX}"
        write_durably(self.queue_dir, name, _encode_ops(ops, reason))
        blind: list[Op] = [
            Put(op.key, op.value, sync=False) if isinstance(op, Put) else Delete(op.key)
            for op in ops
        ]
        existed = cached[ops[0].key] != 0
        versions = self.local.batch(blind)
        log.warning(
            "store.primary_failed_write_queued",
            url=self.url,
            keys=sorted({op.key for op in ops}),
            queue_file=str(self.queue_dir / name),
            pending=len(names) + 1,
            reason=reason,
        )
        return versions, existed

    def _mirror(self, items: Sequence[tuple[str, bytes | None, int]]) -> None:
        try:
            self.local.mirror(items)
        except (StoreError, OSError) as exc:
            log.warning("store.fallback_cache_write_failed", url=self.url, error=str(exc))

    # -- writes ----------------------------------------------------------------------------

    def _primary_apply(self, ops: Sequence[Op]) -> list[int]:
        if len(ops) == 1:
            op = ops[0]
            if isinstance(op, Put):
                return [self.primary.put(op.key, op.value, expected_version=op.expected_version)]
            self.primary.delete(op.key, expected_version=op.expected_version)
            return [0]
        return self.primary.batch(ops)

    def _write(self, ops: Sequence[Op]) -> tuple[list[int], bool | None]:
        """Apply ``ops``; return their versions and, for a primary delete, its answer."""
        check_ops(ops)
        with self._locked():
            if self._queued():
                self._drain_locked()
            if self._queued():
                return self._enqueue(ops, "earlier writes are still queued")
            deleted = None
            try:
                if len(ops) == 1 and isinstance(ops[0], Delete):
                    op = ops[0]
                    deleted = self.primary.delete(op.key, expected_version=op.expected_version)
                    versions = [0]
                else:
                    versions = self._primary_apply(ops)
            except Exception as exc:
                if not _is_failure(exc):
                    raise
                return self._enqueue(ops, f"{type(exc).__name__}: {exc}")
            self._mirror(
                [
                    (op.key, op.value if isinstance(op, Put) else None, v)
                    for op, v in zip(ops, versions, strict=True)
                ]
            )
            return versions, deleted

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self._write([Put(key, value, expected_version)])[0][0]

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        """Delete ``key``; a queued delete answers whether the local cache held it."""
        return self._write([Delete(key, expected_version)])[1] is True

    def batch(self, ops: Sequence[Op]) -> list[int]:
        return self._write(ops)[0] if ops else []

    # -- reads -----------------------------------------------------------------------------

    def _settle(self) -> set[str]:
        """Drain what can be drained; return the keys whose writes are still queued."""
        if not self._queued():
            return set()
        with self._locked():
            self._drain_locked()
            keys: set[str] = set()
            for name in self._queued():
                try:
                    ops = _decode_ops(name, (self.queue_dir / name).read_bytes())
                except (CorruptRecord, OSError):
                    continue
                keys.update(op.key for op in ops)
            return keys

    def _read_local(self, key: str) -> Entry | None:
        return self.local.get(key)

    def get(self, key: str) -> Entry | None:
        check_storage_key(key)
        if key in self._settle():
            return self._read_local(key)
        return self._get_primary(key)

    def _get_primary(self, key: str) -> Entry | None:
        try:
            return self.primary.get(key)
        except Exception as exc:
            if not (_is_failure(exc) or isinstance(exc, CorruptRecord)):
                raise
            log.warning("store.primary_failed_read_local", url=self.url, key=key, error=str(exc))
            return self._read_local(key)

    def _list(
        self, prefix: str, reverse: bool, limit: int | None, queued: set[str]
    ) -> tuple[list[str], bool]:
        """Keys under ``prefix`` and whether they came from the primary."""
        mine = {k for k in queued if k.startswith(prefix)}
        try:
            keys = self.primary.list_keys(prefix, reverse=reverse, limit=None if mine else limit)
        except Exception as exc:
            if not _is_failure(exc):
                raise
            log.warning(
                "store.primary_failed_list_local", url=self.url, prefix=prefix, error=str(exc)
            )
            return self.local.list_keys(prefix, reverse=reverse, limit=limit), False
        if mine:
            cached = set(self.local.list_keys(prefix)) & mine
            merged = (set(keys) - mine) | cached
            keys = sorted(merged, reverse=reverse)[:limit]
        return keys, True

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        check_prefix(prefix)
        return self._list(prefix, reverse, limit, self._settle())[0]

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        check_prefix(prefix)
        queued = self._settle()
        if not any(k.startswith(prefix) for k in queued):
            try:
                return iter(list(self.primary.scan(prefix, reverse=reverse, limit=limit)))
            except Exception as exc:
                if not _is_failure(exc):
                    raise
                log.warning(
                    "store.primary_failed_list_local", url=self.url, prefix=prefix, error=str(exc)
                )
                return self.local.scan(prefix, reverse=reverse, limit=limit)
        keys, _ = self._list(prefix, reverse, None, queued)
        found: list[Entry] = []
        for key in keys:
            try:
                entry = self._read_local(key) if key in queued else self._get_primary(key)
            except CorruptRecord as exc:
                log.warning("store.corrupt_record_skipped", key=key, reason=exc.reason)
                continue
            if entry is not None:
                found.append(entry)
                if limit is not None and len(found) >= limit:
                    break
        return iter(found)

    def close(self) -> None:
        try:
            self.primary.close()
        finally:
            self.local.close()


class UnopenedPrimary:
    """A primary that was down when the fallback store opened: each call tries to open it
    (at most every :attr:`retry_after` seconds) and raises StoreUnavailable until it can,
    so the fallback store queues and answers from its cache, as for a primary that went
    away later. Once open, every call goes to the real store."""

    retry_after = 2.0

    def __init__(self, url: str, error: StoreError) -> None:
        self.url = hide_secrets(url, url)
        self._open_url = url
        self._error = error
        self._store: Store | None = None
        self._tried = time.monotonic()

    def _primary(self) -> Store:
        if self._store is not None:
            return self._store
        if time.monotonic() - self._tried >= self.retry_after:
            from lifecycle.stores import open_store

            self._tried = time.monotonic()
            try:
                self._store = open_store(self._open_url)
                return self._store
            except StoreError as exc:
                self._error = exc
        raise StoreUnavailable(f"primary store not open: {self._error}")

    def get(self, key: str) -> Entry | None:
        return self._primary().get(key)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self._primary().put(key, value, expected_version=expected_version)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        return self._primary().delete(key, expected_version=expected_version)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        return self._primary().list_keys(prefix, reverse=reverse, limit=limit)

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        return self._primary().scan(prefix, reverse=reverse, limit=limit)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        return self._primary().batch(ops)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def open_fallback_store(url: str) -> FallbackStore:
    """Open ``fallback://?primary=<percent-encoded URL>&local=<folder or file:// URL>``."""
    parts = split_url(url)
    if parts.netloc or parts.path or parts.fragment:
        raise InvalidStoreURL(url, "write a fallback store as fallback://?primary=URL&local=DIR")
    params: dict[str, str] = {}
    for pair in filter(None, parts.query.split("&")):
        name, _, value = pair.partition("=")
        params[unquote(name)] = unquote(value)
    unknown = sorted(set(params) - {"primary", "local"})
    if unknown:
        raise InvalidStoreURL(url, f"unknown parameter {unknown[0]!r}; use primary= and local=")
    primary_url = params.get("primary", "")
    if "://" not in primary_url:
        raise InvalidStoreURL(url, "primary= must be a percent-encoded store URL")
    if split_url(primary_url).scheme.lower() == "fallback":
        raise InvalidStoreURL(url, "the primary of a fallback store cannot be another fallback")
    local = params.get("local") or DEFAULT_LOCAL
    root = root_of_url(local) if "://" in local else Path(local).expanduser()
    from lifecycle.stores import open_store

    primary: Store
    try:
        primary = open_store(primary_url)
    except InvalidStoreURL:
        raise
    except StoreError as exc:  # down at open: every call queues until it comes back
        primary = UnopenedPrimary(primary_url, exc)
    try:
        return FallbackStore(primary, FileStore(root), hide_secrets(url, url))
    except OSError as exc:
        primary.close()
        raise InvalidStoreURL(url, f"cannot create or open folder {str(root)!r}: {exc}") from None
