"""The SQLite store's search index: FTS5 tables in the store's own database.

The index is brought up to date by searches, not by writes:

- **a write** of a key the index keeps adds the key to ``search_queue`` in its own
  transaction (one small row; a key written again moves to the end), so it costs a
  checkpoint one statement instead of a dozen and the decoding of its documents;
- **a search** first indexes the queued keys, oldest first, from the values they hold
  now (a key deleted since takes its documents out), and deletes their queue rows, in
  write transactions of :data:`CATCH_UP_KEYS` keys (so a writer never waits long for
  one), then queries. Each transaction writes what its keys leave, not each key in
  turn (:func:`fts.index_changes`): a document the chunk's checkpoints all carry is
  written once, to the last of them. A search therefore sees every write acknowledged before it
  started and no deleted record, whichever process or connection wrote them; a crash
  between a write and a search leaves the key queued, since the queue row commits
  with the write.
- **read-only** (a full or read-only file system): the queue cannot be applied, so a
  search of a store with queued keys reads and matches every record
  (:mod:`lifecycle.search.scan`): slower, and the same records found.

The order matters because a document (a task, a decision) is held by the last record
written that carries it: applying the queue in write order gives each the holder that
indexing every write at once would have.

:func:`opened` runs when the store opens: a new, empty database gets its (empty) index
then; an index of version 4 (the same tables, kept current by every write of the
lifecycle that built it) gets its queue in place; any other database gets its index at
its first search.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from lifecycle.errors import StoreError
from lifecycle.logs import get_logger
from lifecycle.search import fts
from lifecycle.search.query import Query, SearchHit

log = get_logger(__name__)

T = TypeVar("T")

#: This index's version: 4 is :data:`fts.INDEX_VERSION`'s tables, written by every
#: write; 5 adds the queue of keys written since the last search.
INDEX_VERSION = 5
QUEUE = (
    "CREATE TABLE IF NOT EXISTS search_queue (seq INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)"
)
#: A write's part: the key, queued after every other (REPLACE gives it a new, last seq).
ENQUEUE = "INSERT OR REPLACE INTO search_queue (key) VALUES (?)"
#: Keys indexed per write transaction when a search catches up: 12 to 20 ms of checkpoints.
CATCH_UP_KEYS = 200
#: Records indexed per round of :func:`fts.index_changes` when the index is built.
BUILD_KEYS = 500


def ready(conn: sqlite3.Connection) -> bool:
    """Whether the index is there and of this version (read-only: no write lock)."""
    return fts.installed_version(conn) == INDEX_VERSION


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction: all of it commits or none
    (the store's writes and the index's own both go through it)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        # Some errors (disk full, I/O) end the transaction themselves.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def _add_queue(conn: sqlite3.Connection) -> None:
    """Version 4 to 5, in place (in the caller's write transaction): version 4 was
    written by every write, so it is current and only needs its queue."""
    conn.execute(QUEUE)
    conn.execute("UPDATE search_meta SET value = ? WHERE name = 'version'", (str(INDEX_VERSION),))
    log.info("search.index_migrated", to=INDEX_VERSION)


def _keeps(conn: sqlite3.Connection) -> bool:
    """In a write transaction: whether writes queue their keys for the index (giving a
    version 4 index its queue)."""
    version = fts.installed_version(conn)
    if version == fts.INDEX_VERSION:
        _add_queue(conn)
        return True
    return version == INDEX_VERSION


def opened(conn: sqlite3.Connection) -> bool:
    """At open: whether writes queue for the index. A new, empty database gets its
    (empty) index now; one with entries and no index gets it at its first search, so
    opening a large database written by an older lifecycle costs nothing (a hook's wait)."""
    version = fts.installed_version(conn)
    if version == INDEX_VERSION:
        return True
    if version == fts.INDEX_VERSION:
        return in_transaction(conn, _keeps)
    if version is None and conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None:
        return in_transaction(conn, prepare)
    return False


def built_since(store: Any, conn: sqlite3.Connection) -> bool:
    """Whether another process (or a search) built the index since this store opened;
    asked in the write transaction of each write of a key the index keeps, until it is."""
    if _keeps(conn):
        store._indexing = True
        return True
    return False


def prepare(conn: sqlite3.Connection, *, rebuild: bool = False) -> bool:
    """Make sure the index exists and is of this version; return whether writes keep it.

    A missing or older index is built from every entry (in the caller's transaction);
    an index of a newer version is left alone and not written (a newer lifecycle owns it).
    """
    version = fts.installed_version(conn)
    if version is not None and version > INDEX_VERSION and not rebuild:
        log.warning("search.index_newer", found=version, known=INDEX_VERSION)
        return False
    if version in (fts.INDEX_VERSION, INDEX_VERSION) and not rebuild:
        return _keeps(conn)
    conn.execute("DROP TABLE IF EXISTS search_queue")
    fts.create(conn, INDEX_VERSION)
    conn.execute(QUEUE)
    entries = conn.execute("SELECT key, value FROM entries")
    while batch := entries.fetchmany(BUILD_KEYS):
        fts.index_changes(conn, [(key, bytes(value)) for key, value in batch])
    log.info("search.index_built", documents=fts.count(conn))
    return True


def _pending(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM search_queue LIMIT 1").fetchone() is not None


def _index_queued(conn: sqlite3.Connection) -> None:
    """Index the oldest :data:`CATCH_UP_KEYS` queued keys as they are now, and unqueue
    them (the caller holds the write lock, so no write comes in between)."""
    rows = conn.execute(
        "SELECT q.seq, q.key, e.value FROM search_queue AS q"
        " LEFT JOIN entries AS e ON e.key = q.key ORDER BY q.seq LIMIT ?",
        (CATCH_UP_KEYS,),
    ).fetchall()
    fts.index_changes(
        conn, [(key, None if value is None else bytes(value)) for _, key, value in rows]
    )
    if rows:
        conn.execute("DELETE FROM search_queue WHERE seq <= ?", (rows[-1][0],))


def catch_up(store: Any) -> bool:
    """Index every queued key; False when the queue cannot be applied (the store is
    read-only, or the write failed: it stays queued, for a later search)."""
    while store._run("read the search queue", _pending):
        if store.read_only:
            return False
        try:
            store._write("bring the search index up to date", _index_queued)
        except StoreError as exc:
            log.warning("search.queue_not_applied", path=store.path, error=str(exc))
            return False
    return True


def search(store: Any, project: str, query: Query) -> list[SearchHit]:
    from lifecycle.search import scan

    version = store._run("read the search index", fts.installed_version)
    # Version 4 is current as it is (every write indexed itself) and has no queue.
    as_is = store.read_only is not None and version == fts.INDEX_VERSION
    if version != INDEX_VERSION and not as_is:
        if store.read_only:  # no index, and no room to build one: read and match
            found: list[SearchHit] = scan.search(store, project, query)
            return found
        store._indexing = store._write("build the search index", prepare)
        if not store._indexing:
            raise StoreError(
                f"SQLite store {store.url!r}: its search index is version {version}, this "
                f"lifecycle reads version {INDEX_VERSION}; run lifecycle search --rebuild"
            )
    if not as_is and not catch_up(store):
        found = scan.search(store, project, query)
        return found
    hits: list[SearchHit] = store._run("search", lambda conn: fts.search(conn, project, query))
    return hits


def rebuild(store: Any) -> int:
    """Rebuild the index from every entry; return how many documents it holds."""

    def run(conn: sqlite3.Connection) -> int:
        prepare(conn, rebuild=True)
        return fts.count(conn)

    count: int = store._write("rebuild the search index", run)
    store._indexing = True
    return count
