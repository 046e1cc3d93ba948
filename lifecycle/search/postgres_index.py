"""The PostgreSQL store's search index: a ``tsvector`` column with a GIN index.

``lifecycle_search`` sits beside ``lifecycle_entries`` in the store's schema, one row
per document (see :mod:`lifecycle.search.documents`). Its ``doc`` column is generated
from the title (weight A) and the body (weight B), split into runs of letters and
digits like the SQLite index, with the ``simple`` configuration (no stemming, no stop
words: the same words match in every store).

Writes do not index: a write of a key the index keeps adds the key to
``lifecycle_search_queue`` in its own statement (one more data-modifying CTE, no round
trip), and a search first indexes the queued keys, oldest first, as they are then (a
key written and then deleted ends deleted), under an advisory lock that keeps two
searches from indexing at once, and deletes the queue rows it indexed, unless a write
queued the key again meanwhile. So a search sees every write acknowledged before it
started and no deleted record. A session that cannot write (a standby, a read-only
transaction or role) cannot apply the queue: its search reads and matches the
project's records (:mod:`lifecycle.search.scan`) while keys are queued.

The tables are created when the store opens (under the migrations' advisory lock) and
filled from the entries when they are new; ``lifecycle_search_meta`` holds the index's
version.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from lifecycle.errors import StoreError
from lifecycle.logs import get_logger
from lifecycle.search.documents import Document, documents, is_indexed, split_key
from lifecycle.search.fts import RANKED
from lifecycle.search.query import (
    Query,
    SearchHit,
    clean_snippet,
    parse_timestamp,
)
from lifecycle.search.scan import snippet

log = get_logger(__name__)

#: 2: the text in a table of its own; 3: its seq; 4: seq indexed; 5: its time beside it
#: (so that the best are chosen from the text table alone; 4 is migrated in place);
#: 6: the queue of keys written since the last search (5 is migrated in place).
INDEX_VERSION = 6
#: The GIN index's pending list, in KB (PostgreSQL's default is 4 MB).
PENDING_KB = 128
_LOCK_CLASS = 0x4C53  # "LS": the advisory lock taken while the index is built
_QUEUE_LOCK_CLASS = 0x4C51  # "LQ": taken while a search indexes the queue
#: Queued keys indexed per transaction when a search catches up.
CATCH_UP_KEYS = 200
#: Records indexed per round of statements by a build (one transaction in all).
BUILD_KEYS = 500
_SPLIT = r"'[^[:alnum:]]+'"
_NON_WORD = re.compile(r"[\W_]+")

#: Keys written since the last search, each once, in the order of their last write.
QUEUE = (
    "CREATE TABLE IF NOT EXISTS {s}.lifecycle_search_queue ("
    ' key TEXT COLLATE "C" PRIMARY KEY, seq BIGINT GENERATED ALWAYS AS IDENTITY)',
    "CREATE INDEX IF NOT EXISTS lifecycle_search_queue_seq ON {s}.lifecycle_search_queue (seq)",
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {s}.lifecycle_search_meta"
    " (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # Who holds each document, and when: rewritten on every write that carries it.
    "CREATE TABLE IF NOT EXISTS {s}.lifecycle_search ("
    ' project TEXT COLLATE "C" NOT NULL, kind TEXT NOT NULL, ident TEXT COLLATE "C" NOT NULL,'
    ' source TEXT COLLATE "C" NOT NULL, ts TEXT NOT NULL, digest TEXT NOT NULL,'
    " PRIMARY KEY (project, kind, ident))",
    "CREATE INDEX IF NOT EXISTS lifecycle_search_source ON {s}.lifecycle_search (project, source)",
    # Its text and tsvector: rewritten only when the text changes, so the GIN index is not
    # touched by a checkpoint that carries the session's tasks and decisions again.
    "CREATE TABLE IF NOT EXISTS {s}.lifecycle_search_text ("
    ' project TEXT COLLATE "C" NOT NULL, kind TEXT NOT NULL, ident TEXT COLLATE "C" NOT NULL,'
    " title TEXT NOT NULL, body TEXT NOT NULL, digest TEXT NOT NULL,"
    # The document's time, as lifecycle_search's: it changes with the text.
    " ts TEXT NOT NULL,"
    # The order documents were first indexed in: the newest matches are ranked.
    " seq BIGINT GENERATED ALWAYS AS IDENTITY,"
    " doc tsvector GENERATED ALWAYS AS ("
    f" setweight(to_tsvector('simple', regexp_replace(title, {_SPLIT}, ' ', 'g')), 'A') ||"
    f" setweight(to_tsvector('simple', regexp_replace(body, {_SPLIT}, ' ', 'g')), 'B')"
    " ) STORED,"
    " PRIMARY KEY (project, kind, ident))",
    # A short pending list (KB): GIN queues new entries there, every search reads it
    # through, and the planner, counting its pages, turned to reading the whole table:
    # two common words took 17.6 ms after a year's writes instead of 8.5.
    "CREATE INDEX IF NOT EXISTS lifecycle_search_doc ON {s}.lifecycle_search_text USING GIN (doc)"
    f" WITH (gin_pending_list_limit = {PENDING_KB})",
    # For a common word the planner walks the newest documents back and stops at RANKED.
    "CREATE INDEX IF NOT EXISTS lifecycle_search_seq ON {s}.lifecycle_search_text (project, seq)",
    *QUEUE,
)
DROP = (
    "DROP TABLE IF EXISTS {s}.lifecycle_search_queue",
    "DROP TABLE IF EXISTS {s}.lifecycle_search_text",
    "DROP TABLE IF EXISTS {s}.lifecycle_search",
    "DROP TABLE IF EXISTS {s}.lifecycle_search_meta",
)

#: The index's part of a write: its keys, queued after every other (a key queued already
#: moves to the end): a CTE of the write's own statement, or a statement of its own.
_ENQUEUE = "INSERT INTO {q} (key) VALUES {rows} ON CONFLICT (key) DO UPDATE SET seq = DEFAULT"
#: The index brought up to date with one key, as data-modifying CTEs on one parameter
#: list (:data:`_UPSERT`), when a search indexes the queue and in a build. The documents
#: arrive as one JSON array (``json_to_recordset``): psycopg dumps a text array element
#: by element in Python, and six of them cost about 1 ms of CPU per key.
#: Parameters, in order: the documents' JSON, then :func:`cte_args`' project and source.
CTES = (
    "ix_new AS (SELECT * FROM json_to_recordset(%s::json)"
    " AS n(kind text, ident text, ts text, title text, body text, digest text)),"
    " ix_gone AS (DELETE FROM {t} AS o WHERE o.project = %s AND o.source = %s"
    " AND NOT EXISTS (SELECT 1 FROM ix_new WHERE ix_new.kind = o.kind"
    " AND ix_new.ident = o.ident) RETURNING o.kind, o.ident),"
    " ix_gone_text AS (DELETE FROM {x} AS w USING ix_gone"
    " WHERE w.project = %s AND w.kind = ix_gone.kind AND w.ident = ix_gone.ident),"
    " ix_held AS (INSERT INTO {t} AS h (project, kind, ident, source, ts, digest)"
    " SELECT %s, kind, ident, %s, ts, digest FROM ix_new"
    " ON CONFLICT (project, kind, ident) DO UPDATE SET source = EXCLUDED.source,"
    " ts = CASE WHEN h.digest = EXCLUDED.digest THEN h.ts ELSE EXCLUDED.ts END,"
    " digest = EXCLUDED.digest),"
    " ix_text AS (INSERT INTO {x} AS w (project, kind, ident, title, body, digest, ts)"
    " SELECT %s, kind, ident, title, body, digest, ts FROM ix_new"
    " ON CONFLICT (project, kind, ident) DO UPDATE SET title = EXCLUDED.title,"
    " body = EXCLUDED.body, digest = EXCLUDED.digest, ts = EXCLUDED.ts"
    " WHERE w.digest <> EXCLUDED.digest)"
)
_UPSERT = "WITH " + CTES + " SELECT 1"


def _sql(store: Any, text: str) -> Any:
    from psycopg import sql

    schema = sql.Identifier(store.schema)
    return sql.SQL(text).format(
        s=schema,
        t=sql.SQL("{}.lifecycle_search").format(schema),
        x=sql.SQL("{}.lifecycle_search_text").format(schema),
        q=sql.SQL("{}.lifecycle_search_queue").format(schema),
        entries=store._table,
    )


def prepare(store: Any, conn: Any, *, rebuild: bool = False) -> bool:
    """Create the index (built from the entries) if it is missing, older, or ``rebuild``;
    return whether writes keep it (not when a newer lifecycle built it)."""
    if not rebuild and _version(store, conn) == INDEX_VERSION:
        return True  # the common case, on every open: one query, no lock
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, store.schema))
        version = _version(store, conn)
        if version is not None and version > INDEX_VERSION and not rebuild:
            log.warning("search.index_newer", found=version, known=INDEX_VERSION)
            return False
        if version == INDEX_VERSION and not rebuild:
            return True
        if version == 4 and not rebuild:
            _add_times(store, conn)
            version = 5
        if version == 5 and not rebuild:
            _add_queue(store, conn)
            return True
        for statement in DROP:
            conn.execute(_sql(store, statement))
        for statement in SCHEMA:
            conn.execute(_sql(store, statement))
        conn.execute(
            _sql(
                store, "INSERT INTO {s}.lifecycle_search_meta (name, value) VALUES ('version', %s)"
            ),
            (str(INDEX_VERSION),),
        )
        with conn.cursor(name="lifecycle_search_build") as rows:
            rows.itersize = 500
            rows.execute(_sql(store, "SELECT key, value FROM {entries}"))
            changes = [(key, bytes(value)) for key, value in rows]
        for start in range(0, len(changes), BUILD_KEYS):
            index_changes(store, conn, changes[start : start + BUILD_KEYS], prepare=False)
        _clean_pending(store, conn)
        # Fresh statistics, so that the planner walks the newest documents for a common
        # word rather than reading all of its matches.
        conn.execute(_sql(store, "ANALYZE {t}"))
        conn.execute(_sql(store, "ANALYZE {x}"))
        log.info("search.index_built", schema=store.schema, entries=len(changes))
    return True


def _add_times(store: Any, conn: Any) -> None:
    """Version 4 to 5, in place (in the caller's transaction): each text row gets its
    document's time from ``lifecycle_search``, which has always kept it."""
    conn.execute(_sql(store, "ALTER TABLE {x} ADD COLUMN ts TEXT NOT NULL DEFAULT ''"))
    conn.execute(
        _sql(
            store,
            "UPDATE {x} AS w SET ts = d.ts FROM {t} AS d"
            " WHERE d.project = w.project AND d.kind = w.kind AND d.ident = w.ident",
        )
    )
    conn.execute(_sql(store, "ALTER TABLE {x} ALTER COLUMN ts DROP DEFAULT"))
    conn.execute(
        _sql(
            store,
            f"ALTER INDEX {{s}}.lifecycle_search_doc SET (gin_pending_list_limit = {PENDING_KB})",
        )
    )
    _clean_pending(store, conn)  # every row was rewritten
    _set_version(store, conn, 5)
    conn.execute(_sql(store, "ANALYZE {x}"))
    log.info("search.index_migrated", schema=store.schema, to=5)


def _add_queue(store: Any, conn: Any) -> None:
    """Version 5 to 6, in place: version 5 was written by every write, so it is current
    and only needs its queue."""
    for statement in QUEUE:
        conn.execute(_sql(store, statement))
    _set_version(store, conn, INDEX_VERSION)
    log.info("search.index_migrated", schema=store.schema, to=INDEX_VERSION)


def _set_version(store: Any, conn: Any, version: int) -> None:
    conn.execute(
        _sql(store, "UPDATE {s}.lifecycle_search_meta SET value = %s WHERE name = 'version'"),
        (str(version),),
    )


def _clean_pending(store: Any, conn: Any) -> None:
    """Move the GIN index's pending entries into the index (what a vacuum does), after
    writing every row at once."""
    conn.execute(
        "SELECT gin_clean_pending_list(%s::regclass)", (f'"{store.schema}".lifecycle_search_doc',)
    )


def _version(store: Any, conn: Any) -> int | None:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f'"{store.schema}".lifecycle_search_meta',)
    ).fetchone()
    if not row[0]:
        return None
    got = conn.execute(
        _sql(store, "SELECT value FROM {s}.lifecycle_search_meta WHERE name = 'version'")
    ).fetchone()
    return int(got[0]) if got is not None and str(got[0]).isdigit() else None


def indexed(changes: Sequence[tuple[str, bytes | None]]) -> list[tuple[str, str, bytes | None]]:
    """``(project, key, value or None)`` of each change the index keeps."""
    found = []
    for full_key, value in changes:
        parts = split_key(full_key)
        if parts is not None and is_indexed(parts[1]):
            found.append((parts[0], parts[1], value))
    return found


def touches_index(changes: Sequence[tuple[str, bytes | None]]) -> bool:
    return bool(indexed(changes))


def enqueue_cte(store: Any, count: int) -> Any:
    """The data-modifying CTE ``ix_queue`` that queues ``count`` keys (its parameters:
    the keys, in the order written), for this store's schema."""
    return _sql(store, "ix_queue AS (" + _enqueue_sql(count) + ")")


def _enqueue_sql(count: int) -> str:
    return _ENQUEUE.replace("{rows}", ", ".join(["(%s)"] * count))


def enqueue(store: Any, conn: Any, changes: Sequence[tuple[str, bytes | None]]) -> None:
    """Queue the keys of ``changes`` the index keeps, in the caller's transaction."""
    keys = queued_keys(changes)
    if keys:
        conn.execute(_sql(store, _enqueue_sql(len(keys))), keys)


def queued_keys(changes: Sequence[tuple[str, bytes | None]]) -> list[str]:
    """The store keys of ``changes`` the index keeps, each once, in the order written
    last (one statement cannot update a queue row twice)."""
    keys = [f"{project}/{key}" for project, key, _ in indexed(changes)]
    return list(reversed(dict.fromkeys(reversed(keys))))


def cte_args(project: str, key: str, value: bytes | None) -> list[object]:
    """The parameters of :data:`CTES` for ``key`` of ``project`` now holding ``value``."""
    docs = documents(key, value) if value is not None else []
    rows = orjson.dumps(
        [
            {
                "kind": d.kind,
                "ident": d.ident,
                "ts": d.timestamp,
                "title": d.title,
                "body": d.body,
                "digest": d.digest,
            }
            # In a fixed order, so that two writers lock shared documents alike.
            for d in sorted(docs, key=lambda d: (d.kind, d.ident))
        ]
    ).decode()
    return [rows, project, key, project, project, key, project]


def index_entries(
    store: Any,
    conn: Any,
    changes: Sequence[tuple[str, bytes | None]],
    *,
    prepare: bool | None = None,
) -> None:
    """Bring the index up to date with each ``(store key, value or None)``, in the
    caller's transaction, one statement (:data:`CTES`) per key: the rule that
    :func:`index_changes` follows in fewer statements, and is checked against
    (tests/test_search_queue.py). ``prepare=False`` plans each statement afresh: for a build,
    whose tables grow from empty inside one transaction (no statistics arrive), where
    the plan a prepared statement caches while they were small scans them whole (a
    rebuild after 3,000 writes in one process took 74 s, not 13)."""
    upsert = _sql(store, _UPSERT)
    for project, key, value in indexed(changes):
        conn.execute(upsert, cte_args(project, key, value), prepare=prepare)


#: A document's row as :func:`index_changes` follows it: who holds it, since when, its
#: digest, and its text when that was written in these changes.
_Row = list[Any]  # [source, ts, digest, Document | None]

#: The rows of the documents some records hold (by project and source) or carry (by
#: project, kind and ident): what :func:`index_changes` starts from.
_STORED = (
    "SELECT project, kind, ident, source, ts, digest FROM {t}"
    " WHERE (project, source) IN (SELECT project, source FROM json_to_recordset(%s::json)"
    " AS h(project text, source text))"
    " OR (project, kind, ident) IN (SELECT project, kind, ident FROM"
    " json_to_recordset(%s::json) AS c(project text, kind text, ident text))"
)
_DROP_HELD = (
    "DELETE FROM {t} AS o USING json_to_recordset(%s::json) AS d(project text, kind text,"
    " ident text) WHERE o.project = d.project AND o.kind = d.kind AND o.ident = d.ident"
)
_DROP_TEXT = _DROP_HELD.replace("{t}", "{x}")
_SET_HELD = (
    "INSERT INTO {t} (project, kind, ident, source, ts, digest)"
    " SELECT project, kind, ident, source, ts, digest FROM json_to_recordset(%s::json)"
    " AS n(project text, kind text, ident text, source text, ts text, digest text)"
    " ON CONFLICT (project, kind, ident) DO UPDATE SET source = EXCLUDED.source,"
    " ts = EXCLUDED.ts, digest = EXCLUDED.digest"
)
_SET_TEXT = (
    "INSERT INTO {x} (project, kind, ident, title, body, digest, ts)"
    " SELECT project, kind, ident, title, body, digest, ts FROM json_to_recordset(%s::json)"
    " AS n(project text, kind text, ident text, title text, body text, digest text, ts text)"
    " ON CONFLICT (project, kind, ident) DO UPDATE SET title = EXCLUDED.title,"
    " body = EXCLUDED.body, digest = EXCLUDED.digest, ts = EXCLUDED.ts"
)


def index_changes(
    store: Any,
    conn: Any,
    changes: Sequence[tuple[str, bytes | None]],
    *,
    prepare: bool | None = None,
) -> None:
    """The index brought up to date with ``changes`` (store key, value now or None), in
    order, in the caller's transaction: the rows :func:`index_entries` would leave, each
    document written once, as the last change leaves it, in five statements at most. A
    queue of checkpoints carries the session's tasks and decisions in every one of them:
    rewriting those rows once per checkpoint made a catch-up 2.8 ms a checkpoint.
    ``prepare``: as :func:`index_entries`'."""
    carried = [
        (project, key, {(d.kind, d.ident): d for d in documents(key, value)} if value else {})
        for project, key, value in indexed(changes)
    ]
    if not carried:
        return
    sources = [{"project": p, "source": k} for p, k, _ in carried]
    wanted = {(p, kind, ident) for p, _, docs in carried for kind, ident in docs}
    found = conn.execute(
        _sql(store, _STORED),
        (_json(sources), _json([{"project": p, "kind": k, "ident": i} for p, k, i in wanted])),
        prepare=prepare,
    ).fetchall()
    stored: dict[tuple[str, str, str], tuple[str, str, str]] = {
        (p, kind, ident): (source, ts, digest) for p, kind, ident, source, ts, digest in found
    }
    rows: dict[tuple[str, str, str], _Row] = {k: [*v, None] for k, v in stored.items()}
    held: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for doc, (source, _, _) in stored.items():
        held.setdefault((doc[0], source), set()).add(doc)
    dropped: set[tuple[str, str, str]] = set()  # stored rows deleted on the way
    made: dict[tuple[str, str, str], None] = {}  # text rows made anew, in order
    rewritten: set[tuple[str, str, str]] = set()  # text rows whose text changed
    # The rule of CTES, one record at a time: what it held and no longer carries goes;
    # what it carries is its own, its time kept while its text is unchanged.
    for project, key, docs in carried:
        mine = held.setdefault((project, key), set())
        for doc in [doc for doc in mine if doc[1:] not in docs]:
            mine.discard(doc)
            del rows[doc]
            dropped.add(doc)
            made.pop(doc, None)  # made again later: a new text row, after the others
            rewritten.discard(doc)
        for (kind, ident), d in sorted(docs.items()):
            doc = (project, kind, ident)
            row = rows.get(doc)
            if row is None:
                rows[doc] = [key, d.timestamp, d.digest, d]
                made[doc] = None
            else:
                held[(project, row[0])].discard(doc)
                if row[2] != d.digest:
                    row[1:] = [d.timestamp, d.digest, d]
                    rewritten.add(doc)
                row[0] = key
            mine.add(doc)
    if dropped:
        gone = _json([dict(zip(("project", "kind", "ident"), doc, strict=True)) for doc in dropped])
        conn.execute(_sql(store, _DROP_TEXT), (gone,), prepare=prepare)
        conn.execute(_sql(store, _DROP_HELD), (gone,), prepare=prepare)
    moved = [
        {"project": p, "kind": k, "ident": i, "source": r[0], "ts": r[1], "digest": r[2]}
        for (p, k, i), r in rows.items()
        if (p, k, i) in dropped or stored.get((p, k, i)) != tuple(r[:3])
    ]
    if moved:
        conn.execute(_sql(store, _SET_HELD), (_json(moved),), prepare=prepare)
    texts = [doc for doc in made if doc in rows]
    texts += [doc for doc in rewritten if doc not in made and doc in rows]
    if texts:
        texts_json = _json([_text(doc, rows[doc][3]) for doc in texts])
        conn.execute(_sql(store, _SET_TEXT), (texts_json,), prepare=prepare)


def _text(doc: tuple[str, str, str], d: Document) -> dict[str, str]:
    return {
        "project": doc[0],
        "kind": doc[1],
        "ident": doc[2],
        "title": d.title,
        "body": d.body,
        "digest": d.digest,
        "ts": d.timestamp,
    }


def _json(rows: list[dict[str, str]]) -> str:
    return orjson.dumps(rows).decode()


def catch_up(store: Any) -> bool:
    """Index every queued key as it is now, oldest first, :data:`CATCH_UP_KEYS` per
    transaction; False when this session cannot write (the keys stay queued)."""
    pg = store._psycopg
    pending = _sql(store, "SELECT EXISTS (SELECT 1 FROM {q})")
    take = _sql(
        store,
        "SELECT q.key, q.seq, e.value FROM {q} AS q LEFT JOIN {entries} AS e USING (key)"
        " ORDER BY q.seq LIMIT %s",
    )
    # A key a write queued again meanwhile has a new seq: it stays, for the next search.
    done = _sql(
        store,
        "DELETE FROM {q} AS q USING unnest(%s::text[], %s::bigint[]) AS d(key, seq)"
        " WHERE q.key = d.key AND q.seq = d.seq",
    )

    def run(conn: Any) -> bool:
        if not conn.execute(pending).fetchone()[0]:
            return True
        try:
            while True:
                with conn.transaction():
                    # One search indexes at a time, so the queue's order is kept.
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                        (_QUEUE_LOCK_CLASS, store.schema),
                    )
                    rows = conn.execute(take, (CATCH_UP_KEYS,)).fetchall()
                    changes = [(k, None if v is None else bytes(v)) for k, _, v in rows]
                    index_changes(store, conn, changes)
                    conn.execute(done, ([r[0] for r in rows], [r[1] for r in rows]))
                if len(rows) < CATCH_UP_KEYS:
                    return True
        except (pg.errors.ReadOnlySqlTransaction, pg.errors.InsufficientPrivilege) as exc:
            log.warning("search.queue_not_applied", schema=store.schema, error=str(exc))
            return False

    caught_up: bool = store._run("bring the search index up to date", run)
    return caught_up


def _tsquery(query: Query) -> tuple[str, list[str]]:
    """Every term a phrase of its words (``phraseto_tsquery``), all of them required."""
    words = [_NON_WORD.sub(" ", term).strip() for term in query.terms]
    words = [w for w in words if w]
    return " && ".join(["phraseto_tsquery('simple', %s)"] * len(words)), words


def search(store: Any, project: str, query: Query) -> list[SearchHit]:
    tsquery, words = _tsquery(query)
    if not words:
        return []
    where = ["w.project = %s", "w.doc @@ q"]
    args: list[object] = [*words, project]
    if query.kinds:
        where.append("w.kind = ANY(%s)")
        args.append(list(query.kinds))
    if query.since:
        where.append("w.ts >= %s")
        args.append(query.since)
    args.append(query.limit)
    # The newest RANKED matches, ranked, and the best of them: all in the text table (its
    # GIN index and seq); only those best are joined to the records that hold them.
    text = (
        "SELECT d.source, b.kind, b.ident, b.ts, b.title, b.body, b.rank FROM ("  # noqa: S608
        " SELECT * FROM ("
        " SELECT w.project, w.kind, w.ident, w.ts, w.title, w.body, ts_rank(w.doc, q) AS rank"
        f" FROM {{x}} AS w, (SELECT {tsquery} AS q) AS query WHERE {' AND '.join(where)}"
        f" ORDER BY w.seq DESC LIMIT {RANKED}) AS recent"
        " ORDER BY rank DESC, ts DESC LIMIT %s) AS b"
        " JOIN {t} AS d USING (project, kind, ident)"
        " ORDER BY b.rank DESC, b.ts DESC"
    )
    statement = _sql(store, text)

    if not store._indexing:
        raise StoreError(
            f"PostgreSQL store {store.url!r}: its search index was built by a newer "
            "lifecycle; upgrade lifecycle, or rebuild it with lifecycle search --rebuild"
        )
    if not catch_up(store):  # a read-only session, with keys queued: read and match
        from lifecycle.search import scan

        found: list[SearchHit] = scan.search(store, project, query)
        return found

    def run(conn: Any) -> list[Any]:
        # Planned for its own words each time: a prepared statement's generic plan cannot
        # tell a rare word (the GIN index) from a common one (the newest documents back).
        return list(conn.execute(statement, args, prepare=False).fetchall())

    rows = store._run("search", run)
    return [
        SearchHit(
            key=source,
            kind=kind,
            timestamp=parse_timestamp(ts),
            snippet=clean_snippet(snippet(title, body, query.terms)),
            score=float(rank),
            ident=ident,
        )
        for source, kind, ident, ts, title, body, rank in rows
    ]


def rebuild(store: Any) -> int:
    def run(conn: Any) -> int:
        prepare(store, conn, rebuild=True)
        return int(conn.execute(_sql(store, "SELECT count(*) FROM {t}")).fetchone()[0])

    count: int = store._run("rebuild the search index", run)
    store._indexing = True
    return count
