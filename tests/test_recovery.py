"""Recovery on the real file store: a corrupt or missing checkpoint falls back to the
previous valid one with a warning; a failing read starts fresh with a warning; missing
pieces load as partial context with warnings; a chosen checkpoint restores as its
``recovery_info.restore_command`` says."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import orjson
import pytest

from lifecycle import SessionManager, SessionState, codec, open_store
from lifecycle.errors import CheckpointNotFound, StoreUnavailable
from lifecycle.records import Learning
from lifecycle.stores.base import Store
from lifecycle.stores.file import FILE_SUFFIX
from lifecycle.testing import FaultyStore

PROJECT = "demo"


def _file(root: Path, key: str) -> Path:
    *dirs, name = f"{PROJECT}/{key}".split("/")
    return root.joinpath(*(d + ".d" for d in dirs), name + FILE_SUFFIX)


def _three_checkpoints(url: str, clock) -> list[str]:
    m = SessionManager(store=open_store(url), project=PROJECT, clock=clock)
    m.start_session(restore=False)
    ids = []
    for phase in ("one", "two", "three"):
        clock.advance(minutes=1)
        ids.append(m.create_checkpoint(phase=phase).key)
    return ids


def _truncate(root: Path, store: Store, key: str) -> None:
    path = _file(root, key)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _bit_flip(root: Path, store: Store, key: str) -> None:
    path = _file(root, key)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))


def _delete(root: Path, store: Store, key: str) -> None:
    os.unlink(_file(root, key))


def _future_schema(root: Path, store: Store, key: str) -> None:
    full = f"{PROJECT}/{key}"
    entry = store.get(full)
    assert entry is not None
    data = orjson.loads(entry.value)
    data["schema_version"] = 99
    store.put(full, orjson.dumps(data))  # a valid file (checksum) a newer lifecycle wrote


def _garbage_json(root: Path, store: Store, key: str) -> None:
    store.put(f"{PROJECT}/{key}", b"\x00not json{")


CORRUPTIONS = {
    "truncated": _truncate,
    "bit-flip": _bit_flip,
    "deleted": _delete,
    "unknown-schema-version": _future_schema,
    "garbage": _garbage_json,
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous_valid_one(
    tmp_path, clock, corrupt
) -> None:
    url = f"file://{tmp_path}"
    keys_ = _three_checkpoints(url, clock)
    raw = open_store(url)
    corrupt(tmp_path, raw, keys_[2])
    m = SessionManager(store=raw, project=PROJECT, clock=clock)
    start = m.start_session(restore=True)
    assert (start.is_fresh_session, start.restored_state["phase"]) == (False, "two")
    assert m.state is SessionState.RESUMED
    assert any(keys_[2] in w for w in start.warnings)
    assert "restored from the newest valid checkpoint" in start.warnings[-1]


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_corrupt_latest_and_previous_fall_back_two_steps(tmp_path, clock, corrupt) -> None:
    url = f"file://{tmp_path}"
    keys_ = _three_checkpoints(url, clock)
    raw = open_store(url)
    corrupt(tmp_path, raw, keys_[2])
    corrupt(tmp_path, raw, keys_[1])
    start = SessionManager(store=raw, project=PROJECT, clock=clock).start_session()
    assert start.restored_state["phase"] == "one"
    if corrupt is not _delete:  # a deleted file is simply not listed: nothing to skip
        assert any(keys_[1] in w for w in start.warnings)


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_older_checkpoint_does_not_disturb_restoring_the_latest(
    tmp_path, clock, corrupt
) -> None:
    url = f"file://{tmp_path}"
    keys_ = _three_checkpoints(url, clock)
    raw = open_store(url)
    corrupt(tmp_path, raw, keys_[0])
    start = SessionManager(store=raw, project=PROJECT, clock=clock).start_session()
    assert (start.restored_state["phase"], start.warnings) == ("three", ())


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_every_checkpoint_corrupt_starts_fresh_with_warnings(tmp_path, clock, corrupt) -> None:
    url = f"file://{tmp_path}"
    keys_ = _three_checkpoints(url, clock)
    raw = open_store(url)
    for key in keys_:
        corrupt(tmp_path, raw, key)
    m = SessionManager(store=raw, project=PROJECT, clock=clock)
    start = m.start_session()
    assert (start.is_fresh_session, m.state) == (True, SessionState.ACTIVE)
    assert start.warnings  # said, not silent


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_a_corrupt_latest_pointer_falls_back_to_the_newest_checkpoint_and_can_save_again(
    tmp_path, clock, corrupt
) -> None:
    url = f"file://{tmp_path}"
    _three_checkpoints(url, clock)
    raw = open_store(url)
    corrupt(tmp_path, raw, "checkpoints/latest")
    m = SessionManager(store=raw, project=PROJECT, clock=clock)
    start = m.start_session()
    assert start.restored_state["phase"] == "three"
    if corrupt is not _delete:
        assert any("checkpoints/latest" in w for w in start.warnings)
    clock.advance(minutes=1)
    saved = m.create_checkpoint(phase="four")
    assert saved.written is True
    again = SessionManager(store=open_store(url), project=PROJECT, clock=clock).start_session()
    assert (again.restored_state["phase"], again.warnings) == ("four", ())


def test_a_pointer_naming_a_key_outside_the_grammar_falls_back(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    _three_checkpoints(url, clock)
    raw = open_store(url)
    entry = raw.get(f"{PROJECT}/checkpoints/latest")
    data = orjson.loads(entry.value)
    data["key"] = "checkpoints/../../etc/passwd"
    raw.put(f"{PROJECT}/checkpoints/latest", orjson.dumps(data))
    start = SessionManager(store=raw, project=PROJECT, clock=clock).start_session()
    assert start.restored_state["phase"] == "three"
    assert start.warnings


def _failing_checkpoint_reads(inner: Store) -> FaultyStore:
    """A store whose reads under checkpoints/ fail (a fault, as a server gone away)."""
    store = FaultyStore(inner)
    store.fail(
        "get",
        prefix=f"{PROJECT}/checkpoints/",
        error=lambda call: StoreUnavailable(f"injected read fault on {call.keys[0]}"),
    )
    store.fail(
        "list_keys",
        prefix=f"{PROJECT}/checkpoints",
        error=lambda _: StoreUnavailable("injected listing fault"),
    )
    return store


def test_a_failing_checkpoint_read_starts_a_fresh_session_with_a_warning(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    _three_checkpoints(url, clock)
    m = SessionManager(
        store=_failing_checkpoint_reads(open_store(url)), project=PROJECT, clock=clock
    )
    start = m.start_session(restore=True)
    assert (start.is_fresh_session, m.state) == (True, SessionState.ACTIVE)
    assert start.warnings == (
        "could not read checkpoints (injected read fault on demo/checkpoints/latest); "
        "starting a fresh session",
    )


# -- restore a chosen checkpoint ------------------------------------------------------------


def test_the_stored_restore_command_restores_that_checkpoint(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    m = SessionManager(store=open_store(url), project=PROJECT, clock=clock)
    m.start_session(restore=False)
    first = m.create_checkpoint(phase="one")
    clock.advance(minutes=1)
    m.create_checkpoint(phase="two")
    command = m.read_checkpoint(first.checkpoint_id).recovery_info.restore_command
    argv = shlex.split(command)
    # The CLI (lifecycle/commands/sessions.py) maps `--checkpoint ID` to checkpoint_id=ID.
    assert argv[:4] == ["lifecycle", "session", "start", "--checkpoint"]
    m2 = SessionManager(store=open_store(url), project=PROJECT, clock=clock)
    start = m2.start_session(checkpoint_id=argv[4])
    assert (start.checkpoint_id, start.restored_state["phase"]) == (first.checkpoint_id, "one")


def test_reading_a_checkpoint_by_id_is_one_listing_and_one_read(clock) -> None:
    counting = FaultyStore(open_store("memory://"), record=True)
    m = SessionManager(store=counting, project=PROJECT, clock=clock)
    m.start_session(restore=False)
    ids = []
    for i in range(50):
        clock.advance(seconds=1)
        ids.append(m.create_checkpoint(phase=f"p{i}").checkpoint_id)
    counting.calls.clear()
    cp = m.read_checkpoint(ids[10])
    assert (cp.phase, counting.calls["list_keys"], counting.calls["get"]) == ("p10", 1, 1)


@pytest.mark.parametrize("bad", ["cp-nope", "session-20260101T000000.000000Z", "../x", ""])
def test_an_unknown_checkpoint_id_is_checkpoint_not_found_and_changes_nothing(
    make_manager, bad
) -> None:
    m = make_manager()
    with pytest.raises(CheckpointNotFound, match="no valid checkpoint"):
        m.start_session(checkpoint_id=bad)
    assert m.state is SessionState.INITIALIZING
    assert m.store.list_keys("session/") == []


def test_a_chosen_checkpoint_that_is_corrupt_is_not_found(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    keys_ = _three_checkpoints(url, clock)
    raw = open_store(url)
    _bit_flip(tmp_path, raw, keys_[0])
    m = SessionManager(store=raw, project=PROJECT, clock=clock)
    cp_id = "cp-" + keys_[0].rsplit("/", 1)[1]
    with pytest.raises(CheckpointNotFound):
        m.start_session(checkpoint_id=cp_id)


# -- partial context ------------------------------------------------------------------------


def _ended_session_with_learning(url: str, clock) -> SessionManager:
    m = SessionManager(store=open_store(url), project=PROJECT, clock=clock)
    m.start_session(restore=False)
    m.add_task("T1", "write the store")
    m.complete_task("T1", "write the store")
    m.capture_learning(
        Learning(
            type="solution",
            key="learning/solutions/fsync-dir",
            content="fsync it",
            timestamp=clock(),
        )
    )
    m.end_session(success=True, phase="Phase 1")
    clock.advance(hours=1)
    return m


@pytest.mark.parametrize("corrupt", [_bit_flip, _delete, _future_schema], ids=str)
def test_an_unreadable_session_last_loads_partial_context_with_a_warning(
    tmp_path, clock, corrupt
) -> None:
    url = f"file://{tmp_path}"
    _ended_session_with_learning(url, clock)
    raw = open_store(url)
    corrupt(tmp_path, raw, "session/last")
    m = SessionManager(store=raw, project=PROJECT, clock=clock)
    start = m.start_session()
    assert start.is_fresh_session is False
    text = m.report()
    assert "Open tasks" not in text  # nothing open: the section is left out
    if corrupt is _delete:
        assert "Warning" not in text  # a missing summary is no fault
    else:
        assert "Warning: previous session summary (session/last) is unreadable" in text


def test_an_unreadable_learning_loads_the_rest_with_a_warning(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    _ended_session_with_learning(url, clock)
    raw = open_store(url)
    _truncate(tmp_path, raw, "learning/solutions/fsync-dir")
    m = SessionManager(store=raw, project=PROJECT, clock=clock)
    m.start_session()
    text = m.report()
    assert "    - task completed: T1: write the store" in text
    assert "Warning: learning learning/solutions/fsync-dir is unreadable" in text


def test_codec_refuses_the_future_schema_the_fallback_skips(tmp_path, clock) -> None:
    from lifecycle.errors import SchemaVersionError
    from lifecycle.records import Checkpoint

    url = f"file://{tmp_path}"
    keys_ = _three_checkpoints(url, clock)
    raw = open_store(url)
    _future_schema(tmp_path, raw, keys_[2])
    with pytest.raises(SchemaVersionError, match="schema_version 99"):
        codec.decode(Checkpoint, raw.get(f"{PROJECT}/{keys_[2]}").value)
