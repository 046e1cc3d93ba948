"""The file store rewrites ``checkpoints/latest`` (and every ``Put(sync=False)`` of an
existing file) in place, after the folder fsync that makes the checkpoint durable.

These tests kill a real writer process (SIGKILL, as tests/crash_harness.py does) at
the moments that write in place adds: just before it, after the write (the pointer is
``Put(lazy=True)``: never flushed), and halfway through the bytes (a torn pointer).
Each time:

- every checkpoint the writer acknowledged is still readable;
- a new session restores the newest acknowledged checkpoint or the newer one whose
  write was under way (never an older one);
- the next writer checkpoints again and the pointer names its checkpoint.

A second process reading the pointer while a writer rewrites it in place never gets
a CorruptRecord: a torn read is read again under the store's lock.

What a power loss adds (a pointer older than the newest checkpoint, intact) is made
by hand: the pointer names the boot it was written in, and one from an earlier boot
is not trusted (``StaleRecord``); every reader then takes the newest checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lifecycle import SessionManager, codec, keys
from lifecycle.errors import CorruptRecord
from lifecycle.records import Checkpoint, Pointer
from lifecycle.stores import file as file_store
from lifecycle.stores.file import FileStore

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "crash"
TIMEOUT = 120

#: The child: acknowledges ``count`` checkpoints, then dies inside the in-place write of
#: the next one's pointer at the point ``mode`` names.
WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from lifecycle import SessionManager
    from lifecycle.stores import file as file_store

    root, project, mode, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    armed = [False]
    plain = file_store._write_in_place

    def dying(fd, data, **how):
        if not armed[0]:
            return plain(fd, data, **how)
        if mode == "before-write":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "torn":
            os.pwrite(fd, data[: len(data) // 2], 0)
            os.kill(os.getpid(), signal.SIGKILL)
        os.pwrite(fd, data, 0)  # "after-write": written, never flushed
        os.ftruncate(fd, len(data))
        os.kill(os.getpid(), signal.SIGKILL)

    file_store._write_in_place = dying
    manager = SessionManager(file_store.FileStore(root), project=project, snapshot="never")
    manager.start_session(restore=True)
    for n in range(count):
        manager.add_task(f"T{n}", f"task {n}", status="in_progress")
        result = manager.create_checkpoint(progress={"n": n})
        assert result.written, result
        print("ack", result.checkpoint_id, result.key, flush=True)
    armed[0] = True
    manager.add_task("last", "the checkpoint whose pointer write dies", status="in_progress")
    manager.create_checkpoint(progress={"n": count})
    print("survived", flush=True)
    """
)


def _run_writer(root: Path, mode: str, count: int) -> list[tuple[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(root), PROJECT, mode, str(count)],
        capture_output=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == -9, (done.returncode, done.stderr.decode()[-2000:])
    acks = []
    for line in done.stdout.decode().splitlines():
        word, checkpoint_id, key = line.split()
        assert word == "ack"
        acks.append((checkpoint_id, key))
    return acks


def _pointer(store: FileStore) -> Pointer:
    entry = store.get(f"{PROJECT}/{keys.LATEST}")
    assert entry is not None
    return codec.decode(Pointer, entry.value)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["before-write", "after-write", "torn"])
def test_a_writer_killed_inside_the_pointer_write_loses_nothing_acknowledged(
    tmp_path: Path, mode: str
) -> None:
    root = tmp_path / "store"
    acks = _run_writer(root, mode, 3)
    assert len(acks) == 3
    store = FileStore(root)
    # Every acknowledged checkpoint is there.
    for checkpoint_id, key in acks:
        entry = store.get(f"{PROJECT}/{key}")
        assert entry is not None
        assert codec.decode(Checkpoint, entry.value).id == checkpoint_id
    # The pointer is the old one, the new one, or torn: what the kill point allows.
    newest_acked = acks[-1][1]
    if mode == "torn":
        with pytest.raises(CorruptRecord):
            store.get(f"{PROJECT}/{keys.LATEST}")
    elif mode == "before-write":
        assert _pointer(store).key == newest_acked
    else:
        assert _pointer(store).key > newest_acked  # the unacknowledged, durable one
    # A new session restores the newest acknowledged checkpoint, or the newer one.
    manager = SessionManager(store, project=PROJECT, snapshot="never")
    started = manager.start_session(restore=True)
    assert started.checkpoint_id is not None
    assert started.checkpoint_id >= acks[-1][0]
    if mode == "torn":
        assert any("unreadable" in warning for warning in started.warnings), started.warnings
        assert started.checkpoint_id > acks[-1][0]  # the checkpoint itself was durable
    else:
        assert started.warnings == ()
    # And the next writer moves the pointer again, whatever it found.
    again = manager.create_checkpoint(progress={"n": 99})
    assert again.written
    assert _pointer(store).key == again.key
    assert manager.read_checkpoint().id == again.checkpoint_id


READER = textwrap.dedent(
    """
    import sys
    from lifecycle.errors import CorruptRecord
    from lifecycle.stores.file import FileStore

    store, key, reads = FileStore(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    torn = 0
    for _ in range(reads):
        try:
            entry = store.get(key)
        except CorruptRecord:
            torn += 1
        else:
            assert entry is not None
    print(torn)
    """
)


@pytest.mark.timeout(300)
def test_a_reader_never_sees_a_pointer_torn_by_a_write_in_place(tmp_path: Path) -> None:
    from lifecycle.stores import Put

    root = tmp_path / "store"
    store = FileStore(root)
    key = "p/checkpoints/latest"
    store.put(key, b"x" * 150)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(root), key, "20000"],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        n = 0
        while reader.poll() is None:
            n += 1
            # Values of two lengths, so that some writes also cut the file.
            store.batch([Put(key, (b"%d-" % n) * (40 + n % 2 * 30), sync=False)])
        out, _ = reader.communicate(timeout=TIMEOUT)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait(timeout=TIMEOUT)
    assert reader.returncode == 0
    assert n > 100, "the writer barely ran while the reader read"
    assert int(out) == 0


def test_a_pointer_write_is_in_place_and_a_new_key_is_not(tmp_path: Path) -> None:
    """What the speed rests on: the pointer keeps its inode (no second new file and no
    rename), while a key written for the first time still arrives by rename."""
    from lifecycle.stores import Put

    store = FileStore(tmp_path / "store")
    store.batch([Put("p/a", b"first", sync=False)])
    path = tmp_path / "store" / "p.d" / "a.rec"
    inode = path.stat().st_ino
    store.batch([Put("p/b", b"checkpoint"), Put("p/a", b"second, longer value", sync=False)])
    assert path.stat().st_ino == inode
    assert store.get("p/a").value == b"second, longer value"  # type: ignore[union-attr]
    assert store.get("p/a").version == 2  # type: ignore[union-attr]
    store.batch([Put("p/a", b"3rd", sync=False)])  # shorter: the file is cut to size
    assert store.get("p/a").value == b"3rd"  # type: ignore[union-attr]
    store.put("p/a", b"synced")  # a durable put still goes through a temp file
    assert path.stat().st_ino != inode


# -- a pointer left unflushed (Put(lazy=True)), and the next boot ---------------------------


def _from_another_boot(path: Path, value: bytes, version: int) -> None:
    """What a power loss can leave: an older pointer, intact, written in an earlier boot
    whose page cache never reached the disk with the newer one."""
    other = b"0123456789abcdef" if file_store.boot_tag() != b"0123456789abcdef" else b"f" * 16
    path.write_bytes(file_store.encode_record(version, value, other))


@pytest.mark.skipif(file_store.boot_tag() is None, reason="this machine has no boot id")
def test_a_checkpoint_flushes_the_checkpoint_and_its_name_but_not_the_pointer(
    tmp_path: Path, flushes: list[str]
) -> None:
    store = FileStore(tmp_path / "store")
    manager = SessionManager(store, project=PROJECT, snapshot="never")
    manager.start_session(restore=False)
    manager.create_checkpoint(progress={"n": 0})  # the pointer's file exists from now on
    flushes.clear()  # counted from here
    seen = flushes
    result = manager.create_checkpoint(progress={"n": 1})
    assert seen == ["fsync", "fsync"]  # the checkpoint's bytes, then its folder
    path = tmp_path / "store" / f"{PROJECT}.d" / "checkpoints.d" / "latest.rec"
    header = path.read_bytes().split(b"\n", 1)[0]
    assert header.split()[3] == b"b" + file_store.boot_tag()  # type: ignore[operator]
    assert _pointer(store).key == result.key  # every process of this boot reads it


def test_without_a_boot_id_the_pointer_is_flushed_and_names_no_boot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flushes: list[str]
) -> None:
    monkeypatch.setattr(file_store, "_boot", [None])  # as on a system with no boot id
    store = FileStore(tmp_path / "store")
    manager = SessionManager(store, project=PROJECT, snapshot="never")
    manager.start_session(restore=False)
    manager.create_checkpoint(progress={"n": 0})
    flushes.clear()  # counted from here
    seen = flushes
    manager.create_checkpoint(progress={"n": 1})
    assert seen == ["fsync", "fsync", "fdatasync"]
    path = tmp_path / "store" / f"{PROJECT}.d" / "checkpoints.d" / "latest.rec"
    assert len(path.read_bytes().split(b"\n", 1)[0].split()) == 4  # LC1 version length crc


def test_a_pointer_from_an_earlier_boot_is_not_trusted_and_the_newest_checkpoint_wins(
    tmp_path: Path,
) -> None:
    from lifecycle import checkpoint_view
    from lifecycle.errors import StaleRecord
    from lifecycle.history import build_history
    from lifecycle.stores import ProjectStore, Put

    root = tmp_path / "store"
    store = FileStore(root)
    manager = SessionManager(store, project=PROJECT, snapshot="never")
    manager.start_session(restore=False)
    first = manager.create_checkpoint(progress={"n": 0})
    old_pointer = store.get(f"{PROJECT}/{keys.LATEST}")
    assert old_pointer is not None
    newest = manager.create_checkpoint(progress={"n": 1})
    manager.end_session()
    # The machine lost power: the pointer on disk is the older one, from the old boot.
    path = root / f"{PROJECT}.d" / "checkpoints.d" / "latest.rec"
    _from_another_boot(path, old_pointer.value, old_pointer.version)
    assert codec.decode(Pointer, old_pointer.value).key == first.key

    with pytest.raises(StaleRecord) as raised:
        store.get(f"{PROJECT}/{keys.LATEST}")
    assert "restarted" in str(raised.value)
    with pytest.raises(StaleRecord):  # nor can a compare-and-swap trust its version
        store.batch([Put(f"{PROJECT}/{keys.LATEST}", b"x", expected_version=old_pointer.version)])
    # Every reader takes the newest checkpoint, quietly: nothing is wrong.
    scoped = ProjectStore(store, PROJECT)
    assert checkpoint_view.read_checkpoint(scoped, "latest").id == newest.checkpoint_id
    assert build_history(scoped).latest_id == newest.checkpoint_id
    again = SessionManager(store, project=PROJECT, snapshot="never")
    started = again.start_session(restore=True)
    assert started.checkpoint_id == newest.checkpoint_id
    assert started.warnings == ()
    # The next checkpoint writes the pointer again, naming this boot.
    later = again.create_checkpoint(progress={"n": 2})
    assert _pointer(store).key == later.key
    assert SessionManager(store, project=PROJECT, snapshot="never").read_checkpoint().id == (
        later.checkpoint_id
    )


def test_a_session_pointer_from_an_earlier_boot_gives_way_to_the_newest_session(
    tmp_path: Path,
) -> None:
    from lifecycle.errors import StaleRecord
    from lifecycle.history import current_session
    from lifecycle.stores import ProjectStore

    root = tmp_path / "store"
    store = FileStore(root)
    first = SessionManager(store, project=PROJECT, snapshot="never")
    first.start_session(restore=False)
    first.end_session()
    old = store.get(f"{PROJECT}/{keys.CURRENT}")
    assert old is not None
    second = SessionManager(store, project=PROJECT, snapshot="never")
    started = second.start_session(restore=False)
    scoped = ProjectStore(store, PROJECT)
    assert current_session(scoped) == (f"session/{started.session_id[8:]}", started.session_id)
    # A power loss kept the older pointer, from the old boot.
    path = root / f"{PROJECT}.d" / "session.d" / "current.rec"
    _from_another_boot(path, old.value, old.version)
    with pytest.raises(StaleRecord):
        store.get(f"{PROJECT}/{keys.CURRENT}")
    assert current_session(scoped) == (f"session/{started.session_id[8:]}", started.session_id)
