"""What the SQLite adapter promises beyond the shared Store contract."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
import sys
import threading
from pathlib import Path

import cas_worker
import pytest

from lifecycle.errors import InvalidStoreURL, StoreError, StoreUnavailable, VersionConflict
from lifecycle.stores import open_store
from lifecycle.stores.base import Put
from lifecycle.stores.sqlite import (
    LATEST_MIGRATION,
    SCAN_PAGE,
    SqliteStore,
    open_sqlite_store,
    parse_sqlite_url,
)

WORKER_TIMEOUT = 120


@pytest.fixture
def db(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "store.db")
    yield store
    store.close()


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///x.db", "x.db"),
        ("sqlite:///dir/x.db", "dir/x.db"),
        ("sqlite:////abs/x.db", "/abs/x.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite:///with%20space.db", "with space.db"),
    ],
)
def test_url_follows_sqlalchemy_three_slashes_relative_four_absolute(url: str, path: str) -> None:
    assert parse_sqlite_url(url) == path


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite://host/x.db",
        "sqlite:///x.db?mode=ro",
        "sqlite:///x.db#frag",
        "sqlite:///dir/",
        "file:///x.db",
    ],
)
def test_malformed_url_is_refused_with_invalid_store_url(url: str) -> None:
    with pytest.raises(InvalidStoreURL, match="cannot open store"):
        parse_sqlite_url(url)


def test_relative_url_opens_under_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///sub/rel.db")
    try:
        store.put("p/k", b"v")
    finally:
        store.close()
    assert (tmp_path / "sub" / "rel.db").is_file()
    assert store.url == "sqlite:///sub/rel.db"


def test_absolute_url_opens_that_file(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    store = open_store("sqlite:///" + str(target))  # "sqlite:////tmp/..."
    try:
        store.put("p/k", b"v")
    finally:
        store.close()
    reopened = open_sqlite_store("sqlite:///" + str(target))
    try:
        entry = reopened.get("p/k")
    finally:
        reopened.close()
    assert entry is not None
    assert (entry.value, entry.version) == (b"v", 1)


def test_memory_url_is_one_database_shared_by_threads() -> None:
    store = open_sqlite_store("sqlite:///:memory:")
    try:
        thread = threading.Thread(target=store.put, args=("p/k", b"from-thread"))
        thread.start()
        thread.join(timeout=30)
        entry = store.get("p/k")
    finally:
        store.close()
    assert entry is not None
    assert entry.value == b"from-thread"


# -- migrations -------------------------------------------------------------------------------


def _migrations(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()


def test_new_database_records_every_migration_once(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "m.db").close()
    assert _migrations(tmp_path / "m.db") == [(1, "create entries"), (2, "add entries.crc")]
    assert LATEST_MIGRATION == 2


def test_reopening_applies_nothing_again_and_keeps_data(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "m.db")
    first.put("p/k", b"v")
    first.close()
    second = SqliteStore(tmp_path / "m.db")
    try:
        entry = second.get("p/k")
    finally:
        second.close()
    assert _migrations(tmp_path / "m.db") == [(1, "create entries"), (2, "add entries.crc")]
    assert entry is not None
    assert (entry.value, entry.version) == (b"v", 1)


def test_database_from_a_newer_lifecycle_is_refused(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "m.db").close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        conn.execute("INSERT INTO migrations (version, name) VALUES (7, 'future step')")
    with pytest.raises(StoreError, match=r"migration 7 \('future step'\).*upgrade lifecycle"):
        SqliteStore(tmp_path / "m.db")


def test_entries_table_is_without_rowid_with_key_primary_key(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "m.db").close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        (ddl,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()
        columns = [(r[1], r[2], r[5]) for r in conn.execute("PRAGMA table_info(entries)")]
    assert ddl.rstrip().endswith("WITHOUT ROWID")
    assert columns == [
        ("key", "TEXT", 1),
        ("value", "BLOB", 0),
        ("version", "INTEGER", 0),
        ("crc", "INTEGER", 0),
    ]


# -- durability settings and files ------------------------------------------------------------


def test_connection_uses_wal_synchronous_full_and_a_busy_timeout(db: SqliteStore) -> None:
    conn = db._conn
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)


def test_database_and_its_wal_and_shm_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = SqliteStore(tmp_path / "private.db")
        try:
            store.put("p/k", b"v")
            modes = {
                name: stat.S_IMODE((tmp_path / name).stat().st_mode)
                for name in ("private.db", "private.db-wal", "private.db-shm")
            }
        finally:
            store.close()
    finally:
        os.umask(old)
    assert modes == {"private.db": 0o600, "private.db-wal": 0o600, "private.db-shm": 0o600}


def test_missing_parent_folder_is_created_private(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "new" / "x.db").close()
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) & 0o077 == 0


# -- scans use the primary key ----------------------------------------------------------------


def _traced_plans(store: SqliteStore, action: object) -> list[str]:
    """Run ``action`` and return the query plan of every SELECT it issued on entries."""
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    try:
        assert callable(action)
        action()
    finally:
        store._conn.set_trace_callback(None)
    selects = [s for s in statements if s.startswith("SELECT") and "FROM entries" in s]
    assert selects, statements
    plans = []
    for select in selects:
        rows = store._conn.execute("EXPLAIN QUERY PLAN " + select).fetchall()
        plans.append(" | ".join(row[3] for row in rows))
    return plans


@pytest.mark.parametrize("reverse", [False, True])
def test_prefix_scan_is_a_primary_key_range_search(db: SqliteStore, reverse: bool) -> None:
    db.batch([Put(f"p/k{i:04d}", b"v") for i in range(SCAN_PAGE + 10)])
    plans = _traced_plans(db, lambda: list(db.scan("p/k0", reverse=reverse)))
    plans += _traced_plans(db, lambda: db.list_keys("p/k0", reverse=reverse))
    assert len(plans) == 3  # two pages of scan, one list
    for plan in plans:
        assert plan == "SEARCH entries USING PRIMARY KEY (key>? AND key<?)"


def test_scan_pages_through_more_rows_than_one_page_in_order(db: SqliteStore) -> None:
    keys = [f"p/k{i:04d}" for i in range(2 * SCAN_PAGE + 3)]
    db.batch([Put(k, k.encode()) for k in keys])
    db.put("q/after", b"x")
    forward = [(e.key, e.value) for e in db.scan("p/")]
    backward = [e.key for e in db.scan("p/", reverse=True, limit=SCAN_PAGE + 1)]
    assert forward == [(k, k.encode()) for k in keys]
    assert backward == keys[::-1][: SCAN_PAGE + 1]


def test_prefix_is_a_plain_string_prefix(db: SqliteStore) -> None:
    for key in ["a/a", "a/b", "a/b-c", "a/b.c", "a/b0", "a/bc/d", "a/b_c", "a/c", "b/b"]:
        db.put(key, b"v")
    assert db.list_keys("a/b") == ["a/b", "a/b-c", "a/b.c", "a/b0", "a/b_c", "a/bc/d"]


# -- concurrency ------------------------------------------------------------------------------


def test_four_processes_cas_incrementing_one_key_lose_no_update(tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "shared.db")
    SqliteStore(tmp_path / "shared.db").close()  # migrate once, before the race
    results = cas_worker.run_all(url, 60, tmp_path, count=4)
    assert [rc for rc, _, _ in results] == [0, 0, 0, 0], results
    store = SqliteStore(tmp_path / "shared.db")
    try:
        entry = store.get("p/counter")
    finally:
        store.close()
    assert entry is not None
    assert (entry.value, entry.version) == (b"240", 240)


def test_threads_sharing_one_store_lose_no_update(db: SqliteStore) -> None:
    def increment(times: int) -> None:
        for _ in range(times):
            while True:
                entry = db.get("p/counter")
                count = int(entry.value) if entry else 0
                try:
                    db.put(
                        "p/counter",
                        str(count + 1).encode(),
                        expected_version=entry.version if entry else 0,
                    )
                    break
                except VersionConflict:
                    continue

    threads = [threading.Thread(target=increment, args=(50,)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WORKER_TIMEOUT)
    entry = db.get("p/counter")
    assert entry is not None
    assert (entry.value, entry.version) == (b"300", 300)


def test_write_blocked_past_busy_timeout_is_store_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "busy.db", busy_timeout=0.05)
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable, match=r"busy\.db.*locked by another writer"):
            store.put("p/k", b"v")
        holder.execute("ROLLBACK")
        assert store.put("p/k", b"v") == 1  # the failed write left no transaction open
    finally:
        holder.close()
        store.close()


def _use_inherited_store(store: SqliteStore) -> None:
    try:
        store.get("p/k")
    except StoreError as exc:
        sys.exit(0 if "open the store again in this process" in str(exc) else 2)
    sys.exit(1)


def test_store_inherited_through_fork_refuses_to_be_used(db: SqliteStore) -> None:
    db.put("p/k", b"v")
    child = multiprocessing.get_context("fork").Process(target=_use_inherited_store, args=(db,))
    child.start()
    child.join(timeout=WORKER_TIMEOUT)
    assert child.exitcode == 0
    entry = db.get("p/k")  # the parent's connection is untouched
    assert entry is not None
    assert entry.value == b"v"


# -- errors -----------------------------------------------------------------------------------


def test_file_that_is_not_a_database_is_a_store_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"junk\.db.* is not an SQLite database"):
        SqliteStore(tmp_path / "junk.db")


def test_path_that_is_a_directory_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreUnavailable, match="adir"):
        SqliteStore(tmp_path / "adir")


def test_closed_store_refuses_operations(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(StoreError, match="is closed"):
        store.get("p/k")


def test_batch_that_fails_a_check_writes_nothing_and_leaves_no_transaction(
    db: SqliteStore,
) -> None:
    db.put("p/b", b"old")
    with pytest.raises(VersionConflict):
        db.batch([Put("p/a", b"new"), Put("p/b", b"new", expected_version=5)])
    assert db.get("p/a") is None
    assert not db._conn.in_transaction
