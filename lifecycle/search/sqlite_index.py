"""The SQLite store's search index: FTS5 tables in the store's own database.

The store calls :func:`prepare` once when it opens (creating the tables, and filling
them from the entries when they are new) and :func:`lifecycle.search.fts.index_entry`
inside the ``BEGIN IMMEDIATE`` transaction of every write, so the index commits with
the write or not at all.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from lifecycle.errors import StoreError
from lifecycle.logs import get_logger
from lifecycle.search import fts
from lifecycle.search.query import Query, SearchHit

log = get_logger(__name__)


def ready(conn: sqlite3.Connection) -> bool:
    """Whether the index is there and of this version (read-only: no write lock)."""
    return fts.installed_version(conn) == fts.INDEX_VERSION


def opened(conn: sqlite3.Connection) -> bool:
    """At open: whether writes keep the index. A new, empty database gets its (empty)
    index now; one with entries and no index gets it at its first search, so opening
    a large database written by an older lifecycle costs nothing (a hook's wait)."""
    if ready(conn):
        return True
    if (
        fts.installed_version(conn) is None
        and conn.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is None
    ):
        conn.execute("BEGIN IMMEDIATE")
        try:
            built = prepare(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return built
    return False


def built_since(store: Any, conn: sqlite3.Connection) -> bool:
    """Whether another process (or a search) built the index since this store opened;
    asked in each write's transaction until it is."""
    if ready(conn):
        store._indexing = True
        return True
    return False


def prepare(conn: sqlite3.Connection, *, rebuild: bool = False) -> bool:
    """Make sure the index exists and is of this version; return whether writes keep it.

    A missing or older index is built from every entry (in the caller's transaction);
    an index of a newer version is left alone and not written (a newer lifecycle owns it).
    """
    version = fts.installed_version(conn)
    if version is not None and version > fts.INDEX_VERSION and not rebuild:
        log.warning("search.index_newer", found=version, known=fts.INDEX_VERSION)
        return False
    if version == fts.INDEX_VERSION and not rebuild:
        return True
    fts.create(conn)
    for key, value in conn.execute("SELECT key, value FROM entries"):
        fts.index_entry(conn, key, bytes(value))
    log.info("search.index_built", documents=fts.count(conn))
    return True


def search(store: Any, project: str, query: Query) -> list[SearchHit]:
    if not store._run("read the search index", ready):
        if store.read_only:  # no index, and no room to build one: read and match
            from lifecycle.search import scan

            found: list[SearchHit] = scan.search(store, project, query)
            return found
        store._indexing = store._write("build the search index", prepare)

    def run(conn: sqlite3.Connection) -> list[SearchHit]:
        version = fts.installed_version(conn)
        if version != fts.INDEX_VERSION:
            raise StoreError(
                f"SQLite store {store.url!r}: its search index is version {version}, this "
                f"lifecycle reads version {fts.INDEX_VERSION}; run lifecycle search --rebuild"
            )
        return fts.search(conn, project, query)

    hits: list[SearchHit] = store._run("search", run)
    return hits


def rebuild(store: Any) -> int:
    """Rebuild the index from every entry; return how many documents it holds."""

    def run(conn: sqlite3.Connection) -> int:
        prepare(conn, rebuild=True)
        return fts.count(conn)

    count: int = store._write("rebuild the search index", run)
    store._indexing = True
    return count
