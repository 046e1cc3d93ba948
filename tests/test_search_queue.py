"""The search index is brought up to date by searches: a write only queues its key.

SQLite (index version 5) and PostgreSQL (version 6) keep a queue of the keys written
since the last search, committed with each write; a search first indexes the queued
keys as they are then, oldest first. The rules checked here: a search finds every
write acknowledged before it and no record deleted before it, whatever process or
connection wrote them and whether the writer was killed before anyone searched; a
document carried by several queued records is held by the one written last; a write
touches no index row; an older index is migrated in place; a store that cannot write
still answers correctly.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from procs import environment
from stores import STORE_FACTORIES
from structlog.testing import capture_logs

from lifecycle.search import fts, search, sqlite_index
from lifecycle.search.query import make_query
from lifecycle.stores import open_store
from lifecycle.stores.base import ProjectStore, Store
from lifecycle.stores.postgres import PostgresStore
from lifecycle.stores.sqlite import SqliteStore

FIXTURE_V4 = Path(__file__).parent / "fixtures" / "search-index" / "sqlite-v4.db"


@pytest.fixture(params=("sqlite", "postgres"))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = STORE_FACTORIES[request.param](tmp_path)
    yield made
    made.close()


def queued(store: Any) -> list[str]:
    """The store keys waiting in the queue, oldest first."""
    if isinstance(store, SqliteStore):
        table = "search_queue"
    else:
        table = f'"{store.schema}".lifecycle_search_queue'
    sql = f"SELECT key FROM {table} ORDER BY seq"
    rows = store._run("read the queue", lambda conn: conn.execute(sql).fetchall())
    return [key for (key,) in rows]


def found(store: Store, words: str) -> list[str]:
    return sorted(h.key for h in search(store, "demo", words))


def memories(store: Store) -> ProjectStore:
    return ProjectStore(store, "demo")


# -- what a search sees -----------------------------------------------------------------


def test_a_search_finds_every_write_acknowledged_before_it_though_the_queue_holds_them(
    store: Store,
) -> None:
    for n in range(3):
        memories(store).put(f"memories/m{n}", f"an otter number {n}".encode())
    assert queued(store) == ["demo/memories/m0", "demo/memories/m1", "demo/memories/m2"]
    assert found(store, "otter") == ["memories/m0", "memories/m1", "memories/m2"]
    assert queued(store) == []


def test_a_search_finds_no_record_deleted_before_it_though_the_delete_is_queued(
    store: Store,
) -> None:
    memories(store).put("memories/m", b"a heron")
    assert found(store, "heron") == ["memories/m"]  # indexed
    memories(store).delete("memories/m")
    assert queued(store) == ["demo/memories/m"]
    assert found(store, "heron") == []


def test_a_record_written_then_deleted_between_two_searches_is_not_found(store: Store) -> None:
    memories(store).put("memories/m", b"a lynx")
    memories(store).delete("memories/m")
    assert found(store, "lynx") == []


def test_a_record_rewritten_between_two_searches_is_found_by_its_last_words_only(
    store: Store,
) -> None:
    memories(store).put("memories/m", b"a badger")
    assert found(store, "badger") == ["memories/m"]
    memories(store).put("memories/m", b"a weasel")
    memories(store).put("memories/m", b"a stoat")
    assert queued(store) == ["demo/memories/m"]  # once, however often it was written
    assert (found(store, "badger"), found(store, "weasel")) == ([], [])
    assert found(store, "stoat") == ["memories/m"]


def test_a_document_carried_by_several_queued_records_is_held_by_the_one_written_last(
    store: Store,
) -> None:
    """The task is carried by both checkpoints; the one written last holds it, as when
    every write indexed itself, though its key sorts first and it was queued first."""
    from lifecycle import SessionManager

    m = SessionManager(store=store, project="demo")
    m.start_session(command="impl", restore=False)
    m.add_task("T001", "Teach the tokenizer about quokkas")
    first = m.create_checkpoint(progress={"step": 1}).key
    second = m.create_checkpoint(progress={"step": 2}).key
    assert first is not None and second is not None and first < second
    values = {key: memories(store).get(key) for key in (first, second)}
    memories(store).put(first, values[first].value)  # type: ignore[union-attr]
    assert queued(store)[-2:] == [f"demo/{second}", f"demo/{first}"]
    assert [h.key for h in search(store, "demo", "quokkas", kinds="task")] == [first]
    memories(store).put(second, values[second].value)  # type: ignore[union-attr]
    assert [h.key for h in search(store, "demo", "quokkas", kinds="task")] == [second]


def test_a_write_from_another_connection_is_found(store: Store) -> None:
    other = open_store(store.url)  # type: ignore[attr-defined]
    try:
        memories(other).put("memories/m", b"a marmot")
        memories(store).put("memories/gone", b"a marmot too")
        assert found(store, "marmot") == ["memories/gone", "memories/m"]
        memories(other).delete("memories/gone")
        assert found(store, "marmot") == ["memories/m"]
        assert found(other, "marmot") == ["memories/m"]
    finally:
        other.close()


def _child(url: str, then: str) -> subprocess.Popen[str]:
    """Another process that writes one memory and deletes another, prints ``acked``
    once both returned, then does ``then``."""
    code = (
        "import sys, time\n"
        "from lifecycle.stores import open_store\n"
        "from lifecycle.stores.base import ProjectStore\n"
        "p = ProjectStore(open_store(sys.argv[1]), 'demo')\n"
        "p.put('memories/new', b'a wombat')\n"
        "p.delete('memories/old')\n"
        "print('acked', flush=True)\n" + then
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, url],
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )


def test_a_write_from_another_process_is_found_and_its_delete_is_not(store: Store) -> None:
    memories(store).put("memories/old", b"a wombat of old")
    assert found(store, "wombat") == ["memories/old"]
    child = _child(store.url, "")  # type: ignore[attr-defined]
    assert child.communicate(timeout=60)[0] == "acked\n"
    assert found(store, "wombat") == ["memories/new"]


def test_a_write_acknowledged_by_a_process_killed_before_any_search_is_found(
    store: Store,
) -> None:
    memories(store).put("memories/old", b"a wombat of old")
    assert found(store, "wombat") == ["memories/old"]
    child = _child(store.url, "time.sleep(60)\n")  # type: ignore[attr-defined]
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "acked\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert queued(store) == ["demo/memories/new", "demo/memories/old"]
    reopened = open_store(store.url)  # type: ignore[attr-defined]
    try:
        assert found(reopened, "wombat") == ["memories/new"]
    finally:
        reopened.close()


def test_a_write_of_a_kept_key_writes_no_index_row_only_its_queue_row(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    memories(store).put("memories/m", b"a vole")
    store._conn.set_trace_callback(None)
    assert [s.split(" (")[0] for s in statements] == [
        "BEGIN IMMEDIATE",
        "INSERT INTO entries",
        "INSERT OR REPLACE INTO search_queue",
        "COMMIT",
    ]
    store.close()


# -- older indexes --------------------------------------------------------------------------


def test_an_sqlite_index_of_version_4_gets_its_queue_in_place_and_finds_what_it_held(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    shutil.copy(FIXTURE_V4, path)
    store = SqliteStore(path)
    try:
        assert store._run("read", fts.installed_version) == sqlite_index.INDEX_VERSION
        assert found(store, "narwhal tusk") == ["learning/solutions/narwhal-fix"]
        assert found(store, "walrus") == ["memories/kept"]
        assert found(store, "pangolin") == []  # deleted under version 4
        assert sorted(h.kind for h in search(store, "demo", "tokenizer")) == ["checkpoint", "task"]
        memories(store).put("memories/kept", b"a seal on the ice")
        memories(store).put("memories/new", b"a walrus again")
        assert queued(store) == ["demo/memories/kept", "demo/memories/new"]
        assert found(store, "walrus") == ["memories/new"]
    finally:
        store.close()


def test_a_postgres_index_of_version_5_gets_its_queue_in_place_and_finds_the_same(
    tmp_path: Path,
) -> None:
    from lifecycle.search import postgres_index

    store = STORE_FACTORIES["postgres"](tmp_path)
    assert isinstance(store, PostgresStore)
    memories(store).put("memories/kept", b"a walrus on the ice")
    memories(store).put("memories/gone", b"a pangolin in the leaves")
    memories(store).delete("memories/gone")
    assert found(store, "walrus") == ["memories/kept"]
    schema = store.schema

    def downgrade(conn: Any) -> None:  # what version 5 left: the same tables, no queue
        conn.execute(f'DROP TABLE "{schema}".lifecycle_search_queue')
        conn.execute(f"UPDATE \"{schema}\".lifecycle_search_meta SET value = '5'")

    store._run("downgrade", downgrade)
    store.close()
    reopened = PostgresStore(store.url, schema=schema)
    try:
        version = reopened._run("read", lambda conn: postgres_index._version(reopened, conn))
        assert version == postgres_index.INDEX_VERSION == 6
        assert (found(reopened, "walrus"), found(reopened, "pangolin")) == (
            ["memories/kept"],
            [],
        )
        memories(reopened).put("memories/new", b"a walrus again")
        assert queued(reopened) == ["demo/memories/new"]
        assert found(reopened, "walrus") == ["memories/kept", "memories/new"]
    finally:
        reopened.close()


# -- a store that cannot write ----------------------------------------------------------------


def _read_only(folder: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -c code args`` with ``folder`` mounted read-only (a mount namespace of
    its own, so nothing stays mounted); skips where mounting is not allowed."""
    mount = f"mount --bind -o ro '{folder}' '{folder}'"
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", mount], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a read-only file system here: {probe.stderr!r}")
    run = f'{mount} && exec "$0" "$@"'
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", run, sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=environment(),
        timeout=60,
        check=False,
    )


READ_ONLY_SEARCH = (
    "import sys, json\n"
    "from lifecycle.search import search\n"
    "from lifecycle.stores.sqlite import SqliteStore\n"
    "store = SqliteStore(sys.argv[1])\n"
    "assert store.read_only == 'its file system is read-only', store.read_only\n"
    "print(json.dumps({w: sorted(h.key for h in search(store, 'demo', w))"
    " for w in sys.argv[2:]}))\n"
)


def test_a_read_only_sqlite_store_with_queued_keys_finds_them_and_not_the_deleted(
    tmp_path: Path,
) -> None:
    """It cannot apply the queue, so it reads and matches every record: the same hits."""
    import json

    store = SqliteStore(tmp_path / "s.db")
    memories(store).put("memories/old", b"a beaver")
    assert found(store, "beaver") == ["memories/old"]
    memories(store).put("memories/new", b"a beaver too")
    memories(store).put("memories/gone", b"a muskrat")
    memories(store).delete("memories/gone")
    memories(store).delete("memories/old")
    assert queued(store) == ["demo/memories/new", "demo/memories/gone", "demo/memories/old"]
    store.close()
    done = _read_only(tmp_path, READ_ONLY_SEARCH, str(tmp_path / "s.db"), "beaver", "muskrat")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"beaver": ["memories/new"], "muskrat": []}
    reopened = SqliteStore(tmp_path / "s.db")  # the queue is still there for a writer
    assert len(queued(reopened)) == 3
    reopened.close()


def test_a_read_only_sqlite_store_with_an_index_of_version_4_searches_it_as_it_is(
    tmp_path: Path,
) -> None:
    import json

    shutil.copy(FIXTURE_V4, tmp_path / "s.db")
    done = _read_only(tmp_path, READ_ONLY_SEARCH, str(tmp_path / "s.db"), "walrus", "pangolin")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"walrus": ["memories/kept"], "pangolin": []}


def test_a_read_only_postgres_session_with_queued_keys_finds_them_and_not_the_deleted(
    tmp_path: Path,
) -> None:
    import pgserver

    store = PostgresStore(
        pgserver.require_postgres_url(), schema=pgserver.unique_schema(), max_size=1
    )
    try:
        memories(store).put("memories/old", b"a beaver")
        assert found(store, "beaver") == ["memories/old"]
        memories(store).put("memories/new", b"a beaver too")
        memories(store).delete("memories/old")
        store._run(
            "go read-only",
            lambda conn: conn.execute("SET default_transaction_read_only = on"),
        )
        with capture_logs() as logged:
            assert found(store, "beaver") == ["memories/new"]
        assert [e["event"] for e in logged if e["event"].startswith("search.")] == [
            "search.queue_not_applied"
        ]
        store._run("go back", lambda conn: conn.execute("SET default_transaction_read_only = off"))
        assert queued(store) == ["demo/memories/new", "demo/memories/old"]
        assert found(store, "beaver") == ["memories/new"]
        assert queued(store) == []
    finally:
        store.close()


# -- a catch-up writes what indexing each change in turn would --------------------------------

CHECKPOINT_KEYS = tuple(f"demo/checkpoints/20260101T00000{n}.000000Z" for n in range(3))


def _checkpoint_values() -> list[bytes]:
    """Checkpoints of one session as its tasks and decisions change: they share most of
    their documents, with the same text or another."""
    from datetime import UTC, datetime, timedelta

    from lifecycle import SessionManager
    from lifecycle.stores.memory import MemoryStore

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    memory = MemoryStore()
    m = SessionManager(store=memory, project="demo", clock=lambda: now[0])
    m.start_session(command="impl", restore=False)
    values = []
    steps = [
        lambda: m.add_task("T1", "alpha parser"),
        lambda: m.add_task("T2", "beta lexer"),
        lambda: m.add_task("T1", "alpha parser, second take"),
        lambda: m.complete_task("T2"),
        lambda: m.record_decision("use gamma", rationale="delta"),
        lambda: m.add_task("T1", "alpha parser"),
    ]
    for n, step in enumerate(steps):
        now[0] += timedelta(minutes=1)
        step()
        written = m.create_checkpoint(progress={"step": n})
        entry = memory.get(f"demo/{written.key}")
        assert entry is not None
        values.append(entry.value)
    return values


@pytest.fixture(scope="module")
def two_postgres_indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    first = STORE_FACTORIES["postgres"](tmp_path_factory.mktemp("a"))
    second = STORE_FACTORIES["postgres"](tmp_path_factory.mktemp("b"))
    yield first, second
    first.close()
    second.close()


def _index_rows(store: Any) -> tuple[list[Any], list[Any]]:
    """Who holds each document, and the text rows in the order they were made."""
    s = store.schema
    return store._run(  # type: ignore[no-any-return]
        "read the index",
        lambda conn: (
            conn.execute(
                f'SELECT project, kind, ident, source, ts, digest FROM "{s}".lifecycle_search'
                " ORDER BY 1, 2, 3"
            ).fetchall(),
            conn.execute(
                f'SELECT project, kind, ident, title, body, digest, ts FROM "{s}".'
                "lifecycle_search_text ORDER BY seq"
            ).fetchall(),
        ),
    )


VALUES = _checkpoint_values()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(CHECKPOINT_KEYS), st.none() | st.sampled_from(VALUES)),
            max_size=8,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_postgres_catch_up_leaves_the_rows_that_indexing_each_change_in_turn_leaves(
    two_postgres_indexes: tuple[Any, Any], rounds: list[list[tuple[str, bytes | None]]]
) -> None:
    """Rounds of changes (a key may change twice in one): one index takes each change
    by itself (the rule, as writes used to), the other each round at once."""
    from lifecycle.search import postgres_index

    one_by_one, at_once = two_postgres_indexes
    for store in (one_by_one, at_once):
        s = store.schema
        store._run(
            "empty the index",
            lambda conn, s=s: conn.execute(
                f'TRUNCATE "{s}".lifecycle_search, "{s}".lifecycle_search_text'
            ),
        )
    for changes in rounds:
        for change in changes:
            one_by_one._run(
                "index",
                lambda conn, change=change: postgres_index.index_entries(
                    one_by_one, conn, [change]
                ),
            )
        at_once._run(
            "index",
            lambda conn, changes=changes: postgres_index.index_changes(at_once, conn, changes),
        )
    assert _index_rows(at_once) == _index_rows(one_by_one)


def _session_values() -> list[tuple[str, bytes]]:
    """Checkpoints of two sessions (each carries its session's tasks, decisions and
    prompts again, with the same text or another), and a memory: (key, value)."""
    from datetime import UTC, datetime, timedelta

    from lifecycle import SessionManager
    from lifecycle.stores.memory import MemoryStore

    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    memory = MemoryStore()
    values = []
    for day, restore in enumerate((False, True)):
        now[0] = datetime(2026, 1, 1 + day, tzinfo=UTC)
        m = SessionManager(store=memory, project="demo", clock=lambda: now[0])
        m.start_session(command="impl", restore=restore)
        steps: list[tuple[str, tuple[str, ...]]] = [
            ("add_task", ("T1", "alpha parser")),
            ("add_task", ("T2", "beta lexer")),
            ("record_decision", ("use gamma", "delta")),
            ("add_task", ("T1", "alpha parser, second take")),
            ("complete_task", ("T2",)),
        ]
        for n, (step, args) in enumerate(steps):
            now[0] += timedelta(minutes=1)
            getattr(m, step)(*args)
            prompts = [f"prompt {day} epsilon", f"prompt {n % 2} zeta"][: 1 + n % 2]
            written = m.create_checkpoint(progress={"step": n}, context={"prompts": prompts})
            entry = memory.get(f"demo/{written.key}")
            assert entry is not None
            values.append((written.key, entry.value))
    values.append(("memories/notes", b"alpha epsilon notes"))
    return values


SESSION_VALUES = _session_values()
#: A few keys, so the changes write, rewrite and delete the same records.
SQLITE_KEYS = ("checkpoints/20260101T000001.000000Z", "checkpoints/20260101T000002.000000Z")
SQLITE_KEYS += ("checkpoints/20260102T000001.000000Z", "memories/a", "learning/b", "misc/c")


def _sqlite_index() -> Any:
    import sqlite3

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    fts.create(conn)
    conn.execute("COMMIT")
    return conn


def _sqlite_rows(conn: Any) -> dict[str, Any]:
    """What the index holds, row ids aside: each document with the key of its record,
    the records, every word the text index holds where, and what two searches find."""
    docs = conn.execute(
        "SELECT d.project, d.kind, d.ident, s.key, d.ts, d.digest, d.title, d.body"
        " FROM search_docs AS d JOIN search_sources AS s ON s.id = d.source ORDER BY 1, 2, 3"
    ).fetchall()
    conn.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.words USING fts5vocab(main, search_text, instance)"
    )
    words = conn.execute(
        "SELECT d.project, d.kind, d.ident, w.term, w.col, w.offset FROM temp.words AS w"
        " JOIN search_docs AS d ON d.id = w.doc ORDER BY 1, 2, 3, 4, 5, 6"
    ).fetchall()
    total = conn.execute("SELECT count(*) FROM temp.words").fetchone()[0]
    conn.execute("INSERT INTO search_text (search_text) VALUES ('integrity-check')")
    return {
        "docs": docs,
        "sources": conn.execute("SELECT project, key FROM search_sources ORDER BY 1, 2").fetchall(),
        "words": words,
        "words of no document": total - len(words),
        "found": [
            [(h.key, h.kind, h.ident, h.timestamp) for h in fts.search(conn, "demo", make_query(w))]
            for w in ("alpha", "epsilon")
        ],
    }


@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(SQLITE_KEYS),
                st.none() | st.sampled_from([v for _, v in SESSION_VALUES]),
            ),
            max_size=10,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_an_sqlite_catch_up_leaves_the_index_that_indexing_each_change_in_turn_leaves(
    rounds: list[list[tuple[str, bytes | None]]],
) -> None:
    """Rounds of writes, rewrites and deletes across two sessions' records (a key may
    change twice in one round): one index takes each change by itself, the other each
    round at once; both hold the same documents, records and words, and find the same."""
    one_by_one, at_once = _sqlite_index(), _sqlite_index()
    for changes in rounds:
        full = [(f"demo/{key}", value) for key, value in changes]
        one_by_one.execute("BEGIN")
        for key, value in full:
            fts.index_entry(one_by_one, key, value)
        one_by_one.execute("COMMIT")
        at_once.execute("BEGIN")
        fts.index_changes(at_once, full)
        at_once.execute("COMMIT")
        assert _sqlite_rows(at_once) == _sqlite_rows(one_by_one)
