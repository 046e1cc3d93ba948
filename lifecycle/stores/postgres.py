"""``postgresql://user@host:port/db``: a store in a PostgreSQL database (extra ``postgres``).

For teams whose sessions run on several machines. One table of versioned
entries, reached through a small pool of connections (``psycopg_pool``):

- ``lifecycle_entries(key TEXT COLLATE "C" PRIMARY KEY, value BYTEA, version BIGINT)``:
  ``COLLATE "C"`` orders keys by code point, as every other store does, whatever
  the database's default collation is, and lets prefix scans use the primary key.
- ``lifecycle_migrations`` records each schema step applied. Migrations run in one
  transaction under ``pg_advisory_xact_lock``, so processes opening a new
  database at the same moment do not race; a database migrated by a newer
  lifecycle is refused.
- Compare-and-swap is one conditional statement (``UPDATE ... WHERE version =``,
  ``INSERT ... ON CONFLICT DO NOTHING`` for "must be absent"); a batch on distinct
  keys (a checkpoint and its pointer) is one statement of such writes as
  data-modifying CTEs, which a refused check makes fail whole; any other batch is one
  transaction that locks its rows with ``SELECT ... FOR UPDATE`` before checking.

The URL may carry ``?schema=NAME`` (default ``public``) to keep the tables in
another schema, created if missing; any other parameter goes to libpq. No
password ever appears in an error message or in ``store.url``.
"""

from __future__ import annotations

import os
import re
import time
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlunsplit

from lifecycle.errors import (
    InvalidStoreURL,
    StoreError,
    StoreUnavailable,
    VersionConflict,
    url_secrets,
)
from lifecycle.logs import get_logger
from lifecycle.stores.base import (
    Delete,
    Entry,
    Op,
    PagedScans,
    Put,
    check_ops,
    check_storage_key,
    checked_row,
    plan_batch,
    prefix_end,
    row_crc,
    split_url,
)

if TYPE_CHECKING:
    import psycopg
    import psycopg.sql

log = get_logger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0  # seconds to connect, or to wait for a pooled connection
SCAN_PAGE = PagedScans.scan_page  # rows fetched per query while scanning
#: A pooled connection idle this long is checked (one round trip) before use, since a
#: server restart may have broken it; checking every checkout costs ~30% of a get.
RECHECK_AFTER = 1.0
MAX_ATTEMPTS = 20  # retries of a write that lost a race with a concurrent insert/delete
_LOCK_CLASS = 0x4C43  # "LC": first key of the migration advisory lock
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")

#: (number, name, statements with {schema} for the quoted schema; "fill checksums" is
#: done in Python, in the same transaction). Append only.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "create lifecycle_entries",
        (
            "CREATE TABLE {schema}.lifecycle_entries ("
            ' key TEXT COLLATE "C" PRIMARY KEY,'
            " value BYTEA NOT NULL,"
            " version BIGINT NOT NULL CHECK (version > 0))",
        ),
    ),
    (
        2,
        "add lifecycle_entries.crc",
        ("ALTER TABLE {schema}.lifecycle_entries ADD COLUMN crc BIGINT", "fill checksums"),
    ),
)
#: Rows whose checksum migration 2 computes per round trip.
_FILL_PAGE = 500
LATEST_MIGRATION = MIGRATIONS[-1][0]


#: The data-modifying CTE of each op of a one-statement batch (``{t}``: the table).
_CTE = {
    "upsert": "INSERT INTO {t} (key, value, version, crc) VALUES (%s, %s, 1, %s) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, crc = EXCLUDED.crc, "
    "version = {t}.version + 1 RETURNING version",
    "create": "INSERT INTO {t} (key, value, version, crc) VALUES (%s, %s, 1, %s) "
    "ON CONFLICT (key) DO NOTHING RETURNING version",
    "swap": "UPDATE {t} SET value = %s, crc = %s, version = version + 1 "
    "WHERE key = %s AND version = %s RETURNING version",
    "delete": "DELETE FROM {t} WHERE key = %s RETURNING 0 AS version",
    "delete_at": "DELETE FROM {t} WHERE key = %s AND version = %s RETURNING 0 AS version",
}


def _shape(op: Op) -> str:
    """Which CTE an op of a one-statement batch is."""
    if isinstance(op, Put):
        if op.expected_version is None:
            return "upsert"
        return "create" if op.expected_version == 0 else "swap"
    return "delete" if op.expected_version is None else "delete_at"


def _indexes(key: str) -> bool:
    """Whether the search index keeps ``key`` (lifecycle.search.postgres_index)."""
    from lifecycle.search import postgres_index

    return postgres_index.touches_index([(key, None)])


class _LostRace(Exception):
    """A concurrent writer changed a key between our check and our write: try again."""


def check_schema(schema: object) -> str:
    """A schema name we accept: lower-case letters, digits, ``_``; not ``pg_*``."""
    if not isinstance(schema, str) or not _SCHEMA.fullmatch(schema) or schema.startswith("pg_"):
        raise InvalidStoreURL(
            f"schema={schema!r}",
            "a schema name is 1-63 of a-z 0-9 _, starts with a letter or '_' "
            "and does not start with 'pg_'",
        )
    return schema


class _Location:
    """A parsed PostgreSQL URL: what libpq gets, what we show, what we must hide."""

    def __init__(self, url: str) -> None:
        if not isinstance(url, str):
            raise InvalidStoreURL(str(url), "a store URL must be a string")
        parts = split_url(url)
        if parts.scheme.lower() not in ("postgresql", "postgres"):
            raise InvalidStoreURL(url, "a PostgreSQL URL starts with postgresql://")
        self.secrets: list[str] = []
        if parts.password:
            self.secrets += [parts.password, unquote(parts.password)]
        for shaped in url_secrets(url):  # a malformed URL may hide its password from urlsplit
            self.secrets += [shaped, unquote(shaped)]
        query = parse_qsl(parts.query, keep_blank_values=True)
        self.secrets += [v for k, v in query if k == "password" and v]
        self.secrets.sort(key=len, reverse=True)  # scrub the longest form first
        self.shown = self.scrub(url)
        schemas = [v for k, v in query if k == "schema"]
        self.schema = check_schema(schemas[-1]) if schemas else "public"
        rest = [(k, v) for k, v in query if k != "schema"]
        self.conninfo = urlunsplit(parts._replace(query=urlencode(rest, quote_via=quote)))
        if parts.fragment:
            raise InvalidStoreURL(self.shown, "a PostgreSQL URL takes no '#' fragment")

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def open_postgres_store(url: str) -> PostgresStore:
    """Open (creating and migrating the tables if needed) the store a URL names."""
    return PostgresStore(url)


class PostgresStore(PagedScans):
    """The Store protocol on one PostgreSQL table (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        where = _Location(url)
        self._where = where
        self.schema = where.schema if schema is None else check_schema(schema)
        self.url = where.shown  # never the password
        if schema is not None and where.schema != self.schema:
            # The URL must reopen this same store (other processes open it by URL).
            sep = "&" if split_url(self.url).query else "?"
            self.url = f"{self.url}{sep}schema={self.schema}"
        self._timeout = timeout
        self._pid = os.getpid()
        self._closed = False
        try:
            import psycopg
            from psycopg import sql
            from psycopg.conninfo import conninfo_to_dict
            from psycopg_pool import ConnectionPool
        except ModuleNotFoundError as exc:
            raise InvalidStoreURL(
                self.url,
                f"the postgresql store needs the 'postgres' extra ({exc.name} is not "
                "installed): pip install 'lifecycle[postgres]'",
            ) from None
        self._psycopg = psycopg
        try:
            conninfo_to_dict(where.conninfo)
        except (psycopg.Error, ValueError) as exc:  # ValueError: bad %-escapes (not UTF-8)
            raise InvalidStoreURL(self.url, where.scrub(str(exc))) from None

        table = sql.SQL("{}.lifecycle_entries").format(sql.Identifier(self.schema))
        self._table = table
        self._selects: dict[tuple[bool, bool, bool, bool], bytes] = {}
        self._statements: dict[tuple[tuple[str, ...], int], bytes] = {}
        # Rendered once: composing and rendering a query on every call was a third of a
        # scan's CPU time.
        self._q = {
            name: sql.SQL(text).format(t=table).as_bytes(None)
            for name, text in {
                "get": "SELECT value, version, crc FROM {t} WHERE key = %s",
                "version": "SELECT version FROM {t} WHERE key = %s",
                "upsert": "INSERT INTO {t} (key, value, version, crc) VALUES (%s, %s, 1, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, crc = EXCLUDED.crc, "
                "version = {t}.version + 1 RETURNING version",
                "create": "INSERT INTO {t} (key, value, version, crc) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING RETURNING version",
                "swap": "UPDATE {t} SET value = %s, crc = %s, version = version + 1 "
                "WHERE key = %s AND version = %s RETURNING version",
                "set": "UPDATE {t} SET value = %s, crc = %s, version = %s WHERE key = %s",
                "delete": "DELETE FROM {t} WHERE key = %s RETURNING version",
                "delete_at": "DELETE FROM {t} WHERE key = %s AND version = %s RETURNING version",
                "lock": "SELECT key, version FROM {t} WHERE key = ANY(%s) ORDER BY key FOR UPDATE",
                "versions": "SELECT key, version FROM {t} WHERE key = ANY(%s)",
            }.items()
        }
        self._last_used: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._migrate()
        self._indexing = False
        self._pool = ConnectionPool(
            where.conninfo,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(timeout))},
            check=self._check_if_idle,
            timeout=timeout,
            name="lifecycle",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except psycopg.Error as exc:
            self._pool.close()
            raise self._error(exc, "open the connection pool") from None
        # -- search index (lifecycle.search.postgres_index): each write queues its keys
        from lifecycle.search import postgres_index

        try:
            self._indexing = self._run(
                "prepare the search index", lambda conn: postgres_index.prepare(self, conn)
            )
        except BaseException:
            self._pool.close()
            raise
        log.debug("postgres_store.opened", url=self.url, schema=self.schema)

    # -- errors and connections ------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        psycopg = self._psycopg
        from psycopg_pool import PoolTimeout

        where = f"PostgreSQL store {self.url!r}"
        if isinstance(exc, PoolTimeout):
            return StoreUnavailable(
                f"{where}: no connection within {self._timeout:g} s (is the server up?); "
                f"could not {doing}"
            )
        text = self._where.scrub(str(exc).strip())
        if isinstance(exc, psycopg.OperationalError):
            return StoreUnavailable(f"{where} is unreachable; could not {doing}: {text}")
        return StoreError(f"{where}: could not {doing}: {type(exc).__name__}: {text}")

    def _check_if_idle(self, conn: psycopg.Connection[Any]) -> None:
        """Pool check: probe a connection idle for RECHECK_AFTER; the pool drops a dead one.

        A connection broken while in steady use fails that one operation with
        StoreUnavailable instead, and the pool discards it when it comes back.
        """
        if time.monotonic() - self._last_used.get(conn, 0.0) >= RECHECK_AFTER:
            conn.execute("")

    def _run(self, doing: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` on a pooled autocommit connection, mapping driver errors."""
        if self._closed:
            raise StoreError(f"PostgreSQL store {self.url!r} is closed; open a new one")
        if os.getpid() != self._pid:
            raise StoreError(
                f"PostgreSQL store {self.url!r} was opened in process {self._pid}; "
                "open the store again in this process"
            )
        for _attempt in range(MAX_ATTEMPTS):
            try:
                with self._pool.connection() as conn:
                    try:
                        return work(conn)
                    finally:
                        if not conn.broken:
                            self._last_used[conn] = time.monotonic()
            except _LostRace:
                continue
            except self._psycopg.errors.DeadlockDetected:
                continue
            except self._psycopg.Error as exc:
                raise self._error(exc, doing) from None
        raise StoreError(
            f"PostgreSQL store {self.url!r}: could not {doing}: other writers kept "
            f"changing the same keys ({MAX_ATTEMPTS} attempts)"
        )

    def _version(self, conn: psycopg.Connection[Any], key: str) -> int:
        row = conn.execute(self._q["version"], (key,)).fetchone()
        return 0 if row is None else int(row[0])

    # -- migrations ------------------------------------------------------------------------

    def _migrate(self) -> None:
        psycopg = self._psycopg
        from psycopg import sql

        schema = sql.Identifier(self.schema)
        migrations = sql.SQL("{}.lifecycle_migrations").format(schema)
        try:
            conn = psycopg.connect(
                self._where.conninfo, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except psycopg.Error as exc:
            raise self._error(exc, "connect") from None
        try:
            with conn.transaction():
                # Concurrent first opens queue here instead of racing on CREATE.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, self.schema)
                )
                exists = conn.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
                conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {} (version INTEGER PRIMARY KEY,"
                        " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    ).format(migrations)
                )
                done = dict(
                    conn.execute(sql.SQL("SELECT version, name FROM {}").format(migrations))
                )
                unknown = sorted(v for v in done if v > LATEST_MIGRATION)
                if unknown:
                    raise StoreError(
                        f"PostgreSQL store {self.url!r} (schema {self.schema!r}) has schema "
                        f"migration {unknown[-1]} ({done[unknown[-1]]!r}) from a newer "
                        f"lifecycle; this version knows migrations 1 to {LATEST_MIGRATION}: "
                        "upgrade lifecycle to open it"
                    )
                applied = []
                for number, name, statements in MIGRATIONS:
                    if number in done:
                        continue
                    for statement in statements:
                        if statement == "fill checksums":
                            self._fill_checksums(conn)
                        else:
                            conn.execute(sql.SQL(statement).format(schema=schema))
                    conn.execute(
                        sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(
                            migrations
                        ),
                        (number, name),
                    )
                    applied.append(number)
        except psycopg.Error as exc:
            raise self._error(exc, "apply schema migrations") from None
        finally:
            conn.close()
        if applied:
            log.info("postgres_store.migrated", url=self.url, schema=self.schema, applied=applied)

    def _fill_checksums(self, conn: psycopg.Connection[Any]) -> None:
        """Migration 2, in place: the checksum of every row already stored, page by page."""
        from psycopg import sql

        table = sql.SQL("{}.lifecycle_entries").format(sql.Identifier(self.schema))
        after = ""
        while True:
            rows = conn.execute(
                sql.SQL("SELECT key, value FROM {} WHERE key > %s ORDER BY key LIMIT %s").format(
                    table
                ),
                (after, _FILL_PAGE),
            ).fetchall()
            if not rows:
                return
            with conn.cursor() as cur:
                cur.executemany(
                    sql.SQL("UPDATE {} SET crc = %s WHERE key = %s").format(table),
                    [(row_crc(key, bytes(value)), key) for key, value in rows],
                )
            after = rows[-1][0]

    # -- reads -----------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        check_storage_key(key)
        row = self._run(
            f"read {key!r}", lambda conn: conn.execute(self._q["get"], (key,)).fetchone()
        )
        return None if row is None else checked_row(key, *row)

    def _select(
        self, prefix: str, after: str | None, reverse: bool, count: int | None, values: bool
    ) -> tuple[bytes, list[object]]:
        """The range query for up to ``count`` rows under ``prefix``, past ``after``."""
        args: list[object] = []
        if prefix:
            args += [prefix, prefix_end(prefix)]
        if after is not None:
            args.append(after)
        args.append(count)  # LIMIT NULL: no limit
        shape = (bool(prefix), after is not None, reverse, values)
        query = self._selects.get(shape)
        if query is None:
            query = self._selects[shape] = self._compose_select(*shape)
        return query, args

    def _compose_select(self, prefix: bool, after: bool, reverse: bool, values: bool) -> bytes:
        from psycopg import sql

        where: list[sql.Composable] = []
        if prefix:
            where += [sql.SQL("key >= %s"), sql.SQL("key < %s")]
        if after:
            where.append(sql.SQL("key < %s" if reverse else "key > %s"))
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL("key, value, version, crc" if values else "key"), self._table
        )
        if where:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(where)
        query += sql.SQL(" ORDER BY key DESC LIMIT %s" if reverse else " ORDER BY key LIMIT %s")
        return query.as_bytes(None)

    def _page(
        self, prefix: str, after: str | None, reverse: bool, count: int | None, values: bool
    ) -> list[tuple[Any, ...]]:
        query, args = self._select(prefix, after, reverse, count, values)
        return self._run(
            f"scan prefix {prefix!r}", lambda conn: conn.execute(query, args).fetchall()
        )

    # -- writes ----------------------------------------------------------------------------

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        check_storage_key(key)
        data = bytes(value)
        crc = row_crc(key, data)
        q = self._q
        if self._indexing and _indexes(key):
            # The write and its index update as one statement (see _one_statement).
            return self._one_statement([Put(key, data, expected_version)], [data], [crc])[0]

        def put(conn: psycopg.Connection[Any]) -> int:
            if expected_version is None:
                row = conn.execute(q["upsert"], (key, data, crc)).fetchone()
            elif expected_version == 0:
                row = conn.execute(q["create"], (key, data, 1, crc)).fetchone()
            else:
                row = conn.execute(q["swap"], (data, crc, key, expected_version)).fetchone()
            if row is not None:
                return int(row[0])
            found = self._version(conn, key)
            if found == expected_version:  # deleted or recreated in between: try again
                raise _LostRace
            raise VersionConflict(key, expected_version, found)

        return self._run(f"write {key!r}", self._indexed(put, [(key, data)]))

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        check_storage_key(key)
        q = self._q

        def delete(conn: psycopg.Connection[Any]) -> bool:
            if expected_version is None:
                return conn.execute(q["delete"], (key,)).fetchone() is not None
            if expected_version == 0:
                found = self._version(conn, key)
                if found:
                    raise VersionConflict(key, 0, found)
                return False
            if conn.execute(q["delete_at"], (key, expected_version)).fetchone() is not None:
                return True
            found = self._version(conn, key)
            if found == expected_version:
                raise _LostRace
            raise VersionConflict(key, expected_version, found)

        return self._run(f"delete {key!r}", self._indexed(delete, [(key, None)]))

    def batch(self, ops: Sequence[Op]) -> list[int]:
        check_ops(ops)
        if not ops:
            return []
        values = [bytes(op.value) if isinstance(op, Put) else b"" for op in ops]
        crcs = [row_crc(op.key, value) for op, value in zip(ops, values, strict=True)]
        if len({op.key for op in ops}) == len(ops) and all(
            isinstance(op, Put) or op.expected_version != 0 for op in ops
        ):
            return self._one_statement(ops, values, crcs)
        # Apply in key order (ops on one key keep their order): concurrent batches then
        # take their row and insert locks in the same order and cannot deadlock.
        order = sorted(range(len(ops)), key=lambda i: ops[i].key)
        q = self._q

        from lifecycle.search import postgres_index

        def batch(conn: psycopg.Connection[Any]) -> list[int]:
            with conn.transaction():
                keys = sorted({op.key for op in ops})
                stored = dict(conn.execute(q["lock"], (keys,)).fetchall())
                plan = plan_batch(ops, lambda key, _: int(stored.get(key, 0)))
                for i in order:
                    op, current, version = plan[i]
                    if isinstance(op, Put):
                        if current == 0:
                            # Absent when locked, so no row lock: a concurrent insert
                            # shows up here as a conflict, and we start over.
                            row = conn.execute(
                                q["create"], (op.key, values[i], 1, crcs[i])
                            ).fetchone()
                            if row is None:
                                raise _LostRace
                        else:
                            conn.execute(q["set"], (values[i], crcs[i], version, op.key))
                    elif current:
                        conn.execute(q["delete"], (op.key,))
                if self._indexing:  # queued for the search index, in this transaction
                    postgres_index.enqueue(self, conn, [(op.key, None) for op in ops])
                return [planned.version for planned in plan]

        return self._run(f"apply a batch of {len(ops)} operations", batch)

    def _one_statement(
        self, ops: Sequence[Op], values: Sequence[bytes], crcs: Sequence[int]
    ) -> list[int]:
        """A batch on distinct keys (a checkpoint and its pointer) as one statement: each
        op is a data-modifying CTE with its version check in its WHERE or ON CONFLICT,
        and the statement divides by the number of rows the checked ones changed, so a
        refused check raises and the whole statement, every write in it, rolls back. One
        round trip instead of five (BEGIN, SELECT ... FOR UPDATE, the writes, COMMIT).
        The keys the search index keeps are queued for it by one more CTE of the same
        statement (lifecycle.search.postgres_index), so they commit, or roll back, with
        the writes."""
        order = sorted(range(len(ops)), key=lambda i: ops[i].key)
        from lifecycle.search import postgres_index

        queued = (
            postgres_index.queued_keys([(op.key, None) for op in ops]) if self._indexing else []
        )
        query, args = self._statement(
            tuple(_shape(ops[i]) for i in order), ops, order, values, crcs, len(queued)
        )
        args += queued
        pg = self._psycopg

        def batch(conn: psycopg.Connection[Any]) -> list[int]:
            try:
                row = conn.execute(query, args).fetchone()
            except pg.errors.DivisionByZero:
                self._refused(conn, ops)
            assert row is not None
            by_order = dict(zip(order, row[: len(ops)], strict=True))
            return [0 if isinstance(ops[i], Delete) else int(by_order[i]) for i in range(len(ops))]

        return self._run(f"apply a batch of {len(ops)} operations", batch)

    def _statement(
        self,
        shapes: tuple[str, ...],
        ops: Sequence[Op],
        order: Sequence[int],
        values: Sequence[bytes],
        crcs: Sequence[int],
        queued: int = 0,
    ) -> tuple[bytes, list[object]]:
        """The one statement of :meth:`_one_statement` (rendered once per shape and
        number of keys queued for the search index) and its arguments, the ops in key
        order (the queued keys follow them)."""
        query = self._statements.get((shapes, queued))
        if query is None:
            query = self._statements[(shapes, queued)] = self._compose_statement(shapes, queued)
        args: list[object] = []
        for i in order:
            op = ops[i]
            if isinstance(op, Put):
                if op.expected_version is None or op.expected_version == 0:
                    args += [op.key, values[i], crcs[i]]
                else:
                    args += [values[i], crcs[i], op.key, op.expected_version]
            elif op.expected_version is None:
                args.append(op.key)
            else:
                args += [op.key, op.expected_version]
        return query, args

    def _compose_statement(self, shapes: tuple[str, ...], queued: int) -> bytes:
        from psycopg import sql

        ctes = []
        checked = []
        for n, kind in enumerate(shapes):
            ctes.append(f"w{n} AS ({_CTE[kind]})")
            if kind not in ("upsert", "delete"):
                checked.append(f"(SELECT count(*) FROM w{n})")  # noqa: S608 - fixed
        if queued:
            ctes.append("{ix}")
        columns = [f"(SELECT version FROM w{n})" for n in range(len(shapes))]  # noqa: S608
        if checked:
            columns.append(f"1 / ({' * '.join(checked)})")
        text = "WITH " + ", ".join(ctes) + " SELECT " + ", ".join(columns)
        parts: dict[str, sql.Composable] = {"t": self._table}
        if queued:
            from lifecycle.search import postgres_index

            parts["ix"] = postgres_index.enqueue_cte(self, queued)
        return sql.SQL(text).format(**parts).as_bytes(None)

    def _refused(self, conn: psycopg.Connection[Any], ops: Sequence[Op]) -> NoReturn:
        """A checked write of the statement changed no row: raise the VersionConflict of
        the first op whose expected version the stored one is not (or try again: the
        stored versions moved back in between)."""
        keys = sorted({op.key for op in ops})
        stored = dict(conn.execute(self._q["versions"], (keys,)).fetchall())
        for op in ops:
            if op.expected_version is not None:
                found = int(stored.get(op.key, 0))
                if found != op.expected_version:
                    raise VersionConflict(op.key, op.expected_version, found)
        raise _LostRace

    def _indexed(
        self, work: Callable[[psycopg.Connection[Any]], T], changes: list[tuple[str, bytes | None]]
    ) -> Callable[[psycopg.Connection[Any]], T]:
        """``work``, and the keys queued for the search index in the same transaction
        (lifecycle.search.postgres_index); ``work`` alone for keys the index ignores."""
        from lifecycle.search import postgres_index

        if not self._indexing or not postgres_index.touches_index(changes):
            return work

        def both(conn: psycopg.Connection[Any]) -> T:
            with conn.transaction():
                result = work(conn)
                postgres_index.enqueue(self, conn, changes)
            return result

        return both

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if os.getpid() == self._pid:
            self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema!r})"
