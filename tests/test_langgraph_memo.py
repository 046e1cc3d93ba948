"""The memo of decoded saver records (``lifecycle.integrations.langgraph.records.MEMO``).

A read that finds the same bytes as an earlier read reuses the record decoded from
them; anything else is decoded and checked afresh. These tests check that the memo
never hides a change: another process's checkpoint, another process rewriting the
same key with other bytes or adding pending writes, a damaged record; that what the
memo holds is exactly what a fresh decode gives; that no caller can change what the
next one gets; and that it is bounded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stores import STORE_FACTORIES

from lifecycle.errors import CorruptRecord
from lifecycle.integrations.langgraph import LifecycleSaver
from lifecycle.integrations.langgraph import records as rec
from lifecycle.stores.base import Store
from lifecycle.stores.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120
PROJECT = "memo"
STORES = ("file", "sqlite", "postgres")

#: Another process on the same store: ``put`` a checkpoint (a new id, or the id of the
#: thread's latest, rewritten with other values), or pending writes to one (``writes``:
#: a task of its own; ``error``: an error write merged into our task's record).
OTHER = textwrap.dedent(
    """
    import sys
    from lifecycle import open_store
    from lifecycle.integrations.langgraph import LifecycleSaver
    url, project, how, checkpoint_id = sys.argv[1:5]
    store = open_store(url)
    saver = LifecycleSaver(store, project=project)
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    if how == "writes":  # a task of its own (a new key)
        config["configurable"]["checkpoint_id"] = checkpoint_id
        saver.put_writes(config, [("inbox", "from the other process")], "other-task")
    elif how == "error":  # our task's record, merged with an error write and rewritten
        config["configurable"]["checkpoint_id"] = checkpoint_id
        saver.put_writes(config, [("__error__", "boom")], "our-task")
    else:
        checkpoint = {
            "v": 4, "id": checkpoint_id, "ts": "2026-01-01T00:00:00+00:00",
            "channel_values": {"state": {"by": "the other process"}},
            "channel_versions": {"state": 2}, "versions_seen": {}, "updated_channels": [],
        }
        saver.put(config, checkpoint, {"source": "loop", "step": 2}, {"state": 2})
    store.close()
    """
)


def _other(store: Store, how: str, checkpoint_id: str) -> None:
    subprocess.run(
        [sys.executable, "-c", OTHER, store.url, PROJECT, how, checkpoint_id],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=TIMEOUT,
        check=True,
    )


def _checkpoint(checkpoint_id: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": 4,
        "id": checkpoint_id,
        "ts": "2026-01-01T00:00:00+00:00",
        "channel_values": values,
        "channel_versions": {"state": 1},
        "versions_seen": {},
        "updated_channels": [],
    }


def _config() -> dict[str, Any]:
    return {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}


def _ours(store_name: str, tmp_path: Path) -> tuple[Store, LifecycleSaver, str]:
    """A saver whose thread "t" has one checkpoint, read twice (the second time from
    the memo)."""
    store = STORE_FACTORIES[store_name](tmp_path)
    saver = LifecycleSaver(store, project=PROJECT)
    cid = "1f000000-0000-6000-8000-000000000001"
    saver.put(_config(), _checkpoint(cid, {"state": {"by": "us"}}), {"step": 1}, {"state": 1})
    for _ in range(2):
        got = saver.get_tuple(_config())
        assert got is not None
        assert got.checkpoint["channel_values"] == {"state": {"by": "us"}}
    return store, saver, cid


@pytest.mark.parametrize("store_name", STORES)
def test_a_checkpoint_written_by_another_process_is_read_at_once(
    store_name: str, tmp_path: Path
) -> None:
    store, saver, _ = _ours(store_name, tmp_path)
    try:
        newer = "1f000000-0000-6000-8000-000000000002"
        _other(store, "put", newer)
        got = saver.get_tuple(_config())
        assert got is not None
        assert got.checkpoint["id"] == newer
        assert got.checkpoint["channel_values"] == {"state": {"by": "the other process"}}
    finally:
        store.close()


@pytest.mark.parametrize("store_name", STORES)
def test_the_same_key_rewritten_by_another_process_is_decoded_again(
    store_name: str, tmp_path: Path
) -> None:
    store, saver, cid = _ours(store_name, tmp_path)
    try:
        _other(store, "put", cid)  # the same checkpoint id: the same key, other bytes
        got = saver.get_tuple(_config())
        assert got is not None
        assert got.checkpoint["id"] == cid
        assert got.checkpoint["channel_values"] == {"state": {"by": "the other process"}}
        assert got.metadata["step"] == 2
    finally:
        store.close()


@pytest.mark.parametrize("store_name", STORES)
def test_pending_writes_added_by_another_process_are_read_at_once(
    store_name: str, tmp_path: Path
) -> None:
    store, saver, cid = _ours(store_name, tmp_path)
    try:
        at = {"configurable": {**_config()["configurable"], "checkpoint_id": cid}}
        saver.put_writes(at, [("inbox", "ours")], "our-task")
        for _ in range(2):
            got = saver.get_tuple(_config())
            assert got is not None
            assert got.pending_writes == [("our-task", "inbox", "ours")]
        _other(store, "writes", cid)
        _other(store, "error", cid)
        got = saver.get_tuple(_config())
        assert got is not None
        assert got.pending_writes == [
            ("other-task", "inbox", "from the other process"),
            ("our-task", "__error__", "boom"),
            ("our-task", "inbox", "ours"),
        ]
    finally:
        store.close()


def test_a_damaged_record_is_not_served_from_the_memo() -> None:
    """The memo held the good bytes; the store now holds one bit flipped (under a
    store checksum that matches, as a bad write by a buggy writer would leave it)."""
    store = MemoryStore()
    saver = LifecycleSaver(store, project=PROJECT)
    cid = "1f000000-0000-6000-8000-000000000001"
    stored = saver.put(_config(), _checkpoint(cid, {"state": 1}), {"step": 1}, {"state": 1})
    assert saver.get_tuple(stored) is not None
    key = f"{PROJECT}/{rec.checkpoint_key('t', '', cid)}"
    entry = store.get(key)
    assert entry is not None
    store.put(key, entry.value[:-1] + bytes([entry.value[-1] ^ 1]))
    with pytest.raises(CorruptRecord, match="checksum does not match"):
        saver.get_tuple(stored)
    assert saver.get_tuple(_config()) is None  # the newest valid: there is none


def test_a_caller_that_changes_what_it_read_changes_nothing_for_the_next() -> None:
    saver = LifecycleSaver(MemoryStore(), project=PROJECT)
    cid = "1f000000-0000-6000-8000-000000000001"
    values = {"state": {"steps": [1, 2], "nested": {"a": 1}}}
    stored = saver.put(_config(), _checkpoint(cid, values), {"step": 1}, {"state": 1})
    saver.put_writes(stored, [("inbox", {"n": [1]})], "task")
    for _ in range(2):  # the first read right after the put, the second from the memo
        got = saver.get_tuple(_config())
        assert got is not None
        assert got.checkpoint["channel_values"] == {"state": {"steps": [1, 2], "nested": {"a": 1}}}
        assert got.metadata["step"] == 1
        assert got.pending_writes == [("task", "inbox", {"n": [1]})]
        got.checkpoint["channel_values"]["state"]["steps"].append(3)
        got.checkpoint["channel_values"]["state"]["nested"]["a"] = 2
        got.metadata["step"] = 99
        got.pending_writes[0][2]["n"].append(2)


_text = st.text(max_size=30)
_records = st.one_of(
    st.builds(
        rec.GraphCheckpoint,
        _text,
        _text,
        _text,
        st.none() | _text,
        st.sampled_from(["msgpack", "null", "bytes"]),
        st.sampled_from(["msgpack", "json"]),
    ),
    st.builds(
        rec.GraphWrites,
        _text,
        _text,
        _text,
        _text,
        _text,
        st.lists(
            st.builds(rec.WriteHead, st.integers(-4, 50), _text, st.just("msgpack")), max_size=4
        ).map(tuple),
    ),
)


@given(_records, st.lists(st.binary(max_size=40), min_size=2, max_size=4))
def test_what_the_memo_gives_for_equal_bytes_is_what_a_fresh_decode_gives(
    record: rec.Record, bodies: list[bytes]
) -> None:
    parts = bodies[:2] if isinstance(record, rec.GraphCheckpoint) else bodies[: len(record.writes)]
    raw = rec.encode(record, parts)
    fresh, views = rec.decode(type(record), raw, "k")
    assert fresh == record
    assert [bytes(v) for v in views] == parts
    memo = rec.Decoded()
    for copy in (raw, bytes(bytearray(raw))):  # a miss, then a hit on equal bytes
        again, again_views = memo.decode(type(record), WHERE, "k", copy)
        assert again == fresh
        assert [bytes(v) for v in again_views] == parts
        assert all(v.obj is copy for v in again_views)  # views of the bytes read now
    assert len(memo._slots) == 1


WHERE = ("memory://", PROJECT)
RECORD = rec.GraphCheckpoint("t", "", "c-1", None, "msgpack", "msgpack")


def test_only_equal_bytes_give_the_remembered_record() -> None:
    memo = rec.Decoded()
    memo.decode(rec.GraphCheckpoint, WHERE, "k", rec.encode(RECORD, [b"\x80", b"\x80"]))
    other = rec.GraphCheckpoint("t", "", "c-1", "c-0", "msgpack", "msgpack")
    other_raw = rec.encode(other, [b"\x80", b"\x80"])
    got, _ = memo.decode(rec.GraphCheckpoint, WHERE, "k", other_raw)
    assert got == other
    flipped = other_raw[:-1] + b"\x81"
    with pytest.raises(CorruptRecord, match="checksum does not match"):
        memo.decode(rec.GraphCheckpoint, WHERE, "k", flipped)


def test_the_memo_is_bounded_by_slots_and_by_bytes() -> None:
    memo = rec.Decoded()
    for n in range(3 * memo.SLOTS):
        memo.decode(rec.GraphCheckpoint, WHERE, f"k{n}", rec.encode(RECORD, [b"x" * n, b""]))
    assert len(memo._slots) == memo.SLOTS
    big = rec.encode(RECORD, [b"x" * (memo.BUDGET // 3), b""])
    for n in range(4):
        memo.decode(rec.GraphCheckpoint, WHERE, f"big{n}", big)
    assert memo._kept == sum(len(v[0]) for v in memo._slots.values()) <= memo.BUDGET
    huge = rec.encode(RECORD, [b"x" * memo.BUDGET, b""])
    memo.decode(rec.GraphCheckpoint, WHERE, "huge", huge)
    assert (rec.GraphCheckpoint, WHERE, "huge") not in memo._slots
    # Only bytes are kept: a buffer that can change under the memo is not.
    changing = bytearray(rec.encode(RECORD, [b"", b""]))
    memo.decode(rec.GraphCheckpoint, WHERE, "mutable", changing)  # type: ignore[arg-type]
    assert (rec.GraphCheckpoint, WHERE, "mutable") not in memo._slots
