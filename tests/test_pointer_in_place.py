"""The file store rewrites ``checkpoints/latest`` (and every ``Put(sync=False)`` of an
existing file) in place, after the folder fsync that makes the checkpoint durable.

These tests kill a real writer process (SIGKILL, as tests/crash_harness.py does) at
the moments that write in place adds: just before it, between the write and its
``fdatasync``, and halfway through the bytes (a torn pointer). Each time:

- every checkpoint the writer acknowledged is still readable;
- a new session restores the newest acknowledged checkpoint or the newer one whose
  write was under way (never an older one);
- the next writer checkpoints again and the pointer names its checkpoint.

A second process reading the pointer while a writer rewrites it in place never gets
a CorruptRecord: a torn read is read again under the store's lock.
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
