"""The Claude Code hook's journal: recorded events waiting for the engine to fold them.

Most hook events only record (an edit, a command run, a prompt). The fast path
(:mod:`lifecycle.integrations.claude_fast`) appends such an event here, durably, and
answers without loading the session engine; the engine folds the journal into the
session the next time anything opens the session (:func:`lifecycle.integrations.live.live_session`:
every hook that is not a recording, every ``lifecycle`` command, the MCP server).

Where (file store only): ``<root>/<project>.d/claude-hook/``, beside the project's keys
and never one of them (no ``.d``/``.rec`` suffix):

``journal``
    one framed line per event: ``\\nJ1 <crc32> <length> <json>\\n``. Appended with one
    ``write`` under ``O_APPEND`` and fsynced before the hook answers. A line a crash tore
    fails its length or checksum and is skipped: it was never acknowledged. The leading
    newline keeps a torn tail from swallowing the next append.
    One case applies an event twice rather than lose it: an ``fsync`` that fails after
    the whole line was written (an I/O error) hands the event to the engine, and the
    line, if it reached the disk after all, is folded too.
``journal.lock``
    ``flock``: appenders hold it shared; a fold holds it exclusively only while it renames
    ``journal`` away, so an append lands either in the batch it takes or in the next one.
``folding-N``
    a batch a fold took (N increasing). The fold applies it, writes ``session/context``
    with ``folded_journal = N`` in the same record, then deletes it; a batch found with
    N at or below the live record's ``folded_journal`` was applied before a crash and is
    only deleted, so a batch is applied exactly once. For a hook event that never ends
    the session, that ``session/context`` write is the step's own, at its end (one
    write fewer); a crash before it leaves the batch and the record before it, and the
    next fold applies the batch to that record. Events that may end the session
    (SessionStart, SessionEnd) and every other caller write it before the step runs.
``due``
    ``{"v": 1, "due": <epoch seconds>, "failing": <bool>}``, written by the engine after
    every step of an open session: the earliest moment the time trigger could fire (the
    last activity plus what is left of the interval, and not before the last automatic
    checkpoint plus the interval), and whether a tool failure awaits its recovery. Past
    ``due``, or with no ``due`` at all (no open session, another store), the hook runs the
    engine. Active time only grows by the time that passes, so a ``due`` written earlier
    is never later than the true one.

The session lease (:mod:`lifecycle.session.lease`) and the store's compare-and-swap are
untouched: appending writes no store record, and only a lease holder folds and writes
``session/context``. SQLite, PostgreSQL and the other stores have no journal: every hook
on them runs the engine, as before.
"""

from __future__ import annotations

import json
import os
import zlib

TYPE_CHECKING = False  # typing itself is not imported: the fast path runs this module
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from lifecycle.integrations.claude_record import LiveSession
    from lifecycle.stores import Store

FOLDER = "claude-hook"
JOURNAL = "journal"
LOCK = "journal.lock"
DUE = "due"
FOLDING = "folding-"
FORMAT = 1
_MAGIC = b"J1"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def folder(root: str, project: str) -> str:
    """The journal folder of ``project`` in the file store at ``root``."""
    return os.path.join(root, project + ".d", FOLDER)


def frame(body: bytes) -> bytes:
    """One journal line: newline, magic, checksum, length, the JSON, newline."""
    return b"\n%s %08x %d %s\n" % (_MAGIC, zlib.crc32(body), len(body), body)


def _regular(fd: int) -> None:
    import stat

    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise OSError("not a regular file")


# -- the fast path's side ----------------------------------------------------------------


def read_due(where: str) -> tuple[float, bool] | None:
    """``(due, failing)`` from the folder's ``due`` record, or None when there is none
    (or it cannot be read as one: the engine decides then)."""
    try:
        fd = os.open(os.path.join(where, DUE), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        _regular(fd)
        data = json.loads(os.read(fd, 4096))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("v") != FORMAT:
        return None
    due, failing = data.get("due"), data.get("failing")
    if not isinstance(due, int | float) or isinstance(due, bool) or not isinstance(failing, bool):
        return None
    return float(due), failing


def append(where: str, body: bytes) -> bool:
    """Append one event durably; False (nothing acknowledged) when the folder is not
    ready (the engine has not made it) or the write did not complete."""
    import fcntl

    try:
        dfd = os.open(where, _DIR_FLAGS)
    except OSError:
        return False
    try:
        lock = os.open(LOCK, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except OSError:
        os.close(dfd)
        return False
    try:
        _regular(lock)
        fcntl.flock(lock, fcntl.LOCK_SH)
        flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK
        created = False
        try:
            fd = os.open(JOURNAL, flags, dir_fd=dfd)
        except FileNotFoundError:
            fd = os.open(JOURNAL, flags | os.O_CREAT, 0o600, dir_fd=dfd)
            created = True
        try:
            _regular(fd)
            line = frame(body)
            if os.write(fd, line) != len(line):
                return False  # a torn line: its checksum fails, the engine runs the event
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            os.fsync(dfd)  # the new file's name is durable too
        return True
    except OSError:
        return False
    finally:
        os.close(lock)  # releases the flock
        os.close(dfd)


# -- the engine's side -------------------------------------------------------------------


def folder_of(store: Store, project: str) -> str | None:
    """The journal folder when ``store`` is a file store, else None."""
    from lifecycle.stores.file import FileStore

    inner: object = store
    # through a ProjectStore (the store it scopes) and a ForwardingStore (the one it wraps)
    for _ in range(8):
        if isinstance(inner, FileStore):
            break
        inner = getattr(inner, "inner", None) or getattr(inner, "store", None)
    if not isinstance(inner, FileStore):
        return None
    return folder(str(inner.root), project)


def records(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The whole records in a journal's bytes, oldest first, and how many lines were torn
    or damaged."""
    found: list[dict[str, Any]] = []
    damaged = 0
    for line in data.split(b"\n"):
        if not line:
            continue
        parts = line.split(b" ", 3)
        try:
            magic, crc, length, body = parts
            ok = magic == _MAGIC and int(length) == len(body) and int(crc, 16) == zlib.crc32(body)
            record = json.loads(body) if ok else None
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("v") == FORMAT:
            found.append(record)
        else:
            damaged += 1
    return found, damaged


def _batches(where: str) -> list[tuple[int, str]]:
    try:
        names = os.listdir(where)
    except FileNotFoundError:
        return []
    out = [
        (int(name[len(FOLDING) :]), os.path.join(where, name))
        for name in names
        if name.startswith(FOLDING) and name[len(FOLDING) :].isdigit()
    ]
    return sorted(out)


def _read(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return b""
    try:
        _regular(fd)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _fsync_dir(where: str) -> None:
    fd = os.open(where, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def take(where: str, applied: int) -> list[tuple[int, str]]:
    """Rename ``journal`` to the next ``folding-N`` (excluding appenders meanwhile) and
    return the batches not yet applied, oldest first; batches at or below ``applied``
    are deleted. The caller holds the session lease."""
    import fcntl

    batches = _batches(where)
    lock = os.open(os.path.join(where, LOCK), os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        _regular(lock)
        fcntl.flock(lock, fcntl.LOCK_EX)
        journal = os.path.join(where, JOURNAL)
        if os.path.exists(journal):
            n = max([applied, *(b for b, _ in batches)]) + 1
            path = os.path.join(where, f"{FOLDING}{n:012d}")
            os.rename(journal, path)
            _fsync_dir(where)
            batches.append((n, path))
    finally:
        os.close(lock)
    for n, path in batches:
        if n <= applied:
            _unlink(path)
    return [(n, p) for n, p in batches if n > applied]


def _unlink(path: str) -> None:
    import contextlib

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def pending(where: str, applied: int) -> list[dict[str, Any]]:
    """Every record not yet folded, oldest first, changing nothing (a read-only step)."""
    out: list[dict[str, Any]] = []
    for n, path in _batches(where):
        if n > applied:
            out += records(_read(path))[0]
    return out + records(_read(os.path.join(where, JOURNAL)))[0]


def prepare(where: str) -> None:
    """Make the folder and its lock file (0700, 0600), for the fast path to use."""
    import contextlib

    if not os.path.isdir(where):
        with contextlib.suppress(FileExistsError):
            os.mkdir(where, 0o700)
    fd = os.open(os.path.join(where, LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.close(fd)


def write_due(where: str, due: float | None, failing: bool) -> None:
    """Write (or, with ``due`` None, remove) the folder's ``due`` record. Not fsynced: a
    ``due`` lost in a crash leaves an older one, never a later one, or none."""
    path = os.path.join(where, DUE)
    if due is None:
        _unlink(path)
        return
    prepare(where)
    tmp = os.path.join(where, ".due.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, json.dumps({"v": FORMAT, "due": due, "failing": failing}).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


# -- folding -----------------------------------------------------------------------------


def _pinned(live: LiveSession, at: float | None) -> None:
    """The session's clock pinned to the moment the hook saw the event (None: unpinned).
    The same pin SessionManager.apply uses: every moment of the event is this one, made
    strictly later than the session's last moment by the manager."""
    from datetime import UTC, datetime

    from lifecycle.session.deferred import pin

    pin(live.manager, None if at is None else datetime.fromtimestamp(at, UTC))


def _apply(live: LiveSession, recorded: list[dict[str, Any]]) -> None:
    from lifecycle.errors import StoreError
    from lifecycle.integrations import claude_record as cr

    handlers = {
        "PostToolUse": cr.post_tool_use,
        "UserPromptSubmit": cr.user_prompt_submit,
        "PreToolUse": cr.pre_tool_use,
    }
    for record in recorded:
        event, at, root = record.get("event"), record.get("at"), record.get("root")
        name = event.get("hook_event_name") if isinstance(event, dict) else None
        handler = handlers.get(name) if isinstance(name, str) else None
        if (
            handler is None
            or not isinstance(event, dict)
            or not isinstance(at, int | float)
            or not isinstance(root, str)
        ):
            _warn(live, "a journaled hook event was not one lifecycle records; skipped")
            continue
        try:
            _pinned(live, float(at))
            handler(live, event, {"CLAUDE_PROJECT_DIR": root})
        except StoreError:
            raise  # the store is down: the batch stays for the next fold
        except Exception as exc:  # the event itself is refused (as the hook would have)
            _warn(live, f"a journaled {name} was refused: {exc}")
        finally:
            _pinned(live, None)


def _warn(live: LiveSession, text: str) -> None:
    from lifecycle.logs import get_logger
    from lifecycle.session.deferred import warn

    get_logger(__name__).warning("claude_journal.skipped", reason=text)
    warn(live.manager, text)


def fold(
    live: LiveSession, store: Store, project: str, *, save: bool, defer: bool = False
) -> list[str]:
    """Fold the project's journal into ``live``'s session (see the module docstring).

    ``save``: the caller holds the lease; batches are taken, applied, written to
    ``session/context`` and deleted. Otherwise (a step that only reads) the pending
    records are applied to the open session in memory only, and stay for the next step
    that saves.

    ``defer``: the step that follows never ends the session, and writes
    ``session/context`` itself (``live_session`` does, for the hook's events that only
    continue a session): the batches are marked folded in memory and their files
    returned, for the caller to delete once that write is durable (one write instead of
    two; a crash before it leaves the batches and the older record, and the next fold
    applies them to that record, once)."""
    where = folder_of(store, project)
    if where is None or not os.path.isdir(where):
        return []
    m = live.manager
    applied = _folded(live)
    if not save:
        if live.is_open:  # never start a session in a step that only reads
            _apply(live, pending(where, applied))
        return []
    batches = take(where, applied)
    if not batches:
        return []
    damaged = 0
    for _, path in batches:
        found, torn = records(_read(path))
        damaged += torn
        _apply(live, found)
    if damaged:
        _warn(live, f"{damaged} torn or damaged journal line(s) skipped (never acknowledged)")
    live.attached = live.is_open
    if live.is_open:
        from lifecycle.session.deferred import mark_folded

        mark_folded(m, batches[-1][0])
        if defer:
            return [path for _, path in batches]
        m.save_context(fence=True)
    discard(path for _, path in batches)
    return []


def discard(paths: Iterable[str]) -> None:
    """Delete batches whose folding is durable."""
    for path in paths:
        _unlink(path)


def _folded(live: LiveSession) -> int:
    from lifecycle.session.deferred import live_record

    record = live_record(live.manager)
    return 0 if record is None else record.folded_journal


def after_step(live: LiveSession, store: Store, project: str) -> None:
    """Tell the fast path when it must hand over to the engine (the ``due`` record),
    after a step that saved the session. Best effort: without it the engine runs."""
    where = folder_of(store, project)
    if where is None:
        return
    import contextlib

    with contextlib.suppress(OSError):
        write_due(where, *_due(live))


def _due(live: LiveSession) -> tuple[float | None, bool]:
    from lifecycle.integrations.claude_record import FAILURES
    from lifecycle.session.deferred import time_due

    if not live.is_open:
        return None, False
    return time_due(live.manager), bool(live.manager.context.get(FAILURES))
