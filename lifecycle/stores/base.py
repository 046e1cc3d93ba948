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

Keys are ``/``-separated segments (:func:`check_storage_key`); a store refuses
anything else with :class:`InvalidKey` before touching storage, so no key can
name a place outside the store. Grammar (which keys mean what) is
:mod:`lifecycle.keys`'s business, applied by :class:`ProjectStore`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from lifecycle.errors import InvalidKey

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
    """

    key: str
    value: bytes
    expected_version: int | None = None
    sync: bool = True


@attrs.frozen
class Delete:
    key: str
    expected_version: int | None = None


Op = Put | Delete


def check_storage_key(key: object) -> str:
    """Return ``key`` if it is a safe storage key, else raise InvalidKey."""
    if not isinstance(key, str):
        raise InvalidKey(repr(key), "a key must be a string")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(key, f"a key must be 1 to {MAX_KEY_LENGTH} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment.strip(".") == "":
            raise InvalidKey(
                key,
                f"segment {segment!r} must be 1-128 of A-Z a-z 0-9 . _ - "
                "and not start with '.' or '-'",
            )
    return key


def check_prefix(prefix: object) -> str:
    """A scan prefix: empty, or a storage key optionally ending with ``/``."""
    if prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise InvalidKey(repr(prefix), "a prefix must be a string")
    check_storage_key(prefix.rstrip("/") if prefix.endswith("/") else prefix)
    return prefix


def paged_entries(
    page: Callable[[str | None, int], Sequence[tuple[Any, ...]]],
    limit: int | None,
    size: int = 256,
) -> Iterator[Entry]:
    """Entries from successive key-ordered pages of ``(key, value, version)`` rows.

    ``page(after, count)`` returns up to ``count`` rows past the key ``after``. Each
    page is its own query, so a database store holds no lock or cursor while the caller
    consumes the iterator.
    """
    remaining = limit
    after: str | None = None
    while remaining is None or remaining > 0:
        count = size if remaining is None else min(size, remaining)
        rows = page(after, count)
        for key, value, version in rows:
            yield Entry(key, bytes(value), int(version))
        if len(rows) < count:
            return
        after = rows[-1][0]
        if remaining is not None:
            remaining -= len(rows)


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
        return self._root + self._validate(key)

    def get(self, key: str) -> Entry | None:
        entry = self.store.get(self._full(key))
        return None if entry is None else attrs.evolve(entry, key=key)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self.store.put(self._full(key), value, expected_version=expected_version)

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
        return self.store.batch([attrs.evolve(op, key=self._full(op.key)) for op in ops])

    def close(self) -> None:
        self.store.close()
