"""Checksums in SQL rows (issue 17): a flipped bit is caught, never read back as intact,
and databases written before the checksum column get it filled in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lifecycle.errors import CorruptRecord, LifecycleError
from lifecycle.stores.base import checked_row, row_crc
from lifecycle.stores.sqlite import SqliteStore


def _old_database(path: Path, rows: dict[str, bytes]) -> None:
    """A database as lifecycle wrote it before migration 2 (no crc column)."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE entries (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL,"
        " version INTEGER NOT NULL CHECK (version > 0)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL DEFAULT 'then')"
    )
    conn.execute("INSERT INTO migrations (version, name) VALUES (1, 'create entries')")
    conn.executemany("INSERT INTO entries VALUES (?, ?, 1)", rows.items())
    conn.commit()
    conn.close()


def test_an_sqlite_database_without_checksums_gets_them_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path, {"p/a": b"one", "p/b": b"two"})
    store = SqliteStore(path)
    try:
        assert store.get("p/a").value == b"one"  # type: ignore[union-attr]
        assert [e.value for e in store.scan("p/")] == [b"one", b"two"]
    finally:
        store.close()
    conn = sqlite3.connect(path)
    crcs = dict(conn.execute("SELECT key, crc FROM entries").fetchall())
    conn.close()
    assert crcs == {"p/a": row_crc("p/a", b"one"), "p/b": row_crc("p/b", b"two")}


def test_a_changed_sqlite_value_is_corrupt_and_skipped_by_scans(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    try:
        store.put("p/a", b"Phase 2")
        store.put("p/b", b"kept")
        conn = sqlite3.connect(path)
        conn.execute("UPDATE entries SET value = ? WHERE key = 'p/a'", (b"Qhase 2",))
        conn.commit()
        conn.close()
        with pytest.raises(CorruptRecord, match="checksum"):
            store.get("p/a")
        assert [e.key for e in store.scan("p/")] == ["p/b"]
        store.put("p/a", b"rewritten")  # an unconditional write replaces a corrupt row
        assert store.get("p/a").value == b"rewritten"  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_large_row_read_intact_once_is_still_checked_when_it_changes(tmp_path: Path) -> None:
    """checked_row remembers large rows it found intact (so that reading the same bytes
    again does not take their CRC again): a changed value or checksum is still caught."""
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    value = b"x" * 4000 + b"Phase 2"
    try:
        store.put("p/a", value)
        for _ in range(2):  # the second read finds the same bytes and checksum
            assert store.get("p/a").value == value  # type: ignore[union-attr]
        conn = sqlite3.connect(path)
        changed = value.replace(b"Phase", b"Qhase")
        conn.execute("UPDATE entries SET value = ? WHERE key = 'p/a'", (changed,))
        conn.commit()
        with pytest.raises(CorruptRecord, match="checksum"):
            store.get("p/a")
        wrong = row_crc("p/a", value) ^ 1
        conn.execute("UPDATE entries SET value = ?, crc = ? WHERE key = 'p/a'", (value, wrong))
        conn.commit()
        with pytest.raises(CorruptRecord, match="checksum"):
            store.get("p/a")
        assert list(store.scan("p/")) == []
        conn.execute("UPDATE entries SET crc = ? WHERE key = 'p/a'", (row_crc("p/a", value),))
        conn.commit()
        conn.close()
        assert store.get("p/a").value == value  # type: ignore[union-attr]
    finally:
        store.close()
    # The same bytes under another key are another row: its own checksum decides.
    crc = row_crc("p/a", value)
    assert checked_row("p/a", value, 1, crc).value == value
    with pytest.raises(CorruptRecord):
        checked_row("p/b", value, 1, crc)


VALUE = b'{"kind":"checkpoint","phase":"Phase 2","id":"cp-20260125T120000.000000Z"}'


def flip_sweep(folder: Path, window: int = 48, value: bytes = VALUE) -> tuple[int, int]:
    """Flip every bit of one row's bytes (and ``window`` bytes before it) in an SQLite file;
    return (flips, flips read back as a different value accepted as intact)."""
    key = "p/checkpoints/20260125T120000.000000Z"
    clean = folder / "clean.db"
    store = SqliteStore(clean)
    store.put(key, value)
    store.close()
    conn = sqlite3.connect(clean)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = clean.read_bytes()
    if value in data:
        at = data.index(value)
        spans = [(max(0, at - window), min(len(data), at + len(value) + 8))]
    else:  # the row continues on an overflow page: its local part's page, and that page
        page = 4096
        at, tail = data.index(value[:64]), data.index(value[-64:]) // page * page
        spans = [(max(0, at - window), (at // page + 1) * page), (tail, tail + page)]
    flips = wrong = 0
    work = folder / "flipped.db"
    bits = [bit for start, end in spans for bit in range(start * 8, end * 8)]
    for bit in bits:
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        work.write_bytes(bytes(flipped))
        for suffix in ("-wal", "-shm"):
            Path(str(work) + suffix).unlink(missing_ok=True)
        flips += 1
        try:
            store = SqliteStore(work)
        except LifecycleError:
            continue  # refused to open: detected
        try:
            entries = list(store.scan("p/"))
        except LifecycleError:
            entries = []  # detected
        finally:
            store.close()
        if any(e.value != value for e in entries):
            wrong += 1
    return flips, wrong


def test_no_single_bit_flip_in_an_sqlite_row_is_read_back_as_intact(tmp_path: Path) -> None:
    flips, wrong = flip_sweep(tmp_path, window=8)
    assert flips > 600
    assert wrong == 0


def test_a_postgres_table_without_checksums_gets_them_in_place_and_catches_a_change() -> None:
    import psycopg
    from pgserver import require_postgres_url, unique_schema

    from lifecycle.stores.postgres import PostgresStore

    url, schema = require_postgres_url(), unique_schema()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(
            f'CREATE TABLE {schema}.lifecycle_entries (key TEXT COLLATE "C" PRIMARY KEY,'
            " value BYTEA NOT NULL, version BIGINT NOT NULL CHECK (version > 0))"
        )
        conn.execute(
            f"CREATE TABLE {schema}.lifecycle_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        conn.execute(
            f"INSERT INTO {schema}.lifecycle_migrations VALUES (1, 'create lifecycle_entries')"
        )
        conn.execute(
            f"INSERT INTO {schema}.lifecycle_entries VALUES ('p/a', 'one', 1), ('p/b', 'two', 1)"
        )
    store = PostgresStore(url, schema=schema)
    try:
        assert [e.value for e in store.scan("p/")] == [b"one", b"two"]
        store.put("p/c", b"Phase 2")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"UPDATE {schema}.lifecycle_entries SET value = 'Qhase 2' WHERE key = 'p/c'"
            )
        with pytest.raises(CorruptRecord, match="checksum"):
            store.get("p/c")
        assert [e.key for e in store.scan("p/")] == ["p/a", "p/b"]
    finally:
        store.close()
