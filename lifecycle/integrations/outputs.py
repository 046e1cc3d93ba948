"""The manager's answers as plain JSON-safe dicts, in the Input/Output format of
SuperSpec's session manager.

The command line, the Claude Code hook and the MCP server all answer with
these: ``session_id``, ``is_fresh_session``, ``restored_state`` for a start;
``checkpoint_id``, ``timestamp`` for a checkpoint; ``success``, ``learning_key``
for a learning. Timestamps are RFC 3339 in UTC with a ``Z``
(``2026-01-25T12:00:00Z``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.records import Checkpoint
    from lifecycle.session import (
        CheckpointResult,
        EndResult,
        LearningResult,
        SessionManager,
        StartResult,
    )


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """Records, enums and datetimes as JSON values (timestamps with ``Z``)."""
    import orjson

    from lifecycle import codec

    raw = orjson.dumps(
        codec.converter.unstructure(value), option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS
    )
    return orjson.loads(raw)


def start(
    result: StartResult, *, continued: bool = False, ended_session_id: str | None = None
) -> dict[str, Any]:
    return {
        "session_id": result.session_id,
        "is_fresh_session": result.is_fresh_session,
        "restored_state": plain(result.restored_state),
        "checkpoint_id": result.checkpoint_id,
        "continued": continued,
        "ended_session_id": ended_session_id,
        "warnings": list(result.warnings),
    }


def continued(manager: SessionManager) -> dict[str, Any]:
    """A ``session start`` that continued the open session: the same fields as a start."""
    record = manager.session
    assert record is not None
    return {
        "session_id": record.id,
        "is_fresh_session": False,
        "restored_state": plain(
            {"phase": manager.phase, "progress": manager.progress, "context": manager.context}
        ),
        "checkpoint_id": record.restored_from,
        "continued": True,
        "ended_session_id": None,
        "warnings": list(manager.warnings),
    }


def checkpoint(result: CheckpointResult | None) -> dict[str, Any]:
    if result is None:
        return {"checkpoint_id": None, "timestamp": None, "written": False}
    out: dict[str, Any] = {
        "checkpoint_id": result.checkpoint_id,
        "timestamp": iso(result.timestamp),
        "written": result.written,
        "key": result.key,
        "type": None if result.type is None else result.type.value,
        "trigger": result.trigger,
    }
    if result.error:
        out["error"] = result.error
    return out


def learning(result: LearningResult) -> dict[str, Any]:
    out: dict[str, Any] = {"success": result.success, "learning_key": result.learning_key}
    if result.error:
        out["error"] = result.error
    return out


def end(result: EndResult) -> dict[str, Any]:
    summary = plain(result.summary)
    summary.pop("kind", None)
    summary.pop("schema_version", None)
    return {
        "session_id": result.session_id,
        "success": result.summary.success,
        "final_checkpoint": None if result.checkpoint is None else checkpoint(result.checkpoint),
        "summary": summary,
    }


def checkpoint_ref(cp: Checkpoint | None) -> dict[str, Any] | None:
    if cp is None:
        return None
    return {
        "checkpoint_id": cp.id,
        "timestamp": iso(cp.timestamp),
        "key": cp.key,
        "type": cp.type.value,
        "trigger": cp.trigger,
        "phase": cp.phase,
    }


def status(manager: SessionManager) -> dict[str, Any]:
    """Where the open session stands (call on an attached manager)."""
    record = manager.session
    assert record is not None
    work = manager.work
    return {
        "project": manager.project,
        "session_id": record.id,
        "state": manager.state.value,
        "command": record.command,
        "change_id": record.change_id,
        "started_at": iso(record.start_time),
        "phase": manager.phase,
        "progress": plain(manager.progress),
        "context": plain(manager.context),
        "active_minutes": round(manager.active_seconds / 60, 2),
        "unsaved_work": manager.has_unsaved_work,
        "checkpoint_due": manager.should_create_checkpoint(),
        "restored_from": record.restored_from,
        "last_checkpoint": checkpoint_ref(manager.last_checkpoint),
        "checkpoints_this_session": record.checkpoint_count,
        "open_tasks": [t.id for t in work.active_tasks],
        "tasks_completed": [t.id for t in work.completed_tasks],
        "open_questions": list(work.open_questions),
        "blockers": list(work.blockers),
        "files_modified": [f.path for f in work.files_modified],
        "learnings": manager.learnings_count(),
    }


def status_text(data: dict[str, Any]) -> str:
    from lifecycle.report import progress_line

    if data.get("session_id") is None:
        lines = [f"No open session in project {data['project']}."]
        last = data.get("last_session")
        if last:
            ok = {True: "succeeded", False: "did not succeed", None: "ended"}[last.get("success")]
            lines.append(
                f"  Last session: {last['session_id']} {ok} at {last['end_time']}"
                f" (phase: {last.get('phase') or 'not set'})"
            )
        cp = data.get("latest_checkpoint")
        if cp:
            lines.append(f"  Latest checkpoint: {cp['checkpoint_id']} ({cp['trigger']})")
            lines.append("  Next: lifecycle session start   (restores it)")
        else:
            lines.append("  Next: lifecycle session start")
        return "\n".join(lines)
    cp = data["last_checkpoint"]
    lines = [
        f"Session {data['session_id']} [{data['state']}] in project {data['project']}",
        f"  Phase: {data['phase'] or 'not set'}",
        f"  Progress: {progress_line(data['progress'])}",
        f"  Active: {data['active_minutes']:g} min since the last checkpoint",
        "  Last checkpoint: "
        + (f"{cp['checkpoint_id']} ({cp['trigger']}) at {cp['timestamp']}" if cp else "none"),
        f"  Unsaved work: {'yes' if data['unsaved_work'] else 'no'}"
        + ("; a checkpoint is due" if data["checkpoint_due"] else ""),
        f"  Tasks: {len(data['tasks_completed'])} completed, {len(data['open_tasks'])} open",
        f"  Files modified: {len(data['files_modified'])}   Learnings: {data['learnings']}",
    ]
    for title in ("open_questions", "blockers"):
        for item in data[title]:
            lines.append(f"  {title.replace('_', ' ').capitalize()[:-1]}: {item}")
    return "\n".join(lines)


def closed_status(manager: SessionManager) -> dict[str, Any]:
    """What there is to see when no session is open: the last summary, the latest checkpoint."""
    from lifecycle import codec, keys
    from lifecycle.errors import CheckpointNotFound, LifecycleError
    from lifecycle.records import SessionSummary

    last = None
    entry = manager.store.get(keys.LAST)
    if entry is not None:
        try:
            last = plain(codec.decode(SessionSummary, entry.value, key=keys.LAST))
            last.pop("kind", None)
        except LifecycleError:
            last = None
    try:
        latest = manager.read_checkpoint()
    except CheckpointNotFound:
        latest = None
    return {
        "project": manager.project,
        "session_id": None,
        "state": None,
        "last_session": last,
        "latest_checkpoint": checkpoint_ref(latest),
        "learnings": manager.learnings_count(),
    }
