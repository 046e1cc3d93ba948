"""SessionManager: the façade users call (the seed's API, kept by name).

The manager owns one session at a time: its record, its work state, and a
:class:`~lifecycle.machine.Driver` that the shared transitions machine moves
through the table in :mod:`lifecycle.spec`. Every public method that changes
the session is one table event; the machine's guards call back into
:meth:`SessionManager.guard` (trigger evaluation) and its effects into
:meth:`SessionManager.effect` (restore, write checkpoint, finalize).

Precise meaning of the states, checked by the tests:

- ACTIVE: the work state differs from the last durable checkpoint (or none exists);
- CHECKPOINTED: the last durable checkpoint equals the work state;
- RESUMED: the work state was restored from a checkpoint and is unchanged since.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import (
    CheckpointNotFound,
    CorruptRecord,
    InvalidKey,
    InvalidRecord,
    LifecycleError,
    NoSession,
    StoreError,
)
from lifecycle.journal import Journal, event
from lifecycle.logs import get_logger
from lifecycle.machine import Driver, fire
from lifecycle.merge import Merged
from lifecycle.records import (
    RECENT_CHECKPOINTS,
    Checkpoint,
    CheckpointRef,
    CheckpointType,
    ContextSnapshot,
    Decision,
    Discoveries,
    ErrorContext,
    EventMessage,
    FileChange,
    JSONValue,
    Learning,
    LearningType,
    LiveContext,
    Pointer,
    Priority,
    RecoveryInfo,
    SessionRecord,
    SessionSummary,
    Task,
    TaskStatus,
    Work,
    WorkState,
)
from lifecycle.spec import TABLE, Effect, Event, Guard, Row, SessionState
from lifecycle.stores import Delete, Op, ProjectStore, Put, Store, open_store
from lifecycle.triggers.base import Activity, CheckpointCall, Evaluator, Operation

log = get_logger("lifecycle")

Clock = Callable[[], datetime]
Change = Callable[[WorkState], WorkState]

LATEST = "checkpoints/latest"
CURRENT = "session/current"
CONTEXT = "session/context"
#: Soft and hard checkpoint size limits (seed: "<50KB typical, <200KB maximum").
WARN_BYTES = 50_000
MAX_BYTES = 200_000
SESSION_WARN_BYTES = 10_000
#: What a checkpoint does when another writer moved ``checkpoints/latest`` first.
CONFLICT_POLICIES = ("last-write-wins", "merge")


def system_clock() -> datetime:
    return datetime.now(UTC)


# -- results (the seed's Output formats) ------------------------------------------------


@attrs.frozen
class StartResult:
    session_id: str
    is_fresh_session: bool
    restored_state: dict[str, JSONValue] | None = None
    checkpoint_id: str | None = None
    warnings: tuple[str, ...] = ()


@attrs.frozen
class CheckpointResult:
    checkpoint_id: str | None
    timestamp: datetime | None
    key: str | None = None
    type: CheckpointType | None = None
    trigger: str | None = None
    written: bool = True
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.written


@attrs.frozen
class LearningResult:
    success: bool
    learning_key: str
    queued: bool = False
    error: str | None = None


@attrs.frozen
class Outcome:
    """What a work event did: the state after it and the checkpoint it wrote, if any."""

    state: SessionState
    transition: str
    checkpoint: CheckpointResult | None = None

    @property
    def checkpointed(self) -> bool:
        return self.checkpoint is not None and self.checkpoint.written


@attrs.frozen
class Clearance(Outcome):
    """The answer to :meth:`SessionManager.before_operation`: may the operation run?"""

    proceed: bool = True
    reason: str = ""


@attrs.frozen
class EndResult:
    session_id: str
    checkpoint: CheckpointResult | None
    summary: SessionSummary


# -- lifecycle hooks (seed: SessionLifecycleHooks) ----------------------------------------


class LifecycleHooks:
    """Plugin base: override the hooks you need. Exceptions are logged, not raised,
    unless the manager is strict."""

    def on_session_start(self, context: Mapping[str, Any]) -> None:
        """After the session loaded (fresh or restored)."""

    def on_task_complete(self, task_id: str, result: Outcome) -> None:
        """After a task completion was recorded (and checkpointed if a trigger fired)."""

    def on_error_recovery(self, error: ErrorContext, recovery_action: Outcome) -> None:
        """After an error recovery was recorded."""

    def on_session_end(self, summary: SessionSummary) -> None:
        """After the session completed and its summary was written."""


# -- the per-event context the guards and effects share ----------------------------------


@attrs.define
class _Dispatch:
    activity: Activity
    change: Change | None = None
    call: CheckpointCall | None = None  # a manual call for SAVE; else from evaluators
    phase: str | None = None
    progress: dict[str, JSONValue] | None = None
    context: dict[str, JSONValue] | None = None
    label: str | None = None
    suppress_checkpoint: bool = False
    restore_asked: bool = False
    restore_id: str | None = None
    command: str = ""
    change_id: str | None = None
    success: bool | None = None
    # filled while the event runs
    outcome: dict[Guard, bool] = attrs.Factory(dict)
    new_work: WorkState | None = None
    restored: Checkpoint | None = None
    written: CheckpointResult | None = None
    failed: CheckpointResult | None = None
    warnings: list[str] = attrs.Factory(list)


class _CheckpointWriteFailed(LifecycleError):
    def __init__(self, result: CheckpointResult) -> None:
        self.result = result
        super().__init__(result.error or "checkpoint write failed")


@attrs.frozen
class _Saved:
    """The session state a durable checkpoint holds (compared to decide unsaved work)."""

    phase: str
    progress: dict[str, JSONValue]
    context: dict[str, JSONValue]
    work: WorkState


class SessionManager:
    """Runs one work session at a time against a store.

    ``store`` is a Store or a URL (default: ``$LIFECYCLE_STORE`` or
    ``file://.lifecycle``); ``clock`` returns an aware UTC datetime. ``conflict``
    says what a checkpoint does when another writer moved ``checkpoints/latest``
    first: ``"last-write-wins"`` (default) or ``"merge"`` (:mod:`lifecycle.merge`).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        project: str = "default",
        clock: Clock | None = None,
        *,
        evaluators: Sequence[Evaluator] | None = None,
        time_settings: Any = None,
        hooks: Iterable[LifecycleHooks] = (),
        strict: bool = False,
        conflict: str = "last-write-wins",
        journal: bool = False,
    ) -> None:
        from lifecycle.triggers import default_evaluators
        from lifecycle.triggers.time import ActiveTime, TimeSettings

        raw = store if store is not None and not isinstance(store, str) else open_store(store)
        self._store = ProjectStore(raw, project)
        self.project = self._store.project
        self._clock = clock or system_clock
        self._time_settings = time_settings or TimeSettings()
        self._evaluators: tuple[Evaluator, ...] = (
            tuple(evaluators)
            if evaluators is not None
            else tuple(default_evaluators(time=self._time_settings))
        )
        self._hooks = tuple(hooks)
        self._strict = strict
        self._lock = threading.RLock()
        self._driver = Driver(self)
        self._time = ActiveTime(0.0, None)
        self._session: SessionRecord | None = None
        self._phase = ""
        self._progress: dict[str, JSONValue] = {}
        self._context: dict[str, JSONValue] = {}
        self._work = WorkState()
        self._saved: _Saved | None = None
        self._last_checkpoint: Checkpoint | None = None
        self._last_auto_at: datetime | None = None
        self._last_moment: datetime | None = None
        self._latest_version: int | None = None
        self._tasks_since_checkpoint = 0
        self._pending_learnings: list[Learning] = []
        self._restored_from: Checkpoint | None = None
        self._warnings: list[str] = []
        if conflict not in CONFLICT_POLICIES:
            from lifecycle.errors import InvalidSettings

            raise InvalidSettings(f"conflict={conflict!r}; use one of {CONFLICT_POLICIES}")
        self._conflict = conflict
        self._last_merge: Merged | None = None
        # journal=True: every applied event goes to journal/{session-id}/{seq}
        self._journal: Journal | None = Journal(enabled=True) if journal else None

    # -- what evaluators and callers may read --------------------------------------------

    @property
    def state(self) -> SessionState:
        return SessionState(self._driver.state)

    @property
    def store(self) -> ProjectStore:
        return self._store

    @property
    def session(self) -> SessionRecord | None:
        """The session record as it stands now (with the work recorded so far)."""
        with self._lock:
            if self._session is None:
                return None
            return self._record_now()

    @property
    def session_id(self) -> str | None:
        return None if self._session is None else self._session.id

    @property
    def work(self) -> WorkState:
        return self._work

    @property
    def phase(self) -> str:
        return self._phase

    @property
    def progress(self) -> dict[str, JSONValue]:
        return dict(self._progress)

    @property
    def context(self) -> dict[str, JSONValue]:
        return dict(self._context)

    @property
    def active_seconds(self) -> float:
        return float(self._time.active_seconds)

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._last_checkpoint

    @property
    def last_checkpoint_at(self) -> datetime | None:
        cp = self._last_checkpoint
        return None if cp is None else cp.timestamp

    @property
    def last_auto_checkpoint_at(self) -> datetime | None:
        return self._last_auto_at

    @property
    def tasks_completed_since_checkpoint(self) -> int:
        return self._tasks_since_checkpoint

    @property
    def has_unsaved_work(self) -> bool:
        with self._lock:
            return self._saved != self._snapshot()

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._warnings)

    @property
    def last_merge(self) -> Merged | None:
        """The last merge with another writer's checkpoint (``conflict="merge"``)."""
        return self._last_merge

    # -- the seed's API ---------------------------------------------------------------------

    @event
    def start_session(
        self,
        command: str = "",
        restore: bool = True,
        *,
        change_id: str | None = None,
        checkpoint_id: str | None = None,
    ) -> StartResult:
        """Load: restore the latest valid checkpoint (or ``checkpoint_id``) when asked and
        one exists, else start fresh. The seed's Output: session_id, is_fresh_session,
        restored_state."""
        ctx = self._context_for(Event.LOAD)
        ctx.restore_asked = restore or checkpoint_id is not None
        ctx.restore_id = checkpoint_id
        ctx.command = command
        ctx.change_id = change_id
        self._dispatch(Event.LOAD, ctx)
        assert self._session is not None
        restored = ctx.restored
        result = StartResult(
            session_id=self._session.id,
            is_fresh_session=restored is None,
            restored_state=None if restored is None else self._restored_state(restored),
            checkpoint_id=None if restored is None else restored.id,
            warnings=tuple(ctx.warnings),
        )
        self._call_hooks(
            "on_session_start",
            {"session_id": result.session_id, "command": command, "restored": restored},
        )
        return result

    def should_create_checkpoint(self) -> bool:
        """Would a trigger checkpoint now? (seed: "30+ minutes since last checkpoint")."""
        with self._lock:
            if Event.TICK not in TABLE.legal_events(self.state):
                return False
            from lifecycle.triggers.time import advance

            now = self._now(peek=True)
            saved_time = self._time
            try:
                self._time = advance(self._time, now, self._time_settings)
                call = self._evaluate(Activity(Event.TICK, now))
            finally:
                self._time = saved_time
            return call is not None and (call.type is CheckpointType.RISK or self.has_unsaved_work)

    @event
    def create_checkpoint(
        self,
        checkpoint: Checkpoint | None = None,
        *,
        phase: str | None = None,
        progress: Mapping[str, JSONValue] | None = None,
        context: Mapping[str, JSONValue] | None = None,
    ) -> CheckpointResult:
        """Manual checkpoint. A no-op (``written=False``, the last checkpoint's id) when
        nothing changed since the last one; a new phase, progress or context is a change."""
        ctx = self._context_for(Event.SAVE)
        if checkpoint is not None:
            ctx.phase, ctx.progress, ctx.context = (
                checkpoint.phase,
                dict(checkpoint.progress),
                dict(checkpoint.context),
            )
            ctx.label = checkpoint.id
        if phase is not None:
            ctx.phase = phase
        if progress is not None:
            ctx.progress = dict(progress)
        if context is not None:
            ctx.context = dict(context)
        ctx.call = CheckpointCall(
            type=CheckpointType.MANUAL,
            trigger="user-requested",
            key=keys.checkpoint_key("manual", ctx.activity.at),
            reason="manual checkpoint",
        )
        self._dispatch(Event.SAVE, ctx)
        if ctx.written is not None:
            return ctx.written
        if ctx.failed is not None:
            return ctx.failed
        last = self._last_checkpoint
        return CheckpointResult(
            checkpoint_id=None if last is None else last.id,
            timestamp=None if last is None else last.timestamp,
            key=None if last is None else last.key,
            type=None if last is None else last.type,
            trigger=None if last is None else last.trigger,
            written=False,
        )

    @event
    def capture_learning(
        self,
        learning: Learning | None = None,
        *,
        type: LearningType | str | None = None,
        key: str | None = None,
        content: str | None = None,
        tags: Iterable[str] = (),
    ) -> LearningResult:
        """Persist a learning under ``learning/{type}s/{name}``. A bad key raises
        InvalidKey with a suggestion; a store failure queues it for retry."""
        with self._lock:
            if learning is None:
                if type is None or key is None or content is None:
                    raise InvalidRecord("capture_learning needs a Learning or type, key, content")
                learning = Learning(
                    type=type, key=key, content=content, timestamp=self._now(), tags=tags
                )
            learning = self._checked_learning(learning)
            self._retry_learnings()
            try:
                self._write_learning(learning)
            except StoreError as exc:
                self._pending_learnings.append(learning)
                log.warning(
                    "learning.queued", key=learning.key, error=str(exc), session_id=self.session_id
                )
                return LearningResult(False, learning.key, queued=True, error=str(exc))
            return LearningResult(True, learning.key)

    @event
    def end_session(
        self, success: bool = True, phase: str | None = None, *, command: str = ""
    ) -> EndResult:
        """Complete: final checkpoint (if anything is unsaved), session record, summary."""
        ctx = self._context_for(Event.COMPLETE)
        ctx.success = success
        ctx.phase = phase
        ctx.command = command
        self._dispatch(Event.COMPLETE, ctx)
        summary = self._summary(success)
        self._call_hooks("on_session_end", summary)
        return EndResult(
            session_id=summary.session_id,
            checkpoint=ctx.written or ctx.failed,
            summary=summary,
        )

    def report(self) -> str:
        """The seed's Session Report ("Session restored: Phase: ... Progress: ...")."""
        from lifecycle.report import session_report

        with self._lock:
            return session_report(self)

    def apply(self, message: EventMessage) -> Any:
        """Apply an event given as data: ``EventMessage("complete_task", {"task_id": "T1"})``
        calls ``complete_task(task_id="T1")`` and returns its result. A message with an
        ``idempotency_key`` this session already applied changes nothing and returns the
        first result again. See :mod:`lifecycle.journal`."""
        from lifecycle.journal import apply

        return apply(self, message)

    # -- continuing one session across processes ------------------------------------------

    def save_context(self) -> None:
        """Write ``session/context``: the open session's complete live state, so that
        :meth:`attach` in another process continues it, unsaved work included."""
        with self._lock:
            if self._session is None:
                raise NoSession("no session to save: call start_session first")
            live = LiveContext(
                session=self._record_now(),
                state=self.state.value,
                phase=self._phase,
                progress=self._progress,
                context=self._context,
                work=self._work,
                saved_checkpoint_id=None
                if self._saved is None or self._last_checkpoint is None
                else self._last_checkpoint.id,
                restored_from=None if self._restored_from is None else self._restored_from.id,
                active_seconds=self._time.active_seconds,
                last_activity_at=self._time.last_activity_at,
                last_auto_checkpoint_at=self._last_auto_at,
                tasks_since_checkpoint=self._tasks_since_checkpoint,
                last_moment=self._last_moment,
                latest_version=self._latest_version,
            )
            self._store.put(CONTEXT, codec.encode(live))

    def attach(self) -> bool:
        """Continue the project's open session (``session/context``) in this manager.

        Returns False, changing nothing, when there is no open session to continue (none
        saved, or the last one completed): call :meth:`start_session` then. The machine's
        state is restored as it was saved; this is the same session, not a transition.
        """
        from lifecycle.triggers.time import ActiveTime

        with self._lock:
            if self.state is not TABLE.initial:
                raise LifecycleError(f"attach needs a new manager, this one is {self.state}")
            entry = self._store.get(CONTEXT)
            if entry is None:
                return False
            try:
                live = codec.decode(LiveContext, entry.value, key=CONTEXT)
            except (CorruptRecord, InvalidRecord) as exc:
                log.warning("attach.unreadable", error=str(exc))
                self._warnings.append(f"session/context is unreadable ({exc})")
                return False
            state = SessionState(live.state)
            if state in TABLE.final or live.session.end_time is not None:
                return False
            saved: Checkpoint | None = None
            if live.saved_checkpoint_id is not None:
                try:
                    saved = self._checkpoint_by_id(live.saved_checkpoint_id)
                except CheckpointNotFound:
                    self._warnings.append(
                        f"checkpoint {live.saved_checkpoint_id} is gone; all work counts as unsaved"
                    )
            self._session = live.session
            self._phase, self._progress, self._context = live.phase, live.progress, live.context
            self._work = live.work
            if saved is not None:
                self._saved = _Saved(saved.phase, saved.progress, saved.context, saved.state)
                self._last_checkpoint = saved
            if live.restored_from is not None and saved is not None:
                self._restored_from = saved if saved.id == live.restored_from else None
            self._time = ActiveTime(live.active_seconds, live.last_activity_at)
            self._last_auto_at = live.last_auto_checkpoint_at
            self._tasks_since_checkpoint = live.tasks_since_checkpoint
            self._last_moment = live.last_moment
            self._latest_version = live.latest_version
            self._driver.state = state.value
            return True

    # -- work events ---------------------------------------------------------------------------

    @event
    def add_task(
        self,
        task_id: str,
        description: str = "",
        *,
        priority: Priority | str = Priority.MEDIUM,
        status: TaskStatus | str = TaskStatus.PENDING,
        progress: str | None = None,
    ) -> Outcome:
        """Add or update an open task (TodoWrite's pending / in_progress)."""
        at = self._now(peek=True)

        def change(work: WorkState) -> WorkState:
            old = next((t for t in work.active_tasks if t.id == task_id), None)
            started = old.started_at if old else None
            if TaskStatus(status) is TaskStatus.IN_PROGRESS and started is None:
                started = at
            task = Task(
                id=task_id,
                description=description or (old.description if old else ""),
                status=status,
                priority=priority,
                progress=progress,
                started_at=started,
            )
            tasks = (*(t for t in work.active_tasks if t.id != task_id), task)
            return attrs.evolve(work, active_tasks=tasks)

        return self._work_event(Event.RECORD, change)

    @event
    def complete_task(
        self,
        task_id: str,
        description: str = "",
        *,
        priority: Priority | str | None = None,
        duration_minutes: float | None = None,
    ) -> Outcome:
        """Mark a task complete. Every completion is evaluated by the task trigger; a
        high-priority one always checkpoints."""
        with self._lock:
            return self._complete_task(task_id, description, priority, duration_minutes)

    def _complete_task(
        self,
        task_id: str,
        description: str,
        priority: Priority | str | None,
        duration_minutes: float | None,
    ) -> Outcome:
        at = self._now(peek=True)
        old = next((t for t in self._work.active_tasks if t.id == task_id), None)
        if duration_minutes is None and old is not None and old.started_at is not None:
            duration_minutes = round((at - old.started_at).total_seconds() / 60, 2)
        task = Task(
            id=task_id,
            description=description or (old.description if old else ""),
            status=TaskStatus.COMPLETED,
            priority=priority if priority is not None else (old.priority if old else "medium"),
            progress="100%",
            started_at=old.started_at if old else None,
            completed_at=at,
            duration_minutes=duration_minutes,
        )

        def change(work: WorkState) -> WorkState:
            return attrs.evolve(
                work,
                active_tasks=tuple(t for t in work.active_tasks if t.id != task_id),
                completed_tasks=(*work.completed_tasks, task),
                recent_changes=_recent(work.recent_changes, f"completed {task_id}"),
            )

        outcome = self._work_event(Event.TASK_COMPLETED, change, task=task)
        self._call_hooks("on_task_complete", task_id, outcome)
        return outcome

    @event
    def record_decision(
        self, decision: str, rationale: str = "", impact: str = "", *, at: datetime | None = None
    ) -> Outcome:
        item = Decision(
            timestamp=at or self._now(peek=True),
            decision=decision,
            rationale=rationale,
            impact=impact,
        )
        return self._work_event(
            Event.RECORD, lambda w: attrs.evolve(w, decisions=(*w.decisions, item))
        )

    @event
    def record_file_change(
        self, path: str, operations: Iterable[str] | str = ("edit",), changes: int | None = None
    ) -> Outcome:
        ops = (operations,) if isinstance(operations, str) else tuple(operations)

        def change(work: WorkState) -> WorkState:
            files = list(work.files_modified)
            for i, old in enumerate(files):
                if old.path == path:
                    merged = old.operations + tuple(o for o in ops if o not in old.operations)
                    total = old.changes if changes is None else (old.changes or 0) + changes
                    files[i] = FileChange(path, merged, total)
                    break
            else:
                files.append(FileChange(path, ops, changes))
            return attrs.evolve(
                work,
                files_modified=tuple(files),
                recent_changes=_recent(work.recent_changes, f"{'/'.join(ops)} {path}"),
            )

        return self._work_event(Event.RECORD, change)

    @event
    def record_discovery(
        self, *, pattern: str | None = None, insight: str | None = None
    ) -> Outcome:
        def change(work: WorkState) -> WorkState:
            d = work.discoveries
            patterns = d.patterns_found + (
                (pattern,) if pattern and pattern not in d.patterns_found else ()
            )
            insights = d.insights_gained + (
                (insight,) if insight and insight not in d.insights_gained else ()
            )
            return attrs.evolve(work, discoveries=Discoveries(patterns, insights))

        return self._work_event(Event.RECORD, change)

    @event
    def add_open_question(self, question: str) -> Outcome:
        return self._work_event(
            Event.RECORD,
            lambda w: (
                w
                if question in w.open_questions
                else attrs.evolve(w, open_questions=(*w.open_questions, question))
            ),
        )

    @event
    def resolve_question(self, question: str) -> Outcome:
        return self._work_event(
            Event.RECORD,
            lambda w: attrs.evolve(
                w, open_questions=tuple(q for q in w.open_questions if q != question)
            ),
        )

    @event
    def add_blocker(self, blocker: str) -> Outcome:
        return self._work_event(
            Event.RECORD,
            lambda w: (
                w if blocker in w.blockers else attrs.evolve(w, blockers=(*w.blockers, blocker))
            ),
        )

    @event
    def clear_blocker(self, blocker: str) -> Outcome:
        return self._work_event(
            Event.RECORD,
            lambda w: attrs.evolve(w, blockers=tuple(b for b in w.blockers if b != blocker)),
        )

    @event
    def update_context(self, values: Mapping[str, JSONValue]) -> Outcome:
        """Merge ``values`` into the session's context (a key set to None is removed). The
        context is saved in the next checkpoint and restored with it."""
        with self._lock:
            merged = {k: v for k, v in {**self._context, **values}.items() if v is not None}
            ctx = self._context_for(Event.RECORD)
            ctx.context = merged
            row = self._dispatch(Event.RECORD, ctx)
            return Outcome(self.state, row.label, ctx.written or ctx.failed)

    @event
    def tick(self) -> Outcome:
        """Activity with nothing to record: drives the time trigger."""
        return self._work_event(Event.TICK, None)

    @event
    def before_operation(self, operation: Operation | str, **fields: Any) -> Clearance:
        """Ask before running an operation. A risky one is checkpointed first, and the
        answer says ``proceed=False`` if that checkpoint could not be written."""
        op = (
            operation
            if isinstance(operation, Operation)
            else Operation(command=operation, **fields)
        )
        ctx = self._context_for(Event.BEFORE_OPERATION, operation=op)
        row = self._dispatch(Event.BEFORE_OPERATION, ctx)
        checkpoint = ctx.written or ctx.failed
        blocked = ctx.failed is not None and ctx.written is None
        return Clearance(
            state=self.state,
            transition=row.label,
            checkpoint=checkpoint,
            proceed=not blocked,
            reason=(
                f"checkpoint before a risky operation failed: {ctx.failed.error}"
                if blocked and ctx.failed
                else (ctx.written.trigger or "")
                if ctx.written
                else "not risky"
            ),
        )

    @event
    def error_recovered(
        self, error: str, recovery_steps: Iterable[str] | str = (), *, operation: str | None = None
    ) -> Outcome:
        """Record a recovery from an error; the error trigger checkpoints it."""
        item = ErrorContext(error=error, recovery_steps=recovery_steps, operation=operation)
        outcome = self._work_event(
            Event.ERROR_RECOVERED,
            lambda w: attrs.evolve(w, errors=(*w.errors, item)),
            error=item,
        )
        self._call_hooks("on_error_recovery", item, outcome)
        return outcome

    # -- memory (the seed's read_memory / write_memory) --------------------------------------

    def read_checkpoint(self, checkpoint_id: str | None = None) -> Checkpoint:
        """The latest valid checkpoint, or the one with ``checkpoint_id``."""
        with self._lock:
            if checkpoint_id is None:
                cp, _ = self._latest_valid_checkpoint([])
                if cp is None:
                    raise CheckpointNotFound("latest")
                return cp
            return self._checkpoint_by_id(checkpoint_id)

    def list_checkpoints(self) -> list[tuple[datetime, str]]:
        """(timestamp, key) of every checkpoint, oldest first (names only, no reads)."""
        found = []
        for key in self._store.list_keys("checkpoints/"):
            parsed = keys.parse_checkpoint_key(key)
            if parsed is not None:
                found.append((parsed[1], key))
        found.sort()
        return found

    def learnings_count(self) -> int:
        return len(self._store.list_keys("learning/"))

    # -- the machine's callbacks ---------------------------------------------------------------

    def guard(self, guard: Guard, ctx: _Dispatch) -> bool:
        """Evaluate a table guard once per event (the machine may ask again)."""
        value = ctx.outcome.get(guard)
        if value is None:
            value = self._evaluate_guard(guard, ctx)
            ctx.outcome[guard] = value
        return value

    def effect(self, effect: Effect, row: Row, ctx: _Dispatch) -> None:
        if effect is Effect.RESTORE:
            assert ctx.restored is not None
            self._begin(ctx, ctx.restored)
        elif effect is Effect.START_FRESH:
            self._begin(ctx, None)
        elif effect is Effect.RECORD_WORK:
            self._apply(ctx)
        elif effect is Effect.WRITE_CHECKPOINT:
            self._write_checkpoint(ctx)
        elif effect is Effect.FINALIZE:
            self._finalize(ctx)
        else:  # pragma: no cover - validate() checks every effect has a handler
            raise LifecycleError(f"no handler for effect {effect}")

    # -- internals ---------------------------------------------------------------------------

    def _now(self, *, peek: bool = False) -> datetime:
        """The clock, made strictly increasing so ids and keys never collide."""
        now = self._clock()
        if now.tzinfo is None:
            raise InvalidRecord("the clock must return an aware datetime (UTC)")
        now = now.astimezone(UTC)
        last = self._last_moment
        if last is not None and now <= last:
            now = last + timedelta(microseconds=1)
        if not peek:
            self._last_moment = now
        return now

    def _context_for(self, event: Event, **activity: Any) -> _Dispatch:
        return _Dispatch(Activity(event, self._now(peek=True), **activity))

    def _work_event(self, event: Event, change: Change | None, **activity: Any) -> Outcome:
        ctx = self._context_for(event, **activity)
        ctx.change = change
        row = self._dispatch(event, ctx)
        return Outcome(self.state, row.label, ctx.written or ctx.failed)

    def _dispatch(self, event: Event, ctx: _Dispatch) -> Row:
        with self._lock:
            state = self.state
            started = time.perf_counter()
            # An event that raises changes nothing: not even the clock floor or active time.
            moment_before, time_before = self._last_moment, self._time
            # Illegal events raise here, before anything is evaluated or written.
            if event in TABLE.legal_events(state):
                self._last_moment = ctx.activity.at
                from lifecycle.triggers.time import advance

                if event is not Event.LOAD:
                    self._time = advance(self._time, ctx.activity.at, self._time_settings)
                self._retry_learnings()
            try:
                row = fire(self._driver, event, ctx)
            except _CheckpointWriteFailed as failure:
                # Seed: "retry once, then log error and continue": the work is kept,
                # unsaved, by firing the event again with the checkpoint suppressed.
                ctx.failed = failure.result
                retry = _Dispatch(ctx.activity, change=ctx.change, suppress_checkpoint=True)
                retry.phase, retry.progress, retry.context = ctx.phase, ctx.progress, ctx.context
                if event is Event.SAVE:  # a failed save still records its phase and progress
                    event = Event.RECORD
                row = fire(self._driver, event, retry)
                ctx.warnings.extend(retry.warnings)
            except BaseException:
                self._last_moment, self._time = moment_before, time_before
                raise
            self._warnings.extend(ctx.warnings)
            log.info(
                "transition",
                session_id=self.session_id,
                source=state.value,
                dest=self.state.value,
                trigger=event.value,
                reason=(ctx.written.trigger if ctx.written else row.note),
                checkpoint_id=ctx.written.checkpoint_id if ctx.written else None,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            return row

    def _evaluate(self, activity: Activity) -> CheckpointCall | None:
        for evaluator in self._evaluators:
            call = evaluator.evaluate(activity, self, activity.at)
            if call is not None:
                return call
        return None

    def _evaluate_guard(self, guard: Guard, ctx: _Dispatch) -> bool:
        if guard is Guard.RESTORE_AVAILABLE:
            if not ctx.restore_asked:
                return False
            try:
                if ctx.restore_id is not None:
                    ctx.restored = self._checkpoint_by_id(ctx.restore_id)
                else:
                    ctx.restored, _ = self._latest_valid_checkpoint(ctx.warnings)
            except (StoreError, OSError) as exc:
                # Seed: "Checkpoint read failure: start fresh session, log warning".
                msg = f"could not read checkpoints ({exc}); starting a fresh session"
                log.warning("restore.failed", error=str(exc))
                ctx.warnings.append(msg)
                ctx.restored = None
            return ctx.restored is not None
        if guard is Guard.CHANGES_WORK:
            return self._snapshot_after(ctx) != self._snapshot()
        if guard is Guard.HAS_UNSAVED:
            return self._saved != self._snapshot_after(ctx)
        if guard is Guard.CHECKPOINT_DUE:
            if ctx.suppress_checkpoint:
                return False
            call = ctx.call if ctx.call is not None else self._evaluate(ctx.activity)
            if call is None:
                return False
            # A risky operation always gets its checkpoint; other triggers only when
            # there is something unsaved to write.
            if call.type is not CheckpointType.RISK and self._saved == self._snapshot_after(ctx):
                return False
            ctx.call = call
            return True
        raise LifecycleError(f"no evaluator for guard {guard}")  # pragma: no cover

    def _new_work(self, ctx: _Dispatch) -> WorkState:
        if ctx.new_work is None:
            ctx.new_work = self._work if ctx.change is None else ctx.change(self._work)
        return ctx.new_work

    def _snapshot(self) -> _Saved:
        return _Saved(self._phase, self._progress, self._context, self._work)

    def _snapshot_after(self, ctx: _Dispatch) -> _Saved:
        return _Saved(
            self._phase if ctx.phase is None else ctx.phase,
            self._progress if ctx.progress is None else ctx.progress,
            self._context if ctx.context is None else ctx.context,
            self._new_work(ctx),
        )

    def _apply(self, ctx: _Dispatch) -> None:
        after = self._snapshot_after(ctx)
        self._phase, self._progress, self._context = after.phase, after.progress, after.context
        self._work = after.work
        if ctx.activity.event is Event.TASK_COMPLETED:
            self._tasks_since_checkpoint += 1

    def _restored_state(self, cp: Checkpoint) -> dict[str, JSONValue]:
        return {"phase": cp.phase, "progress": dict(cp.progress), "context": dict(cp.context)}

    # loading -------------------------------------------------------------------------

    def _begin(self, ctx: _Dispatch, restored: Checkpoint | None) -> None:
        now = ctx.activity.at
        record = SessionRecord(
            id=f"session-{keys.format_ts(now)}",
            project=self.project,
            start_time=now,
            command=ctx.command,
            change_id=ctx.change_id,
            restored_from=None if restored is None else restored.id,
        )
        if restored is not None:
            record = attrs.evolve(record, phase=restored.phase)
        # Create the session record with compare-and-swap: two processes starting in
        # the same microsecond get distinct keys.
        for _ in range(100):
            key = keys.session_key(record.start_time)
            try:
                self._store.batch(
                    [
                        Put(key, codec.encode(record), expected_version=0),
                        Put(
                            CURRENT,
                            codec.encode(Pointer(key, record.id, record.start_time)),
                            sync=False,
                        ),
                    ]
                )
                break
            except StoreError as exc:
                from lifecycle.errors import VersionConflict

                if not isinstance(exc, VersionConflict):
                    raise
                moment = record.start_time + timedelta(microseconds=1)
                record = attrs.evolve(
                    record, start_time=moment, id=f"session-{keys.format_ts(moment)}"
                )
        self._session = record
        self._last_moment = max(self._last_moment or record.start_time, record.start_time)
        if restored is None:
            return
        self._phase = restored.phase
        self._progress = dict(restored.progress)
        self._context = dict(restored.context)
        self._work = restored.state
        self._saved = self._snapshot()
        self._last_checkpoint = restored
        self._restored_from = restored

    def _latest_valid_checkpoint(self, warnings: list[str]) -> tuple[Checkpoint | None, int | None]:
        """Follow ``checkpoints/latest``; when it or its target is missing or corrupt, fall
        back to the newest valid checkpoint by timestamp, with a warning."""
        pointer_entry = None
        try:
            pointer_entry = self._store.get(LATEST)
            if pointer_entry is not None:
                pointer = codec.decode(Pointer, pointer_entry.value, key=LATEST)
                cp = self._read_checkpoint_key(pointer.key)
                if cp is not None:
                    self._latest_version = pointer_entry.version
                    return cp, pointer_entry.version
                warnings.append(f"latest checkpoint {pointer.key} is missing or corrupt")
        except (CorruptRecord, InvalidRecord) as exc:
            warnings.append(f"checkpoints/latest is unreadable ({exc})")
        self._latest_version = None if pointer_entry is None else pointer_entry.version
        for _, key in reversed(self.list_checkpoints()):
            cp = self._read_checkpoint_key(key, warnings)
            if cp is not None:
                if pointer_entry is not None or warnings:
                    msg = f"restored from the newest valid checkpoint {cp.id} instead"
                    warnings.append(msg)
                    log.warning("restore.fallback", checkpoint_id=cp.id, warnings=warnings)
                return cp, self._latest_version
        return None, self._latest_version

    def _read_checkpoint_key(
        self, key: str, warnings: list[str] | None = None
    ) -> Checkpoint | None:
        try:
            entry = self._store.get(key)
            if entry is None:
                return None
            cp = codec.decode(Checkpoint, entry.value, key=key)
        except (CorruptRecord, InvalidRecord, InvalidKey) as exc:
            if warnings is not None:
                warnings.append(f"skipped corrupt checkpoint {key}: {exc}")
            log.warning("checkpoint.corrupt", key=key, error=str(exc))
            return None
        return cp

    def _checkpoint_by_id(self, checkpoint_id: str) -> Checkpoint:
        """One name listing and at most one read: an id is ``cp-{ts}`` and its key ends
        in that same ``{ts}``, which no other checkpoint shares."""
        from lifecycle.history import checkpoint_key_for

        key = checkpoint_key_for(self._store, checkpoint_id)
        cp = None if key is None else self._read_checkpoint_key(key)
        if cp is None or cp.id != checkpoint_id:
            raise CheckpointNotFound(checkpoint_id)
        return cp

    # writing checkpoints ---------------------------------------------------------------

    def _build_checkpoint(self, ctx: _Dispatch, call: CheckpointCall, at: datetime) -> Checkpoint:
        after = self._snapshot_after(ctx)
        assert self._session is not None
        parent = self._last_checkpoint
        cp_id = f"cp-{keys.format_ts(at)}"
        return Checkpoint(
            id=cp_id,
            timestamp=at,
            phase=after.phase,
            progress=after.progress,
            context=after.context,
            session_id=self._session.id,
            project=self.project,
            type=call.type,
            trigger=call.trigger,
            key=call.key,
            parent_id=None if parent is None else parent.id,
            operation=call.operation,
            label=ctx.label,
            state=after.work,
            context_snapshot=ContextSnapshot(
                key_memories=(CURRENT, LATEST),
                recent_changes=after.work.recent_changes,
            ),
            recovery_info=RecoveryInfo(
                restore_command=f"lifecycle session start --checkpoint {cp_id}",
            ),
        )

    def _write_checkpoint(self, ctx: _Dispatch) -> None:
        call = ctx.call
        assert call is not None
        at = ctx.activity.at
        error: Exception | None = None
        for attempt in (1, 2):  # seed: retry once
            try:
                cp, size = self._commit_checkpoint(ctx, call, at)
                break
            except StoreError as exc:
                error = exc
                log.warning("checkpoint.write_failed", attempt=attempt, error=str(exc))
        else:
            log.error("checkpoint.gave_up", error=str(error), session_id=self.session_id)
            msg = f"checkpoint not written after 2 attempts: {error}"
            ctx.warnings.append(msg)
            raise _CheckpointWriteFailed(
                CheckpointResult(
                    checkpoint_id=None,
                    timestamp=None,
                    type=call.type,
                    trigger=call.trigger,
                    written=False,
                    error=str(error),
                )
            )
        self._apply(ctx)
        self._saved = self._snapshot()
        self._last_checkpoint = cp
        self._tasks_since_checkpoint = 0
        from lifecycle.triggers.time import reset

        self._time = reset(self._time, cp.timestamp)
        parsed = keys.parse_checkpoint_key(call.key)
        if parsed is not None and parsed[0] == "auto":  # the time trigger's checkpoint
            self._last_auto_at = cp.timestamp
        assert self._session is not None
        ref = CheckpointRef(cp.id, cp.key, cp.timestamp, cp.type, cp.trigger)
        recent = self._session.checkpoints[-(RECENT_CHECKPOINTS - 1) :]
        self._session = attrs.evolve(
            self._session,
            checkpoints=(*recent, ref),
            checkpoint_count=self._session.checkpoint_count + 1,
            checkpoint_bytes=self._session.checkpoint_bytes + size,
        )
        ctx.written = CheckpointResult(
            checkpoint_id=cp.id,
            timestamp=cp.timestamp,
            key=cp.key,
            type=cp.type,
            trigger=cp.trigger,
        )

    def _commit_checkpoint(
        self, ctx: _Dispatch, call: CheckpointCall, at: datetime
    ) -> tuple[Checkpoint, int]:
        """Write the checkpoint and move ``checkpoints/latest`` to it, in one batch.

        The pointer is a compare-and-swap on the version this manager last saw; when
        another writer moved it, re-read it and take a later timestamp, so ids stay
        unique and in creation order across processes (last write wins)."""
        from lifecycle.errors import VersionConflict

        torn = False  # the stored pointer is unreadable: overwrite it, no compare
        for _ in range(50):
            cp = self._build_checkpoint(ctx, call, at)
            body = codec.encode(cp)
            self._check_size(body, cp)
            pointer = codec.encode(Pointer(cp.key, cp.id, cp.timestamp))
            expected: int | None = 0 if self._latest_version is None else self._latest_version
            if torn:
                expected = None
            try:
                versions = self._store.batch(
                    [
                        Put(cp.key, body, expected_version=0),
                        Put(LATEST, pointer, expected_version=expected, sync=False),
                    ]
                )
            except CorruptRecord:
                if torn:
                    raise
                torn = True  # a CAS cannot compare against a torn pointer
                continue
            except VersionConflict:
                try:
                    entry = self._store.get(LATEST)
                except CorruptRecord:
                    torn = True
                    continue
                self._latest_version = None if entry is None else entry.version
                if entry is not None:
                    try:
                        other = codec.decode(Pointer, entry.value, key=LATEST)
                        at = max(at, other.timestamp) + timedelta(microseconds=1)
                        if self._conflict == "merge":
                            self._merge_from(ctx, other.key)
                    except (CorruptRecord, InvalidRecord):
                        at = at + timedelta(microseconds=1)
                else:
                    at = at + timedelta(microseconds=1)
                call = self._rekey(call, at)
                continue
            self._latest_version = versions[1]
            self._last_moment = max(self._last_moment or at, at)
            return cp, len(body)
        raise StoreError("could not move checkpoints/latest: too many concurrent writers")

    def _merge_from(self, ctx: _Dispatch, key: str) -> None:
        """Conflict policy "merge": fold the other writer's checkpoint into this event's
        state (lists unioned by id, our scalars kept, divergences reported)."""
        from lifecycle.merge import merge_state

        theirs = self._read_checkpoint_key(key)
        if theirs is None:
            return
        after = self._snapshot_after(ctx)
        merged = merge_state(
            after.phase, after.progress, after.context, after.work,
            their_phase=theirs.phase, their_progress=theirs.progress,
            their_context=theirs.context, their_work=theirs.state,
        )  # fmt: skip
        ctx.phase, ctx.progress, ctx.context = merged.phase, merged.progress, merged.context
        ctx.new_work = merged.work
        self._last_merge = merged
        if merged.divergences:
            diff = "; ".join(d.describe() for d in merged.divergences)
            ctx.warnings.append(f"merged with checkpoint {theirs.id}: {diff}")
            log.warning("checkpoint.merged", other=theirs.id, divergences=diff)

    def _rekey(self, call: CheckpointCall, at: datetime) -> CheckpointCall:
        parsed = keys.parse_checkpoint_key(call.key)
        kind, name = ("manual", None) if parsed is None else (parsed[0], parsed[2])
        key = keys.checkpoint_key(
            kind,
            at,
            task_id=name if kind == "task" else None,
            operation=name if kind == "risk" else None,
        )
        return attrs.evolve(call, key=key)

    def _check_size(self, body: bytes, cp: Checkpoint) -> None:
        size = len(body)
        if size > MAX_BYTES:
            from lifecycle.errors import CheckpointTooLarge

            sizes = [
                (f"state.{f.name}", len(codec.converter.dumps(getattr(cp.state, f.name))))
                for f in attrs.fields(WorkState)
            ]
            sizes += [
                ("progress", len(codec.converter.dumps(cp.progress))),
                ("context", len(codec.converter.dumps(cp.context))),
            ]
            sizes.sort(key=lambda p: -p[1])
            raise CheckpointTooLarge(size, MAX_BYTES, sizes[:3])
        if size > WARN_BYTES:
            log.warning("checkpoint.large", size=size, limit=WARN_BYTES, checkpoint_id=cp.id)

    # finishing -------------------------------------------------------------------------

    def _finalize(self, ctx: _Dispatch) -> None:
        if self._session is None:  # completed before it was loaded
            self._begin(ctx, None)
        if ctx.phase is not None:
            self._phase = ctx.phase
        if self._saved != self._snapshot():
            ctx.call = CheckpointCall(
                type=CheckpointType.MANUAL,
                trigger="session-end",
                key=keys.checkpoint_key("manual", ctx.activity.at),
                reason="final checkpoint",
            )
            try:
                self._write_checkpoint(ctx)
            except _CheckpointWriteFailed as failure:
                ctx.failed = failure.result
        self._retry_learnings()
        assert self._session is not None
        now = ctx.activity.at
        record = self._record_now(end=now, success=ctx.success)
        summary = self._summary(ctx.success, record)
        from lifecycle.summaries import consolidate  # never raises: warns instead

        record = consolidate(self, record, summary, ctx.warnings)
        key = keys.session_key(record.start_time)
        body = codec.encode(record)
        if len(body) > SESSION_WARN_BYTES:
            log.warning("session.large", size=len(body), limit=SESSION_WARN_BYTES)
        # The session is over: no later process may attach to it.
        ops: list[Op] = [
            Put(key, body),
            Put("session/last", codec.encode(summary)),
            Delete(CONTEXT),
        ]
        for attempt in (1, 2):  # seed: retry once, then log the error and continue
            try:
                self._store.batch(ops)
                break
            except StoreError as exc:
                log.warning("session.record_write_failed", attempt=attempt, error=str(exc))
                if attempt == 2:
                    # The final checkpoint (if any) is durable; the record and summary
                    # can be rebuilt from it, so the session still completes.
                    ctx.warnings.append(f"session record not written: {exc}")
        self._session = record

    def _record_now(
        self, end: datetime | None = None, success: bool | None = None
    ) -> SessionRecord:
        assert self._session is not None
        w = self._work
        record = attrs.evolve(
            self._session,
            phase=self._phase,
            work=Work(
                tasks_completed=w.completed_tasks,
                files_modified=w.files_modified,
                decisions_made=w.decisions,
            ),
            discoveries=w.discoveries,
        )
        if end is not None:
            minutes = (end - record.start_time).total_seconds() / 60
            record = attrs.evolve(
                record, end_time=end, duration_minutes=round(minutes, 2), success=success
            )
        return record

    def _summary(self, success: bool | None, record: SessionRecord | None = None) -> SessionSummary:
        record = record or self._record_now()
        w = self._work
        last = self._last_checkpoint
        return SessionSummary(
            session_id=record.id,
            project=self.project,
            start_time=record.start_time,
            end_time=record.end_time or self._now(peek=True),
            success=success,
            phase=self._phase,
            progress=self._progress,
            tasks_completed=tuple(t.id for t in w.completed_tasks),
            open_tasks=tuple(t.id for t in w.active_tasks),
            open_questions=w.open_questions,
            blockers=w.blockers,
            decisions=w.decisions,
            learnings=record.learnings,
            checkpoints=record.checkpoint_count,
            last_checkpoint_id=None if last is None else last.id,
        )

    # learnings -------------------------------------------------------------------------

    def _checked_learning(self, learning: Learning) -> Learning:
        key = learning.key
        prefix = learning.type.prefix
        if "/" not in key:
            key = prefix + keys.slug(key)
        keys.validate(key)
        if not key.startswith(prefix):
            name = key.rsplit("/", 1)[-1]
            raise InvalidKey(
                key, f"a {learning.type.value} learning lives under {prefix}", prefix + name
            )
        return attrs.evolve(
            learning, key=key, session_id=learning.session_id or (self.session_id or "")
        )

    def _write_learning(self, learning: Learning) -> None:
        self._store.put(learning.key, codec.encode(learning))
        if self._session is not None and learning.key not in self._session.learnings:
            self._session = attrs.evolve(
                self._session, learnings=(*self._session.learnings, learning.key)
            )

    def _retry_learnings(self) -> None:
        while self._pending_learnings:
            learning = self._pending_learnings[0]
            try:
                self._write_learning(learning)
            except StoreError:
                return
            self._pending_learnings.pop(0)
            log.info("learning.retried", key=learning.key)

    @property
    def pending_learnings(self) -> tuple[Learning, ...]:
        return tuple(self._pending_learnings)

    # hooks -----------------------------------------------------------------------------

    def _call_hooks(self, name: str, *args: Any) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, name)(*args)
            except Exception as exc:
                if self._strict:
                    raise
                log.error("hook.failed", hook=type(hook).__name__, method=name, error=repr(exc))


def _recent(items: tuple[str, ...], item: str, keep: int = 10) -> tuple[str, ...]:
    return (*items, item)[-keep:]
