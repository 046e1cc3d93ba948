"""Rules of the file store beyond the conformance suite: layout, modes, checksums, crashes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import lifecycle
from lifecycle.errors import CorruptRecord, InvalidKey, InvalidStoreURL, StoreError
from lifecycle.stores import open_store
from lifecycle.stores.base import Entry, Put
from lifecycle.stores.file import FileStore, bare_durable_write, open_file_store


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def store(root: Path) -> FileStore:
    return FileStore(root)


def _modes(top: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(top.stat().st_mode)}
    for path in top.rglob("*"):
        found[str(path.relative_to(top))] = stat.S_IMODE(path.stat().st_mode)
    return found


# -- layout and format ---------------------------------------------------------------------


def test_a_key_that_is_a_prefix_of_another_never_collides_with_its_folder(store: FileStore) -> None:
    keys = ["a/b", "a/b/c", "a/b.d", "a/b.d/x", "a/b.rec", "a/b.rec/y", "a/b.d.rec"]
    for key in keys:
        store.put(key, key.encode())
    assert [store.get(k) for k in keys] == [Entry(k, k.encode(), 1) for k in keys]
    assert store.list_keys() == sorted(keys)


def test_each_key_is_one_rec_file_under_d_folders(store: FileStore, root: Path) -> None:
    store.put("a/b", b"1")
    store.put("a/b/c", b"2")
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [".gitignore", ".lock", "a.d/b.d/c.rec", "a.d/b.rec"]


def test_a_new_store_folder_is_ignored_by_git_and_an_existing_one_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    """A store made inside a git work tree leaves `git status` as it was: the folder it
    creates holds a .gitignore of `*`. A folder that already existed gets none."""
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=60)
    FileStore(tmp_path / ".lifecycle").put("p/k", b"v")
    assert (tmp_path / ".lifecycle" / ".gitignore").read_bytes().endswith(b"\n*\n")
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert status.stdout == ""
    (tmp_path / "mine").mkdir()
    FileStore(tmp_path / "mine").put("p/k", b"v")
    assert not (tmp_path / "mine" / ".gitignore").exists()


def test_a_record_file_is_a_checksummed_header_and_the_value(store: FileStore, root: Path) -> None:
    store.put("k", b"abc")
    store.put("k", b"abcd")
    head = b"LC1 2 4 "
    crc = zlib.crc32(b"abcd", zlib.crc32(head))
    assert (root / "k.rec").read_bytes() == head + b"%08x\n" % crc + b"abcd"


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277])
def test_files_are_0600_and_folders_0700_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        top = tmp_path / "new" / "root"
        store = FileStore(top)
        store.put("p/checkpoints/x", b"1")
        store.batch([Put("p/a/b/c", b"2"), Put("p/latest", b"3", sync=False)])
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "new")
    assert modes == {
        ".": 0o700,
        "root": 0o700,
        "root/.gitignore": 0o600,
        "root/.lock": 0o600,
        "root/p.d": 0o700,
        "root/p.d/checkpoints.d": 0o700,
        "root/p.d/checkpoints.d/x.rec": 0o600,
        "root/p.d/a.d": 0o700,
        "root/p.d/a.d/b.d": 0o700,
        "root/p.d/a.d/b.d/c.rec": 0o600,
        "root/p.d/latest.rec": 0o600,
    }


# -- corruption ----------------------------------------------------------------------------


def _truncate(data: bytes) -> bytes:
    return data[:-1]


def _flip_value_bit(data: bytes) -> bytes:
    return data[:-2] + bytes([data[-2] ^ 0x01]) + data[-1:]


def _flip_version(data: bytes) -> bytes:
    return data.replace(b"LC1 1 ", b"LC1 3 ", 1)


def _garbage_header(data: bytes) -> bytes:
    return b"\x00\x17garbage\n" + data


def _empty(data: bytes) -> bytes:
    return b""


def _appended(data: bytes) -> bytes:
    return data + b"x"


CORRUPTIONS = [_truncate, _flip_value_bit, _flip_version, _garbage_header, _empty, _appended]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_get_of_a_damaged_file_raises_corrupt_record(
    store: FileStore, root: Path, corrupt: object
) -> None:
    assert callable(corrupt)
    store.put("p/k", b"the value")
    path = root / "p.d" / "k.rec"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(CorruptRecord) as info:
        store.get("p/k")
    assert info.value.key == "p/k"


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__.strip("_"))
def test_scan_skips_a_damaged_file_with_a_warning(
    store: FileStore, root: Path, corrupt: object
) -> None:
    assert callable(corrupt)
    for key in ("p/a", "p/b", "p/c"):
        store.put(key, key.encode())
    path = root / "p.d" / "b.rec"
    path.write_bytes(corrupt(path.read_bytes()))
    with capture_logs() as logs:
        keys = [e.key for e in store.scan("p/")]
    assert keys == ["p/a", "p/c"]
    assert [(log["event"], log["key"]) for log in logs] == [("store.corrupt_record_skipped", "p/b")]
    assert store.list_keys("p/") == ["p/a", "p/b", "p/c"]


def test_scan_limit_counts_valid_entries_so_the_newest_valid_one_is_found(
    store: FileStore, root: Path
) -> None:
    for key in ("c/1", "c/2", "c/3"):
        store.put(key, key.encode())
    (root / "c.d" / "3.rec").write_bytes(b"torn")
    with capture_logs():
        newest = list(store.scan("c/", reverse=True, limit=1))
    assert newest == [Entry("c/2", b"c/2", 1)]


def test_a_damaged_file_can_be_overwritten_but_not_compare_and_swapped(
    store: FileStore, root: Path
) -> None:
    store.put("k", b"v")
    (root / "k.rec").write_bytes(b"\x00" * 10)
    with pytest.raises(CorruptRecord):
        store.put("k", b"w", expected_version=1)
    with capture_logs():
        assert store.put("k", b"w") == 1
    assert store.get("k") == Entry("k", b"w", 1)


# -- temp files and crashes ----------------------------------------------------------------


def test_leftover_temp_files_are_ignored_by_readers_and_removed_by_the_next_writer(
    store: FileStore, root: Path
) -> None:
    store.put("p/a", b"a")
    folder = root / "p.d"
    # What a writer that died mid-batch leaves: its temp files and its crash marker.
    (folder / ".a.rec.tmp").write_bytes(b"half a new value")
    (folder / ".gone.rec.tmp").write_bytes(b"LC1 1 3 00000000\nabc")
    (root / ".lock").write_bytes(b"p.d")
    assert store.list_keys() == ["p/a"]
    assert store.get("p/a") == Entry("p/a", b"a", 1)
    assert store.get("p/gone") is None
    FileStore(root).put("q", b"q")
    assert sorted(p.name for p in folder.iterdir()) == ["a.rec"]
    assert (root / ".lock").read_bytes() == b""


def test_an_unmarked_leftover_temp_file_is_replaced_when_its_key_is_written(
    store: FileStore, root: Path
) -> None:
    store.put("p/a", b"a")
    (root / "p.d" / ".a.rec.tmp").write_bytes(b"left by a power loss")
    store.put("p/a", b"b")
    assert sorted(p.name for p in (root / "p.d").iterdir()) == ["a.rec"]
    assert store.get("p/a") == Entry("p/a", b"b", 2)


_CRASHING_WRITER = """
import os, sys
from lifecycle.stores.base import Put
from lifecycle.stores.file import FileStore
store = FileStore(sys.argv[1])
renames = 0
real_replace = os.replace
def replace(src, dst):
    global renames
    renames += 1
    if renames == 2:
        os._exit(9)  # the process dies between the first and the second rename
    real_replace(src, dst)
os.replace = replace
store.batch([Put("c/cp1", b"checkpoint"), Put("c/other", b"x"), Put("c/latest", b"cp1")])
"""


def _run_child(script: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    package_root = str(Path(lifecycle.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=package_root)
    return subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, timeout=60
    )


def test_a_crash_mid_batch_leaves_a_prefix_and_temp_files_the_next_writer_removes(
    store: FileStore, root: Path
) -> None:
    store.put("c/latest", b"cp0")
    done = _run_child(_CRASHING_WRITER, str(root))
    assert done.returncode == 9, done.stderr.decode()
    assert store.list_keys("c/") == ["c/cp1", "c/latest"]
    assert store.get("c/latest") == Entry("c/latest", b"cp0", 1)
    folder = root / "c.d"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [
        ".latest.rec.tmp",
        ".other.rec.tmp",
    ]
    assert store.put("c/latest", b"cp1", expected_version=1) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["cp1.rec", "latest.rec"]


def test_a_write_that_fails_mid_batch_removes_its_temp_files(
    store: FileStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls = []

    def failing_replace(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreError, match="errno 28, No space left on device"):
        store.batch([Put("c/a", b"1"), Put("c/b", b"2"), Put("c/c", b"3")])
    assert sorted(p.name for p in (root / "c.d").iterdir()) == ["a.rec"]


# -- keys cannot leave the root --------------------------------------------------------------


@pytest.mark.parametrize("key", ["../x", "/etc/x", "a/../../x", "..", "~/x"])
def test_a_key_naming_a_place_outside_the_root_is_refused(
    store: FileStore, tmp_path: Path, key: str
) -> None:
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(InvalidKey):
        store.put(key, b"v")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_folder_symlinked_out_of_the_root_is_refused(
    store: FileStore, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "evil.d").symlink_to(outside)
    with pytest.raises(StoreError, match="evil"):
        store.put("evil/x", b"v")
    with pytest.raises(StoreError, match="evil"):
        store.get("evil/x")
    with pytest.raises(StoreError, match="evil"):
        store.list_keys("evil/")
    assert store.list_keys() == []
    assert list(outside.iterdir()) == []


def test_a_record_symlinked_out_of_the_root_is_refused(
    store: FileStore, root: Path, tmp_path: Path
) -> None:
    store.put("k/own", b"mine")
    secret = tmp_path / "secret.rec"
    secret.write_bytes((root / "k.d" / "own.rec").read_bytes())
    (root / "k.d" / "leak.rec").symlink_to(secret)
    with pytest.raises(StoreError, match="symbolic link"):
        store.get("k/leak")
    with pytest.raises(StoreError, match="symbolic link"):
        store.put("k/leak", b"overwrite")
    assert store.list_keys() == ["k/own"]
    assert secret.read_bytes() == (root / "k.d" / "own.rec").read_bytes()


# -- listing reads only what the prefix names ------------------------------------------------


def test_list_keys_scans_only_the_folders_under_the_prefix(
    store: FileStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("p/a/x", "p/b/y", "p/b/z/w", "p/bb", "p/c", "q/z"):
        store.put(key, b"1")
    scanned: list[str] = []
    real_scandir = os.scandir

    def spy(path: str) -> object:
        scanned.append(os.path.relpath(path, root))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    assert store.list_keys("p/b/") == ["p/b/y", "p/b/z/w"]
    assert scanned == ["p.d/b.d", "p.d/b.d/z.d"]
    scanned.clear()
    assert store.list_keys("p/b") == ["p/b/y", "p/b/z/w", "p/bb"]
    assert scanned == ["p.d", "p.d/b.d", "p.d/b.d/z.d"]
    scanned.clear()
    assert store.list_keys("p/", reverse=True, limit=1) == ["p/c"]
    assert scanned == ["p.d"]


# -- URLs ------------------------------------------------------------------------------------


def test_file_url_with_a_relative_folder_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file://.lifecycle")
    assert isinstance(store, FileStore)
    assert (store.root, store.url) == (tmp_path / ".lifecycle", "file://.lifecycle")


def test_file_url_with_an_absolute_folder(tmp_path: Path) -> None:
    store = open_file_store(f"file://{tmp_path}/abs%20dir")
    assert store.root == tmp_path / "abs dir"
    assert store.root.is_dir()


def test_file_url_with_a_tilde_is_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert open_file_store("file://~/x").root == tmp_path / "x"


@pytest.mark.parametrize("url", ["file://", "file://x?mode=1", "file://x#y"])
def test_a_malformed_file_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURL):
        open_file_store(url)


def test_a_file_url_naming_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    with pytest.raises(InvalidStoreURL, match="plain"):
        open_file_store(f"file://{tmp_path}/plain")


def test_bare_durable_write_leaves_exactly_the_bytes_and_no_temp_file(tmp_path: Path) -> None:
    bare_durable_write(tmp_path / "f", b"payload")
    bare_durable_write(tmp_path / "f", b"payload2")
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    assert (tmp_path / "f").read_bytes() == b"payload2"
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
