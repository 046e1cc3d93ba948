"""Full-text search over what a project's sessions stored.

``search(store, project, query)`` finds learnings (key, content, tags), decisions
(decision, rationale, impact), tasks (id, description), summaries, sessions (command,
change id, phase), checkpoints (phase, trigger, label, operation) and memories, ranked
best first; each hit names the key of the record that holds it, its kind, its
timestamp and a snippet with the matched words in ``[brackets]``.

Each store searches its own way, and keeps its index current for every search:

=============== ========================================================================
SQLite          FTS5 tables in the store's database; each write queues its key in its
                transaction, and a search first indexes the queued keys
PostgreSQL      a ``tsvector`` column with a GIN index; queued and indexed the same way
file            an FTS5 database in ``<root>/.search/``, built by the first search,
                written after each write under the store's lock, rebuilt when stale
others          no index: the project's records are read and matched (:mod:`.scan`)
=============== ========================================================================

This package's ``__init__`` imports nothing at the top: the stores import
:mod:`lifecycle.search.fts` and friends on their write paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.search.query import SearchHit

__all__ = ["rebuild", "search"]


def _unwrap(store: Any) -> Any:
    """The store that does the searching: through project views, wrappers and the
    fallback store (its primary)."""
    from lifecycle.stores.base import ForwardingStore, ProjectStore
    from lifecycle.stores.fallback import FallbackStore

    while True:
        if isinstance(store, ProjectStore):
            store = store.store
        elif isinstance(store, ForwardingStore):
            store = store.inner
        elif isinstance(store, FallbackStore):
            store = store.primary
        else:
            return store


def _backend(store: Any) -> Any:
    """The module that searches ``store``: ``search(store, project, query)``."""
    import sys

    from lifecycle.stores.file import FileStore
    from lifecycle.stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        from lifecycle.search import sqlite_index

        return sqlite_index
    if isinstance(store, FileStore):
        from lifecycle.search import file_index

        return file_index
    postgres = sys.modules.get("lifecycle.stores.postgres")  # loaded if one is open
    if postgres is not None and isinstance(store, postgres.PostgresStore):
        from lifecycle.search import postgres_index

        return postgres_index
    from lifecycle.search import scan

    return scan


def search(
    store: Any,
    project: str,
    query: str,
    *,
    kinds: Iterable[str] | str | None = None,
    since: datetime | date | str | None = None,
    limit: int = 20,
) -> list[SearchHit]:
    """The best ``limit`` hits for ``query`` in ``project``, best first.

    ``kinds`` keeps only those kinds (``learning``, ``decision``, ``task``, ``summary``,
    ``checkpoint``, ``session``, ``memory``); ``since`` only what happened at or after a
    moment (a date is its midnight, UTC). Every whitespace-separated word of ``query``
    must occur; nothing in it is query syntax. Raises
    :class:`~lifecycle.errors.InvalidQuery` for an empty or oversized query, a NUL,
    an unknown kind or a bad date, before the store is touched.
    """
    from lifecycle import keys
    from lifecycle.search.query import make_query

    checked = make_query(query, kinds=kinds, since=since, limit=limit)
    project = keys.validate_project(project)
    target = _unwrap(store)
    hits: list[SearchHit] = _backend(target).search(target, project, checked)
    return hits


def rebuild(store: Any) -> int | None:
    """Rebuild the store's index from its records; the number of documents, or None for
    a store searched without an index."""
    target = _unwrap(store)
    backend = _backend(target)
    if not hasattr(backend, "rebuild"):
        return None
    count: int = backend.rebuild(target)
    return count
