"""``sqlite:///path.db``: a store in one SQLite file, shared by threads and processes.

URLs follow SQLAlchemy: ``sqlite:///x.db`` is relative to the working directory,
``sqlite:////abs/x.db`` is absolute, ``sqlite:///:memory:`` is a private
in-memory database (one connection, so every thread sees the same data).

Durability and concurrency:

- WAL journal with ``synchronous=FULL``: every commit fsyncs the WAL, so an
  acknowledged write survives power loss (WAL with NORMAL may lose the last
  commits), while readers never block the writer.
- Every write is one ``BEGIN IMMEDIATE`` transaction: it takes the database's
  write lock before the versions are checked, so compare-and-swap is race-free
  across processes; waits for the lock up to ``busy_timeout``. The check is inside
  the write (``INSERT ... ON CONFLICT DO NOTHING`` for "must be absent", ``UPDATE
  ... WHERE version = ?``); a write that changed no row rolls the transaction back.
- One connection per store behind a lock (sqlite3 connections are not safe to
  use from two threads at once); other processes use their own.
- A ``migrations`` table records each schema step applied; opening a database
  that a newer lifecycle migrated further is refused rather than misread.
- On a full or read-only file system: SQLite deletes ``-wal`` and ``-shm`` when the
  last connection closes and cannot create them again there (the ``-shm`` alone takes
  32 KiB), so the store opens the database file read-only and immutable, with a
  warning, when nothing waits in a write-ahead log: reads work, and every write raises
  :class:`~lifecycle.errors.StoreReadOnly` before it starts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from lifecycle.errors import InvalidStoreURL, StoreError, StoreReadOnly, StoreUnavailable
from lifecycle.logs import get_logger
from lifecycle.search import sqlite_index as search_sqlite
from lifecycle.search.documents import is_indexed, split_key
from lifecycle.stores.base import (
    Entry,
    Op,
    PagedScans,
    Put,
    check_ops,
    check_storage_key,
    check_version,
    checked_row,
    plan_batch,
    prefix_end,
    row_crc,
    split_url,
)

log = get_logger(__name__)

T = TypeVar("T")

MEMORY = ":memory:"
#: ``INSERT ... RETURNING`` (SQLite 3.35): an unconditional write learns its new version
#: in the same statement.
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)
_UPSERT_RETURNING = (
    "INSERT INTO entries (key, value, version, crc) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
    "version = entries.version + 1, crc = excluded.crc RETURNING version"
)
_CREATE = (
    "INSERT INTO entries (key, value, version, crc) VALUES (?, ?, 1, ?) "
    "ON CONFLICT (key) DO NOTHING"
)
_SWAP = "UPDATE entries SET value = ?, version = ?, crc = ? WHERE key = ? AND version = ?"
DEFAULT_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another's transaction
SCAN_PAGE = PagedScans.scan_page  # rows fetched per query while scanning
#: Free bytes below which a file system counts as full for a WAL database: the -shm
#: (32 KiB) and the -wal's header and first frames.
WAL_ROOM = 64 * 1024


def _page_sql(values: bool, reverse: bool, prefix: bool, after: bool) -> str:
    """The query of :meth:`SqliteStore._page` for one shape of page; its arguments are
    the prefix's range (if any), the key to start after (if any), the limit."""
    where = ["key >= ?", "key < ?"] if prefix else []
    if after:
        where.append("key < ?" if reverse else "key > ?")
    columns = "key, value, version, crc" if values else "key"
    sql = f"SELECT {columns} FROM entries"  # noqa: S608 - fixed fragments, values bound
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY key DESC" if reverse else " ORDER BY key"
    return sql + " LIMIT ?"


#: Every shape of page query, made once: (values, reverse, prefix, after) -> SQL.
_PAGE_SQL = {shape: _page_sql(*shape) for shape in itertools.product((False, True), repeat=4)}


def _indexed(key: str) -> bool:
    """Whether a write of this storage key may change the search index."""
    parts = split_key(key)
    return parts is not None and is_indexed(parts[1])


def _fill_checksums(conn: sqlite3.Connection) -> None:
    """Migration 2, in place: the checksum of every row already stored."""
    conn.create_function("lifecycle_crc", 2, lambda k, v: row_crc(k, bytes(v)), deterministic=True)
    conn.execute("UPDATE entries SET crc = lifecycle_crc(key, value)")


#: (number, name, steps: SQL statements or functions of the connection). Append only;
#: never edit a released step.
MIGRATIONS: tuple[tuple[int, str, tuple[str | Callable[[sqlite3.Connection], None], ...]], ...] = (
    (
        1,
        "create entries",
        (
            "CREATE TABLE entries ("
            " key TEXT PRIMARY KEY NOT NULL,"
            " value BLOB NOT NULL,"
            " version INTEGER NOT NULL CHECK (version > 0)"
            ") WITHOUT ROWID",
        ),
    ),
    (
        2,
        "add entries.crc",
        ("ALTER TABLE entries ADD COLUMN crc INTEGER", _fill_checksums),
    ),
)
LATEST_MIGRATION = MIGRATIONS[-1][0]


def _size(path: str) -> int:
    """The size of the file at ``path``; 0 when there is none."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def parse_sqlite_url(url: str) -> str:
    """The database path a ``sqlite:///`` URL names (``:memory:`` for the in-memory one)."""
    if not isinstance(url, str):
        raise InvalidStoreURL(str(url), "a store URL must be a string")
    parts = split_url(url)
    if parts.scheme.lower() != "sqlite":
        raise InvalidStoreURL(url, "an SQLite store URL starts with sqlite:///")
    if parts.netloc:
        raise InvalidStoreURL(
            url,
            f"an SQLite URL has no host ({parts.netloc!r}); write sqlite:///relative.db "
            "or sqlite:////absolute/path.db",
        )
    if parts.query or parts.fragment:
        raise InvalidStoreURL(url, "an SQLite URL takes no '?' options or '#' fragment")
    # urlsplit keeps the path's leading '/': '/x.db' (relative) or '//abs/x.db' (absolute).
    path = unquote(parts.path, errors="surrogateescape")[1:]
    if not path or path.endswith("/"):
        raise InvalidStoreURL(url, "an SQLite URL must name a database file after sqlite:///")
    if "\x00" in path:
        raise InvalidStoreURL(url, "the database path contains a NUL character")
    return path


def refuse_special_file(path: str) -> None:
    """StoreUnavailable unless ``path`` is absent or a regular file: SQLite would write its
    journal beside a device (``/dev/null-journal``) and block on a FIFO."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise StoreUnavailable(f"SQLite database {path!r} is not a regular file; name a .db file")


def open_sqlite_store(url: str) -> SqliteStore:
    """Open (creating and migrating if needed) the database a ``sqlite:///`` URL names."""
    path = parse_sqlite_url(url)
    if path != MEMORY:
        try:
            refuse_special_file(path)
        except StoreError as exc:
            raise InvalidStoreURL(url, str(exc)) from None
        except OSError as exc:
            raise InvalidStoreURL(url, f"cannot open {path!r}: {exc.strerror or exc}") from None
    return SqliteStore(path, url=url)


class SqliteStore(PagedScans):
    """The Store protocol on one SQLite database file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        url: str | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> None:
        self.path = os.fspath(path)
        self.url = url if url is not None else self._url_for(self.path)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._closed = False
        #: Why the store is open read-only (a full or read-only file system), or None.
        self.read_only: str | None = None
        # Without a -shm to share, SQLite must make one (and a -wal) to open: where there
        # is no room for them, open read-only at once rather than leave empty ones behind.
        shared = os.path.exists(self.path + "-shm") or _size(self.path + "-wal")
        reason = None if shared else self._no_room_for_wal()
        if reason is None:
            try:
                self._conn = self._connect(busy_timeout)
            except StoreError:
                reason = self._no_room_for_wal()
                if reason is None:
                    raise
        if reason is not None:
            self._conn = self._connect_read_only(reason, busy_timeout)
        try:
            self._migrate()
            # -- search index (lifecycle.search.sqlite_index): each write queues its key
            opened = search_sqlite.ready if self.read_only else search_sqlite.opened
            self._indexing = self._run("read the search index", opened)
        except BaseException:
            self._conn.close()
            raise

    @staticmethod
    def _url_for(path: str) -> str:
        return "sqlite:///" + path  # an absolute path gives the four-slash form

    # -- connection ------------------------------------------------------------------------

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        memory = self.path == MEMORY
        if not memory:
            self._create_file()
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            if not memory:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(
                        f"SQLite database {self.path!r} refused WAL mode (got {mode!r}); "
                        "it needs a local file system that supports shared memory"
                    )
                self._make_private()
            # Durable: each commit fsyncs the WAL. NORMAL would lose acknowledged
            # writes on power loss, which the Store contract does not allow.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        except sqlite3.Error as exc:
            conn.close()
            raise self._error(exc, "configure") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _no_room_for_wal(self) -> str | None:
        """Why SQLite could not create this database's ``-wal`` or ``-shm`` (its file
        system is full or read-only), or None when that is not why the open failed."""
        if self.path == MEMORY or not os.path.isfile(self.path):
            return None
        folder = os.path.dirname(os.path.abspath(self.path))
        try:
            fs = os.statvfs(folder)
        except OSError:
            return None
        if fs.f_flag & os.ST_RDONLY:
            return "its file system is read-only"
        free = fs.f_bavail * fs.f_frsize
        if free < WAL_ROOM:
            return f"its file system is full ({free // 1024} KiB free)"
        if not os.access(folder, os.W_OK):
            return "its folder is not writable"
        return None

    def _connect_read_only(self, reason: str, busy_timeout: float) -> sqlite3.Connection:
        """The database file alone, read-only and immutable (no -wal, no -shm, no locks).

        Only when no write-ahead log holds commits: those are readable only through
        the -shm that cannot be made, and reading without them would show old records.
        """
        where = f"SQLite database {self.path!r}"
        waiting = _size(self.path + "-wal")
        if waiting:
            raise StoreUnavailable(
                f"{where} cannot be opened: {reason}, and its write-ahead log holds "
                f"{waiting:,} bytes of commits that only a writable open can read; "
                "free some space and retry"
            )
        uri = Path(os.path.abspath(self.path)).as_uri() + "?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=busy_timeout, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open {where} read-only: {exc}") from exc
        self.read_only = reason
        log.warning(
            "sqlite_store.read_only",
            path=self.path,
            reason=f"{reason}: opened read-only; reads work, writes are refused "
            "until there is room for its write-ahead log",
        )
        return conn

    def _create_file(self) -> None:
        """Create the database file 0600 (and its folder 0700) before SQLite does.

        SQLite gives the -wal and -shm files the database file's permissions.
        """
        path = Path(self.path)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            refuse_special_file(self.path)
            # O_NONBLOCK: a FIFO swapped in after the check must not hang the open.
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o600)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode):
                    raise StoreError(f"SQLite database {self.path!r} is not a regular file")
                if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                    os.fchmod(fd, 0o600)  # one made before us (0644): keep it private
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create SQLite database {self.path!r}: {exc.strerror or exc}"
            ) from exc

    def _make_private(self) -> None:
        """The -wal and -shm files 0600, whatever an earlier opener left (SQLite copies
        the database file's mode when it creates them, but keeps existing ones)."""
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                info = os.stat(self.path + suffix)
                if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                    os.chmod(self.path + suffix, 0o600)

    def _error(self, exc: sqlite3.Error, doing: str) -> StoreError:
        text = str(exc)
        where = f"SQLite database {self.path!r}"
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_FULL:
            return StoreError(
                f"{where}: its file system is full; could not {doing} (nothing was "
                "written); free some space and retry"
            )
        if "locked" in text or "busy" in text:
            return StoreUnavailable(
                f"{where} is locked by another writer (waited for the busy timeout); "
                f"could not {doing}: {text}"
            )
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
            return StoreUnavailable(f"{where} cannot be opened; could not {doing}: {text}")
        if isinstance(exc, sqlite3.DatabaseError) and "not a database" in text:
            return StoreError(f"{where} is not an SQLite database (or is encrypted): {text}")
        return StoreError(f"{where}: could not {doing}: {type(exc).__name__}: {text}")

    def _run(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection under the lock, mapping sqlite3 errors."""
        with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store {self.url!r} is closed; open a new one")
            if os.getpid() != self._pid:
                # SQLite forbids carrying a connection across fork().
                raise StoreError(
                    f"SQLite store {self.url!r} was opened in process {self._pid}; "
                    "open the store again in this process"
                )
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise self._error(exc, doing) from exc

    def _refuse_if_read_only(self, doing: str) -> None:
        if self.read_only:
            raise StoreReadOnly(
                f"SQLite database {self.path!r} is open read-only because {self.read_only}; "
                f"could not {doing} (nothing was written); free some space and retry"
            )

    def _write(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one BEGIN IMMEDIATE transaction: all of it commits or none."""

        self._refuse_if_read_only(doing)
        return self._run(doing, lambda conn: search_sqlite.in_transaction(conn, work))

    # -- migrations ------------------------------------------------------------------------

    def _migrated(self) -> bool:
        """Whether every migration is applied already, read without a write transaction
        (so that opening a database on a full disk, to read it, needs no free page)."""

        def read(conn: sqlite3.Connection) -> bool:
            try:
                done = {row[0] for row in conn.execute("SELECT version FROM migrations")}
            except sqlite3.OperationalError:  # no migrations table yet
                return False
            return done == {number for number, _, _ in MIGRATIONS}

        return self._run("read the schema migrations", read)

    def _migrate(self) -> None:
        if self._migrated():
            return
        if self.read_only:
            raise StoreUnavailable(
                f"SQLite database {self.path!r} needs its schema set up or migrated, which "
                f"needs a write, and {self.read_only}; free some space and retry"
            )

        def migrate(conn: sqlite3.Connection) -> list[int]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations ("
                " version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"
            )
            done = {row[0]: row[1] for row in conn.execute("SELECT version, name FROM migrations")}
            unknown = sorted(v for v in done if v > LATEST_MIGRATION)
            if unknown:
                raise StoreError(
                    f"SQLite database {self.path!r} has schema migration {unknown[-1]} "
                    f"({done[unknown[-1]]!r}) from a newer lifecycle; this version knows "
                    f"migrations 1 to {LATEST_MIGRATION}: upgrade lifecycle to open it"
                )
            applied = []
            for number, name, statements in MIGRATIONS:
                if number in done:
                    continue
                for statement in statements:
                    if callable(statement):
                        statement(conn)
                    else:
                        conn.execute(statement)
                conn.execute("INSERT INTO migrations (version, name) VALUES (?, ?)", (number, name))
                applied.append(number)
            return applied

        applied = self._write("apply schema migrations", migrate)
        if applied:
            log.info("sqlite_store.migrated", path=self.path, applied=applied)

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        check_storage_key(key)
        row = self._run(
            f"read {key!r}",
            lambda conn: conn.execute(
                "SELECT value, version, crc FROM entries WHERE key = ?", (key,)
            ).fetchone(),
        )
        return None if row is None else checked_row(key, *row)

    def _page(
        self, prefix: str, after: str | None, reverse: bool, count: int | None, values: bool
    ) -> list[tuple[Any, ...]]:
        """Up to ``count`` rows (all: None) under ``prefix``, past ``after``, as a key range."""
        args: list[object] = [prefix, prefix_end(prefix)] if prefix else []
        if after is not None:
            args.append(after)
        args.append(-1 if count is None else count)  # LIMIT -1: no limit
        sql = _PAGE_SQL[values, reverse, bool(prefix), after is not None]
        rows: list[tuple[Any, ...]] = self._run(
            f"scan prefix {prefix!r}", lambda conn: conn.execute(sql, args).fetchall()
        )
        return rows

    # -- writes ----------------------------------------------------------------------------

    @staticmethod
    def _version(conn: sqlite3.Connection, key: str) -> int:
        row = conn.execute("SELECT version FROM entries WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])

    def _checked_put(
        self, conn: sqlite3.Connection, key: str, value: bytes, expected: int | None
    ) -> int:
        """Write one key whose version check is inside the write: a create is an INSERT
        that does nothing when the key exists, a compare-and-swap an UPDATE of the
        expected version; neither reads first. A write that changed no row was refused,
        and the version then found names the conflict (the caller's transaction rolls
        back whatever the batch wrote before it). Returns the new version."""
        crc = row_crc(key, value)
        if expected is None:
            if _RETURNING:
                # fetchall: stepped to its end, so no statement is left open at COMMIT
                (row,) = conn.execute(_UPSERT_RETURNING, (key, value, crc)).fetchall()
                return int(row[0])
            found = self._version(conn, key)
            self._store(conn, key, value, found + 1)
            return found + 1
        if expected == 0:
            cursor = conn.execute(_CREATE, (key, value, crc))
        else:
            cursor = conn.execute(_SWAP, (value, expected + 1, crc, key, expected))
        if cursor.rowcount != 1:
            check_version(key, expected, self._version(conn, key))
            raise StoreError(f"SQLite database {self.path!r}: write of {key!r} changed no row")
        return expected + 1

    def _checked_delete(self, conn: sqlite3.Connection, key: str, expected: int | None) -> bool:
        """Delete one key, its version check inside the DELETE (as :meth:`_checked_put`)."""
        if expected is None:
            return conn.execute("DELETE FROM entries WHERE key = ?", (key,)).rowcount > 0
        if expected == 0:
            check_version(key, 0, self._version(conn, key))
            return False
        cursor = conn.execute("DELETE FROM entries WHERE key = ? AND version = ?", (key, expected))
        if cursor.rowcount != 1:
            check_version(key, expected, self._version(conn, key))
        return True

    @staticmethod
    def _store(conn: sqlite3.Connection, key: str, value: bytes, version: int) -> None:
        conn.execute(
            "INSERT INTO entries (key, value, version, crc) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version, "
            "crc = excluded.crc",
            (key, value, version, row_crc(key, value)),
        )

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        check_storage_key(key)
        data = bytes(value)
        if expected_version is None and _RETURNING and not _indexed(key):
            return self._upsert(key, data)

        def put(conn: sqlite3.Connection) -> int:
            version = self._checked_put(conn, key, data, expected_version)
            self._enqueue(conn, key)
            return version

        return self._write(f"write {key!r}", put)

    def _upsert(self, key: str, data: bytes) -> int:
        """An unconditional write of a key the search index ignores: one statement, which
        SQLite runs as its own write transaction (it takes the write lock before reading,
        waiting up to the busy timeout, and commits with the WAL fsynced, as COMMIT does;
        a statement that fails changes nothing). The same write as BEGIN IMMEDIATE,
        upsert, COMMIT, in one call instead of three."""
        doing = f"write {key!r}"
        self._refuse_if_read_only(doing)
        crc = row_crc(key, data)

        def upsert(conn: sqlite3.Connection) -> int:
            (row,) = conn.execute(_UPSERT_RETURNING, (key, data, crc)).fetchall()
            return int(row[0])

        return self._run(doing, upsert)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        check_storage_key(key)

        def delete(conn: sqlite3.Connection) -> bool:
            if not self._checked_delete(conn, key, expected_version):
                return False
            self._enqueue(conn, key)
            return True

        return self._write(f"delete {key!r}", delete)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        check_ops(ops)
        if not ops:
            return []
        values = [bytes(op.value) if isinstance(op, Put) else b"" for op in ops]
        if len({op.key for op in ops}) == len(ops):
            return self._write(
                f"apply a batch of {len(ops)} operations",
                lambda conn: self._distinct_batch(conn, ops, values),
            )

        def batch(conn: sqlite3.Connection) -> list[int]:
            plan = plan_batch(ops, lambda key, _: self._version(conn, key))
            for (op, _, version), value in zip(plan, values, strict=True):
                if isinstance(op, Put):
                    self._store(conn, op.key, value, version)
                else:
                    conn.execute("DELETE FROM entries WHERE key = ?", (op.key,))
                self._enqueue(conn, op.key)
            return [planned.version for planned in plan]

        return self._write(f"apply a batch of {len(ops)} operations", batch)

    def _distinct_batch(
        self, conn: sqlite3.Connection, ops: Sequence[Op], values: Sequence[bytes]
    ) -> list[int]:
        """A batch whose ops are on distinct keys (a checkpoint and its pointer): each
        op's version check is inside its write, and a refused one raises VersionConflict,
        which rolls back the whole transaction, so the batch still applies all or none."""
        versions = []
        for op, value in zip(ops, values, strict=True):
            if isinstance(op, Put):
                versions.append(self._checked_put(conn, op.key, value, op.expected_version))
                self._enqueue(conn, op.key)
            else:
                if self._checked_delete(conn, op.key, op.expected_version):
                    self._enqueue(conn, op.key)
                versions.append(0)
        return versions

    def _enqueue(self, conn: sqlite3.Connection, key: str) -> None:
        """Queue ``key`` for the search index (lifecycle.search.sqlite_index), in the
        write's transaction: once an index is built (by this process or another), the
        next search indexes it as it is then."""
        if _indexed(key) and (self._indexing or search_sqlite.built_since(self, conn)):
            conn.execute(search_sqlite.ENQUEUE, (key,))

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if os.getpid() == self._pid:  # a forked child must not close its parent's handle
                self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.url!r})"
