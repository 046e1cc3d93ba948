"""One open session, many short processes: lease, attach, act, save.

Every front end step (a ``lifecycle`` command, a Claude Code hook, an MCP tool
call) is a short piece of the project's one open session. :func:`live_session`
takes the project's session lease, continues the open session from
``session/context`` (:meth:`SessionManager.attach`), lets the caller act on the
manager, then writes ``session/context`` back (:meth:`SessionManager.save_context`)
so that the next process continues where this one stopped, unsaved work included.

The lease matters because Claude Code runs hooks concurrently (parallel tool
calls, async hooks), an MCP server runs beside them, and a team may share one
store from several machines: without it, two processes would each attach the same
context and the second ``save_context`` would drop the first one's work. It is a
record in the store itself (:mod:`lifecycle.session.lease`), taken with the store's
compare-and-swap, so whatever reaches the same store excludes every other such
process, whatever its machine, temp folder or spelling of the store's URL; and
``save_context`` is itself a compare-and-swap against the version attached, so a
process that overran its lease fails instead of overwriting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import nullcontext
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


def end_open_session(
    live: LiveSession, *, success: bool | None, phase: str | None = None, command: str = ""
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
    m.save_context(fence=True)  # what to put back: the session as it stands, unsaved work included
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
    defer_fold: bool = False,
    **manager_options: Any,
) -> Iterator[LiveSession]:
    """Continue the project's open session for one step.

    ``store`` is a Store (left open) or a URL (opened here and closed at the end).
    ``attached`` says whether a session was open; if not, the caller may start one.
    When the block ends, a session that is open is saved to ``session/context``,
    even when the block raised: whatever the manager did is then what the next
    process sees (each manager event is atomic, so that state is consistent).
    ``save=False`` is for steps that only read: they take no session lease.
    ``defer_fold=True`` is for a step that never ends the session (most hook events):
    the journal's batches are marked folded in the save at the end of the block rather
    than in a save of their own (:func:`lifecycle.integrations.claude_journal.fold`).
    """
    from lifecycle import keys
    from lifecycle.integrations import claude_journal
    from lifecycle.session import SessionManager
    from lifecycle.session.lease import held
    from lifecycle.stores import ProjectStore, open_store

    keys.validate_project(project)  # before opening anything: a bad name is input, not I/O
    owned = store is None or isinstance(store, str)
    raw: Store = open_store(store) if store is None or isinstance(store, str) else store
    try:
        # A step that only reads takes no lease: it writes nothing, each record it reads
        # is whole (the stores replace records atomically), and it works on a full disk.
        lease = held(ProjectStore(raw, project), lock_timeout) if save else nullcontext()
        with lease:

            def make() -> SessionManager:
                return SessionManager(store=raw, project=project, clock=clock, **manager_options)

            first = make()
            live = LiveSession(first, first.attach(), make)
            # Events the Claude Code hook only journaled join the session first (and a
            # fold that fails saves nothing: its batch stays whole for the next one).
            folded = claude_journal.fold(live, raw, project, save=save, defer=defer_fold)
            try:
                yield live
            except BaseException:
                if save and live.is_open:  # never hide the error that is already on its way out
                    with contextlib.suppress(Exception):
                        live.manager.save_context(fence=True)
                        claude_journal.discard(folded)
                raise
            if save and live.is_open:
                live.manager.save_context(fence=True)
            # (a step that ended the session anyway: what it wrote last holds the batches)
            claude_journal.discard(folded)
            if save:
                claude_journal.after_step(live, raw, project)
    finally:
        if owned:
            raw.close()
