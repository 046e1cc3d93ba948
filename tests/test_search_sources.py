"""The SQLite search index's record rows (lifecycle.search.fts, index version 4).

Each document is held by the last record written that holds it; a record rewritten
without a document, or deleted, takes it out of the index. Version 4 keeps the
holder in a row of its own (``search_sources``) and, when a new record takes over
every document of the record before it (a checkpoint after a checkpoint), renames that
row instead of rewriting each document. These tests compare the index, after any
sequence of writes and deletes, with that rule written out plainly.
"""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.search import fts
from lifecycle.search.documents import Document

RECORDS = ("checkpoints/a", "checkpoints/b", "checkpoints/c", "session/x")
DOCS = [("task", "T1"), ("task", "T2"), ("decision", "d1"), ("decision", "d2"), ("task", "T3")]

# one write: a record and, per document it holds, which of two texts (None: deleted)
writes = st.lists(
    st.tuples(
        st.sampled_from(RECORDS),
        st.none() | st.dictionaries(st.sampled_from(DOCS), st.integers(0, 1), max_size=5),
    ),
    max_size=25,
)


def _doc(kind: str, ident: str, version: int, ts: str) -> Document:
    return Document(kind, ident, ts, f"{ident} title {version}", f"{kind} body v{version}")


def _model(history: list[tuple[str, dict[tuple[str, str], int] | None]]) -> dict:
    """The rule: (kind, ident) -> (holder, ts, title, body)."""
    held: dict[tuple[str, str], tuple[str, str, str, str]] = {}
    for n, (record, docs) in enumerate(history):
        ts = f"2026-01-01T00:00:{n:02d}.000000Z"
        new = {k: _doc(*k, v, ts) for k, v in (docs or {}).items()}
        for k in [k for k, (holder, *_) in held.items() if holder == record and k not in new]:
            del held[k]
        for k, d in new.items():
            old = held.get(k)
            same = old is not None and (old[2], old[3]) == (d.title, d.body)
            held[k] = (record, old[1] if same else d.timestamp, d.title, d.body)  # type: ignore[index]
    return held


def _index(history: list[tuple[str, dict[tuple[str, str], int] | None]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    fts.create(conn)
    for n, (record, docs) in enumerate(history):
        ts = f"2026-01-01T00:00:{n:02d}.000000Z"
        fts.index_documents(conn, "p", record, [_doc(*k, v, ts) for k, v in (docs or {}).items()])
    return conn


@settings(max_examples=300, deadline=None)
@given(writes)
def test_the_index_holds_what_the_last_record_written_holding_each_document_holds(
    history: list[tuple[str, dict[tuple[str, str], int] | None]],
) -> None:
    conn = _index(history)
    rows = conn.execute(
        "SELECT d.kind, d.ident, s.key, d.ts, d.title, d.body"
        " FROM search_docs AS d JOIN search_sources AS s ON s.id = d.source"
    ).fetchall()
    assert {(k, i): tuple(rest) for k, i, *rest in rows} == {
        k: tuple(v) for k, v in _model(history).items()
    }
    assert len(rows) == fts.count(conn)  # every document has its record row
    # no record row is left holding nothing, and each record has one row
    orphans = conn.execute(
        "SELECT count(*) FROM search_sources AS s"
        " WHERE NOT EXISTS (SELECT 1 FROM search_docs AS d WHERE d.source = s.id)"
    ).fetchone()
    assert orphans == (0,)
    keys = [k for (k,) in conn.execute("SELECT key FROM search_sources")]
    assert len(keys) == len(set(keys))
    # the FTS table's words are exactly those of the documents' text
    conn.execute("INSERT INTO search_text (search_text, rank) VALUES ('integrity-check', 1)")


def test_a_checkpoint_after_a_checkpoint_renames_its_record_row_and_moves_one_document() -> None:
    """Each checkpoint holds its own document and the session's tasks: the next one
    takes the tasks, so the previous checkpoint's row becomes the new one's, and only
    the previous checkpoint's own document is rewritten (to a new row for it)."""

    def holding(key: str) -> list[Document]:
        tasks = [_doc("task", i, 0, "t") for i in ("T1", "T2", "T3")]
        return [Document("checkpoint", key, "t", key, "type: manual"), *tasks]

    conn = sqlite3.connect(":memory:", isolation_level=None)
    fts.create(conn)
    for key in ("checkpoints/a", "checkpoints/b"):
        fts.index_documents(conn, "p", key, holding(key))
    tasks = "SELECT id, source FROM search_docs WHERE kind = 'task' ORDER BY id"
    before = conn.execute(tasks).fetchall()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    fts.index_documents(conn, "p", "checkpoints/c", holding("checkpoints/c"))
    conn.set_trace_callback(None)
    moved = [s for s in statements if s.startswith("UPDATE search_docs")]
    assert len(moved) == 1 and moved[0].endswith("WHERE id IN (5)")  # b's own document
    assert conn.execute(tasks).fetchall() == before  # the tasks' rows are not rewritten
    holders = dict(
        conn.execute(
            "SELECT d.ident, s.key FROM search_docs AS d JOIN search_sources AS s"
            " ON s.id = d.source"
        ).fetchall()
    )
    assert holders == {
        "checkpoints/a": "checkpoints/a",
        "checkpoints/b": "checkpoints/b",
        "checkpoints/c": "checkpoints/c",
        "T1": "checkpoints/c",
        "T2": "checkpoints/c",
        "T3": "checkpoints/c",
    }
    # the record before no longer holds the tasks: deleting it takes out only its own
    fts.index_documents(conn, "p", "checkpoints/b", [])
    assert fts.count(conn) == 5
