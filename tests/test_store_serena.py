"""The serena+stdio store against a real Serena server over stdio.

serena-agent lives in its own virtual environment (tests/serena_env.py). If it
cannot be installed or started, these tests fail when ``CI`` is set and are
skipped otherwise, with the reason. One server serves the whole module; the
tests that kill, stop or reconfigure a server start their own.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serena_env import open_test_store, require_serena

from lifecycle.errors import (
    CorruptRecord,
    InvalidKey,
    InvalidStoreURL,
    StoreError,
    StoreUnavailable,
    VersionConflict,
)
from lifecycle.stores import Delete, Entry, Put, open_store
from lifecycle.stores.base import check_storage_key
from lifecycle.stores.serena import (
    SerenaStore,
    decode_envelope,
    encode_envelope,
    key_of,
    memory_name,
    parse_serena_url,
)

# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def serena_command() -> str:
    return require_serena()


def _open(project: Path, command: str, **params: object) -> SerenaStore:
    return open_test_store(project, command, **params)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serena-project")


@pytest.fixture(scope="module")
def store(serena_command: str, project: Path) -> Iterator[SerenaStore]:
    opened = _open(project, serena_command)
    yield opened
    opened.close()


@pytest.fixture
def ns(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, since the module shares one store."""
    return "t/" + re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")


def _memories(project: Path) -> Path:
    return project / ".serena" / "memories"


def _server_pid(project: Path) -> int:
    """The pid of the Serena server started for ``project`` (fault injection only)."""
    wanted = str(project).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-mcp-server" in argv and wanted in argv:
            return int(entry)
    raise AssertionError(f"no Serena server process for {project}")


# -- values and versions -------------------------------------------------------------------


def test_put_creates_version_1_and_each_put_adds_one(store: SerenaStore, ns: str) -> None:
    assert store.put(f"{ns}/k", b"one") == 1
    assert store.put(f"{ns}/k", b"two") == 2
    assert store.get(f"{ns}/k") == Entry(f"{ns}/k", b"two", 2)


def test_get_of_a_missing_key_is_none(store: SerenaStore, ns: str) -> None:
    assert store.get(f"{ns}/never-written") is None


def test_put_expecting_absent_conflicts_when_the_key_exists(store: SerenaStore, ns: str) -> None:
    store.put(f"{ns}/k", b"first", expected_version=0)
    with pytest.raises(VersionConflict) as caught:
        store.put(f"{ns}/k", b"second", expected_version=0)
    assert (caught.value.expected, caught.value.found) == (0, 1)
    assert store.get(f"{ns}/k") == Entry(f"{ns}/k", b"first", 1)


def test_put_with_the_current_version_wins_and_a_stale_one_conflicts(
    store: SerenaStore, ns: str
) -> None:
    store.put(f"{ns}/k", b"v1")
    assert store.put(f"{ns}/k", b"v2", expected_version=1) == 2
    with pytest.raises(VersionConflict) as caught:
        store.put(f"{ns}/k", b"stale", expected_version=1)
    assert (caught.value.expected, caught.value.found) == (1, 2)
    assert store.get(f"{ns}/k") == Entry(f"{ns}/k", b"v2", 2)


def test_delete_reports_whether_something_was_deleted(store: SerenaStore, ns: str) -> None:
    store.put(f"{ns}/k", b"x")
    assert store.delete(f"{ns}/k") is True
    assert store.delete(f"{ns}/k") is False
    assert store.get(f"{ns}/k") is None


def test_delete_with_a_wrong_version_conflicts_and_keeps_the_value(
    store: SerenaStore, ns: str
) -> None:
    store.put(f"{ns}/k", b"x")
    with pytest.raises(VersionConflict):
        store.delete(f"{ns}/k", expected_version=2)
    assert store.get(f"{ns}/k") == Entry(f"{ns}/k", b"x", 1)
    assert store.delete(f"{ns}/k", expected_version=1) is True


def test_a_recreated_key_starts_again_at_version_1(store: SerenaStore, ns: str) -> None:
    store.put(f"{ns}/k", b"a")
    store.put(f"{ns}/k", b"b")
    store.delete(f"{ns}/k")
    assert store.put(f"{ns}/k", b"c", expected_version=0) == 1


# -- listing -------------------------------------------------------------------------------


def test_list_keys_is_in_key_order_whatever_the_write_order(store: SerenaStore, ns: str) -> None:
    names = [f"{ns}/{n}" for n in ("b", "a/z", "a", "c-1", "c-10", "c-2", "B")]
    for key in random.Random(7).sample(names, len(names)):
        store.put(key, b".")
    assert store.list_keys(ns + "/") == sorted(names)
    assert store.list_keys(ns + "/", reverse=True) == sorted(names, reverse=True)
    assert store.list_keys(ns + "/", reverse=True, limit=2) == sorted(names, reverse=True)[:2]


def test_a_prefix_matches_characters_not_whole_segments(store: SerenaStore, ns: str) -> None:
    for key in ("a/b", "a/b/c", "a/bc", "a/c", "ab"):
        store.put(f"{ns}/{key}", b".")
    assert store.list_keys(f"{ns}/a/b") == [f"{ns}/a/b", f"{ns}/a/b/c", f"{ns}/a/bc"]
    assert store.list_keys(f"{ns}/a/b/") == [f"{ns}/a/b/c"]
    assert store.list_keys(f"{ns}/nothing-here/") == []


def test_scan_returns_entries_in_key_order(store: SerenaStore, ns: str) -> None:
    for i in (3, 1, 2):
        store.put(f"{ns}/{i}", str(i).encode())
    assert list(store.scan(ns + "/")) == [Entry(f"{ns}/{i}", str(i).encode(), 1) for i in (1, 2, 3)]
    assert [e.key for e in store.scan(ns + "/", reverse=True, limit=2)] == [f"{ns}/3", f"{ns}/2"]


def test_memories_that_are_not_storage_keys_are_left_out_of_listings(
    store: SerenaStore, project: Path, ns: str
) -> None:
    store.put(f"{ns}/mine", b".")
    folder = _memories(project) / ns
    (folder / "Not a key!.md").write_text("notes")
    (folder / "~tilde.md").write_text("notes")
    assert store.list_keys(ns + "/") == [f"{ns}/mine"]


# -- batch ---------------------------------------------------------------------------------


def test_batch_applies_every_op_and_returns_the_versions(store: SerenaStore, ns: str) -> None:
    store.put(f"{ns}/old", b"o")
    store.put(f"{ns}/latest", b"1")
    versions = store.batch(
        [
            Put(f"{ns}/cp", b"checkpoint", expected_version=0),
            Put(f"{ns}/latest", b"2", expected_version=1),
            Delete(f"{ns}/old", expected_version=1),
        ]
    )
    assert versions == [1, 2, 0]
    assert store.list_keys(ns + "/") == [f"{ns}/cp", f"{ns}/latest"]
    assert store.get(f"{ns}/latest") == Entry(f"{ns}/latest", b"2", 2)


def test_a_batch_with_one_conflict_applies_nothing(store: SerenaStore, ns: str) -> None:
    store.put(f"{ns}/latest", b"1")
    with pytest.raises(VersionConflict) as caught:
        store.batch(
            [
                Put(f"{ns}/cp", b"checkpoint", expected_version=0),
                Put(f"{ns}/latest", b"2", expected_version=5),
            ]
        )
    assert caught.value.key == f"{ns}/latest"
    assert store.list_keys(ns + "/") == [f"{ns}/latest"]
    assert store.get(f"{ns}/latest") == Entry(f"{ns}/latest", b"1", 1)


def test_ops_on_one_key_in_one_batch_see_each_other(store: SerenaStore, ns: str) -> None:
    versions = store.batch(
        [
            Put(f"{ns}/k", b"a", expected_version=0),
            Put(f"{ns}/k", b"b", expected_version=1),
            Delete(f"{ns}/k", expected_version=2),
            Put(f"{ns}/k", b"c", expected_version=0),
        ]
    )
    assert versions == [1, 2, 0, 1]
    assert store.get(f"{ns}/k") == Entry(f"{ns}/k", b"c", 1)


def test_a_batch_whose_write_fails_puts_back_what_it_had_written(
    serena_command: str, store: SerenaStore, project: Path, tmp_path: Path
) -> None:
    # A real failure inside Serena: memories under ro/ are read-only in this project.
    other = tmp_path / "read-only-project"
    (other / ".serena").mkdir(parents=True)
    config = (project / ".serena" / "project.yml").read_text()
    config = config.replace("read_only_memory_patterns: []", 'read_only_memory_patterns: ["ro/.*"]')
    assert 'read_only_memory_patterns: ["ro/.*"]' in config
    (other / ".serena" / "project.yml").write_text(config)
    ro_store = _open(other, serena_command)
    try:
        ro_store.put("kept", b"before")
        with pytest.raises(StoreError, match="read_only"):
            ro_store.batch(
                [Put("new", b"n"), Put("kept", b"after", expected_version=1), Put("ro/x", b"x")]
            )
        assert ro_store.get("new") is None
        assert ro_store.get("kept") == Entry("kept", b"before", 1)
        assert ro_store.list_keys() == ["kept"]
    finally:
        ro_store.close()


# -- names and values ----------------------------------------------------------------------


def test_a_key_with_slashes_is_the_memory_file_of_the_same_name(
    store: SerenaStore, project: Path, ns: str
) -> None:
    store.put(f"{ns}/deep/er/still-deeper/key.v2", b"payload")
    path = _memories(project) / ns / "deep" / "er" / "still-deeper" / "key.v2.md"
    envelope = json.loads(path.read_text(encoding="utf-8"))
    assert (envelope["key"], envelope["version"], envelope["text"]) == (
        f"{ns}/deep/er/still-deeper/key.v2",
        1,
        "payload",
    )


def test_keys_serena_would_read_differently_keep_their_own_memories(
    store: SerenaStore, project: Path, ns: str
) -> None:
    # "global/..." would be Serena's cross-project memory and "x.md" would lose ".md".
    tag = ns.replace("/", "-")
    keys = [f"global/{tag}", f"{ns}/x", f"{ns}/x.md", f"{ns}/global"]
    for i, key in enumerate(keys):
        store.put(key, str(i).encode())
    assert [store.get(k) for k in keys] == [
        Entry(k, str(i).encode(), 1) for i, k in enumerate(keys)
    ]
    assert (_memories(project) / "~global" / f"{tag}.md").is_file()
    assert (_memories(project) / ns / "x.md~.md").is_file()
    assert not (store.home / "memories" / "global" / f"{tag}.md").exists()
    assert store.list_keys(f"global/{tag}") == [f"global/{tag}"]
    assert store.list_keys(f"{ns}/") == [f"{ns}/global", f"{ns}/x", f"{ns}/x.md"]


def test_serenas_own_global_memories_are_not_keys(store: SerenaStore) -> None:
    shared = store.home / "memories" / "global"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / "team-notes.md").write_text("notes")
    assert "global/team-notes" not in store.list_keys()
    assert store.get("global/team-notes") is None


def test_a_200_kb_binary_value_round_trips(store: SerenaStore, ns: str) -> None:
    value = random.Random(1).randbytes(200 * 1024)
    assert store.put(f"{ns}/big", value) == 1
    assert store.get(f"{ns}/big") == Entry(f"{ns}/big", value, 1)


def test_unicode_text_is_stored_as_readable_text(
    store: SerenaStore, project: Path, ns: str
) -> None:
    text = 'Zoë\'s résumé ✓ — 日本語 🚀\nline two\ttab "quoted" \\ backslash'
    store.put(f"{ns}/u", text.encode("utf-8"))
    assert store.get(f"{ns}/u") == Entry(f"{ns}/u", text.encode("utf-8"), 1)
    assert "日本語 🚀" in (_memories(project) / ns / "u.md").read_text(encoding="utf-8")


def test_an_empty_value_round_trips(store: SerenaStore, ns: str) -> None:
    store.put(f"{ns}/empty", b"")
    assert store.get(f"{ns}/empty") == Entry(f"{ns}/empty", b"", 1)


def test_an_invalid_key_is_refused_before_reaching_serena(
    store: SerenaStore, project: Path
) -> None:
    before = sorted(p.relative_to(project) for p in _memories(project).rglob("*"))
    for key in ("../escape", "a//b", "/abs", "~global/x", "a/b c", ""):
        with pytest.raises(InvalidKey):
            store.put(key, b"x")
        with pytest.raises(InvalidKey):
            store.get(key)
    assert sorted(p.relative_to(project) for p in _memories(project).rglob("*")) == before


# -- corruption ----------------------------------------------------------------------------


def test_a_memory_edited_on_disk_fails_its_checksum(
    store: SerenaStore, project: Path, ns: str
) -> None:
    store.put(f"{ns}/k", b"original")
    path = _memories(project) / ns / "k.md"
    path.write_text(path.read_text().replace('"original"', '"tampered"'))
    with pytest.raises(CorruptRecord, match="checksum"):
        store.get(f"{ns}/k")


def test_a_memory_someone_else_wrote_is_corrupt_here_but_can_be_deleted(
    store: SerenaStore, project: Path, ns: str
) -> None:
    (_memories(project) / ns).mkdir(parents=True, exist_ok=True)
    (_memories(project) / ns / "notes.md").write_text("# Architecture\nplain markdown")
    with pytest.raises(CorruptRecord, match="not a lifecycle record"):
        store.get(f"{ns}/notes")
    with pytest.raises(CorruptRecord):
        store.put(f"{ns}/notes", b"x", expected_version=1)
    assert store.delete(f"{ns}/notes") is True
    assert store.get(f"{ns}/notes") is None


def test_a_record_copied_to_another_name_is_corrupt_there(
    store: SerenaStore, project: Path, ns: str
) -> None:
    store.put(f"{ns}/a", b"value")
    folder = _memories(project) / ns
    (folder / "b.md").write_text((folder / "a.md").read_text())
    with pytest.raises(CorruptRecord, match="record of key"):
        store.get(f"{ns}/b")


# -- other clients, faults, shutdown -------------------------------------------------------


def test_a_second_clients_write_is_seen_by_the_next_compare_and_swap(
    serena_command: str, store: SerenaStore, project: Path, ns: str
) -> None:
    other = _open(project, serena_command)
    try:
        store.put(f"{ns}/k", b"mine")
        assert other.put(f"{ns}/k", b"theirs", expected_version=1) == 2
        with pytest.raises(VersionConflict) as caught:
            store.put(f"{ns}/k", b"mine again", expected_version=1)
        assert caught.value.found == 2
        assert store.get(f"{ns}/k") == Entry(f"{ns}/k", b"theirs", 2)
    finally:
        other.close()


@pytest.mark.timeout(120)
def test_a_killed_server_fails_the_next_call_and_the_call_after_reconnects(
    serena_command: str, tmp_path: Path
) -> None:
    victim = _open(tmp_path, serena_command, timeout=5)
    try:
        victim.put("k", b"kept")
        os.kill(_server_pid(tmp_path), signal.SIGKILL)
        with pytest.raises(StoreUnavailable):
            victim.get("k")
        assert victim.get("k") == Entry("k", b"kept", 1)
    finally:
        victim.close()


@pytest.mark.timeout(120)
def test_a_hung_server_times_out_as_unavailable(serena_command: str, tmp_path: Path) -> None:
    victim = _open(tmp_path, serena_command, timeout=1)
    pid = _server_pid(tmp_path)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(StoreUnavailable, match=r"did not answer read_memory within 1\.0 s"):
            victim.get("k")
    finally:
        with contextlib.suppress(ProcessLookupError):  # the store has killed it by now
            os.kill(pid, signal.SIGCONT)
        victim.close()


def test_close_stops_the_server_and_later_calls_fail(serena_command: str, tmp_path: Path) -> None:
    closing = _open(tmp_path, serena_command)
    pid = _server_pid(tmp_path)
    closing.close()
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    with pytest.raises(StoreError, match="closed"):
        closing.get("k")


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return True


def test_a_server_that_exits_at_start_is_unavailable_with_its_stderr(
    serena_command: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "serena_config.yml").write_text("web_dashboard: false\n")  # no `projects`: fatal
    with pytest.raises(StoreUnavailable, match="projects"):
        SerenaStore(tmp_path, command=serena_command, home=home, log_level="ERROR")


# -- URL and names (no server) -------------------------------------------------------------


def test_the_url_names_project_command_home_and_timeouts(tmp_path: Path) -> None:
    url = f"serena+stdio://{tmp_path}?command=/opt/s/bin/serena&home=/h&timeout=2.5&startup_timeout=30"
    assert parse_serena_url(url) == {
        "project": str(tmp_path),
        "url": url,
        "command": "/opt/s/bin/serena",
        "home": "/h",
        "timeout": 2.5,
        "startup_timeout": 30.0,
    }
    assert parse_serena_url("serena+stdio://rel/dir")["project"] == "rel/dir"
    assert parse_serena_url("serena+stdio://")["project"] == "."


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("colour=blue", "unknown parameter 'colour'"),
        ("timeout=1&timeout=2", "given twice"),
        ("timeout=0", "positive number"),
        ("timeout=soon", "positive number"),
        ("startup_timeout=inf", "positive number"),
        ("command=", "is empty"),
    ],
)
def test_a_bad_url_parameter_is_an_invalid_url(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(InvalidStoreURL, match=message):
        open_store(f"serena+stdio://{tmp_path}?{query}")


def test_a_missing_project_directory_is_an_invalid_url(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURL, match="does not exist"):
        open_store(f"serena+stdio://{tmp_path}/nowhere")


def test_a_bad_log_level_is_an_invalid_url(tmp_path: Path) -> None:
    with pytest.raises(InvalidStoreURL, match="log_level"):
        open_store(f"serena+stdio://{tmp_path}?log_level=LOUD")


def test_a_missing_command_is_unavailable_and_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="pip install serena-agent"):
        open_store(f"serena+stdio://{tmp_path}?command=no-such-serena-here")


_SEGMENT = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,20}", fullmatch=True).filter(
    lambda s: s.strip(".") != ""
)
_KEYS = st.lists(
    st.one_of(_SEGMENT, st.sampled_from(["global", "x.md", "global.md", "md", ".md.md"])),
    min_size=1,
    max_size=4,
).map("/".join)


@given(_KEYS)
def test_every_key_maps_to_a_memory_name_and_back(key: str) -> None:
    try:
        check_storage_key(key)
    except InvalidKey:
        return  # the sampled extras can form a segment the grammar refuses
    name = memory_name(key)
    assert key_of(name) == key
    assert name.partition("/")[0] != "global"
    assert not name.endswith(".md")


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=2**53))
def test_the_envelope_round_trips_any_bytes(value: bytes, version: int) -> None:
    assert decode_envelope("k/x", encode_envelope("k/x", value, version)) == Entry(
        "k/x", value, version
    )
