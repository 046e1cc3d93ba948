"""The Session Report: what a user (or Claude Code) is shown about a session.

The first lines are the Session Report of SuperClaude's Session Lifecycle Pattern::

    Session restored:
      Phase: Phase 1: Foundation
      Progress: 5/10 (50%)
      Learnings captured: 3

followed by the resumption summary: the work completed in the previous session,
open tasks and questions, blockers, the decisions with their rationale, and the
previous session's learnings. :func:`resumption_summary` is the same text for the
Claude Code context; both are capped in size, and every list that is cut says
``... N more``.

Missing pieces load as partial context: an absent or unreadable ``session/last``
or learning leaves its part out and adds a warning, never an error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import CorruptRecord, InvalidKey, InvalidRecord, StoreError
from lifecycle.logs import get_logger
from lifecycle.records import (
    Checkpoint,
    CheckpointRef,
    CheckpointType,
    DecisionsLog,
    ErrorContext,
    FileChange,
    Learning,
    LoggedDecision,
    SessionRecord,
    SessionSummary,
    Task,
    WorkState,
)

if TYPE_CHECKING:
    from lifecycle.session.results import SessionSnapshot

log = get_logger(__name__)

_DONE = ("tasks_completed", "completed", "done")
_TOTAL = ("tasks_total", "total")
LAST = keys.LAST
#: The Claude Code context limit (additionalContext: 10,000 characters).
DEFAULT_LIMIT = 10_000
MAX_ITEMS = 10
MAX_LEARNINGS = 5
#: Decisions of earlier sessions shown from ``project_state/decisions_log``.
MAX_EARLIER_DECISIONS = 5
LEARNING_CHARS = 200
#: What a session start injects: this many characters unless configured, never more
#: than the hard cap.
DEFAULT_BUDGET = 4_000
MAX_BUDGET = 10_000
MAX_PROMPTS = 3
PROMPT_CHARS = 300


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


# -- what the resumption summary is built from --------------------------------------------


@attrs.frozen
class PreviousSession:
    session_id: str
    phase: str = ""
    end_time: datetime | None = None
    success: bool | None = None
    tasks_completed: tuple[Task, ...] = ()
    learning_keys: tuple[str, ...] = ()
    #: True when it ended normally (``session/last``); False when it was cut short and
    #: is known only from the checkpoint this session restored.
    ended: bool = True


@attrs.frozen
class Resumption:
    previous: PreviousSession | None
    learnings: tuple[Learning, ...]
    warnings: tuple[str, ...]
    #: Decisions of sessions before the carried window (a resumed session holds only
    #: the previous session's): the newest from ``project_state/decisions_log``.
    earlier_decisions: tuple[LoggedDecision, ...] = ()
    #: The newest risk checkpoint with a snapshot of the work tree: what
    #: ``lifecycle rewind ID`` restores the files from.
    rewind_from: Checkpoint | None = None
    #: The work state of the checkpoint this session restored, as stored (the session
    #: carries only a window of it): what the previous session did.
    restored_work: WorkState | None = None


def _session_start(session_id: str) -> datetime | None:
    try:
        return keys.parse_ts(session_id.removeprefix("session-"))
    except ValueError:
        return None


def load_resumption(view: SessionSnapshot, *, max_learnings: int = MAX_LEARNINGS) -> Resumption:
    """Read what the summary needs beyond the session's own state: ``session/last`` and
    the previous session's learnings. Each missing or unreadable piece is a warning."""
    warnings: list[str] = []
    store = view.store
    last: SessionSummary | None = None
    try:
        entry = store.get(LAST)
        if entry is not None:
            last = codec.decode(SessionSummary, entry.value, key=LAST)
    except (CorruptRecord, InvalidRecord, StoreError) as exc:
        warnings.append(f"previous session summary ({LAST}) is unreadable: {exc}")
        log.warning("resume.summary_unreadable", error=str(exc))
    current = view.session_id
    if last is not None and last.session_id == current:
        last = None  # this session's own summary (after it ended): not "previous"
    done = {t.id: t for t in view.work.completed_tasks}
    restored = view.restored_from
    previous: PreviousSession | None = None
    if restored is not None and (last is None or last.session_id != restored.session_id):
        # The restored checkpoint's session did not end normally (or its summary is
        # gone): what it completed is what the checkpoint holds since that session began.
        began = _session_start(restored.session_id)
        previous = PreviousSession(
            session_id=restored.session_id,
            phase=restored.phase,
            end_time=restored.timestamp,
            tasks_completed=tuple(
                t
                for t in restored.state.completed_tasks
                if began is None or (t.completed_at is not None and t.completed_at >= began)
            ),
            ended=False,
        )
    elif last is not None:
        previous = PreviousSession(
            session_id=last.session_id,
            phase=last.phase,
            end_time=last.end_time,
            success=last.success,
            tasks_completed=tuple(done.get(i, Task(id=i)) for i in last.tasks_completed),
            learning_keys=last.learnings,
        )
    learnings: list[Learning] = []
    if previous is not None:
        for key in previous.learning_keys[-max_learnings:]:
            try:
                entry = store.get(key)
                if entry is None:
                    warnings.append(f"learning {key} is missing")
                    continue
                learnings.append(codec.decode(Learning, entry.value, key=key))
            except (CorruptRecord, InvalidRecord, InvalidKey, StoreError) as exc:
                warnings.append(f"learning {key} is unreadable: {exc}")
                log.warning("resume.learning_unreadable", key=key, error=str(exc))
    earlier: tuple[LoggedDecision, ...] = ()
    if restored is not None:
        earlier = _earlier_decisions(view, warnings)
    return Resumption(
        previous,
        tuple(learnings),
        tuple(warnings),
        earlier,
        _rewind_from(view),
        _restored_work(view, warnings),
    )


def _restored_work(view: SessionSnapshot, warnings: list[str]) -> WorkState | None:
    """The restored checkpoint's work state as stored (one read), when it is another
    session's."""
    restored = view.restored_from
    if restored is None or restored.session_id == view.session_id:
        return None
    try:
        entry = view.store.get(restored.key)
        if entry is None:
            return restored.state
        return codec.decode(Checkpoint, entry.value, key=restored.key).state
    except (CorruptRecord, InvalidRecord, InvalidKey, StoreError) as exc:
        warnings.append(f"checkpoint {restored.id} is unreadable: {exc}")
        return restored.state


def _earlier_decisions(view: SessionSnapshot, warnings: list[str]) -> tuple[LoggedDecision, ...]:
    """The newest logged decisions the session's own work does not hold (one read)."""
    try:
        entry = view.store.get(keys.DECISIONS_LOG)
        if entry is None:
            return ()
        log_ = codec.decode(DecisionsLog, entry.value, key=keys.DECISIONS_LOG)
    except (CorruptRecord, InvalidRecord, StoreError) as exc:
        warnings.append(f"{keys.DECISIONS_LOG} is unreadable: {exc}")
        return ()
    held = {d.id for d in view.work.decisions}
    older = [e for e in log_.entries if e.id not in held]
    return tuple(older[-MAX_EARLIER_DECISIONS:])


def _rewind_from(view: SessionSnapshot) -> Checkpoint | None:
    """The newest risk checkpoint of this session, or else of the session the restored
    checkpoint came from, if it has a snapshot: a few reads, never a listing."""
    refs = list(view.session.checkpoints) if view.session is not None else []
    restored = view.restored_from
    if restored is not None and not any(r.type is CheckpointType.RISK for r in refs):
        refs = [CheckpointRef(restored.id, restored.key, restored.timestamp, restored.type, "")]
        began = _session_start(restored.session_id)
        for key in () if began is None else _session_keys(began):
            try:
                entry = view.store.get(key)
                if entry is not None:
                    refs = [*codec.decode(SessionRecord, entry.value, key=key).checkpoints, *refs]
                    break
            except (CorruptRecord, InvalidRecord, InvalidKey, StoreError):
                break
    for ref in sorted(refs, key=lambda r: r.timestamp, reverse=True):
        if ref.type is not CheckpointType.RISK:
            continue
        try:
            entry = view.store.get(ref.key)
            cp = None if entry is None else codec.decode(Checkpoint, entry.value, key=ref.key)
        except (CorruptRecord, InvalidRecord, InvalidKey, StoreError):
            cp = None
        if cp is not None and cp.snapshot is not None and cp.snapshot.commit is not None:
            return cp
        return None  # the newest risk checkpoint is the one a deletion would be undone from
    return None


def _session_keys(began: datetime) -> tuple[str, str]:
    return keys.session_key(began), keys.session_history_key(began)


# -- text ----------------------------------------------------------------------------------


def _capped(items: list[str], max_items: int, *, newest: bool = False) -> list[str]:
    """At most ``max_items`` lines; the cut is said as ``... N more`` (for ``newest``,
    the oldest are cut and the line comes first)."""
    if len(items) <= max_items:
        return items
    cut = len(items) - max_items
    if newest:
        return [f"... {cut} more (older)", *items[-max_items:]]
    return [*items[:max_items], f"... {cut} more"]


def _task_line(t: Task) -> str:
    """A task as a person knows it: an id that says nothing of its own (a front end's
    numbering, such as Claude Code's ``abcd1234/1``, or a slug of the subject) is left out
    for the subject."""
    if t.description and ("/" in t.id or t.id == keys.slug(t.description)[:60]):
        return t.description
    return f"{t.id}: {t.description}".rstrip(": ")


def _texts(value: Any, limit: int) -> list[str]:
    """The strings of a context list, clipped, newest last."""
    if not isinstance(value, list):
        return []
    return [_clip(v, limit) for v in value if isinstance(v, str) and v.strip()]


def _files(files: tuple[FileChange, ...]) -> list[str]:
    """``created (2): a, b`` / ``edited (1): c`` / ``deleted (1): d``."""
    groups: dict[str, list[str]] = {"created": [], "edited": [], "deleted": []}
    for f in files:
        ops = set(f.operations)
        if ops & {"delete", "deleted", "remove"}:
            groups["deleted"].append(f.path)
        elif ops & {"create", "created", "add"}:
            groups["created"].append(f.path)
        else:
            groups["edited"].append(f.path)
    lines = []
    for verb, paths in groups.items():
        if paths:
            shown = paths[-MAX_ITEMS:]
            more = f", ... {len(paths) - len(shown)} more" if len(paths) > len(shown) else ""
            lines.append(f"files {verb} ({len(paths)}): {', '.join(shown)}{more}")
    return lines


def _recovery(e: ErrorContext) -> str:
    steps = "; ".join(e.recovery_steps)
    return f"failed, then recovered: {_clip(e.error, 160)}" + (
        f" -> {_clip(steps, 160)}" if steps else ""
    )


def runs_of(item: Mapping[str, Any]) -> int:
    """How many times a recorded risky operation ran (``runs``, 1 when absent)."""
    runs = item.get("runs")
    return runs if type(runs) is int and 1 <= runs <= 1_000_000 else 1


def _risky(value: Any) -> list[str]:
    """Risky operations the front end recorded with the checkpoint written before each;
    one line per operation, however often it ran (newest last)."""
    runs: dict[str, tuple[int, str | None]] = {}  # operation -> (runs, newest checkpoint)
    for item in value if isinstance(value, list) else []:
        if isinstance(item, dict) and isinstance(item.get("operation"), str):
            cp = item.get("checkpoint_id")
            count, _ = runs.pop(item["operation"], (0, None))
            newest = cp if isinstance(cp, str) and cp else None
            runs[item["operation"]] = (count + runs_of(item), newest)
    out = []
    for op, (count, last) in runs.items():
        line = f"risky operation {_clip(op, 160)!r}"
        if count == 1:
            line += f", checkpoint {last} written before it ran" if last else ", not checkpointed"
        else:
            line += f" ({count} times)"
            line += (
                f", checkpoint {last} written before the last run"
                if last
                else ", the last run not checkpointed"
            )
        out.append(line)
    return out


def _relevant(learnings: tuple[Learning, ...], files: tuple[FileChange, ...]) -> list[Learning]:
    """The learnings that name a file touched first, then the rest (newest last)."""
    names = {os.path.basename(f.path) for f in files if f.path}
    touching = [x for x in learnings if any(n and n in x.content for n in names)]
    return touching + [x for x in learnings if x not in touching]


def _sections(
    view: SessionSnapshot, resumption: Resumption, max_items: int
) -> list[tuple[str, list[str]]]:
    """The context, in the order a reader needs it: what the user asked, what was done,
    what is open, the decisions, the learnings. Facts, never instructions."""
    work = view.work
    context = view.context
    files, errors = work.files_modified, work.errors
    before = resumption.restored_work
    if before is not None:
        # A resumed session carries its predecessor's open work, not its history
        # (docs/limits.md): what that session did is in the checkpoint restored.
        mine = {f.path for f in files}
        files = (*(f for f in before.files_modified if f.path not in mine), *files)
        errors = (*(e for e in before.errors if e not in errors), *errors)
    done: list[str] = _files(files)
    completed = [_task_line(t) for t in work.completed_tasks]
    done += [f"task completed: {line}" for line in _capped(completed, max_items, newest=True)]
    done += _capped([_recovery(e) for e in errors], max_items, newest=True)
    done += _capped(_risky(context.get("risky_operations")), max_items, newest=True)
    open_items = [
        f"task: {_task_line(t)} [{t.status.value}{_progress_suffix(t.progress)}]"
        for t in work.active_tasks
    ]
    open_items += [f"failed, not yet recovered: {x}" for x in _texts(context.get("failures"), 200)]
    open_items += [f"question: {q}" for q in work.open_questions]
    open_items += [f"blocker: {b}" for b in work.blockers]
    return [
        (
            "The user asked (latest last)",
            [repr(p) for p in _texts(context.get("prompts"), PROMPT_CHARS)[-MAX_PROMPTS:]],
        ),
        ("Done so far", done),
        ("Open", _capped(open_items, max_items)),
        (
            "Decisions",
            _capped(
                [
                    d.decision
                    + (f" (because {d.rationale})" if d.rationale else "")
                    + (f" [{d.impact}]" if d.impact else "")
                    for d in work.decisions
                ],
                max_items,
                newest=True,
            ),
        ),
        (
            "Earlier decisions",
            [
                d.decision + (f" (because {d.rationale})" if d.rationale else "")
                for d in resumption.earlier_decisions
            ],
        ),
        (
            "Learnings",
            [
                f"{item.key}: {_clip(item.content, LEARNING_CHARS)}"
                for item in _relevant(resumption.learnings, work.files_modified)
            ],
        ),
    ]


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


#: How each counted field is said ("... and 2,480 more file changes").
_OMITTED_NOUNS = {
    "files_modified": "file changes",
    "completed_tasks": "completed tasks",
    "decisions": "decisions",
    "errors": "errors",
    "patterns_found": "patterns",
    "insights_gained": "insights",
}


def _omitted(counts: dict[str, int]) -> str:
    return ", ".join(
        f"... and {n:,} more {_OMITTED_NOUNS.get(field, field)}"
        for field, n in sorted(counts.items())
        if n > 0
    )


def _previous_line(prev: PreviousSession) -> str:
    when = "" if prev.end_time is None else f" {prev.end_time:%Y-%m-%d %H:%M}Z"
    if not prev.ended:
        how = f"cut short; last checkpoint{when}"
    else:
        if prev.success is None:
            how = f"ended without SessionEnd{when}"
        else:
            how = f"ended{when}, {'success' if prev.success else 'failed'}"
    phase = f", phase {prev.phase!r}" if prev.phase else ""
    return f"  Previous session: {prev.session_id} ({how}{phase})"


def _limit(lines: list[str], limit_chars: int) -> str:
    """Join ``lines``, keeping whole lines within ``limit_chars`` and saying what was cut."""
    text = "\n".join(lines)
    if len(text) <= limit_chars:
        return text
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        tail = (
            f"... {len(lines) - i} more lines (cut at {limit_chars:,} characters; "
            "`lifecycle report` has them all)"
        )
        if used + len(line) + 1 + len(tail) > limit_chars:
            kept.append(tail)
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)[:limit_chars]


def _body(view: SessionSnapshot, resumption: Resumption, max_items: int) -> list[str]:
    lines: list[str] = []
    if resumption.previous is not None:
        lines.append(_previous_line(resumption.previous))
    for title, items in _sections(view, resumption, max_items):
        if items:
            lines.append(f"  {title}:")
            lines.extend(
                f"    - {item}" if not item.startswith("... ") else f"    {item}" for item in items
            )
    left_out = _omitted(view.work.omitted)
    if left_out:
        lines.append(f"  Not kept (past the caps, see docs/limits.md): {left_out}")
    undo = resumption.rewind_from
    if undo is not None:
        before = f" (taken before `{_clip(undo.operation, 80)}`)" if undo.operation else ""
        lines.append(
            f"  Undo: files can be restored with `lifecycle rewind {undo.id}`{before}; "
            "`--dry-run` shows what would change"
        )
    for warning in (*view.warnings, *resumption.warnings):
        lines.append(f"  Warning: {warning}")
    return lines


def _head(view: SessionSnapshot) -> list[str]:
    restored = view.restored_from
    head = "Session restored:" if restored is not None else "Session started (fresh):"
    lines = [
        head,
        f"  Phase: {view.phase or 'not set'}",
        f"  Progress: {progress_line(view.progress)}",
        f"  Learnings captured: {view.learnings_count}",
    ]
    if view.session_id:
        lines.append(f"  Session: {view.session_id} ({view.state.value})")
    if restored is not None:
        lines.append(f"  Restored from: {restored.id} ({restored.type.value}, {restored.trigger})")
    return lines


def resumption_summary(
    view: SessionSnapshot, limit_chars: int = DEFAULT_LIMIT, *, max_items: int = MAX_ITEMS
) -> str:
    """The resumption summary (the Session Report, then the previous session's work, open
    tasks and questions, blockers, decisions with rationale), at most ``limit_chars``."""
    resumption = load_resumption(view)
    return _limit([*_head(view), *_body(view, resumption, max_items)], limit_chars)


def session_report(view: SessionSnapshot, limit_chars: int = DEFAULT_LIMIT) -> str:
    return resumption_summary(view, limit_chars)


def budget(value: int | str | None = None) -> int:
    """The context budget in characters: ``value``, else ``$LIFECYCLE_CONTEXT_BUDGET``, else
    :data:`DEFAULT_BUDGET`; at most :data:`MAX_BUDGET` (Claude Code's own limit)."""
    from lifecycle.errors import InvalidSettings

    raw = value if value is not None else os.environ.get("LIFECYCLE_CONTEXT_BUDGET")
    if raw is None or raw == "":
        return DEFAULT_BUDGET
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise InvalidSettings(
            f"the context budget must be a number of characters, got {raw!r}"
        ) from None
    if n < 200:
        raise InvalidSettings(f"the context budget must be at least 200 characters, got {n}")
    return min(n, MAX_BUDGET)


def _state_lines(view: SessionSnapshot) -> list[str]:
    """Phase and progress, only when they say something."""
    lines = []
    if view.phase:
        lines.append(f"  Phase: {view.phase}")
    if view.progress:
        lines.append(f"  Progress: {progress_line(view.progress)}")
    return lines


def render_context(
    view: SessionSnapshot,
    head: list[str] | tuple[str, ...] = (),
    *,
    limit_chars: int | None = None,
    max_items: int = MAX_ITEMS,
) -> str:
    """What a resumed agent is told about the project's work: ``head``, then phase and
    progress when set, the previous session, what the user asked, what was done (files,
    tasks, failures and their recovery, risky operations and their checkpoints), what is
    open, the decisions and the learnings; empty sections are left out. At most the
    budget (:func:`budget`), cut at a line with the number of lines left out.

    The Claude Code hook's SessionStart context, ``lifecycle context`` and the MCP
    ``session_status`` all render this."""
    resumption = load_resumption(view)
    lines = [*head, *_state_lines(view), *_body(view, resumption, max_items)]
    return _limit(lines, budget(limit_chars))
