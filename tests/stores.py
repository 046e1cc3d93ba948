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
from lifecycle.testing import FaultyStore, ForwardingStore


def _memory(tmp_path: Path) -> Store:
    return MemoryStore()


def _file(tmp_path: Path) -> Store:
    return FileStore(tmp_path / "store")


def _fallback(tmp_path: Path) -> Store:
    # A file primary, so that the store's URL reopens in another process.
    return FallbackStore(FileStore(tmp_path / "primary"), FileStore(tmp_path / "local"))


def _faulty(tmp_path: Path) -> Store:
    # The kit's fault-injecting wrapper, with no fault: a store like the one it wraps.
    return FaultyStore(FileStore(tmp_path / "store"))


def _sqlite(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "store.db")


def _postgres(tmp_path: Path) -> Store:
    import pgserver

    # One throwaway server per test run; a fresh schema per test.
    return PostgresStore(pgserver.require_postgres_url(), schema=pgserver.unique_schema())


class _SharedSerena(ForwardingStore):
    """One real Serena server for the whole run (starting one costs ~1.3 s); each test
    gets it empty: close() wipes Serena's memory folder instead of stopping it."""

    shared: Store | None = None
    project: Path | None = None
    cross_process_atomic = False
    slow = True

    def __init__(self) -> None:
        if _SharedSerena.shared is None:
            import atexit
            import tempfile

            import serena_env

            project = Path(tempfile.mkdtemp(prefix="lifecycle-serena-"))
            _SharedSerena.project = project
            _SharedSerena.shared = serena_env.open_test_store(project)
            atexit.register(_SharedSerena.shared.close)
        super().__init__(_SharedSerena.shared)

    def close(self) -> None:
        import shutil

        assert _SharedSerena.project is not None
        shutil.rmtree(_SharedSerena.project / ".serena" / "memories", ignore_errors=True)


def _serena(tmp_path: Path) -> Store:
    return _SharedSerena()


STORE_FACTORIES: dict[str, Callable[[Path], Store]] = {
    "serena": _serena,
    "memory": _memory,
    "file": _file,
    "fallback": _fallback,
    "faulty": _faulty,
    "sqlite": _sqlite,
    "postgres": _postgres,
}
