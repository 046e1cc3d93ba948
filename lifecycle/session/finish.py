"""The end of a session: its record, its summary, consolidation, and cleanup."""

from __future__ import annotations

from datetime import datetime

import attrs

from lifecycle import codec, keys
from lifecycle.errors import StoreError
from lifecycle.logs import get_logger
from lifecycle.records import (
    Checkpoint,
    Decision,
    LiveContext,
    SessionRecord,
    SessionSummary,
    Task,
    Work,
)
from lifecycle.stores import Delete, Op, ProjectStore, Put

log = get_logger(__name__)

CONTEXT = keys.CONTEXT
LAST = keys.LAST
#: Session metadata budget ("session metadata < 10 KB").
SESSION_WARN_BYTES = 10_000


def record_now(
    live: LiveContext, end: datetime | None = None, success: bool | None = None
) -> SessionRecord:
    """The session record as it stands (with the work recorded so far): this session's
    own work, not the window it carried from the one it restored."""
    w = live.work
    record = attrs.evolve(
        live.session,
        phase=live.phase,
        work=Work(
            tasks_completed=own_tasks(live),
            files_modified=w.files_modified,
            decisions_made=own_decisions(live),
        ),
        discoveries=w.discoveries,
    )
    if end is not None:
        minutes = (end - record.start_time).total_seconds() / 60
        record = attrs.evolve(
            record, end_time=end, duration_minutes=round(minutes, 2), success=success
        )
    return record


def own_tasks(live: LiveContext) -> tuple[Task, ...]:
    """The tasks this session completed (a restored window's are the previous one's)."""
    start = live.session.start_time
    done = live.work.completed_tasks
    if live.restored_from is None:
        return done
    return tuple(t for t in done if t.completed_at is None or t.completed_at >= start)


def own_decisions(live: LiveContext) -> tuple[Decision, ...]:
    start = live.session.start_time
    made = live.work.decisions
    if live.restored_from is None:
        return made
    return tuple(d for d in made if d.timestamp >= start)


def summary(
    live: LiveContext,
    record: SessionRecord,
    success: bool | None,
    last: Checkpoint | None,
    now: datetime,
) -> SessionSummary:
    w = live.work
    return SessionSummary(
        session_id=record.id,
        project=record.project,
        start_time=record.start_time,
        end_time=record.end_time or now,
        success=success,
        phase=live.phase,
        progress=live.progress,
        tasks_completed=tuple(t.id for t in record.work.tasks_completed),
        open_tasks=tuple(t.id for t in w.active_tasks),
        open_questions=w.open_questions,
        blockers=w.blockers,
        decisions=record.work.decisions_made,
        learnings=record.learnings,
        checkpoints=record.checkpoint_count,
        last_checkpoint_id=None if last is None else last.id,
    )


def close(
    store: ProjectStore, record: SessionRecord, summary: SessionSummary, warnings: list[str]
) -> None:
    """Write the record and ``session/last``, and delete ``session/context`` (no later
    process may continue a finished session), in one batch; retried once, then the
    session still completes with a warning (its final checkpoint is durable)."""
    body = codec.encode(record)
    if len(body) > SESSION_WARN_BYTES:
        log.warning("session.large", size=len(body), limit=SESSION_WARN_BYTES)
    ops: list[Op] = [
        Put(keys.session_key(record.start_time), body),
        Put(LAST, codec.encode(summary)),
        Delete(CONTEXT),
    ]
    for attempt in (1, 2):
        try:
            store.batch(ops)
            return
        except StoreError as exc:
            log.warning("session.record_write_failed", attempt=attempt, error=str(exc))
            if attempt == 2:
                warnings.append(f"session record not written: {exc}")
