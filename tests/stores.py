"""The registry of store factories the conformance suite runs against.

Add an adapter by adding an entry: ``name -> factory(tmp_path) -> Store``. A factory
gets a fresh empty folder per test and returns a fresh, empty store. The suite
reopens ``store.url`` with ``open_store`` in child processes for the multi-process
test, and skips that test when the reopened store does not see the same data
(``memory://``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lifecycle.stores.base import Store
from lifecycle.stores.fallback import FallbackStore
from lifecycle.stores.file import FileStore
from lifecycle.stores.memory import MemoryStore
from lifecycle.stores.postgres import PostgresStore  # psycopg is imported lazily
from lifecycle.stores.sqlite import SqliteStore


def _memory(tmp_path: Path) -> Store:
    return MemoryStore()


def _file(tmp_path: Path) -> Store:
    return FileStore(tmp_path / "store")


def _fallback(tmp_path: Path) -> Store:
    # A file primary, so that the store's URL reopens in another process.
    return FallbackStore(FileStore(tmp_path / "primary"), FileStore(tmp_path / "local"))


def _sqlite(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "store.db")


def _postgres(tmp_path: Path) -> Store:
    import pgserver

    # One throwaway server per test run; a fresh schema per test.
    return PostgresStore(pgserver.require_postgres_url(), schema=pgserver.unique_schema())


STORE_FACTORIES: dict[str, Callable[[Path], Store]] = {
    "memory": _memory,
    "file": _file,
    "fallback": _fallback,
    "sqlite": _sqlite,
    "postgres": _postgres,
}
