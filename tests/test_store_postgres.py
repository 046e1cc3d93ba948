"""What the PostgreSQL adapter promises beyond the shared Store contract.

Runs against a real throwaway server (tests/pgserver.py); skips without one,
fails without one when $CI is set.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cas_worker
import pgserver
import pytest

from lifecycle.errors import InvalidStoreURL, StoreError, StoreUnavailable, VersionConflict
from lifecycle.stores import open_store
from lifecycle.stores.base import Put
from lifecycle.stores.postgres import LATEST_MIGRATION, PostgresStore, check_schema

psycopg = pytest.importorskip("psycopg")

postgres_url = pgserver.postgres_url  # the session fixture: one server for this module

PASSWORD = "hunter2-Sekret"
TIMEOUT = 60


def with_schema(url: str, schema: str) -> str:
    return f"{url}?schema={schema}"


@pytest.fixture
def schema() -> str:
    return pgserver.unique_schema()


@pytest.fixture
def store(postgres_url: str, schema: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url, schema=schema)
    yield opened
    opened.close()


def sql_rows(url: str, query: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


# -- URLs and opening -------------------------------------------------------------------------


def test_both_url_schemes_open_through_open_store(postgres_url: str, schema: str) -> None:
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(with_schema(url, schema))
        try:
            assert isinstance(store, PostgresStore)
            assert store.schema == schema
            store.put("p/k", b"v")
        finally:
            store.close()


@pytest.mark.parametrize("name", ["Upper", "has-dash", "a;drop", "pg_catalog", "", "x" * 64, "1a"])
def test_schema_name_outside_the_strict_pattern_is_refused(postgres_url: str, name: str) -> None:
    with pytest.raises(InvalidStoreURL, match="schema name"):
        check_schema(name)
    with pytest.raises(InvalidStoreURL, match="schema name"):
        PostgresStore(postgres_url, schema=name)


def test_schema_from_the_url_is_validated_too(postgres_url: str) -> None:
    with pytest.raises(InvalidStoreURL, match="schema name"):
        PostgresStore(postgres_url + "?schema=x%3Bdrop")


def test_store_keeps_its_tables_in_its_own_schema(store: PostgresStore, postgres_url: str) -> None:
    store.put("p/k", b"v")
    tables = sql_rows(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "ORDER BY table_name",
        store.schema,
    )
    assert tables == [
        ("lifecycle_entries",),
        ("lifecycle_migrations",),
        ("lifecycle_search",),  # the search index (lifecycle.search.postgres_index)
        ("lifecycle_search_meta",),
        ("lifecycle_search_queue",),
        ("lifecycle_search_text",),
    ]


# -- migrations -------------------------------------------------------------------------------


def migrations(url: str, schema: str) -> list[tuple[object, ...]]:
    return sql_rows(url, f"SELECT version, name FROM {schema}.lifecycle_migrations ORDER BY 1")


def test_new_schema_records_every_migration_once(store: PostgresStore, postgres_url: str) -> None:
    assert migrations(postgres_url, store.schema) == [
        (1, "create lifecycle_entries"),
        (2, "add lifecycle_entries.crc"),
    ]
    assert LATEST_MIGRATION == 2


def test_reopening_applies_nothing_again_and_keeps_data(postgres_url: str, schema: str) -> None:
    first = PostgresStore(postgres_url, schema=schema)
    first.put("p/k", b"v")
    first.close()
    second = PostgresStore(postgres_url, schema=schema)
    try:
        entry = second.get("p/k")
    finally:
        second.close()
    assert migrations(postgres_url, schema) == [
        (1, "create lifecycle_entries"),
        (2, "add lifecycle_entries.crc"),
    ]
    assert entry is not None
    assert (entry.value, entry.version) == (b"v", 1)


def test_concurrent_first_opens_migrate_exactly_once(postgres_url: str, schema: str) -> None:
    start = threading.Barrier(6)
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        start.wait(timeout=TIMEOUT)
        try:
            opened.append(PostgresStore(postgres_url, schema=schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    for store in opened:
        store.close()
    assert errors == []
    assert len(opened) == 6
    assert migrations(postgres_url, schema) == [
        (1, "create lifecycle_entries"),
        (2, "add lifecycle_entries.crc"),
    ]


def test_schema_from_a_newer_lifecycle_is_refused(postgres_url: str, schema: str) -> None:
    PostgresStore(postgres_url, schema=schema).close()
    sql_rows(
        postgres_url,
        f"INSERT INTO {schema}.lifecycle_migrations (version, name) "
        "VALUES (9, 'future step') RETURNING version",
    )
    with pytest.raises(StoreError, match=r"migration 9 \('future step'\).*upgrade lifecycle"):
        PostgresStore(postgres_url, schema=schema)


# -- key order --------------------------------------------------------------------------------

MIXED_KEYS = [
    "p/a", "p/B", "p/b", "p/A", "p/Z", "p/z", "p/_a", "p/a_b", "p/a-b", "p/a.b", "p/a0",
    "p/aB", "p/ab", "p/9", "p/0", "p/10", "p/a/b", "p/a.b/c", "p/ab-", "p/a__", "p/A-Z",
]  # fmt: skip


def test_keys_sort_by_code_point_like_python(store: PostgresStore) -> None:
    store.batch([Put(k, b"v") for k in MIXED_KEYS])
    assert store.list_keys("p/") == sorted(MIXED_KEYS)
    assert store.list_keys("p/", reverse=True) == sorted(MIXED_KEYS, reverse=True)
    assert [e.key for e in store.scan("p/a")] == sorted(k for k in MIXED_KEYS if k[2] == "a")


def test_prefix_is_a_plain_string_prefix_under_any_case(store: PostgresStore) -> None:
    store.batch([Put(k, b"v") for k in MIXED_KEYS])
    assert store.list_keys("p/a") == sorted(k for k in MIXED_KEYS if k.startswith("p/a"))
    assert store.list_keys("p/A") == ["p/A", "p/A-Z"]
    assert store.list_keys("p/a.b") == ["p/a.b", "p/a.b/c"]


def test_database_default_collation_would_order_differently(postgres_url: str) -> None:
    """The control for the two tests above: without COLLATE "C" the order would differ."""
    (provider,) = sql_rows(
        postgres_url, "SELECT datlocprovider FROM pg_database WHERE datname = current_database()"
    )[0]
    if provider != "i":
        pytest.skip("the test server has no linguistic (ICU) default collation")
    default_order = [
        row[0]
        for row in sql_rows(postgres_url, "SELECT unnest(%s::text[]) AS k ORDER BY k", MIXED_KEYS)
    ]
    assert default_order != sorted(MIXED_KEYS)


def test_prefix_scan_is_an_index_range_on_the_primary_key(
    store: PostgresStore, postgres_url: str
) -> None:
    store.batch([Put(f"p/k{i:04d}", b"v") for i in range(300)])
    for reverse in (False, True):
        query, args = store._select("p/k01", "p/k0150", reverse, 50, values=True)
        with psycopg.connect(postgres_url) as conn:
            # Make every other plan cost more: a Sort or Seq Scan that still shows up
            # means the primary key cannot serve this range or this order.
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
                conn.execute(f"SET LOCAL {setting} = off")
            text = query.decode()
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + text, args).fetchall())
        scan = "Index Scan Backward" if reverse else "Index Scan"
        assert f"{scan} using lifecycle_entries_pkey" in plan, plan
        assert "Index Cond" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert "Sort" not in plan, plan  # the index gives the order


# -- secrets ----------------------------------------------------------------------------------


def test_password_never_appears_in_a_connection_error(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    port = pgserver._free_port()  # nothing listens there
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:{port}/db"
    with pytest.raises(StoreUnavailable) as info:
        PostgresStore(url, timeout=2)
    err = info.value
    texts = [str(err), repr(err), str(err.__context__), repr(err.__context__)]
    out, errout = capfd.readouterr()
    texts += [out, errout, caplog.text]
    assert f"127.0.0.1:{port}" in str(err)
    assert "someone:***@" in str(err)
    assert [t for t in texts if PASSWORD in t] == []
    assert err.__cause__ is None


def test_password_never_appears_in_a_bad_url_error() -> None:
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:5432/db?no_such_option=1"
    with pytest.raises(InvalidStoreURL) as info:
        PostgresStore(url)
    assert PASSWORD not in str(info.value)
    assert "no_such_option" in str(info.value)


def test_store_url_and_repr_hide_the_password(postgres_url: str, schema: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@", 1)  # trust auth ignores it
    store = PostgresStore(url, schema=schema)
    try:
        store.put("p/k", b"v")
        shown = [store.url, repr(store)]
    finally:
        store.close()
    assert [s for s in shown if PASSWORD in s] == []
    assert store.url == url.replace(PASSWORD, "***") + f"?schema={schema}"


# -- concurrency ------------------------------------------------------------------------------


def test_four_processes_cas_incrementing_one_key_lose_no_update(
    postgres_url: str, schema: str, tmp_path: Path
) -> None:
    url = with_schema(postgres_url, schema)
    PostgresStore(url).close()
    results = cas_worker.run_all(url, 60, tmp_path, count=4)
    assert [rc for rc, _, _ in results] == [0, 0, 0, 0], results
    store = PostgresStore(url)
    try:
        entry = store.get("p/counter")
    finally:
        store.close()
    assert entry is not None
    assert (entry.value, entry.version) == (b"240", 240)


def test_concurrent_cas_batches_on_two_keys_stay_in_step(store: PostgresStore) -> None:
    def bump_both(times: int, first: str, second: str) -> None:
        for _ in range(times):
            while True:
                a, b = store.get(first), store.get(second)
                try:
                    store.batch(
                        [
                            Put(first, b"x", expected_version=a.version if a else 0),
                            Put(second, b"x", expected_version=b.version if b else 0),
                        ]
                    )
                    break
                except VersionConflict:
                    continue

    # Half the threads name the keys in the other order: no deadlock, no lost update.
    threads = [
        threading.Thread(
            target=bump_both, args=(25, *(("p/x", "p/y") if i % 2 else ("p/y", "p/x")))
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    x, y = store.get("p/x"), store.get("p/y")
    assert x is not None
    assert y is not None
    assert (x.version, y.version) == (100, 100)


def test_concurrent_blind_batches_creating_the_same_keys_all_succeed(store: PostgresStore) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def create(order: list[str]) -> None:
        start.wait(timeout=TIMEOUT)
        try:
            store.batch([Put(k, b"v") for k in order])
        except BaseException as exc:
            errors.append(exc)

    keys = [f"p/new{i}" for i in range(8)]
    threads = [
        threading.Thread(target=create, args=(keys if i % 2 else keys[::-1],)) for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert errors == []
    assert [e.version for e in store.scan("p/new")] == [4] * 8


# -- outages ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_server(postgres_url: str) -> Iterator[pgserver.PostgresServer]:
    """A server of our own to stop and start (needs the shared one only to know we can)."""
    server = pgserver.PostgresServer()
    try:
        server.setup()
    except pgserver.PostgresServerError as exc:
        pgserver._unavailable(str(exc))
    try:
        yield server
    finally:
        server.cleanup()


def test_outage_is_store_unavailable_and_the_pool_recovers_after_restart(
    private_server: pgserver.PostgresServer, schema: str
) -> None:
    store = PostgresStore(private_server.url(pgserver.TEST_DATABASE), schema=schema, timeout=2)
    try:
        store.put("p/k", b"before")
        private_server.stop()
        try:
            with pytest.raises(StoreUnavailable, match="PostgreSQL store"):
                store.put("p/k", b"during")
            with pytest.raises(StoreUnavailable, match="PostgreSQL store"):
                store.get("p/k")
        finally:
            private_server.start()
        entry = None
        deadline = time.monotonic() + TIMEOUT
        while entry is None and time.monotonic() < deadline:
            try:
                entry = store.get("p/k")
            except StoreUnavailable:
                time.sleep(0.2)  # the pool reconnects with back-off
        assert entry is not None
        assert (entry.value, entry.version) == (b"before", 1)
        assert store.put("p/k", b"after", expected_version=1) == 2
    finally:
        store.close()


def test_restart_while_idle_is_invisible_to_the_next_operation(
    private_server: pgserver.PostgresServer, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifecycle.stores import postgres

    monkeypatch.setattr(postgres, "RECHECK_AFTER", 0.0)  # as if idle past the threshold
    store = PostgresStore(private_server.url(pgserver.TEST_DATABASE), schema=schema, timeout=10)
    try:
        store.put("p/k", b"before")
        private_server.stop()
        private_server.start()
        entry = store.get("p/k")  # the pool finds its connection dead and makes a new one
        assert entry is not None
        assert (entry.value, entry.version) == (b"before", 1)
    finally:
        store.close()


def test_closed_store_refuses_operations_and_closes_its_pool(
    postgres_url: str, schema: str
) -> None:
    store = PostgresStore(postgres_url, schema=schema)
    store.close()
    store.close()  # closing twice is harmless
    assert store._pool.closed
    with pytest.raises(StoreError, match="is closed"):
        store.get("p/k")
