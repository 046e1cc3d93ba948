"""Continuing one session across processes: ``session/context``, written and attached.

The live record is the session's whole state (work, clock, warnings, the saved
checkpoint's id and key, the journal's sequence), so a process that attaches
decodes one record and goes on where the last one stopped, unsaved work included.
"""

from __future__ import annotations

import attrs

from lifecycle import codec, limits
from lifecycle.errors import (
    CheckpointNotFound,
    CorruptRecord,
    InvalidRecord,
    LifecycleError,
    NoSession,
    SchemaVersionError,
)
from lifecycle.logs import get_logger
from lifecycle.records import Checkpoint, LiveContext
from lifecycle.session import finish
from lifecycle.session.checkpoints import fit_live, resumed
from lifecycle.session.driver import WARNINGS_KEPT, Driver
from lifecycle.session.step import Snapshot
from lifecycle.spec import TABLE, SessionState

log = get_logger(__name__)


def save(driver: Driver, *, fence: bool = False) -> None:
    """Write ``session/context`` (see ``SessionManager.save_context``)."""
    live = driver.live
    if live is None:
        raise NoSession("no session to save: call start_session first")
    body = _body(driver, live)
    if body is None:
        # Past the live record's cap (work piled up since the last checkpoint):
        # trimmed like a checkpoint over the hard limit, never refused.
        live, notes = fit_live(live)
        driver.live = live
        log.warning("context.trimmed", trimmed=list(notes))
        driver.warn("the session's live state was over its limit; trimmed: " + ", ".join(notes))
        body = _body(driver, live, check=False)
    assert body is not None
    driver.context_version = driver.store.put(
        finish.CONTEXT, body, expected_version=driver.context_version if fence else None
    )


def _body(driver: Driver, live: LiveContext, *, check: bool = True) -> bytes | None:
    """``session/context``'s bytes; None when ``check`` and they pass the cap."""
    journal = driver.journal
    live = attrs.evolve(
        live,
        session=finish.record_now(live),
        state=driver.state.value,
        warnings=tuple(driver.warnings[-WARNINGS_KEPT:]),
        saved_checkpoint_key=None if driver.saved is None else driver.saved.key or None,
        journal_seq=(
            journal.seq
            if journal is not None and journal.session_id == live.session.id
            else live.journal_seq
        ),
    )
    if not check:
        return codec.encode(live)
    try:
        body = codec.encode(live)
    except InvalidRecord:
        return None  # over the codec's record limit, or not JSON: trimmed, then told
    return None if len(body) > limits.LIVE_CONTEXT_BYTES else body


def attach(driver: Driver) -> bool:
    """Continue the open session in ``driver`` (see ``SessionManager.attach``)."""
    if driver.state is not TABLE.initial:
        raise LifecycleError(f"attach needs a new manager, this one is {driver.state}")
    try:
        entry = driver.store.get(finish.CONTEXT)
        driver.context_version = 0 if entry is None else entry.version
        if entry is None:
            return False
        live = codec.decode(LiveContext, entry.value, key=finish.CONTEXT)
        state = SessionState(live.state)
    except SchemaVersionError:
        raise  # a newer lifecycle's session: never replaced by a new one
    except (CorruptRecord, InvalidRecord, ValueError) as exc:
        log.warning("attach.unreadable", error=str(exc))
        driver.warn(f"{finish.CONTEXT} is unreadable ({exc})")
        return False
    if state in TABLE.final or live.session.end_time is not None:
        return False
    warnings = list(live.warnings)
    saved: Checkpoint | None = None
    if live.saved_checkpoint_id is not None:
        try:
            # By its key: one read, no listing of the checkpoints folder.
            saved = driver.checkpoints.by_id(
                live.saved_checkpoint_id, key=live.saved_checkpoint_key
            )
        except CheckpointNotFound:
            warnings.append(
                f"checkpoint {live.saved_checkpoint_id} is gone; all work counts as unsaved"
            )
        if saved is not None and saved.id == live.restored_from:
            saved = resumed(saved)  # what the session holds of it (see work.carried)
    driver.live = attrs.evolve(live, saved_checkpoint_id=None if saved is None else saved.id)
    driver.state = state
    driver.saved = saved
    driver.saved_at = None if saved is None else Snapshot.of(saved)
    driver.restored = saved if saved is not None and saved.id == live.restored_from else None
    driver.warnings = warnings
    if live.journal_seq is not None and driver.journal is not None:
        from lifecycle.session.journal import resume_at

        resume_at(driver.journal, live.session.id, live.journal_seq)
    return True
