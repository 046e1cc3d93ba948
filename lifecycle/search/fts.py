"""The SQLite FTS5 index: its tables, keeping it current, and querying it.

Used two ways: the SQLite store keeps these tables in its own database and calls
:func:`index_changes` for the keys its writes queued when it is searched
(:mod:`lifecycle.search.sqlite_index`); the file store's index
(:mod:`lifecycle.search.file_index`) keeps them in a database file of their own inside
the store's root.

Tables (``search_`` prefix, beside the store's ``entries``)::

    search_meta(name, value)            the index's schema version
    search_sources(id, project, key)    the records that hold documents, one row each
    search_docs(id, project, kind, ident, source, ts, digest, title, body)
                                        one row per document; ``source`` is the
                                        search_sources row of the record that holds it now
    search_text(title, body)            FTS5 over search_docs' text (external content,
                                        rowid = search_docs.id): the words, not a copy

A checkpoint carries its session's tasks and decisions again: when most of a new key's
documents were held by one record (the previous checkpoint) and fewer stay with it (its
own checkpoint document), that record's search_sources row is renamed to the new key
and the few that stay get a new row: a few small rows written instead of a row per
document (and its index entries).

The tokenizer is ``unicode61 remove_diacritics 2``: words of letters and digits,
case and accents folded. Ranking is bm25 with the title weighted twice, among the
newest :data:`RANKED` matches (by when each document was first indexed): a word that
half the project contains is not ranked over every record it is in, which keeps a
query over a year of sessions within milliseconds; more words, ``--type`` or
``--since`` narrow it further.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import attrs

from lifecycle.search.documents import Document, documents, is_indexed, split_key
from lifecycle.search.query import (
    Query,
    SearchHit,
    clean_snippet,
    parse_timestamp,
)
from lifecycle.search.scan import snippet

T = TypeVar("T")

#: The index's own schema version (not the store's migrations: it can always be rebuilt).
#: The SQLite store's index records its own (:data:`.sqlite_index.INDEX_VERSION`): these
#: tables and its queue.
INDEX_VERSION = 4  # 3: the text kept in search_docs (FTS5 external content); 4: sources
#: How many of the newest matches are ranked.
RANKED = 500

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS search_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_sources ("
    " id INTEGER PRIMARY KEY, project TEXT NOT NULL, key TEXT NOT NULL,"
    " UNIQUE (project, key))",
    "CREATE TABLE IF NOT EXISTS search_docs ("
    " id INTEGER PRIMARY KEY,"
    " project TEXT NOT NULL, kind TEXT NOT NULL, ident TEXT NOT NULL,"
    " source INTEGER NOT NULL, ts TEXT NOT NULL, digest TEXT NOT NULL,"
    " title TEXT NOT NULL, body TEXT NOT NULL,"
    " UNIQUE (project, kind, ident))",
    "CREATE INDEX IF NOT EXISTS search_docs_source ON search_docs (source)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5("
    "title, body, content = 'search_docs', content_rowid = 'id',"
    " tokenize = 'unicode61 remove_diacritics 2')",
    "INSERT INTO search_text (search_text, rank) VALUES ('rank', 'bm25(2.0, 1.0)')",
)
DROP = (
    "DROP TABLE IF EXISTS search_text",
    "DROP TABLE IF EXISTS search_docs",
    "DROP TABLE IF EXISTS search_sources",
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


def create(conn: sqlite3.Connection, version: int = INDEX_VERSION) -> None:
    """(Re)create empty index tables, recorded as ``version`` (an index that adds tables
    of its own to these records its own number); the caller holds a write transaction."""
    for statement in (*DROP, *SCHEMA):
        conn.execute(statement)
    conn.execute("INSERT INTO search_meta (name, value) VALUES ('version', ?)", (str(version),))


_UNINDEX = "INSERT INTO search_text (search_text, rowid, title, body) VALUES ('delete', ?, ?, ?)"
_INDEX = "INSERT INTO search_text (rowid, title, body) VALUES (?, ?, ?)"


def clear_project(conn: sqlite3.Connection, project: str) -> None:
    conn.execute(
        "INSERT INTO search_text (search_text, rowid, title, body)"
        " SELECT 'delete', id, title, body FROM search_docs WHERE project = ?",
        (project,),
    )
    conn.execute("DELETE FROM search_docs WHERE project = ?", (project,))
    conn.execute("DELETE FROM search_sources WHERE project = ?", (project,))


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
    over without rewriting them: by renaming the row of the record that held most of
    them (:func:`_take_over`), else in one statement, so a checkpoint costs a few
    statements and rows, not a few per task."""
    new = {(d.kind, d.ident): d for d in docs}
    row = conn.execute(
        "SELECT id FROM search_sources WHERE project = ? AND key = ?", (project, source)
    ).fetchone()
    sid: int | None = None if row is None else int(row[0])
    if sid is not None:
        gone = [
            (doc_id, title, body)
            for doc_id, kind, ident, title, body in conn.execute(
                "SELECT id, kind, ident, title, body FROM search_docs WHERE source = ?", (sid,)
            )
            if (kind, ident) not in new
        ]
        if gone:
            conn.executemany(_UNINDEX, gone)
            for part in _chunks([doc_id for doc_id, _, _ in gone]):
                conn.execute(_in("DELETE FROM search_docs WHERE id IN ()", len(part)), part)
        if not new:
            conn.execute("DELETE FROM search_sources WHERE id = ?", (sid,))
            return
    if not new:
        return
    found: dict[tuple[str, str], tuple[int, int, str]] = {}  # -> (id, source, digest)
    by_kind: dict[str, list[str]] = {}
    for kind, ident in new:
        by_kind.setdefault(kind, []).append(ident)
    for kind, idents in by_kind.items():
        for part in _chunks(idents):
            rows = conn.execute(
                _in(
                    "SELECT ident, id, source, digest FROM search_docs"
                    " WHERE project = ? AND kind = ? AND ident IN ()",
                    len(part),
                ),
                (project, kind, *part),
            )
            found.update(((kind, r[0]), r[1:]) for r in rows)
    # The records the found documents are held by, and which of them each holds.
    held: dict[int, set[int]] = {}
    for doc_id, holder, _ in found.values():
        if holder != sid:
            held.setdefault(holder, set()).add(doc_id)
    if sid is None:
        sid = _take_over(conn, project, source, held)
    taken: list[int] = []
    for key, doc in new.items():
        row = found.get(key)
        digest = doc.digest
        if row is None:
            cur = conn.execute(
                "INSERT INTO search_docs (project, kind, ident, source, ts, digest, title, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (project, doc.kind, doc.ident, sid, doc.timestamp, digest, doc.title, doc.body),
            )
            conn.execute(_INDEX, (cur.lastrowid, doc.title, doc.body))
        elif row[2] == digest:
            if row[1] != sid:
                taken.append(row[0])
        else:
            doc_id = row[0]
            old_title, old_body = conn.execute(
                "SELECT title, body FROM search_docs WHERE id = ?", (doc_id,)
            ).fetchone()
            conn.execute(_UNINDEX, (doc_id, old_title, old_body))
            conn.execute(
                "UPDATE search_docs SET source = ?, ts = ?, digest = ?, title = ?, body = ?"
                " WHERE id = ?",
                (sid, doc.timestamp, digest, doc.title, doc.body, doc_id),
            )
            conn.execute(_INDEX, (doc_id, doc.title, doc.body))
    for ids in _chunks(taken):
        conn.execute(_in("UPDATE search_docs SET source = ? WHERE id IN ()", len(ids)), (sid, *ids))
    for holder in held:  # a record left holding nothing keeps no row
        if holder != sid and _holds(conn, holder) == 0:
            conn.execute("DELETE FROM search_sources WHERE id = ?", (holder,))


_Doc = tuple[str, str, str]  # project, kind, ident


@attrs.define
class _Row:
    """A document as :func:`index_changes` follows it through the changes."""

    holder: str  # the key of the record that holds it
    ts: str
    digest: str
    text: Document | None  # what a change wrote; None: the stored row's, unchanged
    id: int | None  # its search_docs row; None: a row to make


_SOURCES = "SELECT id, project, key FROM search_sources WHERE project = ? AND key IN ()"
_HELD = "SELECT id, project, kind, ident, source, ts, digest FROM search_docs WHERE source IN ()"
_WANTED = (
    "SELECT id, project, kind, ident, source, ts, digest FROM search_docs"
    " WHERE project = ? AND kind = ? AND ident IN ()"
)
_HOLDERS = "SELECT id, key FROM search_sources WHERE id IN ()"
_UNINDEX_ROWS = (
    "INSERT INTO search_text (search_text, rowid, title, body)"
    " SELECT 'delete', id, title, body FROM search_docs WHERE id IN ()"
)
_DROP_ROWS = "DELETE FROM search_docs WHERE id IN ()"
_NEW_SOURCE = "INSERT INTO search_sources (project, key) VALUES (?, ?)"
_SOURCES_AFTER = "SELECT id, project, key FROM search_sources WHERE id > ?"
_REWRITE = "UPDATE search_docs SET source = ?, ts = ?, digest = ?, title = ?, body = ? WHERE id = ?"
_MOVE = "UPDATE search_docs SET source = ? WHERE id = ?"
_NEW_DOC = (
    "INSERT INTO search_docs (project, kind, ident, source, ts, digest, title, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX_AFTER = (
    "INSERT INTO search_text (rowid, title, body)"
    " SELECT id, title, body FROM search_docs WHERE id > ?"
)
_EMPTY_SOURCES = (
    "DELETE FROM search_sources WHERE id IN ()"
    " AND NOT EXISTS (SELECT 1 FROM search_docs WHERE source = search_sources.id)"
)


def index_changes(conn: sqlite3.Connection, changes: Sequence[tuple[str, bytes | None]]) -> None:
    """The index brought up to date with ``changes`` (store key, value now or None), in
    order, in the caller's write transaction: the documents and records that
    :func:`index_entry` of each change in turn would leave (row ids aside), each
    document written once, as the last change leaves it, in a few statements per
    project and kind. A queue of checkpoints carries the session's tasks and decisions
    in every one: indexing them a record at a time rewrote those rows per checkpoint."""
    carried: list[tuple[str, str, dict[tuple[str, str], Document]]] = []
    for full_key, value in changes:
        parts = split_key(full_key)
        if parts is None or not is_indexed(parts[1]):
            continue
        project, key = parts
        got = [] if value is None else documents(key, value)
        carried.append((project, key, {(d.kind, d.ident): d for d in got}))
    if not carried:
        return
    sids: dict[tuple[str, str], int] = {}  # (project, key) -> its search_sources row
    for (project,), keys in _grouped({(p, k) for p, k, _ in carried}).items():
        sids.update(((p, k), i) for i, p, k in _select(conn, _SOURCES, [project], keys))
    found = {row[0]: row for row in _select(conn, _HELD, [], sorted(sids.values()))}
    wanted = {(p, kind, ident) for p, _, docs in carried for kind, ident in docs}
    for (project, kind), idents in _grouped(wanted).items():
        found.update((row[0], row) for row in _select(conn, _WANTED, [project, kind], idents))
    holders = dict(_select(conn, _HOLDERS, [], sorted({row[4] for row in found.values()})))
    sids.update(((row[1], holders[row[4]]), row[4]) for row in found.values())
    stored: dict[_Doc, tuple[int, str, str, str]] = {  # -> (id, holder, ts, digest)
        (p, kind, ident): (doc_id, holders[source], ts, digest)
        for doc_id, p, kind, ident, source, ts, digest in found.values()
    }
    rows = {doc: _Row(h, ts, dg, None, i) for doc, (i, h, ts, dg) in stored.items()}
    held: dict[tuple[str, str], set[_Doc]] = {}
    for doc, (_, holder, _, _) in stored.items():
        held.setdefault((doc[0], holder), set()).add(doc)
    dropped: list[int] = []  # stored rows deleted on the way
    made: dict[_Doc, None] = {}  # rows made anew, in the order they were made
    rewritten: set[_Doc] = set()  # stored rows whose text a change wrote
    # The rule of index_documents, one record at a time: what it held and no longer
    # carries goes; what it carries is its own, its time kept while its text is unchanged.
    for project, key, docs in carried:
        mine = held.setdefault((project, key), set())
        for doc in [doc for doc in mine if doc[1:] not in docs]:
            mine.discard(doc)
            gone = rows.pop(doc)
            if gone.id is not None:
                dropped.append(gone.id)
            made.pop(doc, None)
            rewritten.discard(doc)
        for (kind, ident), d in docs.items():
            doc = (project, kind, ident)
            now = rows.get(doc)
            if now is None:
                rows[doc] = _Row(key, d.timestamp, d.digest, d, None)
                made[doc] = None
            else:
                if now.holder != key:
                    held[(project, now.holder)].discard(doc)
                    now.holder = key
                if now.digest != d.digest:
                    now.ts, now.digest, now.text = d.timestamp, d.digest, d
                    if now.id is not None:
                        rewritten.add(doc)
            mine.add(doc)
    _write_changes(conn, sids, stored, rows, dropped, made, rewritten)


def _write_changes(
    conn: sqlite3.Connection,
    sids: dict[tuple[str, str], int],
    stored: dict[_Doc, tuple[int, str, str, str]],
    rows: dict[_Doc, _Row],
    dropped: list[int],
    made: dict[_Doc, None],
    rewritten: set[_Doc],
) -> None:
    """Write what :func:`index_changes` found the changes leave; the text index takes
    each old text out before its row changes and each new one in after. New rows are
    read back as those past the largest id (a rowid table numbers them from there)."""
    _run(conn, _UNINDEX_ROWS, dropped + [_stored_id(rows[doc]) for doc in rewritten])
    _run(conn, _DROP_ROWS, dropped)
    new_sources = sorted({(doc[0], row.holder) for doc, row in rows.items()} - sids.keys())
    if new_sources:
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM search_sources").fetchone()
        conn.executemany(_NEW_SOURCE, new_sources)
        sids.update(((p, k), i) for i, p, k in conn.execute(_SOURCES_AFTER, (last,)))
    texts = []
    for doc in rewritten:
        row, d = rows[doc], _text(rows[doc])
        source = sids[(doc[0], row.holder)]
        texts.append((source, row.ts, row.digest, d.title, d.body, _stored_id(row)))
    conn.executemany(_REWRITE, texts)
    conn.executemany(_INDEX, [(t[5], t[3], t[4]) for t in texts])
    moved = [
        (sids[(doc[0], row.holder)], row.id)
        for doc, row in rows.items()
        if row.id is not None and doc not in rewritten and stored[doc][1] != row.holder
    ]
    conn.executemany(_MOVE, moved)
    if made:
        (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM search_docs").fetchone()
        new_docs = []
        for doc in made:
            row, d = rows[doc], _text(rows[doc])
            source = sids[(doc[0], row.holder)]
            new_docs.append((*doc, source, row.ts, row.digest, d.title, d.body))
        conn.executemany(_NEW_DOC, new_docs)
        conn.execute(_INDEX_AFTER, (last,))
    # A record left holding nothing keeps no row.
    _run(conn, _EMPTY_SOURCES, sorted(sids.values()))


def _grouped(items: Iterable[tuple[str, ...]]) -> dict[tuple[str, ...], list[str]]:
    """``items`` by all but their last part: one query per group, the last parts bound."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for item in sorted(items):
        groups.setdefault(item[:-1], []).append(item[-1])
    return groups


def _select(
    conn: sqlite3.Connection, sql: str, first: list[object], values: list[T]
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``sql`` (an ``IN ()`` query) for each chunk of ``values``."""
    for part in _chunks(values):
        yield from conn.execute(_in(sql, len(part)), (*first, *part))


def _run(conn: sqlite3.Connection, sql: str, values: list[int]) -> None:
    for part in _chunks(values):
        conn.execute(_in(sql, len(part)), part)


def _text(row: _Row) -> Document:
    assert row.text is not None  # a row made or rewritten by a change has its text
    return row.text


def _stored_id(row: _Row) -> int:
    assert row.id is not None
    return row.id


def _take_over(
    conn: sqlite3.Connection, project: str, source: str, held: dict[int, set[int]]
) -> int:
    """The record row for ``source``, new to the index: the row of the record that held
    most of its documents, renamed to ``source``, when fewer of that record's documents
    stay with it than move (a checkpoint after a checkpoint: all but the previous one's
    own document move); those few get a new row under the old key. Else a new row."""
    if held:
        holder, moving = max(held.items(), key=lambda item: len(item[1]))
        staying = [
            doc_id
            for (doc_id,) in conn.execute("SELECT id FROM search_docs WHERE source = ?", (holder,))
            if doc_id not in moving
        ]
        if len(staying) < len(moving):
            (old_key,) = conn.execute(
                "SELECT key FROM search_sources WHERE id = ?", (holder,)
            ).fetchone()
            conn.execute("UPDATE search_sources SET key = ? WHERE id = ?", (source, holder))
            if staying:
                cur = conn.execute(
                    "INSERT INTO search_sources (project, key) VALUES (?, ?)", (project, old_key)
                )
                for ids in _chunks(staying):
                    conn.execute(
                        _in("UPDATE search_docs SET source = ? WHERE id IN ()", len(ids)),
                        (cur.lastrowid, *ids),
                    )
            return holder
    cur = conn.execute("INSERT INTO search_sources (project, key) VALUES (?, ?)", (project, source))
    assert cur.lastrowid is not None
    return cur.lastrowid


def _holds(conn: sqlite3.Connection, source_id: int) -> int:
    """How many documents the record of ``source_id`` holds (its index entries only)."""
    row = conn.execute("SELECT count(*) FROM search_docs WHERE source = ?", (source_id,))
    return int(row.fetchone()[0])


def _in(sql: str, count: int) -> str:
    """``sql`` with ``count`` placeholders in its ``IN ()``: the values are always bound."""
    return sql.replace("IN ()", f"IN ({', '.join('?' * count)})")


def _chunks(items: list[T]) -> Iterator[list[T]]:
    """Pieces small enough for SQLite's limit on bound values in one statement."""
    for i in range(0, len(items), 500):
        yield items[i : i + 500]


def _floor(conn: sqlite3.Connection, query: Query, project: str | None) -> int:
    """The smallest rowid among the newest :data:`RANKED` matches (of ``project``'s
    documents of the query's kinds, or of every document when None); 0 if fewer match."""
    if project is None:
        row = conn.execute(
            "SELECT rowid FROM search_text WHERE search_text MATCH ?"
            " ORDER BY rowid DESC LIMIT 1 OFFSET ?",
            (query.fts5(), RANKED - 1),
        ).fetchone()
    else:
        where, args = _filters(project, query)
        row = conn.execute(
            "SELECT search_text.rowid FROM search_text"  # noqa: S608 - values bound
            " JOIN search_docs AS d ON d.id = search_text.rowid"
            f" WHERE search_text MATCH ? AND {where} ORDER BY search_text.rowid DESC"
            " LIMIT 1 OFFSET ?",
            (query.fts5(), *args, RANKED - 1),
        ).fetchone()
    return 0 if row is None else int(row[0])


def _filters(project: str, query: Query) -> tuple[str, list[object]]:
    where = ["d.project = ?"]
    args: list[object] = [project]
    if query.kinds:
        where.append(_in("d.kind IN ()", len(query.kinds)))
        args.extend(query.kinds)
    if query.since:
        where.append("d.ts >= ?")
        args.append(query.since)
    return " AND ".join(where), args


def search(conn: sqlite3.Connection, project: str, query: Query) -> list[SearchHit]:
    """The best ``query.limit`` documents of ``project`` matching every term, among the
    newest :data:`RANKED` that match.

    The window is first taken over every project's matches (the cheap query: FTS5 alone);
    when that leaves fewer hits than asked for, it is taken again over this project's
    documents of the query's kinds and times."""
    where, args = _filters(project, query)
    sql = (
        "SELECT d.source, d.kind, d.ident, d.ts, d.title, d.body, rank"  # noqa: S608
        " FROM search_text JOIN search_docs AS d ON d.id = search_text.rowid"
        f" WHERE search_text MATCH ? AND search_text.rowid >= ? AND {where}"
        " ORDER BY rank, d.ts DESC LIMIT ?"
    )
    floor = _floor(conn, query, None)
    rows = conn.execute(sql, (query.fts5(), floor, *args, query.limit)).fetchall()
    if len(rows) < query.limit and floor > 0:
        floor = _floor(conn, query, project)
        rows = conn.execute(sql, (query.fts5(), floor, *args, query.limit)).fetchall()
    # The keys of the records that hold the hits, for the hits only.
    ids = sorted({row[0] for row in rows})
    keys = dict(
        conn.execute(_in("SELECT id, key FROM search_sources WHERE id IN ()", len(ids)), ids)
    )
    # The snippet is made here, for the hits only: FTS5's snippet() would be computed for
    # every ranked row before the LIMIT.
    return [
        SearchHit(
            key=keys[source],
            kind=kind,
            timestamp=parse_timestamp(ts),
            snippet=clean_snippet(snippet(title, body, query.terms)),
            score=-float(rank),  # bm25 is lower-is-better; a score is higher-is-better
            ident=ident,
        )
        for source, kind, ident, ts, title, body, rank in rows
    ]


def count(conn: sqlite3.Connection, project: str | None = None) -> int:
    if project is None:
        return int(conn.execute("SELECT count(*) FROM search_docs").fetchone()[0])
    return int(
        conn.execute("SELECT count(*) FROM search_docs WHERE project = ?", (project,)).fetchone()[0]
    )
