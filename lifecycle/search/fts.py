"""The SQLite FTS5 index: its tables, keeping it current, and querying it.

Used two ways: the SQLite store keeps these tables in its own database and calls
:func:`index_entry` inside the transaction of every write (the index commits with the
write or not at all); the file store's index (:mod:`lifecycle.search.file_index`) keeps
them in a database file of their own inside the store's root.

Tables (``search_`` prefix, beside the store's ``entries``)::

    search_meta(name, value)            the index's schema version
    search_docs(id, project, kind, ident, source, ts, digest)
                                        one row per document; ``source`` is the key of
                                        the record that holds it now
    search_text(title, body)            FTS5, rowid = search_docs.id

The tokenizer is ``unicode61 remove_diacritics 2``: words of letters and digits,
case and accents folded. Ranking is bm25 with the title weighted twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import TypeVar

from lifecycle.search.documents import Document, documents, is_indexed, split_key
from lifecycle.search.query import (
    MARK_END,
    MARK_START,
    Query,
    SearchHit,
    clean_snippet,
    parse_timestamp,
)

T = TypeVar("T")

#: The index's own schema version (not the store's migrations: it can always be rebuilt).
INDEX_VERSION = 1

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS search_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_docs ("
    " id INTEGER PRIMARY KEY,"
    " project TEXT NOT NULL, kind TEXT NOT NULL, ident TEXT NOT NULL,"
    " source TEXT NOT NULL, ts TEXT NOT NULL, digest TEXT NOT NULL,"
    " UNIQUE (project, kind, ident))",
    "CREATE INDEX IF NOT EXISTS search_docs_source ON search_docs (project, source)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5("
    "title, body, tokenize = 'unicode61 remove_diacritics 2')",
)
DROP = (
    "DROP TABLE IF EXISTS search_text",
    "DROP TABLE IF EXISTS search_docs",
    "DROP TABLE IF EXISTS search_meta",
)


def installed_version(conn: sqlite3.Connection) -> int | None:
    """The index version in this database, or None when it has no index."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'search_meta'"
    ).fetchone()
    if row is None:
        return None
    got = conn.execute("SELECT value FROM search_meta WHERE name = 'version'").fetchone()
    return int(got[0]) if got is not None and str(got[0]).isdigit() else None


def create(conn: sqlite3.Connection) -> None:
    """(Re)create empty index tables; the caller holds a write transaction."""
    for statement in (*DROP, *SCHEMA):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO search_meta (name, value) VALUES ('version', ?)", (str(INDEX_VERSION),)
    )


def clear_project(conn: sqlite3.Connection, project: str) -> None:
    conn.execute(
        "DELETE FROM search_text WHERE rowid IN (SELECT id FROM search_docs WHERE project = ?)",
        (project,),
    )
    conn.execute("DELETE FROM search_docs WHERE project = ?", (project,))


def index_entry(conn: sqlite3.Connection, full_key: str, value: bytes | None) -> None:
    """Bring the index up to date with ``full_key`` now holding ``value`` (None: deleted).

    For keys that give no documents this costs one regular-expression match.
    """
    parts = split_key(full_key)
    if parts is None or not is_indexed(parts[1]):
        return
    project, key = parts
    index_documents(conn, project, key, [] if value is None else documents(key, value))


def index_documents(
    conn: sqlite3.Connection, project: str, source: str, docs: Iterable[Document]
) -> None:
    """Make ``docs`` the documents ``source`` holds: documents it held and no longer
    does are removed; each of ``docs`` is added, or taken over from the record that
    held it before. Only a document whose text changed is written to the FTS table; the
    others (a checkpoint carries its session's tasks and decisions again) are taken
    over in one statement, so a checkpoint costs a few statements, not a few per task."""
    new = {(d.kind, d.ident): d for d in docs}
    gone = [
        doc_id
        for doc_id, kind, ident in conn.execute(
            "SELECT id, kind, ident FROM search_docs WHERE project = ? AND source = ?",
            (project, source),
        )
        if (kind, ident) not in new
    ]
    for ids in _chunks(gone):
        conn.execute(_in("DELETE FROM search_text WHERE rowid IN ()", len(ids)), ids)
        conn.execute(_in("DELETE FROM search_docs WHERE id IN ()", len(ids)), ids)
    if not new:
        return
    found: dict[tuple[str, str], tuple[int, str]] = {}
    by_kind: dict[str, list[str]] = {}
    for kind, ident in new:
        by_kind.setdefault(kind, []).append(ident)
    for kind, idents in by_kind.items():
        for part in _chunks(idents):
            rows = conn.execute(
                _in(
                    "SELECT ident, id, digest FROM search_docs"
                    " WHERE project = ? AND kind = ? AND ident IN ()",
                    len(part),
                ),
                (project, kind, *part),
            )
            found.update(((kind, ident), (doc_id, digest)) for ident, doc_id, digest in rows)
    taken: list[int] = []
    for key, doc in new.items():
        row = found.get(key)
        digest = doc.digest
        if row is None:
            cur = conn.execute(
                "INSERT INTO search_docs (project, kind, ident, source, ts, digest)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (project, doc.kind, doc.ident, source, doc.timestamp, digest),
            )
            conn.execute(
                "INSERT INTO search_text (rowid, title, body) VALUES (?, ?, ?)",
                (cur.lastrowid, doc.title, doc.body),
            )
        elif row[1] == digest:
            taken.append(row[0])
        else:
            doc_id = row[0]
            conn.execute(
                "UPDATE search_docs SET source = ?, ts = ?, digest = ? WHERE id = ?",
                (source, doc.timestamp, digest, doc_id),
            )
            conn.execute("DELETE FROM search_text WHERE rowid = ?", (doc_id,))
            conn.execute(
                "INSERT INTO search_text (rowid, title, body) VALUES (?, ?, ?)",
                (doc_id, doc.title, doc.body),
            )
    for ids in _chunks(taken):
        conn.execute(
            _in("UPDATE search_docs SET source = ? WHERE id IN ()", len(ids)), (source, *ids)
        )


def _in(sql: str, count: int) -> str:
    """``sql`` with ``count`` placeholders in its ``IN ()``: the values are always bound."""
    return sql.replace("IN ()", f"IN ({', '.join('?' * count)})")


def _chunks(items: list[T]) -> Iterator[list[T]]:
    """Pieces small enough for SQLite's limit on bound values in one statement."""
    for i in range(0, len(items), 500):
        yield items[i : i + 500]


def search(conn: sqlite3.Connection, project: str, query: Query) -> list[SearchHit]:
    """The best ``query.limit`` documents of ``project`` matching every term."""
    where = ["search_text MATCH ?", "d.project = ?"]
    args: list[object] = [query.fts5(), project]
    if query.kinds:
        where.append(f"d.kind IN ({', '.join('?' * len(query.kinds))})")
        args.extend(query.kinds)
    if query.since:
        where.append("d.ts >= ?")
        args.append(query.since)
    args.append(query.limit)
    sql = (
        "SELECT d.source, d.kind, d.ident, d.ts,"  # noqa: S608 - fixed fragments; values bound
        f" snippet(search_text, -1, '{MARK_START}', '{MARK_END}', '…', 16),"
        " bm25(search_text, 2.0, 1.0) AS rank"
        " FROM search_text JOIN search_docs AS d ON d.id = search_text.rowid"
        f" WHERE {' AND '.join(where)}"  # fixed fragments; every value is bound
        " ORDER BY rank, d.ts DESC LIMIT ?"
    )
    rows = conn.execute(sql, args).fetchall()
    return [
        SearchHit(
            key=source,
            kind=kind,
            timestamp=parse_timestamp(ts),
            snippet=clean_snippet(snippet),
            score=-float(rank),  # bm25 is lower-is-better; a score is higher-is-better
            ident=ident,
        )
        for source, kind, ident, ts, snippet, rank in rows
    ]


def count(conn: sqlite3.Connection, project: str | None = None) -> int:
    if project is None:
        return int(conn.execute("SELECT count(*) FROM search_docs").fetchone()[0])
    return int(
        conn.execute("SELECT count(*) FROM search_docs WHERE project = ?", (project,)).fetchone()[0]
    )
