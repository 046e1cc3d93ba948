"""``file://DIR``: the embedded default store, one file per key under a root folder.

Layout. Key ``a/b/c`` lives in ``<root>/a.d/b.d/c.rec``: every segment but the last
names a folder ending in ``.d``, the last names a file ending in ``.rec``. A name
cannot end in both, so a key that is also a prefix of another (``a/b`` and
``a/b/c``) never collides with a folder, whatever its segments spell (``a/b.d``
and ``a/b/x`` give ``a.d/b.d.rec`` and ``a.d/b.d/x.rec``). Names starting with
``.`` (temp files, ``.lock``) and anything else without those suffixes (such as
the fallback store's ``recovery/`` queue) are never keys: no key segment starts
with ``.``.

Record format. Each file is a one-line header and the value::

    LC1 <version> <length> <crc32 8 hex>\\n<value bytes>

The CRC covers ``LC1 <version> <length> `` and the value, so a flipped bit in the
version is caught as well as one in the value. A value the store never flushed
(``Put(lazy=True)``) names the boot it was written in before its CRC::

    LC1 <version> <length> b<boot 16 hex> <crc32 8 hex>\\n<value bytes>

and reads as :class:`~lifecycle.errors.StaleRecord` once the machine has restarted:
the page cache that held it may have died with the old boot before reaching the
disk, so it may be older than the last value written. Within one boot every process
reads the page cache, which always holds the last write. (Without a boot id, as
outside Linux, such a value is flushed like any ``sync=False`` one.) :meth:`FileStore.get` raises
:class:`~lifecycle.errors.CorruptRecord` for a torn, truncated or flipped file;
:meth:`FileStore.scan` skips such files with a warning.

Writes. Every write operation holds an exclusive ``flock`` on ``<root>/.lock``
(opened afresh per operation, so it excludes threads of this process as well as
other processes); readers take no lock, because a rename is atomic and a reader
sees the old file or the new one. A value is written to ``.<name>.tmp`` in its
own folder, fsynced, renamed over ``<name>.rec``, and the folder is fsynced.
Files are created 0600 and folders 0700, set explicitly whatever the umask.

Crash semantics of :meth:`FileStore.batch`. Every compare-and-swap is checked under
the lock before anything is written, so a conflict writes nothing. Then every
value is written to its temp file (and fsynced unless ``Put(sync=False)``), the
temp files are renamed (deletes unlinked) in op order, and each affected folder is
fsynced once. Last, a ``Put(sync=False)`` whose key already has a regular file (a
``latest`` pointer, ``session/current``, the lease) is written in place, after the
folder fsyncs, and flushed with ``fdatasync`` (not at all if it is volatile or lazy):
no second new file, no rename. A crash during that write leaves the old value (the
batch was not acknowledged) or a torn one, which fails its checksum; a machine crash
after it may leave an older lazy value, which names the old boot: the reader of a
pointer then falls back to the newest valid record, which the folder fsync already
made durable. A reader that
finds a torn record reads it once more while holding the lock, so a write in place
in progress is never taken for a torn one. The call returns only after all of that,
so an acknowledged batch is whole. A crash in the middle of the renames leaves some
of them done and the rest not: on journaling file systems (ext4, xfs, apfs)
metadata reaches the disk in order, so a reader sees a prefix of the batch; POSIX
itself does not promise the order across folders. Callers therefore put their
commit record (a ``latest`` pointer) last and readers check that what it points to
exists and is valid.

Temp files. A temp file left by a crashed writer is never read (its name starts
with ``.``). Before writing, a writer lists the folders it is about to write temp
files in inside ``.lock`` and empties it when done; the next writer that finds it
non-empty removes the temp files in those folders. Temp names are fixed per key
(``.<name>.rec.tmp``), so a leftover whose marker was lost (power loss: the marker
is not fsynced) is replaced the next time its key is written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import zlib
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from urllib.parse import unquote

from lifecycle.errors import CorruptRecord, InvalidStoreURL, StaleRecord, StoreError
from lifecycle.logs import get_logger
from lifecycle.stores.base import (
    Delete,
    Entry,
    Op,
    Put,
    check_prefix,
    check_storage_key,
    check_version,
    plan_batch,
    split_url,
)
from lifecycle.stores.held import held_roots, hold, release

log = get_logger(__name__)

FILE_SUFFIX = ".rec"
DIR_SUFFIX = ".d"
TMP_SUFFIX = ".tmp"
LOCK_NAME = ".lock"
MAGIC = b"LC1"
FILE_MODE = 0o600
DIR_MODE = 0o700
#: The largest value a record file holds; a larger file is refused from its header, unread.
MAX_VALUE_BYTES = 64 * 1024 * 1024
_MAX_HEADER = 96  # "LC1 " + 19-digit version + 19-digit length + boot + 8 hex + spaces
_HEADER = re.compile(
    rb"LC1 ([1-9][0-9]{0,18}) (0|[1-9][0-9]{0,18}) (?:b([0-9a-f]{16}) )?([0-9a-f]{8})"
)
_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_boot: list[bytes | None] = []  # this boot's tag, once read


def boot_tag() -> bytes | None:
    """This boot's tag (16 hex digits of the kernel's boot id), or None where there is
    no boot id to read: then no value is left unflushed."""
    if not _boot:
        try:
            with open(_BOOT_ID, "rb") as f:
                digits = f.read(64).strip().replace(b"-", b"").lower()
        except OSError:
            digits = b""
        ok = len(digits) >= 16 and all(c in b"0123456789abcdef" for c in digits[:16])
        _boot.append(digits[:16] if ok else None)
    return _boot[0]


_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")


def encode_record(version: int, value: bytes, boot: bytes | None = None) -> bytes:
    """The bytes of one record file: header line, then the value; ``boot`` names the
    boot of a value left unflushed."""
    return _header(version, value, boot) + value


def _header(version: int, value: bytes, boot: bytes | None = None) -> bytes:
    """The header line of :func:`encode_record` (written before ``value`` with one
    ``writev``: the value is not copied behind it)."""
    head = b"LC1 %d %d " % (version, len(value))
    if boot is not None:
        head += b"b%s " % boot
    crc = zlib.crc32(value, zlib.crc32(head))
    return head + b"%08x\n" % crc


def decode_record(key: str, data: bytes) -> tuple[int, bytes]:
    """Verify a record file's bytes; return ``(version, value)`` or raise CorruptRecord."""
    end = data.find(b"\n", 0, _MAX_HEADER)
    if end < 0:
        raise CorruptRecord(key, f"no header line in the first {_MAX_HEADER} bytes")
    match = _HEADER.fullmatch(data, 0, end)
    if match is None:
        raise CorruptRecord(key, f"bad header {data[:end]!r}, expected b'LC1 VERSION LENGTH CRC'")
    version, length = int(match[1]), int(match[2])
    value = data[end + 1 :]
    if len(value) != length:
        raise CorruptRecord(key, f"header says {length} bytes, file holds {len(value)}")
    head = data[: match.start(4)]
    crc = zlib.crc32(value, zlib.crc32(head))
    if crc != int(match[4], 16):
        raise CorruptRecord(key, f"checksum {crc:08x} does not match header {match[4].decode()}")
    if match[3] is not None and match[3] != boot_tag():
        raise _stale(key)
    return version, value


def _stale(key: str) -> StaleRecord:
    return StaleRecord(
        key, "written without a flush before the machine restarted: maybe not the last value"
    )


def _open_record(key: str, path: str) -> int | None:
    """A read-only descriptor on the record file ``path``, or None if there is none.

    Never blocks and never follows a link: ``O_NONBLOCK`` keeps a FIFO planted in a
    record's place from hanging the reader (and, behind it, every writer waiting for
    the lock), and anything but a regular file is a :class:`CorruptRecord`.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
            raise CorruptRecord(key, "not a regular file (a link, socket or folder)") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CorruptRecord(key, "not a regular file (a FIFO, device or folder)")
    return fd


def _declared_length(key: str, head: bytes, size: int) -> int:
    """The value length ``head`` declares, checked against the file's ``size`` and the cap.

    Read before the value, so that a huge (or sparse) file costs one small read.
    """
    end = head.find(b"\n")
    match = _HEADER.fullmatch(head, 0, end) if end >= 0 else None
    if match is None:
        return 0  # decode_record names what is wrong with the header
    length = int(match[2])
    if length > MAX_VALUE_BYTES:
        raise CorruptRecord(key, f"header says {length} bytes, over the {MAX_VALUE_BYTES} cap")
    if size != end + 1 + length:
        raise CorruptRecord(key, f"header says {length} bytes, file holds {size - end - 1}")
    return length


def _open_in_place(path: str) -> int | None:
    """A descriptor to rewrite the existing regular file ``path`` in place (and to read
    its header), or None (no such file, or not a regular one: the temp file and rename
    then replace it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # absent, a link, a FIFO without reader, a folder
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        if stat.S_IMODE(info.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_in_place(fd: int, data: bytes, *, flush: bool = True) -> None:
    """Overwrite the file open on ``fd`` with ``data`` and flush it (``fdatasync``,
    unless ``flush`` is false: a volatile value).

    The new bytes go over the old ones (no block freed and allocated again, so a full
    disk does not refuse a same-sized value), then the file is cut to their length."""
    view = memoryview(data)
    at = 0
    while at < len(data):
        at += os.pwrite(fd, view[at:], at)
    if os.fstat(fd).st_size != len(data):
        os.ftruncate(fd, len(data))
    if flush:
        os.fdatasync(fd)


def _unflushed(op: Op) -> bytes | None:
    """The boot tag a value is written with when it is never flushed (``Put(lazy=True)``
    on a machine with a boot id), else None."""
    if isinstance(op, Put) and op.lazy and not op.sync and not op.volatile:
        return boot_tag()
    return None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: str, data: bytes | tuple[bytes, bytes], *, sync: bool = True) -> None:
    """Create or truncate ``path`` with mode 0600 and write ``data`` (fsynced if ``sync``):
    bytes, or a header and a value written one after the other."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        if isinstance(data, tuple):
            head, value = data
            done = os.writev(fd, data)
            # a short write (rare): the rest as one buffer
            rest = b"" if done == len(head) + len(value) else (head + value)[done:]
        else:
            rest = data
        view = memoryview(rest)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def bare_durable_write(path: Path, data: bytes) -> None:
    """The physical floor of one durable write: temp + write + fsync + rename + dir fsync.

    The benchmark times this against :meth:`FileStore.put` of the same bytes.
    """
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, "." + os.path.basename(path) + TMP_SUFFIX)
    _write_file(tmp, data)
    os.replace(tmp, path)
    _fsync_dir(folder)


#: What a new store folder's ``.gitignore`` says: nothing in it is the project's source,
#: so ``git status`` in a work tree that holds the store stays as it was.
GITIGNORE = b"# made by lifecycle: this folder is its store, not source\n*\n"


def write_durably(folder: Path, name: str, data: bytes) -> None:
    """Write ``folder/name`` durably (temp file, fsync, rename, folder fsync), 0600.

    For files that sit beside the keys (the fallback store's retry queue); the
    caller holds whatever lock keeps other writers of ``name`` away.
    """
    bare_durable_write(folder / name, data)


def make_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700, each made durable."""
    missing: list[str] = []
    here = os.path.abspath(path)
    while not os.path.isdir(here):
        missing.append(here)
        here = os.path.dirname(here)
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise NotADirectoryError(f"{folder!r} exists and is not a folder") from None
            continue
        os.chmod(folder, DIR_MODE)
        _fsync_dir(os.path.dirname(folder))


def _refuse_link(root: Path) -> None:
    """A store folder that is a symbolic link is refused: whoever can replace the link
    decides where the store's writes go. Name the real folder instead."""
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.lstat(root).st_mode):
            target = os.path.realpath(root)
            raise StoreError(
                f"store folder {str(root)!r} is a symbolic link (to {target!r}); "
                f"refusing it: use file://{target} to keep the store there"
            )


def _make_private(root: Path) -> None:
    """Tighten an existing store folder of ours to 0700 (one made before us may be 0755)."""
    with contextlib.suppress(OSError):
        info = os.stat(root)
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(root, DIR_MODE)
            log.info("store.folder_made_private", root=str(root))


def _store_error(root: str, doing: str, exc: OSError) -> StoreError:
    """The StoreError an OSError (disk full, permission denied, I/O error) is raised as."""
    reason = exc.strerror or type(exc).__name__
    code = f"errno {exc.errno}, " if exc.errno else ""
    return StoreError(f"file store {root!r}: could not {doing}: {code}{reason}")


@contextlib.contextmanager
def _os_errors(root: str, doing: str) -> Iterator[None]:
    """Turn an OSError (disk full, permission denied, I/O error) into a StoreError."""
    try:
        yield
    except OSError as exc:
        raise _store_error(root, doing, exc) from exc


#: How many keys' (and folders') places a store remembers; emptied when full.
_PLACES_MAX = 4096


def _ancestors(folder: str, depth: int) -> tuple[str, ...]:
    """``folder`` and its parents, ``depth`` of them: the folders below the root that a
    key ``depth`` segments deep passes through, innermost first."""
    found = []
    for _ in range(depth):
        found.append(folder)
        folder = os.path.dirname(folder)
    return tuple(found)


class FileStore:
    """A :class:`~lifecycle.stores.base.Store` keeping one checksummed file per key.

    Every OSError from the file system is raised as a :class:`StoreError` naming it.
    """

    def __init__(self, root: Path | str, url: str | None = None) -> None:
        root = Path(root).expanduser()
        _refuse_link(root)
        new = not os.path.isdir(root)
        make_dirs(root)
        if new:  # a store is not source: git (and tools that read .gitignore) pass it by
            with contextlib.suppress(OSError):
                bare_durable_write(root / ".gitignore", GITIGNORE)
        self.root = root.resolve()
        _make_private(self.root)
        self.url = url if url is not None else "file://" + str(self.root)
        self._root = str(self.root)
        self._lock_path = os.path.join(self._root, LOCK_NAME)
        self._made: set[str] = set()  # folders this instance knows exist
        self._relatives: dict[str, str] = {}  # folder -> its name relative to the root
        # The path arithmetic, done once: checked key -> (folder, file path, the folders
        # _check_inside looks at), and a key's parent (``a/b`` of ``a/b/c``) -> the same
        # but the file path, for a new key in a known folder (every new checkpoint's).
        self._places: dict[str, tuple[str, str, tuple[str, ...]]] = {}
        self._folders: dict[str, tuple[str, tuple[str, ...]]] = {}
        # The search index (lifecycle.search.file_index), once a search has made one.
        self._search_index: object | None = None
        self._index_file = os.path.join(self._root, ".search", "index.sqlite3")

    # -- paths ---------------------------------------------------------------------------

    def _folder(self, segments: Sequence[str]) -> str:
        return os.path.join(self._root, *(s + DIR_SUFFIX for s in segments))

    def _path(self, key: str, checked: set[str] | None = None) -> tuple[str, str]:
        """Return ``(folder, file path)`` of a checked key, refusing paths that leave the
        root; ``checked`` holds folders already checked by the same operation."""
        place = self._places.get(key) if type(key) is str else None
        if place is None:
            head, _, name = check_storage_key(key).rpartition("/")
            known = self._folders.get(head)
            if known is None:
                dirs = head.split("/") if head else []
                folder = self._folder(dirs)
                known = (folder, _ancestors(folder, len(dirs)))
                if len(self._folders) >= _PLACES_MAX:
                    self._folders.clear()
                self._folders[head] = known
            place = (known[0], known[0] + os.sep + name + FILE_SUFFIX, known[1])
            if len(self._places) >= _PLACES_MAX:
                self._places.clear()
            self._places[key] = place
        folder, path, through = place
        if checked is None or folder not in checked:
            self._check_through(key, through)
            if checked is not None:
                checked.add(folder)
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return folder, path
        if stat.S_ISLNK(mode):
            raise StoreError(f"key {key!r} is a symbolic link in {self._root}; refusing it")
        return folder, path

    def _check_inside(self, key: str, folder: str, depth: int) -> None:
        """Defence in depth: no folder between the root and ``folder`` may be a symlink."""
        self._check_through(key, _ancestors(folder, depth))

    def _check_through(self, key: str, folders: tuple[str, ...]) -> None:
        """:meth:`_check_inside` of the folders :func:`_ancestors` names (a missing one
        is passed by: its parent is checked next)."""
        for here in folders:
            try:
                mode = os.lstat(here).st_mode
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
                raise StoreError(
                    f"key {key!r} passes through {here!r}, which is not a plain folder "
                    f"inside {self._root}; refusing it"
                )
        # The root is resolved and no segment is ".." (check_storage_key), so a path
        # with no symlink below the root cannot leave it.

    # -- reading -------------------------------------------------------------------------

    def _read(self, key: str, path: str) -> Entry | None:
        fd = _open_record(key, path)
        if fd is None:
            return None
        try:
            head = os.read(fd, _MAX_HEADER)
            length = _declared_length(key, head, os.fstat(fd).st_size)
            chunks = [head]
            got = len(head)
            want = head.find(b"\n") + 1 + length
            while got < want and (chunk := os.read(fd, min(1 << 20, want - got))):
                chunks.append(chunk)
                got += len(chunk)
        finally:
            os.close(fd)
        version, value = decode_record(key, b"".join(chunks))
        return Entry(key, value, version)

    def get(self, key: str) -> Entry | None:
        with _os_errors(self._root, f"read {key!r}"):
            _, path = self._path(key)
            try:
                return self._read(key, path)
            except StaleRecord:
                raise  # whole, and no writer makes it less stale
            except CorruptRecord:
                # Maybe a value being written in place (see the module docstring): read
                # it again once no writer holds the lock; still torn, it is torn.
                if self._root in held_roots():
                    raise
                with self._reading_locked() as locked:
                    if not locked:
                        raise
                    return self._read(key, path)

    @contextlib.contextmanager
    def _reading_locked(self) -> Iterator[bool]:
        """Hold the write lock shared (no writer at work) while the block runs; yields
        False without waiting when there is no lock file (so no writer ever was)."""
        try:
            fd = os.open(self._lock_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            yield True
        finally:
            os.close(fd)

    def _version(self, key: str, path: str, expected: int | None, fd: int | None = None) -> int:
        """The stored version of ``key`` (0 if absent), read from the header alone
        (through ``fd`` when the caller has the file open).

        A file whose header is unreadable counts as absent for a write without
        ``expected_version`` (so a torn record can be overwritten or deleted), and
        raises CorruptRecord for a compare-and-swap, whose answer it cannot know.
        """
        head = b""  # not a regular file: no header
        if fd is not None:
            head = os.pread(fd, _MAX_HEADER, 0)
        else:
            try:
                own = _open_record(key, path)
            except CorruptRecord:
                pass  # not a regular file: no header
            else:
                if own is None:
                    return 0
                try:
                    head = os.read(own, _MAX_HEADER)
                finally:
                    os.close(own)
        end = head.find(b"\n")
        match = _HEADER.fullmatch(head, 0, end) if end >= 0 else None
        if match is not None:
            if expected is not None and match[3] is not None and match[3] != boot_tag():
                raise _stale(key)  # a compare-and-swap cannot trust its version either
            return int(match[1])
        if expected is not None:
            raise CorruptRecord(key, "bad header; delete or overwrite it without expected_version")
        log.warning("store.corrupt_record_replaced", key=key, url=self.url)
        return 0

    def _listing(self, folder: str, prefix: str, reverse: bool) -> list[tuple[str, bool]]:
        """The children of ``folder`` whose segment starts with ``prefix``, in key order.

        Each is ``(segment, is_folder)``; a folder sorts as ``segment + "/"``, which is
        where its keys fall among its siblings' keys.
        """
        found: list[tuple[str, bool]] = []
        try:
            with os.scandir(folder) as entries:
                for item in entries:
                    name = item.name
                    if name.endswith(FILE_SUFFIX):
                        segment, is_folder = name[: -len(FILE_SUFFIX)], False
                        if not item.is_file(follow_symlinks=False):
                            continue
                    elif name.endswith(DIR_SUFFIX):
                        segment, is_folder = name[: -len(DIR_SUFFIX)], True
                        if not item.is_dir(follow_symlinks=False):
                            continue
                    else:
                        continue
                    if segment.startswith(prefix) and _SEGMENT.fullmatch(segment):
                        found.append((segment, is_folder))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found.sort(key=lambda item: item[0] + "/" if item[1] else item[0], reverse=reverse)
        return found

    def _walk(self, folder: str, base: str, prefix: str, reverse: bool) -> Iterator[str]:
        for segment, is_folder in self._listing(folder, prefix, reverse):
            if is_folder:
                sub = os.path.join(folder, segment + DIR_SUFFIX)
                yield from self._walk(sub, base + segment + "/", "", reverse)
            else:
                yield base + segment

    def _keys(self, prefix: str, reverse: bool) -> Iterator[str]:
        check_prefix(prefix)
        head, _, partial = prefix.rpartition("/")
        dirs = head.split("/") if head else []
        folder = self._folder(dirs)
        if dirs:
            self._check_inside(prefix, folder, len(dirs))
        return self._walk(folder, head + "/" if head else "", partial, reverse)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        with _os_errors(self._root, f"list keys under {prefix!r}"):
            return list(islice(self._keys(prefix, reverse), limit))

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        """Entries under ``prefix`` in key order; ``limit`` counts valid entries only."""
        with _os_errors(self._root, f"scan {prefix!r}"):
            keys = self._keys(prefix, reverse)
        if limit is not None and limit <= 0:
            return
        count = 0
        while True:
            with _os_errors(self._root, f"scan {prefix!r}"):
                key = next(keys, None)
            if key is None:
                return
            try:
                entry = self.get(key)
            except StaleRecord:
                log.info("store.stale_record_skipped", key=key, url=self.url)
                continue
            except CorruptRecord as exc:
                log.warning(
                    "store.corrupt_record_skipped", key=key, reason=exc.reason, url=self.url
                )
                continue
            if entry is None:  # deleted since it was listed
                continue
            yield entry
            count += 1
            if limit is not None and count >= limit:
                return

    # -- writing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """Hold the store-wide write lock (:meth:`_lock`); yield the lock file's descriptor."""
        fd = self._lock()
        try:
            yield fd
        finally:
            self._unlock(fd)

    def _lock(self) -> int:
        """Take the store-wide write lock; return the lock file's descriptor, which
        :meth:`_unlock` closes (closing it releases the lock).

        The lock file doubles as a crash marker: a writer lists (relative to the root)
        the folders it is about to write temp files in, and empties the file when it is
        done. A writer that finds it non-empty knows the previous one died mid-write
        and removes the temp files in those folders. (The marker is not fsynced: after
        a power loss a leftover can survive until its key is written again, which
        reuses the same temp name.)
        """
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            hold(self._root)
            try:
                info = os.fstat(fd)
                if stat.S_IMODE(info.st_mode) != FILE_MODE:
                    os.fchmod(fd, FILE_MODE)
                size = info.st_size
                if size:
                    self._sweep(os.pread(fd, size, 0).decode("utf-8", "replace").splitlines())
                    os.ftruncate(fd, 0)
            except BaseException:
                release(self._root)
                raise
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _unlock(self, fd: int) -> None:
        """Release what :meth:`_lock` took."""
        try:
            release(self._root)
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _sweep(self, folders: Sequence[str]) -> None:
        """Remove the temp files a crashed writer left in ``folders`` (relative to the root).

        Each folder is opened one segment at a time from the root, never through a
        symlink (``O_NOFOLLOW``), so a link planted in the store cannot point the sweep
        at files outside it.
        """
        for name in folders:
            segments = [s for s in name.split("/") if s not in ("", ".")]
            if any(s == ".." or not s.endswith(DIR_SUFFIX) for s in segments):
                continue
            try:
                fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                return
            try:
                for segment in segments:
                    sub = os.open(segment, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                    os.close(fd)
                    fd = sub
                stale = [
                    e.name
                    for e in os.scandir(fd)
                    if e.name.startswith(".")
                    and e.name.endswith(TMP_SUFFIX)
                    and e.is_file(follow_symlinks=False)
                ]
                for item in stale:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(item, dir_fd=fd)
                    log.info("store.stale_temp_removed", folder=name, name=item)
            except OSError:  # gone, not a folder, or a link: nothing of ours to sweep
                continue
            finally:
                os.close(fd)

    def _make_folder(self, folder: str) -> None:
        if folder not in self._made:
            make_dirs(Path(folder))
            self._made.add(folder)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self.batch([Put(key, value, expected_version)])[0]

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        with _os_errors(self._root, f"delete {key!r}"):
            return self._delete(key, expected_version)

    def _delete(self, key: str, expected_version: int | None) -> bool:
        folder, path = self._path(key)
        with self._locked():
            check_version(key, expected_version, self._version(key, path, expected_version))
            try:
                os.unlink(path)
            except (FileNotFoundError, NotADirectoryError):
                return False
            _fsync_dir(folder)
            if self._indexed():
                self._index_written([(key, None)])
        return True

    def batch(self, ops: Sequence[Op]) -> list[int]:
        """Apply ``ops`` all or none (see the module docstring for crash semantics)."""
        count = len(ops)
        try:
            return self._batch(ops)
        except OSError as exc:  # plain try, not _os_errors: this is every write's path
            raise _store_error(self._root, f"write a batch of {count} operations", exc) from exc

    def _batch(self, ops: Sequence[Op]) -> list[int]:
        checked: set[str] = set()
        paths = [self._path(op.key, checked) for op in ops]
        if not ops:
            return []
        where = {op.key: path for op, (_, path) in zip(ops, paths, strict=True)}
        lock = self._lock()
        try:
            # The files a Put(sync=False) rewrites in place, opened once: their
            # versions are read through the same descriptors.
            last = {op.key: i for i, op in enumerate(ops)}
            overwrite: dict[int, int] = {}
            try:
                for key, i in last.items():
                    op = ops[i]
                    if isinstance(op, Put) and not op.sync:
                        fd = _open_in_place(where[key])
                        if fd is not None:
                            overwrite[i] = fd
                by_key = {ops[i].key: fd for i, fd in overwrite.items()}
                # Every compare-and-swap, against the state the batch itself builds up.
                plan = plan_batch(
                    ops,
                    lambda key, expected: self._version(key, where[key], expected, by_key.get(key)),
                )
                versions = [planned.version for planned in plan]
                self._apply(lock, ops, paths, versions, overwrite)
            finally:
                for fd in overwrite.values():
                    os.close(fd)
            if self._indexed():
                self._index_written([(o.key, o.value if isinstance(o, Put) else None) for o in ops])
            return versions
        finally:
            self._unlock(lock)

    def mirror(self, items: Sequence[tuple[str, bytes | None, int]]) -> None:
        """Store ``(key, value, version)`` as given, ``None`` deleting: a cache of another store.

        No compare-and-swap; the values are not fsynced (a torn copy fails its
        checksum), their names are. Used by the fallback store.
        """
        ops: list[Op] = [Delete(k) if v is None else Put(k, v, sync=False) for k, v, _ in items]
        with _os_errors(self._root, f"mirror {len(ops)} keys"):
            checked: set[str] = set()
            paths = [self._path(op.key, checked) for op in ops]
            versions = [0 if value is None else version for _, value, version in items]
            if ops:
                with self._locked() as lock:
                    self._apply(lock, ops, paths, versions, {})
                    if self._indexed():
                        self._index_written([(k, v) for k, v, _ in items])

    def _apply(
        self,
        lock: int,
        ops: Sequence[Op],
        paths: Sequence[tuple[str, str]],
        versions: Sequence[int],
        overwrite: dict[int, int],
    ) -> None:
        """Write ``ops`` (their compare-and-swaps already checked), each Put at its version.

        ``overwrite`` maps the index of each ``Put(sync=False)`` to rewrite in place to
        the descriptor of its file (the caller closes them): those are written after
        the renames and folder fsyncs (see the module docstring)."""
        # 1. Only the last op on each key reaches the disk; earlier ones are superseded.
        last = {op.key: i for i, op in enumerate(ops)}
        final = [i for i in range(len(ops)) if last[ops[i].key] == i]
        temps: dict[int, str] = {}
        try:
            folders = {paths[i][0] for i in final if isinstance(ops[i], Put) and i not in overwrite}
            if folders:
                marker = "\n".join(self._relative(f) for f in sorted(folders))
                os.pwrite(lock, marker.encode(), 0)
            for i in final:
                op = ops[i]
                if isinstance(op, Put) and i not in overwrite:
                    folder, path = paths[i]
                    temp = folder + os.sep + "." + path[len(folder) + 1 :] + TMP_SUFFIX
                    data = (_header(versions[i], op.value, _unflushed(op)), op.value)
                    self._make_folder(folder)
                    temps[i] = temp
                    try:
                        _write_file(temp, data, sync=op.sync)
                    except FileNotFoundError:  # the folder was removed behind our back
                        self._made.discard(folder)
                        self._make_folder(folder)
                        _write_file(temp, data, sync=op.sync)
            # 2. Renames and unlinks in op order, then each folder fsynced once (unless
            # only volatile values were renamed or unlinked in it).
            touched: dict[str, bool] = {}
            for i in final:
                folder, path = paths[i]
                durable = not ops[i].volatile or touched.get(folder, False)
                if i in temps:
                    os.replace(temps[i], path)
                    del temps[i]
                    touched[folder] = durable
                elif i not in overwrite:
                    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                        os.unlink(path)
                        touched[folder] = durable
            for folder, durable in touched.items():
                if durable:
                    _fsync_dir(folder)
            # 3. Values rewritten in place, in op order, once what they name is durable.
            for i, fd in overwrite.items():
                op = ops[i]
                assert isinstance(op, Put)
                boot = _unflushed(op)
                record = encode_record(versions[i], op.value, boot)
                _write_in_place(fd, record, flush=not (op.volatile or boot is not None))
        finally:
            for temp in temps.values():
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        if folders:
            os.ftruncate(lock, 0)

    def _relative(self, folder: str) -> str:
        """``folder`` relative to the root, as the crash marker names it (memoized)."""
        name = self._relatives.get(folder)
        if name is None:
            name = os.path.relpath(folder, self._root)
            if len(self._relatives) < 1024:
                self._relatives[folder] = name
        return name

    def _indexed(self) -> bool:
        """Has a search made an index (in this process, or another: its file exists)?"""
        # os.access, not os.path.exists: no exception raised and caught for the usual
        # answer (no index), on every write.
        return self._search_index is not None or os.access(self._index_file, os.F_OK)

    def _index_written(self, changes: Sequence[tuple[str, bytes | None]]) -> None:
        """Keep the search index current, under the write lock (the caller asked
        :meth:`_indexed` first: no list of changes is built for no index)."""
        from lifecycle.search import file_index

        file_index.written(self, changes)

    def close(self) -> None:
        if self._search_index is not None:
            from lifecycle.search import file_index

            file_index.close(self)


def root_of_url(url: str) -> Path:
    """The folder a ``file://`` URL names (``file://.lifecycle`` is relative to the cwd)."""
    if not isinstance(url, str):
        raise InvalidStoreURL(repr(url), "a store URL must be a string")
    parts = split_url(url)
    if parts.scheme.lower() != "file":
        raise InvalidStoreURL(url, "a file store URL starts with file://")
    if parts.query or parts.fragment:
        raise InvalidStoreURL(url, "a file store URL takes no ?query or #fragment")
    if "@" in parts.netloc:
        raise InvalidStoreURL(url, "a file store URL takes no user name or password")
    where = unquote(parts.netloc + parts.path, errors="surrogateescape")
    if not where:
        raise InvalidStoreURL(url, "the URL names no folder; use file://.lifecycle or file:///DIR")
    if "\x00" in where:
        raise InvalidStoreURL(url, "the folder name contains a NUL character")
    return Path(where).expanduser()


def open_file_store(url: str) -> FileStore:
    """Open ``file://.lifecycle`` (relative), ``file:///abs/dir`` or ``file://~/dir``."""
    root = root_of_url(url)
    try:
        return FileStore(root, url)
    except StoreError as exc:  # refused as it is (a symlinked folder, another owner's)
        raise InvalidStoreURL(url, str(exc)) from None
    except (NotADirectoryError, FileExistsError) as exc:
        raise InvalidStoreURL(url, f"cannot create or open folder {str(root)!r}: {exc}") from None
    except OSError as exc:  # the URL is fine; the file system says no (permissions, space)
        from lifecycle.errors import StoreUnavailable

        raise StoreUnavailable(
            f"file store {str(root)!r}: cannot create or open the folder: "
            f"{exc.strerror or type(exc).__name__}"
        ) from None
