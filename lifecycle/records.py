"""The records a session stores (frozen attrs classes), with the fields of the
records in SuperClaude's Session Lifecycle Pattern and SuperSpec's session manager.

Every stored record carries ``schema_version``; :mod:`lifecycle.codec` turns them
into JSON and back and upcasts older versions. Records are values: change one
with :func:`attrs.evolve`, never in place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import attrs

from lifecycle import keys
from lifecycle.limits import LEARNING_CONTENT_CHARS

#: The schema version of every record kind that has not changed since it was first
#: stored. A kind whose schema changed says so in its ``schema_version`` default (and
#: registers an upcaster in :mod:`lifecycle.codec`); :data:`codec.CURRENT` reads them.
SCHEMA_VERSION = 1
#: Checkpoint v2: ``RecoveryInfo`` lost ``dependencies_check`` and
#: ``estimated_restore_time_ms``, which nothing computed (always "all_clear" and 0).
#: Checkpoint v3: ``snapshot``, the git snapshot of the work tree it took (None before).
CHECKPOINT_SCHEMA_VERSION = 3
#: How many checkpoint refs a session record keeps (session metadata stays under 10 KB).
RECENT_CHECKPOINTS = 20

JSONValue = Any  # a value orjson can encode: dict, list, str, int, float, bool, None


def utc(value: datetime | str) -> datetime:
    """Normalize to an aware UTC datetime; a naive one is taken as local time (as
    ``datetime.now()`` gives)."""
    if type(value) is datetime and value.tzinfo is UTC:
        return value  # already normalized: every record built from another passes one
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    return value.astimezone(UTC)


R = TypeVar("R")


def revise(record: R, **changes: Any) -> R:
    """``attrs.evolve`` without running converters again: for values that already are
    what the record holds (taken from other records, or built by the session in their
    converted form). The hot path of every event builds a few records; converting
    their unchanged dicts and tuples again on each is most of its cost. Only for the
    records here (slotted, no ``__attrs_post_init__``, no ``init=False`` fields)."""
    cls = type(record)
    slots = _SLOTS.get(cls) or _slots_of(cls)
    new: R = object.__new__(cls)
    if len(changes) < len(slots):  # else every field is given: nothing to copy
        for get, put in slots.values():  # the slots' own descriptors: no lookup by name
            put(new, get(record))
    try:
        for name, value in changes.items():
            slots[name][1](new, value)
    except KeyError:
        unknown = sorted(changes.keys() - slots.keys())
        raise TypeError(f"{cls.__name__} has no field {unknown}") from None
    return new


def assemble(cls: type[R], *values: Any) -> R:
    """A ``cls`` record of ``values``, one per field in field order, without running
    converters or validators: :func:`revise` when every field is given (the facts the
    evaluators get, built on every event from the live record's checked values)."""
    slots = _SLOTS.get(cls) or _slots_of(cls)
    if len(values) != len(slots):
        raise TypeError(f"{cls.__name__} has {len(slots)} fields, got {len(values)} values")
    new: R = object.__new__(cls)
    for (_, put), value in zip(slots.values(), values, strict=True):
        put(new, value)
    return new


#: Per record class, each field's slot descriptor as (get, set), in field order.
_SLOTS: dict[type, dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], None]]]] = {}


def _slots_of(cls: type) -> dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], None]]]:
    slots = {}
    for f in attrs.fields(cls):
        slot = getattr(cls, f.name)  # a member descriptor: attrs records are slotted
        slots[f.name] = (slot.__get__, slot.__set__)
    _SLOTS[cls] = slots
    return slots


def _opt_utc(value: datetime | str | None) -> datetime | None:
    return None if value is None else utc(value)


_JUST_STR = {str}


def _strs(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if type(value) is tuple and {*map(type, value)} <= _JUST_STR:
        return value  # already a tuple of str: every attrs.evolve of a record passes one
    return tuple(str(v) for v in value)


def _json_dict(value: Any) -> dict[str, JSONValue]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return dict(value)


class CheckpointType(StrEnum):
    MANUAL = "manual"
    AUTOMATIC = "automatic"
    RISK = "risk"
    RECOVERY = "recovery"


def _checkpoint_type(value: Any) -> CheckpointType:
    """``CheckpointType(value)``, without the enum's call for a member (the usual case)."""
    return value if type(value) is CheckpointType else CheckpointType(value)


class LearningType(StrEnum):
    PATTERN = "pattern"
    SOLUTION = "solution"
    ANTI_PATTERN = "anti-pattern"
    INSIGHT = "insight"

    @property
    def prefix(self) -> str:
        """The memory-key folder for this type (``learning/patterns/``, ...)."""
        return f"{keys.LEARNING_PREFIX}{self.value}s/"


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"


class Priority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@attrs.frozen
class Task:
    id: str = attrs.field(validator=attrs.validators.min_len(1))
    description: str = ""
    status: TaskStatus = attrs.field(default=TaskStatus.PENDING, converter=TaskStatus)
    priority: Priority = attrs.field(default=Priority.MEDIUM, converter=Priority)
    progress: str | None = None  # e.g. "50%"
    started_at: datetime | None = attrs.field(default=None, converter=_opt_utc)
    completed_at: datetime | None = attrs.field(default=None, converter=_opt_utc)
    duration_minutes: float | None = None


@attrs.frozen
class FileChange:
    path: str = attrs.field(validator=attrs.validators.min_len(1))
    operations: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    changes: int | None = None


@attrs.frozen
class Decision:
    timestamp: datetime = attrs.field(converter=utc)
    decision: str = attrs.field(validator=attrs.validators.min_len(1))
    rationale: str = ""
    impact: str = ""

    @property
    def id(self) -> str:
        """Stable identity for merging: the same decision made at the same moment."""
        raw = f"{self.timestamp.isoformat()}\x00{self.decision}".encode()
        return hashlib.blake2b(raw, digest_size=8).hexdigest()


@attrs.frozen
class Discoveries:
    patterns_found: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    insights_gained: tuple[str, ...] = attrs.field(default=(), converter=_strs)


@attrs.frozen
class ErrorContext:
    """What went wrong and how it was recovered (what the error trigger checkpoints)."""

    error: str
    recovery_steps: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    operation: str | None = None


@attrs.frozen
class WorkState:
    """The session's work: what a checkpoint stores and a restore brings back.

    It holds the session's state, never its history of checkpoints, so a
    checkpoint's size does not grow with the number of checkpoints before it.
    """

    active_tasks: tuple[Task, ...] = ()
    completed_tasks: tuple[Task, ...] = ()
    open_questions: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    blockers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    files_modified: tuple[FileChange, ...] = ()
    decisions: tuple[Decision, ...] = ()
    discoveries: Discoveries = Discoveries()
    recent_changes: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    errors: tuple[ErrorContext, ...] = ()
    #: How many items each list left out past its cap (``lifecycle.limits``), by field:
    #: ``{"files_modified": 2480}``.
    omitted: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class ContextSnapshot:
    size_bytes: int = 0
    key_memories: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    recent_changes: tuple[str, ...] = attrs.field(default=(), converter=_strs)


@attrs.frozen
class RecoveryInfo:
    """How to continue from a checkpoint: the command that restores it."""

    restore_command: str = ""


@attrs.frozen
class WorkTreeSnapshot:
    """The snapshot of the work tree a checkpoint took (:mod:`lifecycle.snapshots`): a
    commit in the project's git repository, referenced from ``ref``; or, when there is
    none, why (``skipped``: not a git work tree, git missing, git failed)."""

    commit: str | None = None
    ref: str | None = None
    #: The tree was the previous snapshot's: its commit is reused, no object was added.
    unchanged: bool = False
    skipped: str = ""


@attrs.frozen
class Checkpoint:
    """A durable snapshot of a session (``checkpoints/{timestamp}``).

    Users may build one with just ``id``, ``timestamp``, ``phase``, ``progress``
    and ``context`` (as with SuperSpec's session manager); the manager fills in the rest.
    """

    id: str = attrs.field(validator=attrs.validators.min_len(1))
    timestamp: datetime = attrs.field(converter=utc)
    phase: str = ""
    progress: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    context: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    session_id: str = ""
    project: str = ""
    type: CheckpointType = attrs.field(default=CheckpointType.MANUAL, converter=_checkpoint_type)
    trigger: str = "user-requested"
    key: str = ""
    parent_id: str | None = None
    operation: str | None = None
    #: The id a caller passed in (``Checkpoint(id="cp-20260125-120000")``); the manager
    #: assigns ``id`` itself so that ids are unique and sort by creation order.
    label: str | None = None
    state: WorkState = WorkState()
    context_snapshot: ContextSnapshot = ContextSnapshot()
    recovery_info: RecoveryInfo = RecoveryInfo()
    #: None: no snapshot was due (``SessionManager(snapshot=...)``).
    snapshot: WorkTreeSnapshot | None = None
    schema_version: int = CHECKPOINT_SCHEMA_VERSION


@attrs.frozen
class CheckpointRef:
    """A session record's entry for one of its checkpoints (its ``checkpoints`` list)."""

    id: str
    key: str
    timestamp: datetime = attrs.field(converter=utc)
    type: CheckpointType = attrs.field(converter=_checkpoint_type)
    trigger: str


@attrs.frozen
class Pointer:
    """``checkpoints/latest`` and ``session/current``: the key of the newest record."""

    key: str
    id: str
    timestamp: datetime = attrs.field(converter=utc)
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class ContextStats:
    session_data_size: int = 0
    framework_content_size: int = 0
    user_content_size: int = 0
    total_context_bytes: int = 0
    retention_ratio: float = 1.0


@attrs.frozen
class SessionContext:
    memories_loaded: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    initial_context_size: int = 0
    final_context_size: int | None = None
    context_stats: ContextStats = ContextStats()


@attrs.frozen
class Work:
    tasks_completed: tuple[Task, ...] = ()
    files_modified: tuple[FileChange, ...] = ()
    decisions_made: tuple[Decision, ...] = ()


@attrs.frozen
class SessionRecord:
    """One session (``session/{timestamp}``; ``session/current`` points at it)."""

    id: str
    project: str
    start_time: datetime = attrs.field(converter=utc)
    end_time: datetime | None = attrs.field(default=None, converter=_opt_utc)
    duration_minutes: float | None = None
    command: str = ""
    change_id: str | None = None
    phase: str = ""
    success: bool | None = None
    restored_from: str | None = None
    #: The key ``checkpoints/latest`` named when the session started (retention ratio).
    latest_at_start: str | None = None
    context: SessionContext = SessionContext()
    work: Work = Work()
    discoveries: Discoveries = Discoveries()
    #: The most recent checkpoints (at most RECENT_CHECKPOINTS); the session's total is
    #: ``checkpoint_count``, so the record stays small however long the session runs.
    checkpoints: tuple[CheckpointRef, ...] = ()
    checkpoint_count: int = 0
    #: Bytes of the checkpoints this session wrote (for the context stats).
    checkpoint_bytes: int = 0
    learnings: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    schema_version: int = SCHEMA_VERSION


#: The longest learning (characters of ``content``), however it is captured:
#: ``capture_learning`` and the MCP server's ``write_memory("learning/...")`` alike.
MAX_LEARNING_CHARS = LEARNING_CONTENT_CHARS  # one limit: lifecycle.limits


@attrs.frozen
class Learning:
    """Something learned that outlives the session (``learning/{type}s/{name}``)."""

    type: LearningType = attrs.field(converter=LearningType)
    key: str
    content: str
    timestamp: datetime = attrs.field(converter=utc)
    session_id: str = ""
    tags: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class SessionSummary:
    """``session/last``: what the next session is told about this one."""

    session_id: str
    project: str
    start_time: datetime = attrs.field(converter=utc)
    end_time: datetime = attrs.field(converter=utc)
    success: bool | None
    phase: str
    progress: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    tasks_completed: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    open_tasks: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    open_questions: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    blockers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    decisions: tuple[Decision, ...] = ()
    learnings: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    checkpoints: int = 0
    last_checkpoint_id: str | None = None
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class LiveContext:
    """``session/context``: an open session's complete live state, so that the next
    process (a CLI command, a Claude Code hook) continues the same session, unsaved
    work included."""

    session: SessionRecord
    state: str
    phase: str = ""
    progress: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    context: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    work: WorkState = WorkState()
    saved_checkpoint_id: str | None = None
    restored_from: str | None = None
    active_seconds: float = 0.0
    last_activity_at: datetime | None = attrs.field(default=None, converter=_opt_utc)
    last_auto_checkpoint_at: datetime | None = attrs.field(default=None, converter=_opt_utc)
    tasks_since_checkpoint: int = 0
    last_moment: datetime | None = attrs.field(default=None, converter=_opt_utc)
    latest_version: int | None = None
    warnings: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    #: The key of ``saved_checkpoint_id`` and the journal's last seq, so that the next
    #: process reads them without listing a folder that grows with history.
    saved_checkpoint_key: str | None = None
    journal_seq: int | None = None
    #: The last batch of the Claude Code hook's journal folded into this session
    #: (:mod:`lifecycle.integrations.claude_journal`): a batch is applied exactly once.
    folded_journal: int = 0
    schema_version: int = SCHEMA_VERSION


# -- consolidation at COMPLETED (summaries/*, project_state/*) ------------------------------


@attrs.frozen
class SessionDigest:
    """One completed session, as a daily summary lists it."""

    session_id: str
    start_time: datetime = attrs.field(converter=utc)
    end_time: datetime | None = attrs.field(default=None, converter=_opt_utc)
    duration_minutes: float = 0.0
    phase: str = ""
    success: bool | None = None
    tasks_completed: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    decisions: int = 0
    files_modified: int = 0
    checkpoints: int = 0
    learnings: tuple[str, ...] = attrs.field(default=(), converter=_strs)


@attrs.frozen
class PeriodTotals:
    """Counts over a period (a day, a week)."""

    sessions: int = 0
    successes: int = 0
    minutes: float = 0.0
    tasks_completed: int = 0
    decisions: int = 0
    files_modified: int = 0
    checkpoints: int = 0
    learnings: int = 0


@attrs.frozen
class DailySummary:
    """``summaries/daily/{date}``: the sessions that ended that day (UTC)."""

    date: str
    project: str
    sessions: tuple[SessionDigest, ...] = ()
    totals: PeriodTotals = PeriodTotals()
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class WeeklySummary:
    """``summaries/weekly/{YYYY-Www}``: the week's totals, per day and overall."""

    week: str
    project: str
    days: dict[str, PeriodTotals] = attrs.field(factory=dict)
    totals: PeriodTotals = PeriodTotals()
    phases: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class InsightEntry:
    text: str
    session_id: str
    timestamp: datetime = attrs.field(converter=utc)


@attrs.frozen
class InsightSummary:
    """``summaries/insights/{topic}``: insights gained on one topic, newest last."""

    topic: str
    project: str
    entries: tuple[InsightEntry, ...] = ()
    total: int = 0
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class LoggedDecision:
    id: str
    session_id: str
    timestamp: datetime = attrs.field(converter=utc)
    decision: str = ""
    rationale: str = ""
    impact: str = ""


@attrs.frozen
class DecisionsLog:
    """``project_state/decisions_log``: decisions with their rationale, newest last."""

    project: str
    entries: tuple[LoggedDecision, ...] = ()
    total: int = 0
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class PatternSeen:
    pattern: str
    first_seen: datetime = attrs.field(converter=utc)
    last_seen: datetime = attrs.field(converter=utc)
    sessions: int = 1
    last_session_id: str = ""


@attrs.frozen
class PatternsDiscovered:
    """``project_state/patterns_discovered``: code patterns found, with how often."""

    project: str
    patterns: tuple[PatternSeen, ...] = ()
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class ContextEnhanced:
    """``project_state/context_enhanced``: what the next session starts from."""

    project: str
    updated_at: datetime = attrs.field(converter=utc)
    last_session_id: str = ""
    sessions_total: int = 0
    phase: str = ""
    progress: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    open_tasks: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    open_questions: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    blockers: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    recent_learnings: tuple[str, ...] = attrs.field(default=(), converter=_strs)
    last_checkpoint_id: str | None = None
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class EventMessage:
    """One event for a session, as data: what an orchestrator sends to
    ``SessionManager.apply`` and what the journal keeps.

    ``name`` is the manager method the event calls (``complete_task``, ``tick``, ...:
    :data:`lifecycle.journal.EVENTS`) and ``payload`` its keyword arguments as JSON
    values. A message carrying an ``idempotency_key`` that the session already applied
    changes nothing and returns the first result again (orchestrators retry).
    """

    name: str = attrs.field(validator=attrs.validators.min_len(1))
    payload: dict[str, JSONValue] = attrs.field(factory=dict, converter=_json_dict)
    idempotency_key: str | None = None
    schema_version: int = SCHEMA_VERSION


@attrs.frozen
class JournalEntry:
    """``journal/{session-id}/{seq}``: one applied event, in the order it was applied.

    ``at`` is the clock reading the event ran with (one moment per event), so that
    replaying the entries rebuilds the session exactly; ``result`` is what the call
    returned (unstructured, its class named by ``result_type``), returned again for a
    repeated idempotency key; ``checkpoint_id`` names the checkpoint this event wrote.
    """

    session_id: str
    seq: int
    at: datetime = attrs.field(converter=utc)
    message: EventMessage
    state: str
    result_type: str = ""
    result: JSONValue = None
    checkpoint_id: str | None = None
    schema_version: int = SCHEMA_VERSION


#: Every record kind that is stored on its own, by the name the codec writes.
RECORD_KINDS: dict[str, type] = {
    "checkpoint": Checkpoint,
    "pointer": Pointer,
    "session": SessionRecord,
    "learning": Learning,
    "summary": SessionSummary,
    "context": LiveContext,
    "daily_summary": DailySummary,
    "weekly_summary": WeeklySummary,
    "insight_summary": InsightSummary,
    "decisions_log": DecisionsLog,
    "patterns_discovered": PatternsDiscovered,
    "context_enhanced": ContextEnhanced,
    "event": EventMessage,
    "journal": JournalEntry,
}
