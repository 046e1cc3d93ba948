"""One open session, many short processes: lock, attach, act, save.

Every front end step (a ``lifecycle`` command, a Claude Code hook, an MCP tool
call) is a short piece of the project's one open session. :func:`live_session`
takes the project's lock, continues the open session from ``session/context``
(:meth:`SessionManager.attach`), lets the caller act on the manager, then writes
``session/context`` back (:meth:`SessionManager.save_context`) so that the next
process continues where this one stopped, unsaved work included.

The lock matters because Claude Code runs hooks concurrently (parallel tool
calls, async hooks): without it, two processes would each attach the same
context and the second ``save_context`` would drop the first one's work. It is
an ``flock`` on a file in the temp folder named after the store and project, so
it serializes every process on this machine that works on the same session,
whatever the store. Where ``fcntl`` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.session import EndResult, SessionManager
    from lifecycle.stores import Store

#: How long a step waits for another process working on the same session.
LOCK_TIMEOUT = 10.0


class LiveSession:
    """What :func:`live_session` yields: the manager, and whether a session was open."""

    def __init__(
        self, manager: SessionManager, attached: bool, make: Callable[[], SessionManager]
    ) -> None:
        self.manager = manager
        self.attached = attached
        self._make = make

    def restart(self) -> SessionManager:
        """A new manager on the same store (after this one's session ended), saved instead."""
        self.manager = self._make()
        return self.manager

    @property
    def is_open(self) -> bool:
        """A session is loaded and not completed."""
        from lifecycle.spec import TABLE

        m = self.manager
        return m.session_id is not None and m.state not in TABLE.final


def lock_path(store: Store, project: str) -> str:
    """The lock file for ``project`` in ``store`` (one per session, per machine)."""
    root = getattr(store, "root", None)  # a file store: its resolved folder, whatever URL
    where = str(root) if root is not None else str(getattr(store, "url", repr(store)))
    digest = hashlib.blake2b(f"{where}\x00{project}".encode(), digest_size=8).hexdigest()
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"lifecycle-{uid}-{digest}.lock")


@contextlib.contextmanager
def project_lock(path: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; StoreUnavailable after ``timeout`` seconds."""
    try:
        import fcntl
    except ModuleNotFoundError:  # pragma: no cover - not POSIX
        yield
        return
    from lifecycle.errors import StoreUnavailable

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreUnavailable(
                        f"another lifecycle process has held the session lock for {timeout:g} s "
                        f"({path}); try again"
                    ) from None
                time.sleep(0.005)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def end_open_session(
    live: LiveSession, *, success: bool, phase: str | None = None, command: str = ""
) -> EndResult:
    """End the open session so that nothing of it is lost, or raise and leave it open.

    A session's end completes it whatever its final checkpoint did; here, when that
    checkpoint could not be written (its unsaved work would then live nowhere), the
    session's live record is put back and :class:`~lifecycle.errors.StoreError` raised:
    the session stays open, as before the end. The same when the closing batch (the
    session record) was not written: ``session/context`` is still there, and the next
    process continues the session.
    """
    from lifecycle.errors import CorruptRecord, StoreError
    from lifecycle.keys import CONTEXT

    m = live.manager
    m.save_context()  # what to put back: the session as it stands, unsaved work included
    before = m.store.get(CONTEXT)
    result = m.end_session(success=success, phase=phase, command=command)
    final = result.checkpoint
    if final is not None and final.error is not None:
        if before is not None:
            # Not deleted (the closing batch failed too), or nowhere to write: suppressed.
            with contextlib.suppress(StoreError):
                m.store.put(CONTEXT, before.value, expected_version=0)
        raise StoreError(
            f"session {result.session_id} not ended: its final checkpoint could not be "
            f"written ({final.error}); it stays open, nothing was lost"
        )
    try:
        closed = m.store.get(CONTEXT) is None
    except (StoreError, CorruptRecord):
        closed = False
    if not closed:
        raise StoreError(
            f"session {result.session_id} not ended: its session record could not be "
            "written; it stays open: end it again"
        )
    return result


@contextlib.contextmanager
def live_session(
    store: Store | str | None,
    project: str,
    *,
    clock: Callable[[], datetime] | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    save: bool = True,
    **manager_options: Any,
) -> Iterator[LiveSession]:
    """Continue the project's open session for one step.

    ``store`` is a Store (left open) or a URL (opened here and closed at the end).
    ``attached`` says whether a session was open; if not, the caller may start one.
    When the block ends, a session that is open is saved to ``session/context``,
    even when the block raised: whatever the manager did is then what the next
    process sees (each manager event is atomic, so that state is consistent).
    ``save=False`` is for steps that only read.
    """
    from lifecycle import keys
    from lifecycle.session import SessionManager
    from lifecycle.stores import open_store

    keys.validate_project(project)  # before opening anything: a bad name is input, not I/O
    owned = store is None or isinstance(store, str)
    raw: Store = open_store(store) if store is None or isinstance(store, str) else store
    try:
        with project_lock(lock_path(raw, project), lock_timeout):

            def make() -> SessionManager:
                return SessionManager(store=raw, project=project, clock=clock, **manager_options)

            first = make()
            live = LiveSession(first, first.attach(), make)
            try:
                yield live
            except BaseException:
                if save and live.is_open:  # never hide the error that is already on its way out
                    with contextlib.suppress(Exception):
                        live.manager.save_context()
                raise
            if save and live.is_open:
                live.manager.save_context()
    finally:
        if owned:
            raw.close()
