"""The file store's search index: an SQLite FTS5 database inside the store's root.

``<root>/.search/index.sqlite3`` (a name no key can have) holds the tables of
:mod:`lifecycle.search.fts` and two of its own: which projects it has built, and the
modification time of every folder of each built project when the index last matched
it. It is never the source of truth:

- **missing**: the first search of a project builds that project's part (so a store
  nobody searches pays nothing on its writes: the write hook only checks whether the
  file exists);
- **kept current**: every write of the store updates it under the store's write lock,
  after the files are renamed, and records the new times of the folders it touched, in
  one SQLite transaction;
- **stale**: a write the index did not see (a crash between the rename and the index
  commit, a lifecycle without the index, a file copied in by hand) changes a folder's
  modification time, so a search that finds a folder whose time differs from the one
  recorded rebuilds that project first, under the store's write lock;
- **damaged** (not an SQLite database, a failed write): it is deleted and rebuilt.

The index commits without fsync (``synchronous=NORMAL``): after a power loss it may
miss its last commits, and then also the folder times recorded with them, so it is
found stale and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from lifecycle.errors import StoreError
from lifecycle.logs import get_logger
from lifecycle.search import fts
from lifecycle.search.documents import documents, split_key
from lifecycle.search.query import Query, SearchHit

log = get_logger(__name__)

INDEX_DIR = ".search"
INDEX_FILE = "index.sqlite3"
DIR_SUFFIX = ".d"  # the file store's folder suffix (lifecycle.stores.file.DIR_SUFFIX)
LOCK_NAME = ".lock"  # the file store's write lock (lifecycle.stores.file.LOCK_NAME)

EXTRA = (
    "CREATE TABLE IF NOT EXISTS search_projects (project TEXT PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS search_folders ("
    " project TEXT NOT NULL, path TEXT NOT NULL, mtime_ns INTEGER NOT NULL,"
    " PRIMARY KEY (project, path))",
)

_open_lock = threading.Lock()


def index_path(root: str) -> str:
    return os.path.join(root, INDEX_DIR, INDEX_FILE)


class FileIndex:
    """One open connection to a file store's index (one per store, per process)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.path = index_path(root)
        self._pid = os.getpid()
        self._lock = threading.RLock()
        folder = os.path.dirname(self.path)
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        self.conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as conn:
                if fts.installed_version(conn) != fts.INDEX_VERSION:
                    fts.create(conn)
                    conn.execute("DROP TABLE IF EXISTS search_projects")
                    conn.execute("DROP TABLE IF EXISTS search_folders")
                for statement in EXTRA:
                    conn.execute(statement)
        except BaseException:
            self.conn.close()
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def built(self, project: str) -> bool:
        with self._lock:
            row = self.conn.execute(
                "SELECT 1 FROM search_projects WHERE project = ?", (project,)
            ).fetchone()
        return row is not None

    def stale(self, project: str) -> bool:
        """Whether ``project`` is not built or any of its folders changed unseen."""
        if not self.built(project):
            return True
        with self._lock:
            rows = self.conn.execute(
                "SELECT path, mtime_ns FROM search_folders WHERE project = ?", (project,)
            ).fetchall()
        return any(_mtime(os.path.join(self.root, path)) != mtime for path, mtime in rows)

    def close(self) -> None:
        with self._lock:
            if os.getpid() == self._pid:
                self.conn.close()


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _folders_of(full_key: str) -> list[str]:
    """The folders (relative to the root) from a key's project folder to its own."""
    segments = full_key.split("/")[:-1]
    return [
        os.path.join(*(s + DIR_SUFFIX for s in segments[: i + 1])) for i in range(len(segments))
    ]


def _record_folders(
    conn: sqlite3.Connection, root: str, project: str, paths: Sequence[str]
) -> None:
    conn.executemany(
        "INSERT INTO search_folders (project, path, mtime_ns) VALUES (?, ?, ?)"
        " ON CONFLICT (project, path) DO UPDATE SET mtime_ns = excluded.mtime_ns",
        [(project, path, _mtime(os.path.join(root, path))) for path in paths],
    )


# -- the store's write hook ----------------------------------------------------------------


def _index_of(store: Any, *, create: bool) -> FileIndex | None:
    index: FileIndex | None = getattr(store, "_search_index", None)
    if index is not None and index._pid == os.getpid():
        return index
    if not create and not os.path.exists(index_path(store._root)):
        return None
    with _open_lock:
        index = FileIndex(store._root)
    store._search_index = index
    return index


def written(store: Any, changes: Sequence[tuple[str, bytes | None]]) -> None:
    """The store applied ``changes`` (``(key, value or None)``) and holds its write lock.

    Never raises: an index that cannot be written is deleted, to be rebuilt by the next
    search; the write itself has already succeeded.
    """
    try:
        index = _index_of(store, create=False)
        if index is None:
            return
        with index.transaction() as conn:
            projects: dict[str, bool] = {}
            folders: dict[str, set[str]] = {}
            for full_key, value in changes:
                parts = split_key(full_key)
                if parts is None:
                    continue
                project = parts[0]
                if project not in projects:
                    projects[project] = (
                        conn.execute(
                            "SELECT 1 FROM search_projects WHERE project = ?", (project,)
                        ).fetchone()
                        is not None
                    )
                if not projects[project]:
                    continue  # built, from the files, by the first search of the project
                fts.index_entry(conn, full_key, value)
                folders.setdefault(project, set()).update(_folders_of(full_key))
            for project, paths in folders.items():
                _record_folders(conn, store._root, project, sorted(paths))
    except (sqlite3.Error, OSError) as exc:
        log.warning("search.index_write_failed", root=store._root, error=str(exc))
        discard(store)


def discard(store: Any) -> None:
    """Delete the index (it is rebuilt on the next search)."""
    index: FileIndex | None = getattr(store, "_search_index", None)
    store._search_index = None
    if index is not None:
        with contextlib.suppress(Exception):
            index.close()
    shutil.rmtree(os.path.join(store._root, INDEX_DIR), ignore_errors=True)


def close(store: Any) -> None:
    index: FileIndex | None = getattr(store, "_search_index", None)
    store._search_index = None
    if index is not None:
        index.close()


# -- building and searching ----------------------------------------------------------------


@contextlib.contextmanager
def _store_locked(root: str) -> Iterator[None]:
    """The file store's write lock: no write happens while a project is rebuilt."""
    from lifecycle.stores.held import lock_held

    fd = os.open(os.path.join(root, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with lock_held(root):  # its reads of torn records then do not wait for it
            yield
    finally:
        os.close(fd)


def build(store: Any, index: FileIndex, project: str, *, only_if_stale: bool = False) -> int:
    """Index ``project`` afresh from its files; return its number of documents.

    ``only_if_stale``: look again once the store's lock is held, since the folder times
    a search saw may have been those of a write that was just updating the index."""
    with _store_locked(store._root):
        if only_if_stale and not index.stale(project):
            with index._lock:
                return fts.count(index.conn, project)
        return _build_locked(store, index, project)


def _build_locked(store: Any, index: FileIndex, project: str) -> int:
    root = store._root
    with index.transaction() as conn:
        fts.clear_project(conn, project)
        conn.execute("DELETE FROM search_folders WHERE project = ?", (project,))
        top = project + DIR_SUFFIX
        paths = [top]
        for here, dirs, _ in os.walk(os.path.join(root, top)):
            dirs[:] = [d for d in dirs if d.endswith(DIR_SUFFIX)]
            paths += [os.path.relpath(os.path.join(here, d), root) for d in dirs]
        _record_folders(conn, root, project, paths)
        for entry in store.scan(project + "/"):
            key = entry.key[len(project) + 1 :]
            fts.index_documents(conn, project, key, documents(key, entry.value))
        conn.execute("INSERT OR IGNORE INTO search_projects (project) VALUES (?)", (project,))
        total = fts.count(conn, project)
    log.info("search.index_built", root=root, project=project, documents=total)
    return total


def _ready(store: Any, project: str) -> FileIndex:
    index = _index_of(store, create=True)
    assert index is not None
    if index.stale(project):
        build(store, index, project, only_if_stale=True)
    return index


def search(store: Any, project: str, query: Query) -> list[SearchHit]:
    for attempt in (1, 2):
        try:
            index = _ready(store, project)
            with index._lock:
                return fts.search(index.conn, project, query)
        except (sqlite3.DatabaseError, OSError) as exc:
            if attempt == 2:
                raise StoreError(
                    f"file store {store._root!r}: its search index cannot be built: {exc}"
                ) from exc
            log.warning("search.index_rebuilt", root=store._root, error=str(exc))
            discard(store)
    raise AssertionError("unreachable")


def rebuild(store: Any) -> int:
    """Delete the index and build every project in the store; return the documents."""
    discard(store)
    index = _index_of(store, create=True)
    assert index is not None
    projects = [
        name[: -len(DIR_SUFFIX)]
        for name in sorted(os.listdir(store._root))
        if name.endswith(DIR_SUFFIX) and os.path.isdir(os.path.join(store._root, name))
    ]
    return sum(build(store, index, project) for project in projects)
