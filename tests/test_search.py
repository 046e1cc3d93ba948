"""``lifecycle.search``: ranked full-text search, on the file, SQLite and PostgreSQL
stores (each with its own index) and on a store without one (memory)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from procs import ROOT, environment
from stores import STORE_FACTORIES

from lifecycle import Learning, LearningType, SessionManager, keys
from lifecycle.errors import InvalidQuery, VersionConflict
from lifecycle.search import rebuild, search
from lifecycle.search.query import MAX_QUERY_CHARS
from lifecycle.stores.base import ProjectStore, Put, Store
from lifecycle.stores.fallback import FallbackStore
from lifecycle.stores.file import FileStore
from lifecycle.stores.memory import MemoryStore
from lifecycle.stores.sqlite import SqliteStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STORES = ("file", "sqlite", "postgres", "memory")


def make_store(name: str, tmp_path: Path) -> Store:
    return STORE_FACTORIES[name](tmp_path)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = make_store(request.param, tmp_path)
    yield made
    made.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def worked(store: Store, project: str = "demo") -> SessionManager:
    """One session with a task, a decision, a learning, a checkpoint and an end."""
    clock = Clock()
    m = SessionManager(store=store, project=project, clock=clock)
    m.start_session(command="impl", restore=False, change_id="add-search")
    m.add_task("T001", "Write the tokenizer for the query parser")
    m.record_decision(
        "Use bm25 ranking", rationale="titles weigh twice as much", impact="architectural"
    )
    clock.now += timedelta(minutes=5)
    m.complete_task("T001", priority="high")
    m.capture_learning(
        Learning(
            type=LearningType.SOLUTION,
            key="learning/solutions/jwt-expiry-fix",
            content="Fixed by raising the token expiry to seven days",
            timestamp=clock.now,
            tags=("auth", "jwt"),
        )
    )
    clock.now += timedelta(days=2)
    m.end_session(success=True, phase="Phase 2: Search")
    return m


def kinds_and_keys(hits: list) -> set[tuple[str, str]]:
    return {(h.kind, h.key) for h in hits}


# -- what is found -----------------------------------------------------------------------


def test_a_learning_is_found_by_its_content_with_key_kind_timestamp_and_snippet(
    store: Store,
) -> None:
    worked(store)
    (hit,) = search(store, "demo", "token expiry")
    assert (hit.key, hit.kind) == ("learning/solutions/jwt-expiry-fix", "learning")
    assert hit.timestamp == T0 + timedelta(minutes=5)
    assert "[token] [expiry]" in hit.snippet


def test_a_learning_is_found_by_its_tags_and_its_key(store: Store) -> None:
    worked(store)
    assert [h.key for h in search(store, "demo", "auth")] == ["learning/solutions/jwt-expiry-fix"]
    assert [h.key for h in search(store, "demo", "jwt", kinds="learning")] == [
        "learning/solutions/jwt-expiry-fix"
    ]


def test_a_decision_is_found_once_by_its_rationale_though_many_records_hold_it(
    store: Store,
) -> None:
    worked(store)
    hits = search(store, "demo", "titles weigh")
    assert [h.kind for h in hits] == ["decision"]
    assert "[titles] [weigh]" in hits[0].snippet


def test_a_decision_older_than_the_log_keeps_is_found_in_its_days_segment(store: Store) -> None:
    """``project_state/decisions_log`` keeps the newest decisions; each day's segment
    (``project_state/decisions/{day}``) keeps all of them, and search reads both."""
    from lifecycle import keys, limits

    clock = Clock()
    for n in range(2):  # two sessions: the first one's decisions leave its checkpoints
        m = SessionManager(store=store, project="demo", clock=clock)
        m.start_session(restore=False)
        for i in range(limits.DECISIONS_LOG_ENTRIES if n else 1):
            m.record_decision("use the quokka cache" if not n else f"routine choice {i}")
        clock.now += timedelta(minutes=5)
        m.end_session()
    logged = ProjectStore(store, "demo").get(keys.DECISIONS_LOG)
    assert logged is not None and b"quokka" not in logged.value  # past the log's window
    project = ProjectStore(store, "demo")
    for key in project.list_keys(""):  # as retention leaves it: the checkpoints gone too
        if not key.startswith(keys.DECISIONS_DAY_PREFIX):
            project.delete(key)
    hits = search(store, "demo", "quokka", kinds="decision")
    assert [h.kind for h in hits] == ["decision"]


def test_a_task_is_found_once_by_its_description(store: Store) -> None:
    worked(store)
    hits = search(store, "demo", "tokenizer", kinds="task")
    assert [(h.kind, h.ident) for h in hits] == [("task", "T001")]


def test_the_session_and_its_summaries_and_final_checkpoint_are_found_by_the_phase(
    store: Store,
) -> None:
    worked(store)
    found = {h.kind for h in search(store, "demo", "Phase 2")}
    assert found == {"checkpoint", "session", "summary"}
    (session,) = search(store, "demo", "impl add-search", kinds="session")
    assert session.key.startswith("session/")


TOKEN = "ghp_" + "Z7q" * 12  # a GitHub token's shape: redact.py replaces it when stored


def test_a_prompt_is_found_once_a_checkpoint_holds_it_and_never_with_its_secret(
    store: Store,
) -> None:
    from lifecycle.integrations.claude_code import PROMPTS
    from lifecycle.search.documents import PROMPTS as INDEXED_PROMPTS

    assert INDEXED_PROMPTS == PROMPTS  # the key the hook keeps them under is the one indexed
    m = SessionManager(store=store, project="demo", clock=Clock())
    m.start_session(restore=False)
    asked = f"rename the walrus parser and push with {TOKEN}"
    m.update_context({PROMPTS: [asked]})
    assert search(store, "demo", "walrus") == []  # only the live record holds it yet
    m.create_checkpoint(phase="one")
    m.update_context({PROMPTS: [asked, "now the quokka lexer"]})
    m.create_checkpoint(phase="two")  # carries the first prompt again
    hits = search(store, "demo", "walrus")
    assert [(h.kind, h.ident.split("/")[0]) for h in hits] == [("prompt", m.session_id)]
    assert "[walrus]" in hits[0].snippet and "redacted" in hits[0].snippet
    assert TOKEN not in hits[0].snippet
    assert search(store, "demo", TOKEN) == []
    assert [h.kind for h in search(store, "demo", "quokka", kinds="prompt")] == ["prompt"]


def test_a_prompt_given_to_the_claude_code_hook_is_found_by_the_command(tmp_path: Path) -> None:
    import procs

    def hook(name: str, **fields: str) -> None:
        payload = {"session_id": "claude-1", "cwd": str(tmp_path), "hook_event_name": name}
        done = procs.run(["hook", "claude"], cwd=tmp_path, stdin=json.dumps({**payload, **fields}))
        assert done.returncode == 0, done.stderr

    hook("SessionStart", source="startup")
    hook("UserPromptSubmit", prompt=f"make the axolotl report faster, token {TOKEN}")
    hook("SessionEnd", reason="prompt_input_exit")
    done = procs.run(["search", "axolotl", "--type", "prompt", "--format", "json"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert [h["kind"] for h in hits] == ["prompt"] and "[axolotl]" in hits[0]["snippet"]
    assert TOKEN not in done.stdout


def test_kinds_since_and_limit_narrow_the_hits(store: Store) -> None:
    worked(store)
    everything = search(store, "demo", "phase")
    assert len(everything) >= 3
    assert len(search(store, "demo", "phase", limit=1)) == 1
    assert {h.kind for h in search(store, "demo", "phase", kinds=["summary"])} == {"summary"}
    assert search(store, "demo", "token", since=T0 + timedelta(days=1)) == []
    assert len(search(store, "demo", "token", since="2026-03-02")) == 1


def test_another_projects_records_are_not_found(store: Store) -> None:
    worked(store, project="other")
    worked(store, project="demo")
    assert {h.key for h in search(store, "other", "token")} == {"learning/solutions/jwt-expiry-fix"}
    assert search(store, "third", "token") == []


def test_hits_are_ranked_best_first(store: Store) -> None:
    p = ProjectStore(store, "demo")
    p.put("memories/one", b"lexer lexer lexer parser")
    p.put("memories/two", b"a note that names the lexer once among many other words")
    hits = search(store, "demo", "lexer")
    assert [h.key for h in hits] == ["memories/one", "memories/two"]
    assert hits[0].score > hits[1].score


# -- kept current on every write ---------------------------------------------------------


def test_the_index_follows_every_put_and_delete(store: Store) -> None:
    p = ProjectStore(store, "demo")
    assert search(store, "demo", "zebra") == []
    p.put("memories/animals", b"a zebra")
    assert [h.key for h in search(store, "demo", "zebra")] == ["memories/animals"]
    p.put("memories/animals", b"a giraffe")
    assert search(store, "demo", "zebra") == []
    assert [h.key for h in search(store, "demo", "giraffe")] == ["memories/animals"]
    p.batch([Put("memories/more", b"zebra again")])
    assert [h.key for h in search(store, "demo", "zebra")] == ["memories/more"]
    p.delete("memories/more")
    p.delete("memories/animals")
    assert search(store, "demo", "zebra") == [] == search(store, "demo", "giraffe")


def test_a_batch_that_fails_its_compare_and_swap_leaves_the_index_as_it_was(store: Store) -> None:
    p = ProjectStore(store, "demo")
    p.put("memories/a", b"first version")
    with pytest.raises(VersionConflict):
        p.batch([Put("memories/b", b"walrus"), Put("memories/a", b"walrus", expected_version=7)])
    assert search(store, "demo", "walrus") == []
    assert p.get("memories/b") is None


def test_a_write_refused_by_the_check_of_a_key_the_index_ignores_leaves_the_index_as_it_was(
    store: Store,
) -> None:
    """One indexed key beside a checked one (a checkpoint and its pointer): on PostgreSQL
    the index's update is part of the write's statement, and rolls back with it."""
    p = ProjectStore(store, "demo")
    p.put(keys.LATEST, b"1")
    with pytest.raises(VersionConflict):
        p.batch([Put("memories/b", b"walrus"), Put(keys.LATEST, b"2", expected_version=7)])
    with pytest.raises(VersionConflict):
        p.put("memories/b", b"walrus", expected_version=3)
    assert search(store, "demo", "walrus") == []
    assert p.get("memories/b") is None
    p.put("memories/b", b"walrus", expected_version=0)
    with pytest.raises(VersionConflict):
        p.put("memories/b", b"narwhal", expected_version=0)
    assert [h.key for h in search(store, "demo", "walrus")] == ["memories/b"]
    assert search(store, "demo", "narwhal") == []


def test_a_record_that_is_not_json_or_of_a_future_version_is_stored_and_gives_no_error(
    store: Store,
) -> None:
    p = ProjectStore(store, "demo")
    p.put("learning/solutions/broken", b"\xff not json {")
    future = {"kind": "learning", "schema_version": 99, "content": "from the future", "x": [1]}
    p.put("learning/solutions/future", json.dumps(future).encode())
    assert p.get("learning/solutions/broken") is not None
    assert [h.key for h in search(store, "demo", "future")] == ["learning/solutions/future"]


# -- hostile queries: clear errors, nothing changed ----------------------------------------


HOSTILE_SYNTAX = [
    "NEAR(token expiry)",
    "token OR expiry",
    "token AND NOT expiry",
    "title:token",
    '"token',
    "token*",
    "-token",
    "{body}: token",
    "^token",
    "token + expiry",
    "'; DROP TABLE entries; --",
]


@pytest.mark.parametrize("query", HOSTILE_SYNTAX)
def test_query_syntax_is_searched_for_as_words_never_interpreted(store: Store, query: str) -> None:
    p = ProjectStore(store, "demo")
    p.put("memories/syntax", f"the text {query} as written".encode())
    p.put("memories/plain", b"token expiry")
    hits = search(store, "demo", query)
    assert "memories/syntax" in {h.key for h in hits}
    assert p.get("memories/plain") is not None


def test_a_query_of_only_operators_and_punctuation_is_refused(store: Store) -> None:
    with pytest.raises(InvalidQuery, match="no words"):
        search(store, "demo", '* " ( ) : ^ -')


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("a\x00b", "NUL"),
        ("x" * 1_000_000, "over the 1000-character limit"),
        ("x " * (MAX_QUERY_CHARS // 2 + 1), "over the 1000-character limit"),
        ("", "no words"),
        ("   ", "no words"),
        (" ".join(f"w{i}" for i in range(40)), "over the limit of 32"),
    ],
)
def test_a_hostile_query_is_a_clear_error_and_changes_nothing(
    store: Store, query: str, message: str
) -> None:
    worked(store)
    before = [(e.key, e.value, e.version) for e in store.scan("")]
    with pytest.raises(InvalidQuery, match=message):
        search(store, "demo", query)
    assert [(e.key, e.value, e.version) for e in store.scan("")] == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kinds": "learnings"}, "unknown kind 'learnings'"),
        ({"since": "last week"}, "is not a date"),
        ({"limit": 0}, "from 1 to 1000"),
        ({"limit": 10_001}, "from 1 to 1000"),
    ],
)
def test_a_bad_filter_is_a_clear_error(store: Store, kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        search(store, "demo", "token", **kwargs)


def test_a_hit_has_its_fields_as_json(store: Store) -> None:
    worked(store)
    (hit,) = search(store, "demo", "seven days")
    data = hit.as_dict()
    assert data["key"] == "learning/solutions/jwt-expiry-fix"
    assert data["kind"] == "learning"
    assert data["timestamp"] == "2026-03-02T09:05:00+00:00"
    assert "[seven] [days]" in data["snippet"]


# -- the indexes themselves ----------------------------------------------------------------


def test_the_file_store_builds_its_index_on_the_first_search_and_writes_none_before(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "s")
    worked(store)
    index = tmp_path / "s" / ".search" / "index.sqlite3"
    assert not index.exists()
    assert len(search(store, "demo", "token")) == 1
    assert index.exists()
    assert oct(index.stat().st_mode & 0o777) == "0o600"
    assert store.list_keys("") == FileStore(tmp_path / "s").list_keys("")  # never a key


def test_the_file_store_index_is_rebuilt_when_a_write_it_did_not_see_changed_a_folder(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "s")
    ProjectStore(store, "demo").put("memories/seen", b"otter")
    assert len(search(store, "demo", "otter")) == 1
    # A write the index never saw: another store's record file copied in by hand.
    other = FileStore(tmp_path / "other")
    ProjectStore(other, "demo").put("memories/unseen", b"otter beaver")
    src = tmp_path / "other" / "demo.d" / "memories.d" / "unseen.rec"
    shutil.copy(src, tmp_path / "s" / "demo.d" / "memories.d" / "unseen.rec")
    assert {h.key for h in search(store, "demo", "beaver")} == {"memories/unseen"}


def test_a_second_file_store_handle_keeps_the_index_current_too(tmp_path: Path) -> None:
    first = FileStore(tmp_path / "s")
    ProjectStore(first, "demo").put("memories/a", b"heron")
    assert len(search(first, "demo", "heron")) == 1
    second = FileStore(tmp_path / "s")  # another process would open it like this
    ProjectStore(second, "demo").put("memories/b", b"heron egret")
    assert {h.key for h in search(first, "demo", "egret")} == {"memories/b"}


def test_a_damaged_file_store_index_is_deleted_and_rebuilt(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "s")
    ProjectStore(store, "demo").put("memories/a", b"lynx")
    assert len(search(store, "demo", "lynx")) == 1
    store.close()
    index = tmp_path / "s" / ".search" / "index.sqlite3"
    for extra in index.parent.iterdir():
        if extra != index:
            extra.unlink()
    index.write_bytes(b"this is not an SQLite database" * 100)
    reopened = FileStore(tmp_path / "s")
    assert [h.key for h in search(reopened, "demo", "lynx")] == ["memories/a"]


def _drop_sqlite_index(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TABLE search_text; DROP TABLE search_docs; DROP TABLE search_sources;"
        " DROP TABLE search_meta; DROP TABLE search_queue;"
    )
    conn.close()


def test_an_sqlite_database_without_the_index_gets_it_at_its_first_search(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    worked(store)
    store.close()
    _drop_sqlite_index(tmp_path / "s.db")
    reopened = SqliteStore(tmp_path / "s.db")  # opening an older database builds nothing
    tables = sqlite3.connect(tmp_path / "s.db").execute(
        "SELECT count(*) FROM sqlite_master WHERE name LIKE 'search_%'"
    )
    assert tables.fetchone() == (0,)
    assert [h.key for h in search(reopened, "demo", "token")] == [
        "learning/solutions/jwt-expiry-fix"
    ]
    reopened.close()


def test_an_sqlite_index_of_an_older_version_is_rebuilt_at_the_first_search(
    tmp_path: Path,
) -> None:
    """Version 3 kept each document's record key in its row; 4 keeps it in a row of its
    own (search_sources): an older index is not written, then rebuilt by a search."""
    store = SqliteStore(tmp_path / "s.db")
    worked(store)
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    with conn:
        conn.execute("UPDATE search_meta SET value = '3' WHERE name = 'version'")
    conn.close()
    reopened = SqliteStore(tmp_path / "s.db")
    ProjectStore(reopened, "demo").put("memories/sea", b"a narwhal")
    assert [h.key for h in search(reopened, "demo", "narwhal")] == ["memories/sea"]
    assert [h.key for h in search(reopened, "demo", "token")] == [
        "learning/solutions/jwt-expiry-fix"
    ]
    reopened.close()


def test_a_store_opened_before_another_process_built_the_index_keeps_it_current(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "s.db")
    worked(store)
    store.close()
    _drop_sqlite_index(tmp_path / "s.db")
    writer = SqliteStore(tmp_path / "s.db")  # opened while there is no index
    searcher = SqliteStore(tmp_path / "s.db")
    assert search(searcher, "demo", "narwhal") == []  # builds the index
    ProjectStore(writer, "demo").put("memories/sea", b"a narwhal")
    assert [h.key for h in search(searcher, "demo", "narwhal")] == ["memories/sea"]
    writer.close()
    searcher.close()


def _pending_limit(store: Any) -> int | None:
    """The GIN index's gin_pending_list_limit (KB), None for PostgreSQL's default."""
    options = store._run(
        "read",
        lambda conn: conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = %s::regclass",
            (f'"{store.schema}".lifecycle_search_doc',),
        ).fetchone()[0],
    )
    found = [o.split("=")[1] for o in options or [] if o.startswith("gin_pending_list_limit=")]
    return int(found[0]) if found else None


def test_the_postgres_gin_index_keeps_a_short_pending_list_and_a_build_empties_it(
    tmp_path: Path,
) -> None:
    """Searches read the pending list through, and the planner counts it: a long one (the
    4 MB default) made two common words take a full table scan."""
    from lifecycle.search import postgres_index

    store = make_store("postgres", tmp_path)
    try:
        assert _pending_limit(store) == postgres_index.PENDING_KB
        worked(store)
        rebuild(store)
        pending = store._run(
            "read",
            lambda conn: conn.execute(
                "SELECT gin_clean_pending_list(%s::regclass)",
                (f'"{store.schema}".lifecycle_search_doc',),  # type: ignore[attr-defined]
            ).fetchone()[0],
        )
        assert pending == 0  # the build left nothing queued
    finally:
        store.close()


def test_a_postgres_index_of_version_4_gets_its_times_in_place_and_finds_the_same(
    tmp_path: Path,
) -> None:
    from lifecycle.search import postgres_index
    from lifecycle.stores.postgres import PostgresStore

    store = make_store("postgres", tmp_path)
    assert isinstance(store, PostgresStore)
    worked(store)
    queries = ("token", "bm25", "tokenizer", "phase", "impl")
    before = {q: [(h.kind, h.key, h.timestamp) for h in search(store, "demo", q)] for q in queries}
    schema = store.schema

    def downgrade(conn: object) -> None:  # what version 4 left: no times in the text table
        conn.execute(f'ALTER INDEX "{schema}".lifecycle_search_doc RESET (gin_pending_list_limit)')  # type: ignore[attr-defined]
        conn.execute(f'ALTER TABLE "{schema}".lifecycle_search_text DROP COLUMN ts')  # type: ignore[attr-defined]
        conn.execute(f"UPDATE \"{schema}\".lifecycle_search_meta SET value = '4'")  # type: ignore[attr-defined]

    store._run("downgrade", downgrade)
    url = store.url
    store.close()
    reopened = PostgresStore(url, schema=schema)
    try:
        version, mismatched = reopened._run(
            "check",
            lambda conn: (
                postgres_index._version(reopened, conn),
                conn.execute(
                    f'SELECT count(*) FROM "{schema}".lifecycle_search_text AS w'
                    f' JOIN "{schema}".lifecycle_search AS d USING (project, kind, ident)'
                    " WHERE w.ts <> d.ts"
                ).fetchone()[0],
            ),
        )
        assert (version, mismatched) == (postgres_index.INDEX_VERSION, 0)
        assert _pending_limit(reopened) == postgres_index.PENDING_KB
        after = {
            q: [(h.kind, h.key, h.timestamp) for h in search(reopened, "demo", q)] for q in queries
        }
        assert after == before
        ProjectStore(reopened, "demo").put("memories/sea", b"a narwhal")
        assert [h.key for h in search(reopened, "demo", "narwhal")] == ["memories/sea"]
    finally:
        reopened.close()


def test_rebuild_gives_the_same_hits(store: Store) -> None:
    worked(store)
    before = kinds_and_keys(search(store, "demo", "phase"))
    count = rebuild(store)
    assert count is None if isinstance(store, MemoryStore) else count > 0
    assert kinds_and_keys(search(store, "demo", "phase")) == before


def test_the_stores_find_the_same_things(tmp_path: Path) -> None:
    found = {}
    for name in STORES:
        made = make_store(name, tmp_path / name)
        worked(made)
        found[name] = {
            q: kinds_and_keys(search(made, "demo", q))
            for q in ("token", "bm25", "tokenizer", "phase", "impl")
        }
        made.close()
    assert found["file"] == found["sqlite"] == found["postgres"] == found["memory"]


def test_the_fallback_store_searches_its_primary(tmp_path: Path) -> None:
    store = FallbackStore(FileStore(tmp_path / "primary"), FileStore(tmp_path / "local"))
    ProjectStore(store, "demo").put("memories/a", b"falcon")
    assert [h.key for h in search(store, "demo", "falcon")] == ["memories/a"]


def test_the_manager_searches_its_project(tmp_path: Path) -> None:
    m = worked(SqliteStore(tmp_path / "s.db"))
    assert [h.key for h in m.search("token", kinds=["learning"])] == [
        "learning/solutions/jwt-expiry-fix"
    ]


# -- the command line ----------------------------------------------------------------------


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**environment(), "PYTHONPATH": str(ROOT)},
    )


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    done = run("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_the_command_prints_json_hits_with_key_kind_timestamp_snippet(demo_dir: Path) -> None:
    done = run("search", "file store", "--project", "demo", "--format", "json", cwd=demo_dir)
    assert done.returncode == 0, done.stderr
    hits = json.loads(done.stdout)
    assert hits and all({"key", "kind", "timestamp", "snippet"} <= set(h) for h in hits)
    assert {"decision", "task"} <= {h["kind"] for h in hits}


def test_the_command_filters_by_type_and_limit(demo_dir: Path) -> None:
    done = run(
        "search", "rename", "--project", "demo", "--type", "learning", "--limit", "5",
        "--format", "json", cwd=demo_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [h["key"] for h in json.loads(done.stdout)] == ["learning/patterns/atomic-rename"]


def test_the_command_refuses_a_hostile_query_in_one_line_with_exit_2(demo_dir: Path) -> None:
    before = sorted(str(p) for p in (demo_dir / ".lifecycle").rglob("*.rec"))
    for query in ("x" * 100_000, "( ) * :"):
        done = run("search", query, "--project", "demo", cwd=demo_dir)
        assert done.returncode == 2
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1
        assert done.stderr.startswith("lifecycle: error: the search query")
    done = run("search", "x", "--since", "yesterday", "--project", "demo", cwd=demo_dir)
    assert (done.returncode, done.stderr.count("\n")) == (2, 1)
    assert sorted(str(p) for p in (demo_dir / ".lifecycle").rglob("*.rec")) == before


def test_the_command_rebuilds_the_index_and_says_how_long_it_took(demo_dir: Path) -> None:
    done = run("search", "--rebuild", "--project", "demo", cwd=demo_dir)
    assert done.returncode == 0, done.stderr
    assert "search index rebuilt:" in done.stderr and " documents in " in done.stderr


def test_the_command_says_so_when_nothing_matches(demo_dir: Path) -> None:
    done = run("search", "xylophone", "--project", "demo", cwd=demo_dir)
    assert (done.returncode, done.stdout) == (0, "no match for 'xylophone'\n")


# -- the MCP tool ----------------------------------------------------------------------------


def test_the_mcp_tool_search_memory_finds_hits_and_refuses_hostile_queries(
    demo_dir: Path,
) -> None:
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    url = f"file://{demo_dir / '.lifecycle'}"
    seen: dict[str, object] = {}

    async def main() -> None:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lifecycle", "mcp", "--store", url, "--project", "demo"],
            env=environment(),
            cwd=ROOT,
        )
        with anyio.fail_after(60):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                tools = {t.name: t for t in (await s.list_tools()).tools}
                seen["read_only"] = tools["search_memory"].annotations.read_only_hint
                found = await s.call_tool("search_memory", {"query": "rename", "kind": "learning"})
                seen["hits"] = found.structured_content
                for query in ("a\x00b", "x" * 1_000_000):
                    bad = await s.call_tool("search_memory", {"query": query})
                    seen.setdefault("errors", []).append((bad.is_error, bad.content[0].text))

    anyio.run(main)
    assert seen["read_only"] is True
    hits = seen["hits"]["hits"]  # type: ignore[index]
    assert [h["key"] for h in hits] == ["learning/patterns/atomic-rename"]
    assert {"key", "kind", "timestamp", "snippet", "score"} == set(hits[0])
    errors = seen["errors"]
    assert [e[0] for e in errors] == [True, True]  # type: ignore[union-attr]
    # the NUL is the search's own refusal; the 1 MB query is refused by the published
    # schema (maxLength 1,000) before the call
    assert "NUL" in errors[0][1]  # type: ignore[index]
    assert "at most 1000 characters" in errors[1][1]  # type: ignore[index]
