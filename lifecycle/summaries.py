"""Consolidation at COMPLETED: summaries and project state, incrementally.

When a session completes, :func:`consolidate` folds it into

- ``summaries/daily/{date}`` (the sessions that ended that UTC day),
- ``summaries/weekly/{YYYY-Www}`` (that week's totals, per day),
- ``summaries/insights/{topic}`` (insights gained, by topic),
- ``project_state/decisions_log`` (the newest decisions) and the day's segment
  ``project_state/decisions/{YYYY-MM-DD}`` (every decision of that day: the log is
  append-only by day, so no record grows with the history),
- ``project_state/patterns_discovered`` and ``project_state/context_enhanced``
  (what the next session starts from),

and fills in the session record's context stats (see ``docs/context-stats.md``).

Deterministic, no model calls. Each record is read once, updated, and written back
in one batch with compare-and-swap on the versions read, so two sessions ending
at once both land (the loser re-reads and retries). The cost is a fixed number of
reads and one batch per session, whatever the length of the history: nothing
re-reads older sessions. Folding the same session in twice changes nothing
(entries are keyed by session, decision and pattern).

Consolidation never stops a session from completing: any failure is logged and
added to the session's warnings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from lifecycle import codec, keys, limits
from lifecycle.errors import (
    CorruptRecord,
    InvalidRecord,
    SchemaVersionError,
    StoreError,
    VersionConflict,
)
from lifecycle.logs import get_logger
from lifecycle.records import (
    Checkpoint,
    ContextEnhanced,
    ContextStats,
    DailySummary,
    DecisionsLog,
    InsightEntry,
    InsightSummary,
    LoggedDecision,
    PatternsDiscovered,
    PatternSeen,
    PeriodTotals,
    SessionDigest,
    SessionRecord,
    SessionSummary,
    WeeklySummary,
)
from lifecycle.stores.base import Put

if TYPE_CHECKING:
    from lifecycle.stores.base import ProjectStore

log = get_logger(__name__)

T = TypeVar("T")

DECISIONS_LOG = keys.DECISIONS_LOG
PATTERNS = keys.PATTERNS_DISCOVERED
CONTEXT_ENHANCED = keys.CONTEXT_ENHANCED
#: Caps that keep each record small ("Summary size: <5KB per day typical");
#: older entries live on in the session records and daily summaries.
MAX_DECISIONS = limits.DECISIONS_LOG_ENTRIES
MAX_DECISIONS_PER_DAY = limits.DECISIONS_PER_DAY
MAX_PATTERNS = 200
MAX_INSIGHTS_PER_TOPIC = 100
MAX_RECENT_LEARNINGS = 20
GENERAL_TOPIC = "general"
_ATTEMPTS = 20
_TOPIC = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9 ._-]{0,39}):\s+\S")


def insight_topic(text: str) -> str:
    """``"storage: fsync the folder too"`` -> ``storage``; no ``topic:`` -> ``general``."""
    m = _TOPIC.match(text)
    return (keys.slug(m[1].lower()) or GENERAL_TOPIC) if m else GENERAL_TOPIC


def digest(record: SessionRecord) -> SessionDigest:
    return SessionDigest(
        session_id=record.id,
        start_time=record.start_time,
        end_time=record.end_time,
        duration_minutes=record.duration_minutes or 0.0,
        phase=record.phase,
        success=record.success,
        tasks_completed=tuple(t.id for t in record.work.tasks_completed),
        decisions=len(record.work.decisions_made),
        files_modified=len(record.work.files_modified),
        checkpoints=record.checkpoint_count,
        learnings=record.learnings,
    )


def totals(sessions: tuple[SessionDigest, ...]) -> PeriodTotals:
    return PeriodTotals(
        sessions=len(sessions),
        successes=sum(1 for s in sessions if s.success),
        minutes=round(sum(s.duration_minutes for s in sessions), 2),
        tasks_completed=sum(len(s.tasks_completed) for s in sessions),
        decisions=sum(s.decisions for s in sessions),
        files_modified=sum(s.files_modified for s in sessions),
        checkpoints=sum(s.checkpoints for s in sessions),
        learnings=sum(len(s.learnings) for s in sessions),
    )


def _add(a: PeriodTotals, b: PeriodTotals) -> PeriodTotals:
    return PeriodTotals(
        *(
            round(getattr(a, f.name) + getattr(b, f.name), 2)
            if f.name == "minutes"
            else getattr(a, f.name) + getattr(b, f.name)
            for f in attrs.fields(PeriodTotals)
        )
    )


# -- the folds: (old record or None, this session) -> new record ------------------------


def fold_daily(old: DailySummary | None, day: str, project: str, d: SessionDigest) -> DailySummary:
    kept = () if old is None else tuple(s for s in old.sessions if s.session_id != d.session_id)
    sessions = tuple(sorted((*kept, d), key=lambda s: (s.start_time, s.session_id)))
    return DailySummary(date=day, project=project, sessions=sessions, totals=totals(sessions))


def fold_weekly(
    old: WeeklySummary | None, week: str, project: str, daily: DailySummary, phase: str
) -> WeeklySummary:
    days = {} if old is None else dict(old.days)
    days[daily.date] = daily.totals  # the day's totals, recomputed: idempotent
    total = PeriodTotals()
    for day in sorted(days):
        total = _add(total, days[day])
    phases = () if old is None else old.phases
    if phase and phase not in phases:
        phases = (*phases, phase)
    return WeeklySummary(
        week=week, project=project, days=dict(sorted(days.items())), totals=total, phases=phases
    )


def fold_insights(
    old: InsightSummary | None, topic: str, project: str, new: list[InsightEntry]
) -> InsightSummary:
    entries = () if old is None else old.entries
    seen = {e.text for e in entries}
    fresh = [e for e in new if e.text not in seen]
    entries = (*entries, *fresh)[-MAX_INSIGHTS_PER_TOPIC:]
    return InsightSummary(
        topic=topic,
        project=project,
        entries=entries,
        total=(0 if old is None else old.total) + len(fresh),
    )


def fold_decisions(
    old: DecisionsLog | None, project: str, record: SessionRecord, keep: int = MAX_DECISIONS
) -> DecisionsLog:
    entries = () if old is None else old.entries
    seen = {e.id for e in entries}
    fresh = [
        LoggedDecision(
            id=d.id,
            session_id=record.id,
            timestamp=d.timestamp,
            decision=d.decision,
            rationale=d.rationale,
            impact=d.impact,
        )
        for d in record.work.decisions_made
        if d.id not in seen
    ]
    return DecisionsLog(
        project=project,
        entries=(*entries, *fresh)[-keep:],
        total=(0 if old is None else old.total) + len(fresh),
    )


def fold_patterns(
    old: PatternsDiscovered | None, project: str, record: SessionRecord, at: datetime
) -> PatternsDiscovered:
    by_text = {} if old is None else {p.pattern: p for p in old.patterns}
    for text in record.discoveries.patterns_found:
        seen = by_text.get(text)
        if seen is None:
            by_text[text] = PatternSeen(text, at, at, 1, record.id)
        elif seen.last_session_id != record.id:
            by_text[text] = attrs.evolve(
                seen, last_seen=at, sessions=seen.sessions + 1, last_session_id=record.id
            )
    patterns = sorted(by_text.values(), key=lambda p: (p.last_seen, p.pattern))
    return PatternsDiscovered(project=project, patterns=tuple(patterns[-MAX_PATTERNS:]))


def fold_context(
    old: ContextEnhanced | None, project: str, summary: SessionSummary, at: datetime
) -> ContextEnhanced:
    count = 0 if old is None else old.sessions_total
    if old is None or old.last_session_id != summary.session_id:
        count += 1
    recent = () if old is None else old.recent_learnings
    recent = (*(k for k in recent if k not in summary.learnings), *summary.learnings)
    return ContextEnhanced(
        project=project,
        updated_at=at,
        last_session_id=summary.session_id,
        sessions_total=count,
        phase=summary.phase,
        progress=summary.progress,
        open_tasks=summary.open_tasks,
        open_questions=summary.open_questions,
        blockers=summary.blockers,
        recent_learnings=recent[-MAX_RECENT_LEARNINGS:],
        last_checkpoint_id=summary.last_checkpoint_id,
    )


# -- read, fold, write with compare-and-swap -----------------------------------------------


@attrs.define
class _Slot:
    """One record to update: the version read (0: absent; None: unreadable)."""

    key: str
    cls: type[Any]
    old: Any = None
    version: int | None = 0


def _read(store: ProjectStore, slot: _Slot, warnings: list[str]) -> None:
    try:
        entry = store.get(slot.key)
    except CorruptRecord as exc:
        warnings.append(f"{slot.key} was unreadable and is started afresh ({exc})")
        slot.old, slot.version = None, None
        return
    if entry is None:
        slot.old, slot.version = None, 0
        return
    slot.version = entry.version
    try:
        slot.old = codec.decode(slot.cls, entry.value, key=slot.key)
    except SchemaVersionError:
        raise  # a newer lifecycle's record: left as it is, not started afresh
    except (CorruptRecord, InvalidRecord) as exc:
        warnings.append(f"{slot.key} was unreadable and is started afresh ({exc})")
        slot.old = None


@attrs.frozen
class Written:
    """What one consolidation wrote: key -> bytes."""

    sizes: dict[str, int]


def fold_session(
    store: ProjectStore,
    record: SessionRecord,
    summary: SessionSummary,
    warnings: list[str],
) -> Written:
    """Fold one completed session into the summaries and project state (see module doc)."""
    project = store.project
    end = record.end_time or summary.end_time
    day = end.date()
    daily_key = keys.daily_summary_key(day)
    weekly_key = keys.weekly_summary_key(day)
    week = weekly_key.rsplit("/", 1)[1]
    by_topic: dict[str, list[InsightEntry]] = {}
    for text in record.discoveries.insights_gained:
        by_topic.setdefault(insight_topic(text), []).append(InsightEntry(text, record.id, end))
    d = digest(record)
    slots = [
        _Slot(daily_key, DailySummary),
        _Slot(weekly_key, WeeklySummary),
        _Slot(DECISIONS_LOG, DecisionsLog),
        _Slot(PATTERNS, PatternsDiscovered),
        _Slot(CONTEXT_ENHANCED, ContextEnhanced),
        _Slot(keys.decisions_day_key(day), DecisionsLog),
        *(_Slot(keys.insight_summary_key(t), InsightSummary) for t in sorted(by_topic)),
    ]
    for _ in range(_ATTEMPTS):
        notes: list[str] = []
        for slot in slots:
            _read(store, slot, notes)
        daily = fold_daily(slots[0].old, day.isoformat(), project, d)
        new: list[object] = [
            daily,
            fold_weekly(slots[1].old, week, project, daily, record.phase),
            fold_decisions(slots[2].old, project, record),
            fold_patterns(slots[3].old, project, record, end),
            fold_context(slots[4].old, project, summary, end),
            fold_decisions(slots[5].old, project, record, MAX_DECISIONS_PER_DAY),
        ]
        for slot in slots[6:]:
            topic = slot.key.rsplit("/", 1)[1]
            new.append(fold_insights(slot.old, topic, project, by_topic[topic]))
        bodies = [codec.encode(r) for r in new]
        ops = [
            Put(slot.key, body, expected_version=slot.version)
            for slot, body in zip(slots, bodies, strict=True)
        ]
        try:
            store.batch(ops)
        except VersionConflict:
            continue  # another session ended at the same time: re-read and fold again
        warnings.extend(notes)
        return Written({slot.key: len(body) for slot, body in zip(slots, bodies, strict=True)})
    raise StoreError(f"summaries not written: {_ATTEMPTS} write conflicts in a row")


# -- context stats ---------------------------------------------------------------------


def context_stats(
    store: ProjectStore,
    record: SessionRecord,
    summary: SessionSummary,
    written: Written,
    restored: Checkpoint | None,
) -> ContextStats:
    """The session's context stats, from bytes really stored (docs/context-stats.md)."""
    # The checkpoints' bytes are counted as they are written: reading them back here
    # would cost one read per checkpoint at every session end.
    own = record.checkpoint_bytes + len(codec.encode(record)) + len(codec.encode(summary))
    framework = sum(written.sizes.values())
    framework += _stored_size(store, keys.LATEST) + _stored_size(store, keys.CURRENT)
    user = sum(_stored_size(store, key) for key in record.learnings)
    return ContextStats(
        session_data_size=own,
        framework_content_size=framework,
        user_content_size=user,
        total_context_bytes=own + framework + user,
        retention_ratio=retention_ratio(store, record, restored),
    )


def _stored_size(store: ProjectStore, key: str) -> int:
    try:
        entry = store.get(key)
    except (CorruptRecord, StoreError, InvalidRecord):
        return 0
    return 0 if entry is None else len(entry.value)


def retention_ratio(
    store: ProjectStore, record: SessionRecord, restored: Checkpoint | None
) -> float:
    """Bytes of work state restored at start / bytes of the work state in the newest
    checkpoint that existed when the session started (see docs/context-stats.md): the
    one ``checkpoints/latest`` named then (``record.latest_at_start``), so at most one
    read, and no listing of the checkpoints."""
    newest_key = record.latest_at_start
    if newest_key is None:
        return 1.0  # nothing was saved before this session: nothing to lose
    if restored is not None and restored.key == newest_key:
        return 1.0  # the latest was restored
    if restored is None:
        return 0.0
    try:
        entry = store.get(newest_key)
        newest = None if entry is None else codec.decode(Checkpoint, entry.value, key=newest_key)
    except (CorruptRecord, InvalidRecord, StoreError):
        newest = None
    if newest is None:
        return 0.0
    saved = _state_bytes(newest)
    return round(_state_bytes(restored) / saved, 4) if saved else 1.0


def _state_bytes(cp: Any) -> int:
    dumps: Callable[[Any], bytes] = codec.converter.dumps
    return (
        len(dumps(cp.state))
        + len(dumps(cp.progress))
        + len(dumps(cp.context))
        + len(cp.phase.encode())
    )


# -- what the session's finish calls ------------------------------------------------------


def consolidate(
    store: ProjectStore,
    record: SessionRecord,
    summary: SessionSummary,
    warnings: list[str],
    restored: Checkpoint | None = None,
) -> SessionRecord:
    """Fold the completed session in and return its record with context stats filled.

    Never raises: a failure is logged and added to ``warnings``, and the record is
    returned as it came, so the session completes anyway."""
    try:
        written = fold_session(store, record, summary, warnings)
        stats = context_stats(store, record, summary, written, restored)
    except Exception as exc:
        log.error("summaries.failed", session_id=record.id, error=repr(exc))
        warnings.append(f"summaries not updated: {exc}")
        return record
    context = attrs.evolve(
        record.context,
        context_stats=stats,
        final_context_size=stats.total_context_bytes,
    )
    return attrs.evolve(record, context=context)
