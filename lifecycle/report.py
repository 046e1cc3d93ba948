"""The Session Report: what a user (or Claude Code) is shown about a session.

The first lines are the seed's format::

    Session restored:
      Phase: Phase 1: Foundation
      Progress: 5/10 (50%)
      Learnings captured: 3

followed by the resumption summary: work completed, open tasks and questions,
blockers, and decisions with their rationale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lifecycle.session import SessionManager

_DONE = ("tasks_completed", "completed", "done")
_TOTAL = ("tasks_total", "total")


def progress_line(progress: dict[str, Any]) -> str:
    """``5/10 (50%)`` from a progress mapping, or its items when it has no counts."""
    done = next((progress[k] for k in _DONE if isinstance(progress.get(k), int | float)), None)
    total = next((progress[k] for k in _TOTAL if isinstance(progress.get(k), int | float)), None)
    if done is not None and total:
        return f"{done:g}/{total:g} ({done / total:.0%})"
    if done is not None:
        return f"{done:g} completed"
    return ", ".join(f"{k}: {v}" for k, v in progress.items()) or "not recorded"


def _progress_suffix(progress: str | None) -> str:
    return f", {progress}" if progress else ""


def session_report(manager: SessionManager) -> str:
    restored = manager._restored_from
    head = "Session restored:" if restored is not None else "Session started (fresh):"
    lines = [
        head,
        f"  Phase: {manager.phase or 'not set'}",
        f"  Progress: {progress_line(manager.progress)}",
        f"  Learnings captured: {manager.learnings_count()}",
    ]
    if manager.session_id:
        lines.append(f"  Session: {manager.session_id} ({manager.state.value})")
    if restored is not None:
        lines.append(f"  Restored from: {restored.id} ({restored.type.value}, {restored.trigger})")
    work = manager.work
    sections: list[tuple[str, list[str]]] = [
        ("Work completed", [f"{t.id}: {t.description}".rstrip(": ") for t in work.completed_tasks]),
        (
            "Open tasks",
            [
                f"{t.id}: {t.description} [{t.status.value}{_progress_suffix(t.progress)}]"
                for t in work.active_tasks
            ],
        ),
        ("Open questions", list(work.open_questions)),
        ("Blockers", list(work.blockers)),
        (
            "Decisions",
            [
                f"{d.decision}" + (f" (because {d.rationale})" if d.rationale else "")
                for d in work.decisions
            ],
        ),
    ]
    for title, items in sections:
        if items:
            lines.append(f"  {title}:")
            lines.extend(f"    - {item}" for item in items)
    for warning in manager.warnings:
        lines.append(f"  Warning: {warning}")
    return "\n".join(lines)
