"""The Store protocol: the one contract every persistence adapter meets.

A store is a flat, ordered map of keys to bytes with a version per key:

- ``get(key)`` -> :class:`Entry` or None
- ``put(key, value, expected_version=...)`` -> the new version (1 on create);
  ``expected_version`` makes it a compare-and-swap: 0 means "must be absent",
  N means "must be at version N"; a mismatch raises :class:`VersionConflict`.
- ``delete(key, expected_version=...)`` -> whether something was deleted
- ``list_keys(prefix)`` / ``scan(prefix)``: keys (or entries) under a prefix,
  in key order (``reverse`` for newest-first when keys embed timestamps)
- ``batch(ops)``: :class:`Put` and :class:`Delete` applied all or none; every
  compare-and-swap in it is checked before anything is applied.

An adapter plans a batch with :func:`plan_batch` (the one copy of the
compare-and-swap rule) and supplies only how it reads a stored version and how it
applies the plan; :func:`check_version` is the same rule for a single put or delete.

Keys are ``/``-separated segments (:func:`check_storage_key`); a store refuses
anything else with :class:`InvalidKey` before touching storage, so no key can
name a place outside the store. Grammar (which keys mean what) is
:mod:`lifecycle.keys`'s business, applied by :class:`ProjectStore`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import SplitResult, urlsplit

import attrs

from lifecycle.errors import CorruptRecord, InvalidKey, InvalidStoreURL, VersionConflict, quoted

MAX_KEY_LENGTH = 512
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


@attrs.frozen
class Entry:
    key: str
    value: bytes
    version: int


@attrs.frozen
class Put:
    """Write ``value`` at ``key``.

    ``sync=False`` lets a store acknowledge before this value's bytes are
    flushed (its name is still made durable). Only for values whose reader
    detects a torn copy (checksum) and can rebuild it, like ``latest`` pointers.
    ``volatile=True`` (with ``sync=False``) goes further: neither the value nor its
    name need survive a crash of the machine, so a store may flush nothing for it.
    Only for records that coordinate live processes and mean nothing after a reboot:
    the session lease, whose holder a reboot has ended anyway.
    ``lazy=True`` (with ``sync=False``) lets a store leave the value unflushed for good
    (its name is still made durable): a copy that may not have reached the disk before
    the machine restarted then reads as :class:`~lifecycle.errors.StaleRecord`, which
    its reader treats as a torn copy. Only for values the reader can rebuild exactly:
    ``checkpoints/latest`` (its readers take the newest valid checkpoint) and
    ``session/current`` (the newest session record).
    """

    key: str
    value: bytes
    expected_version: int | None = None
    sync: bool = True
    volatile: bool = False
    lazy: bool = False


@attrs.frozen
class Delete:
    """Delete ``key``; ``volatile=True`` as for :class:`Put` (the lease's release)."""

    key: str
    expected_version: int | None = None
    volatile: bool = False


Op = Put | Delete
#: What a batch may hold, as isinstance takes it fastest (``Put | Delete`` is built anew
#: each time it is evaluated).
_OP_TYPES = (Put, Delete)


#: Storage keys already found safe (a process reads and writes the same few keys over
#: and over); emptied when full.
_SAFE_KEYS: set[str] = set()
_SAFE_KEYS_MAX = 4096
#: Project-relative keys the key grammar (:func:`lifecycle.keys.validate`) allowed.
_GRAMMAR_KEYS: set[str] = set()
#: Relative keys :meth:`ProjectStore._written` found hold no secret.
_WRITTEN_KEYS: set[str] = set()


def _keys_validate() -> Callable[[str], str]:
    from lifecycle import keys

    return keys.validate


def check_storage_key(key: object) -> str:
    """Return ``key`` if it is a safe storage key, else raise InvalidKey."""
    if type(key) is str and key in _SAFE_KEYS:
        return key
    if not isinstance(key, str):
        raise InvalidKey(repr(key), "a key must be a string")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(key, f"a key must be 1 to {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment.strip(".") == "":
            raise InvalidKey(
                key,
                f"segment {quoted(segment)} must be 1-128 of A-Z a-z 0-9 . _ - "
                "and not start with '.' or '-'",
            )
    if type(key) is str:
        if len(_SAFE_KEYS) >= _SAFE_KEYS_MAX:
            _SAFE_KEYS.clear()
        _SAFE_KEYS.add(key)
    return key


def check_prefix(prefix: object) -> str:
    """A scan prefix: empty, or a storage key optionally ending with ``/``."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise InvalidKey(repr(prefix), "a prefix must be a string")
    check_storage_key(prefix.rstrip("/") if prefix.endswith("/") else prefix)
    return prefix


def check_ops(ops: Sequence[object]) -> None:
    """Refuse a batch holding anything but :class:`Put` and :class:`Delete` on safe keys.

    Raises TypeError or InvalidKey before the store is touched.
    """
    for op in ops:
        if not isinstance(op, _OP_TYPES):
            raise TypeError(f"a batch holds Put and Delete operations, not {op!r}")
        check_storage_key(op.key)


def split_url(url: str) -> SplitResult:
    """``urlsplit(url)``, with what it refuses (an unbalanced ``[``, a bad port) as
    :class:`InvalidStoreURL` instead of ValueError."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port, which raises for a bad one
    except ValueError as exc:
        raise InvalidStoreURL(url, f"malformed URL ({exc})") from None
    return parts


# -- compare-and-swap ----------------------------------------------------------------------


def check_version(key: str, expected: int | None, found: int | None) -> None:
    """The compare-and-swap rule: raise VersionConflict unless ``expected`` allows ``found``.

    ``expected`` None allows anything (an unconditional write), 0 requires the key to be
    absent (``found == 0``), N requires version N. ``found`` None means the stored
    version is unknown (an unreadable record): only an unconditional write passes.
    """
    if expected is not None and expected != found:
        raise VersionConflict(key, expected, found)


class Planned(NamedTuple):
    """One op of a checked batch, with the versions the batch builds up."""

    op: Op
    #: The key's version just before this op (0: absent), counting earlier ops in the batch.
    found: int
    #: The version this op leaves: ``found + 1`` for a Put, 0 for a Delete.
    version: int


#: ``read_version(key, expected_version)``: the stored version of ``key`` (0 if absent,
#: None if unknown), asked with the expected version of the first op on that key.
VersionReader = Callable[[str, int | None], int | None]


def plan_batch(ops: Sequence[Op], read_version: VersionReader) -> list[Planned]:
    """Check every compare-and-swap of ``ops`` before anything is applied; return the plan.

    Each key's stored version is read once, for the first op on it; later ops on the
    same key see the earlier ones (after a Put the key is at ``found + 1``, after a
    Delete it is absent), so two ops on one key in one batch see each other. The first
    mismatch raises :class:`VersionConflict` ``(key, expected, found)`` and nothing may
    be applied; anything but a Put or a Delete raises TypeError. ``read_version`` may
    raise too (the file store raises CorruptRecord for a compare-and-swap on a torn
    record); an unknown version (None) lets only an unconditional op through, which
    then finds the key absent.

    The store applies the plan in order (or, all at once, in any order that keeps each
    key's ops in order), writing each Put at its ``version``.
    """
    state: dict[str, int] = {}
    plan: list[Planned] = []
    for op in ops:
        if not isinstance(op, _OP_TYPES):
            raise TypeError(f"a batch holds Put and Delete operations, not {op!r}")
        key, expected = op.key, op.expected_version
        found = state.get(key)
        if found is None:
            stored = read_version(key, expected)
            check_version(key, expected, stored)
            found = stored or 0
        else:
            check_version(key, expected, found)
        version = found + 1 if isinstance(op, Put) else 0
        state[key] = version
        plan.append(Planned(op, found, version))
    return plan


# -- scans ---------------------------------------------------------------------------------


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix`` (not empty).

    Storage keys are ASCII, so bumping the last character never overflows.
    """
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def row_crc(key: str, value: bytes) -> int:
    """The checksum an SQL store keeps beside each row: CRC-32 of the key, a NUL, the value.

    The key is covered so that a flipped bit that moves a row to another key is caught.
    The version is not (a database computes some versions itself): a flipped version
    leaves the value intact, and a compare-and-swap against it fails as a conflict.
    """
    return zlib.crc32(value, zlib.crc32(key.encode("utf-8", "surrogateescape") + b"\0"))


#: Large rows :func:`checked_row` found intact: key -> (value, crc). A row read again
#: with equal bytes and an equal checksum is intact without taking its CRC again (the
#: CRC is a function of the key and the value alone); any other row is checked. Emptied
#: when full.
_INTACT: dict[str, tuple[bytes, int]] = {}
_INTACT_SLOTS = 32
#: Only values this long or longer are remembered (below it the CRC is cheap), and
#: none longer than _INTACT_LARGEST (so at most 32 MiB are kept).
_INTACT_SMALLEST = 2048
_INTACT_LARGEST = 1024 * 1024


def checked_row(key: Any, value: Any, version: Any, crc: Any) -> Entry:
    """The entry of one SQL row ``(key, value, version, crc)``, or CorruptRecord.

    Types are checked too: a flipped bit in a row's header can turn a blob into text or
    a number into NULL.
    """
    name = key if isinstance(key, str) else repr(key)
    if not isinstance(value, bytes | bytearray | memoryview) or not isinstance(version, int):
        raise CorruptRecord(name, "the row's columns have the wrong types")
    data = bytes(value)
    if not isinstance(crc, int) or not isinstance(key, str):
        raise CorruptRecord(name, "the row's checksum does not match its key and value")
    seen = _INTACT.get(key)
    if seen is None or seen[1] != crc or seen[0] != data:
        if row_crc(key, data) != crc:
            raise CorruptRecord(name, "the row's checksum does not match its key and value")
        if _INTACT_SMALLEST <= len(data) <= _INTACT_LARGEST:
            if len(_INTACT) >= _INTACT_SLOTS:
                _INTACT.clear()
            _INTACT[key] = (data, crc)
    return Entry(key, data, version)


def paged_entries(
    page: Callable[[str | None, int], Sequence[tuple[Any, ...]]],
    limit: int | None,
    size: int = 256,
    *,
    url: str = "",
) -> Iterator[Entry]:
    """Entries from successive key-ordered pages of ``(key, value, version[, crc])`` rows.

    ``page(after, count)`` returns up to ``count`` rows past the key ``after``. Each
    page is its own query, so a database store holds no lock or cursor while the caller
    consumes the iterator. A row with a checksum that does not match is skipped with a
    warning (as the file store skips a corrupt file); ``limit`` counts valid entries.
    """
    remaining = limit
    after: str | None = None
    while remaining is None or remaining > 0:
        count = size if remaining is None else min(size, remaining)
        rows = page(after, count)
        for row in rows:
            if len(row) == 3:
                entry = Entry(row[0], bytes(row[1]), int(row[2]))
            else:
                try:
                    entry = checked_row(*row)
                except CorruptRecord as exc:
                    from lifecycle.logs import get_logger

                    get_logger(__name__).warning(
                        "store.corrupt_record_skipped", key=exc.key, reason=exc.reason, url=url
                    )
                    continue
            yield entry
            if remaining is not None:
                remaining -= 1
                if remaining <= 0:
                    return
        if len(rows) < count:
            return
        after = rows[-1][0]


class PagedScans:
    """``list_keys`` and ``scan`` for a store that reads key-ordered pages (the SQL stores).

    The store provides ``_page(prefix, after, reverse, count, values)``: up to ``count``
    rows (all of them when None) under ``prefix`` past the key ``after``, in key order
    (descending if ``reverse``), each ``(key, value, version)``, or starting with the key
    alone when ``values`` is false.
    """

    #: Rows fetched per query while scanning, so no lock is held across yields.
    scan_page = 256

    def _page(
        self, prefix: str, after: str | None, reverse: bool, count: int | None, values: bool
    ) -> Sequence[tuple[Any, ...]]:
        raise NotImplementedError

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        check_prefix(prefix)
        count = None if limit is None else max(limit, 0)
        return [row[0] for row in self._page(prefix, None, reverse, count, False)]

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        check_prefix(prefix)

        def page(after: str | None, count: int) -> Sequence[tuple[Any, ...]]:
            return self._page(prefix, after, reverse, count, True)

        return paged_entries(page, limit, self.scan_page, url=getattr(self, "url", ""))


@runtime_checkable
class Store(Protocol):
    """What every adapter provides. Async twins live in :mod:`lifecycle.aio`."""

    url: str

    def get(self, key: str) -> Entry | None: ...

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int: ...

    def delete(self, key: str, *, expected_version: int | None = None) -> bool: ...

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]: ...

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]: ...

    def batch(self, ops: Sequence[Op]) -> list[int]: ...

    def close(self) -> None: ...


class ForwardingStore:
    """A store that forwards every call of the Store protocol to ``inner``, unchanged.

    The base of every store wrapper: subclass it and override the calls you want to
    observe or change, the others keep ``inner``'s behaviour. ``url`` is the inner
    store's unless given (the async manager, for one, steps inline only for
    ``memory://``). The test kit's :class:`~lifecycle.testing.FaultyStore` is one;
    :mod:`lifecycle.testing` exports this class too.
    """

    def __init__(self, inner: Store, *, url: str | None = None) -> None:
        self.inner = inner
        self.url = inner.url if url is None else url

    def get(self, key: str) -> Entry | None:
        return self.inner.get(key)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self.inner.put(key, value, expected_version=expected_version)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        return self.inner.delete(key, expected_version=expected_version)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        return self.inner.list_keys(prefix, reverse=reverse, limit=limit)

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        return self.inner.scan(prefix, reverse=reverse, limit=limit)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        return self.inner.batch(ops)

    def close(self) -> None:
        self.inner.close()


class ProjectStore:
    """A view of a store holding one project's keys under ``{project}/``.

    Every key is checked against the key grammar (:func:`lifecycle.keys.validate`)
    before it reaches the store.
    """

    def __init__(self, store: Store, project: str) -> None:
        from lifecycle import keys

        self.store = store
        self.project = keys.validate_project(project)
        self._root = self.project + "/"
        self._validate = keys.validate

    @property
    def url(self) -> str:
        return self.store.url

    def _full(self, key: str) -> str:
        if type(key) is str and key in _GRAMMAR_KEYS:
            return self._root + key
        full = self._root + self._validate(key)
        if self._validate is _keys_validate():
            if len(_GRAMMAR_KEYS) >= _SAFE_KEYS_MAX:
                _GRAMMAR_KEYS.clear()
            _GRAMMAR_KEYS.add(key)
        return full

    def get(self, key: str) -> Entry | None:
        entry = self.store.get(self._full(key))
        return None if entry is None else Entry(key, entry.value, entry.version)

    def _written(self, key: str) -> str:
        """:meth:`_full` for a write: also refused when the key holds a secret (a key is
        stored as it is, as a file name or a row key; a record's text is redacted)."""
        if type(key) is str and key in _WRITTEN_KEYS:
            return self._root + key
        full = self._full(key)
        from lifecycle.redact import redact, secret_kind

        kind = secret_kind(key)
        if kind is not None:
            raise InvalidKey(
                redact(key), f"a key cannot hold a secret ({kind}); it is stored as it is"
            )
        if len(_WRITTEN_KEYS) >= _SAFE_KEYS_MAX:
            _WRITTEN_KEYS.clear()
        _WRITTEN_KEYS.add(key)
        return full

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self.store.put(self._written(key), value, expected_version=expected_version)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        return self.store.delete(self._full(key), expected_version=expected_version)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        cut = len(self._root)
        found = self.store.list_keys(self._root + prefix, reverse=reverse, limit=limit)
        return [k[cut:] for k in found]

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        cut = len(self._root)
        for entry in self.store.scan(self._root + prefix, reverse=reverse, limit=limit):
            yield attrs.evolve(entry, key=entry.key[cut:])

    def batch(self, ops: Sequence[Op]) -> list[int]:
        return self.store.batch([self._rekeyed(op) for op in ops])

    def _rekeyed(self, op: Op) -> Op:
        """``op`` on its full key (built field by field: ``attrs.evolve`` costs more)."""
        kind = type(op)
        if kind is Put:
            assert isinstance(op, Put)
            return Put(
                self._written(op.key), op.value, op.expected_version, op.sync, op.volatile, op.lazy
            )
        if kind is Delete:
            assert isinstance(op, Delete)
            return Delete(self._full(op.key), op.expected_version, op.volatile)
        return attrs.evolve(op, key=self._full(op.key))

    def close(self) -> None:
        self.store.close()
