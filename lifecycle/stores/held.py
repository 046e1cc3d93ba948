"""Which file-store roots' write lock this thread holds.

The file store rewrites small values in place under its write lock, and a reader that
finds a torn record reads it again holding the lock shared (:mod:`lifecycle.stores.file`).
Whoever takes the lock (the store's writes, the search index's rebuild) marks it here,
so that a read in the same thread does not wait for a lock it holds itself.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class _Held(threading.local):
    def __init__(self) -> None:
        self.roots: dict[str, int] = {}


_held = _Held()


def held_roots() -> dict[str, int]:
    """This thread's held roots (root -> how many times taken)."""
    return _held.roots


def hold(root: str) -> None:
    """Mark ``root``'s write lock as held by this thread (until :func:`release`)."""
    roots = _held.roots
    roots[root] = roots.get(root, 0) + 1


def release(root: str) -> None:
    """Undo one :func:`hold` of ``root``."""
    roots = _held.roots
    roots[root] -= 1
    if not roots[root]:
        del roots[root]


@contextlib.contextmanager
def lock_held(root: str) -> Iterator[None]:
    """Mark ``root``'s write lock as held by this thread while the block runs: no write
    in place can be in progress then, so a torn read is torn."""
    hold(root)
    try:
        yield
    finally:
        release(root)
