"""The memo of decoded checkpoints (``lifecycle.session.checkpoints.DECODED``).

A read of the latest checkpoint that finds the same bytes as the last read returns
the record decoded then; anything else is decoded afresh. These tests check that the
memo never hides a change: another process's checkpoint, another process rewriting
the same key with other bytes, a damaged record; and that no caller can change what
the next one gets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle import SessionManager, codec
from lifecycle.records import Checkpoint
from lifecycle.session.checkpoints import DECODED
from lifecycle.stores import Store
from lifecycle.stores.file import FileStore
from lifecycle.stores.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120
PROJECT = "memo"

OPENERS: dict[str, Callable[[Path], Store]] = {
    "file": lambda where: FileStore(where / "store"),
    "sqlite": lambda where: SqliteStore(where / "store.db"),
}
URLS = {"file": "file://{}/store", "sqlite": "sqlite:///{}/store.db"}

#: Another process: one checkpoint of its own (``new``), or the latest checkpoint's own
#: key rewritten with other bytes (``same-key``), printing the id it wrote.
OTHER = textwrap.dedent(
    """
    import sys
    from lifecycle import SessionManager, codec, open_store
    from lifecycle.records import Checkpoint, revise
    url, project, how = sys.argv[1], sys.argv[2], sys.argv[3]
    store = open_store(url)
    manager = SessionManager(store, project=project, snapshot="never")
    if how == "new":
        manager.start_session(restore=True)
        manager.add_task("theirs", "written by the other process", status="in_progress")
        print(manager.create_checkpoint(progress={"by": "other"}).checkpoint_id)
    else:
        cp = manager.read_checkpoint()
        changed = revise(cp, phase="rewritten by the other process")
        store.put(project + "/" + cp.key, codec.encode(changed))
        print(changed.phase)
    store.close()
    """
)


def _other(kind: str, where: Path, how: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", OTHER, URLS[kind].format(where), PROJECT, how],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=TIMEOUT,
        check=True,
    )
    return done.stdout.decode().strip()


def _manager(kind: str, where: Path) -> SessionManager:
    return SessionManager(OPENERS[kind](where), project=PROJECT, snapshot="never")


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_a_checkpoint_written_by_another_process_is_read_at_once(kind: str, tmp_path: Path) -> None:
    ours = _manager(kind, tmp_path)
    ours.start_session(restore=False)
    ours.add_task("mine", "ours", status="in_progress")
    mine = ours.create_checkpoint(progress={"by": "us"})
    assert ours.read_checkpoint().id == mine.checkpoint_id
    assert ours.read_checkpoint().id == mine.checkpoint_id  # from the memo now
    theirs = _other(kind, tmp_path, "new")
    assert theirs != mine.checkpoint_id
    latest = ours.read_checkpoint()
    assert (latest.id, latest.progress) == (theirs, {"by": "other"})
    # And a new session (a new manager, as the hook's SessionStart) restores it.
    started = _manager(kind, tmp_path).start_session(restore=True)
    assert started.checkpoint_id == theirs


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_the_same_key_rewritten_by_another_process_is_decoded_again(
    kind: str, tmp_path: Path
) -> None:
    ours = _manager(kind, tmp_path)
    ours.start_session(restore=False)
    ours.create_checkpoint(phase="as first written")
    assert ours.read_checkpoint().phase == "as first written"
    assert _other(kind, tmp_path, "same-key") == "rewritten by the other process"
    assert ours.read_checkpoint().phase == "rewritten by the other process"


def test_a_damaged_latest_checkpoint_is_not_served_from_the_memo(tmp_path: Path) -> None:
    ours = _manager("file", tmp_path)
    ours.start_session(restore=False)
    first = ours.create_checkpoint(phase="one")
    second = ours.create_checkpoint(phase="two")
    assert ours.read_checkpoint().id == second.checkpoint_id
    assert second.key is not None
    path = (
        tmp_path / "store" / f"{PROJECT}.d" / "checkpoints.d" / (second.key.split("/")[1] + ".rec")
    )
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    started = _manager("file", tmp_path).start_session(restore=True)
    assert started.checkpoint_id == first.checkpoint_id
    assert any("missing or corrupt" in warning for warning in started.warnings)


def test_a_caller_that_changes_what_it_read_changes_nothing_for_the_next(
    tmp_path: Path,
) -> None:
    ours = _manager("file", tmp_path)
    ours.start_session(restore=False)
    ours.create_checkpoint(progress={"steps": [1, 2], "nested": {"a": 1}}, context={"k": "v"})
    got = ours.read_checkpoint()
    got.progress["steps"].append(3)
    got.progress["nested"]["a"] = 2
    got.context["k"] = "changed"
    got.state.omitted["files_modified"] = 7
    again = ours.read_checkpoint()
    assert again.progress == {"steps": [1, 2], "nested": {"a": 1}}
    assert again.context == {"k": "v"}
    assert again.state.omitted == {}
    # The memo gives back what a fresh decode of the stored bytes gives.
    entry = ours.store.get(again.key)
    assert entry is not None
    assert again == codec.decode(Checkpoint, entry.value)


def test_the_memo_is_bounded(tmp_path: Path) -> None:
    DECODED.clear()
    for n in range(3 * DECODED.SLOTS):
        manager = SessionManager(FileStore(tmp_path / f"s{n}"), project=PROJECT, snapshot="never")
        manager.start_session(restore=False)
        manager.create_checkpoint()
        manager.read_checkpoint()
    assert len(DECODED._slots) <= DECODED.SLOTS
