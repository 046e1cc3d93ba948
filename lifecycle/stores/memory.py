"""``memory://``: a store in this process's memory, for tests and throwaway sessions."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence

from lifecycle.stores.base import (
    Entry,
    Op,
    Put,
    check_ops,
    check_prefix,
    check_storage_key,
    check_version,
    plan_batch,
)


class MemoryStore:
    """Sorted keys and versioned values behind one lock."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._data: dict[str, Entry] = {}
        self._keys: list[str] = []  # sorted, for ordered scans
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        return self._data.get(check_storage_key(key))

    def _version(self, key: str, expected: int | None = None) -> int:
        current = self._data.get(key)
        return current.version if current else 0

    def _check(self, key: str, expected: int | None) -> int:
        found = self._version(key)
        check_version(key, expected, found)
        return found

    def _put(self, key: str, value: bytes, found: int) -> int:
        if found == 0:
            bisect.insort(self._keys, key)
        # A copy of exactly len(value) bytes: orjson hands out bytes objects that keep
        # their ~4 KB write buffer, which 10,000 sessions' records would hold forever.
        self._data[key] = Entry(key, bytes(memoryview(value)), found + 1)
        return found + 1

    def _delete(self, key: str) -> bool:
        if self._data.pop(key, None) is None:
            return False
        del self._keys[bisect.bisect_left(self._keys, key)]
        return True

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        check_storage_key(key)
        with self._lock:
            return self._put(key, value, self._check(key, expected_version))

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        check_storage_key(key)
        with self._lock:
            self._check(key, expected_version)
            return self._delete(key)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        check_prefix(prefix)
        with self._lock:
            lo = bisect.bisect_left(self._keys, prefix)
            hi = bisect.bisect_left(self._keys, prefix + "\U0010ffff")
            found = self._keys[lo:hi]
        if reverse:
            found.reverse()
        return found if limit is None else found[:limit]

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        for key in self.list_keys(prefix, reverse=reverse, limit=limit):
            entry = self._data.get(key)
            if entry is not None:
                yield entry

    def batch(self, ops: Sequence[Op]) -> list[int]:
        check_ops(ops)
        with self._lock:
            plan = plan_batch(ops, self._version)
            for op, found, _ in plan:
                if isinstance(op, Put):
                    self._put(op.key, op.value, found)
                else:
                    self._delete(op.key)
            return [planned.version for planned in plan]

    def close(self) -> None:
        pass
