"""SessionManager: the façade users call (SuperSpec's session manager API, kept by name).

Every public method that changes the session is one table event: it checks and
shapes its arguments, hands the event to the session's
:class:`~lifecycle.session.driver.Driver` (which gathers the event's facts into a
:class:`~lifecycle.session.step.Step`, fires it on the shared transitions machine
and adopts the live record the row's effect built), and turns what the driver did
into the public result. Continuing a session in another process is
:mod:`~lifecycle.session.continuity`; events given as data are
:func:`lifecycle.session.journal.apply`.

Precise meaning of the states, checked by the tests:

- ACTIVE: the work state differs from the last durable checkpoint (or none exists);
- CHECKPOINTED: the last durable checkpoint equals the work state, and this session
  wrote it;
- RESUMED: the work state equals the checkpoint it was restored from.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lifecycle import limits
from lifecycle.errors import (
    CheckpointNotFound,
    InvalidRecord,
    InvalidSettings,
)
from lifecycle.events import build, event
from lifecycle.keys import CheckpointKind
from lifecycle.logs import get_logger
from lifecycle.records import (
    Checkpoint,
    Decision,
    EventMessage,
    JSONValue,
    Learning,
    LearningType,
    Priority,
    SessionRecord,
    TaskStatus,
    WorkState,
)
from lifecycle.session import continuity, finish, work
from lifecycle.session.checkpoints import Checkpoints, Latest
from lifecycle.session.driver import Driver
from lifecycle.session.effects import Begin, Env
from lifecycle.session.hooks import LifecycleHooks
from lifecycle.session.learnings import Learnings, checked
from lifecycle.session.results import (
    CheckpointResult,
    Clearance,
    ConflictPolicy,
    EndResult,
    LearningResult,
    Outcome,
    SessionSnapshot,
    StartResult,
)
from lifecycle.session.step import Change, Edit
from lifecycle.spec import Event, Row, SessionState
from lifecycle.stores import ProjectStore, Store, open_store
from lifecycle.triggers.base import Activity, CheckpointCall, Evaluator, Operation
from lifecycle.triggers.time import TimeSettings

if TYPE_CHECKING:
    from lifecycle.merge import Merged

log = get_logger(__name__)

Clock = Callable[[], datetime]

#: The default time settings (frozen: one instance serves every manager).
_DEFAULT_TIME = TimeSettings()
#: The default evaluators per time settings, shared by the managers that use them: they
#: hold nothing of a session (frozen settings; the deferred risk trigger builds the same
#: RiskTrigger whoever asks first), and one tuple lets the driver reuse its map of them.
_DEFAULTS: dict[TimeSettings, tuple[Evaluator, ...]] = {}


def system_clock() -> datetime:
    return datetime.now(UTC)


class SessionManager:
    """Runs one work session at a time against a store.

    ``store`` is a Store or a URL (default: ``$LIFECYCLE_STORE`` or
    ``file://.lifecycle``); ``clock`` returns an aware UTC datetime. ``conflict``
    says what a checkpoint does when another writer moved ``checkpoints/latest``
    first: ``"last-write-wins"`` (default) or ``"merge"`` (:mod:`lifecycle.merge`).
    ``snapshot`` says which checkpoints also snapshot the git work tree ``work_tree``
    (default: the current folder): ``"risk"`` (default, or ``$LIFECYCLE_SNAPSHOT``),
    ``"all"`` or ``"never"`` (:mod:`lifecycle.snapshots`).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        project: str = "default",
        clock: Clock | None = None,
        *,
        evaluators: Sequence[Evaluator] | None = None,
        time_settings: TimeSettings | None = None,
        hooks: Iterable[LifecycleHooks] = (),
        strict: bool = False,
        conflict: ConflictPolicy | str = ConflictPolicy.LAST_WRITE_WINS,
        journal: bool = False,
        snapshot: str | None = None,
        work_tree: str | os.PathLike[str] | None = None,
    ) -> None:
        try:
            # The enum's call skipped for a member (the default).
            policy = conflict if type(conflict) is ConflictPolicy else ConflictPolicy(conflict)
        except ValueError:
            choices = tuple(p.value for p in ConflictPolicy)
            raise InvalidSettings(f"conflict={conflict!r}; use one of {choices}") from None
        raw = store if store is not None and not isinstance(store, str) else open_store(store)
        self._store = ProjectStore(raw, project)
        self.project = self._store.project
        time_settings = time_settings or _DEFAULT_TIME
        from lifecycle.snapshots import session_snapshots

        if evaluators is None:
            evaluators = _DEFAULTS.get(time_settings)
            if evaluators is None:
                from lifecycle.triggers import default_evaluators

                if len(_DEFAULTS) >= 16:
                    _DEFAULTS.clear()
                evaluators = _DEFAULTS[time_settings] = default_evaluators(time=time_settings)
        checkpoints = Checkpoints(self._store, session_snapshots(snapshot, work_tree, raw))
        self._driver = Driver(
            self._store,
            Env(self._store, checkpoints, Learnings(self._store), policy),
            clock or system_clock,
            time_settings,
            evaluators,
        )
        self._hooks = tuple(hooks)
        self._strict = strict
        self._lock = threading.RLock()
        if journal:
            from lifecycle.session import journal as journaling

            # journal=True: every applied event goes to journal/{session-id}/{seq}
            self._driver.journal = journaling.Journal(enabled=True)

    # -- what callers may read -------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._driver.state

    @property
    def store(self) -> ProjectStore:
        return self._store

    @property
    def session(self) -> SessionRecord | None:
        """The session record as it stands now (with the work recorded so far)."""
        with self._lock:
            live = self._driver.live
            return None if live is None else finish.record_now(live)

    @property
    def session_id(self) -> str | None:
        live = self._driver.live
        return None if live is None else live.session.id

    @property
    def work(self) -> WorkState:
        live = self._driver.live
        return WorkState() if live is None else live.work

    @property
    def phase(self) -> str:
        live = self._driver.live
        return "" if live is None else live.phase

    @property
    def progress(self) -> dict[str, JSONValue]:
        live = self._driver.live
        return {} if live is None else dict(live.progress)

    @property
    def context(self) -> dict[str, JSONValue]:
        live = self._driver.live
        return {} if live is None else dict(live.context)

    @property
    def active_seconds(self) -> float:
        live = self._driver.live
        return 0.0 if live is None else float(live.active_seconds)

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._driver.saved

    @property
    def last_checkpoint_at(self) -> datetime | None:
        cp = self._driver.saved
        return None if cp is None else cp.timestamp

    @property
    def last_auto_checkpoint_at(self) -> datetime | None:
        live = self._driver.live
        return None if live is None else live.last_auto_checkpoint_at

    @property
    def tasks_completed_since_checkpoint(self) -> int:
        live = self._driver.live
        return 0 if live is None else live.tasks_since_checkpoint

    @property
    def restored_from(self) -> Checkpoint | None:
        """The checkpoint this session was restored from (None: a fresh session)."""
        return self._driver.restored

    @property
    def has_unsaved_work(self) -> bool:
        with self._lock:
            return self._driver.unsaved()

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._driver.warnings)

    @property
    def last_merge(self) -> Merged | None:
        """The last merge with another writer's checkpoint (``conflict="merge"``)."""
        return self._driver.last_merge

    @property
    def pending_learnings(self) -> tuple[Learning, ...]:
        return tuple(self._driver.learnings.pending)

    # -- the session's events --------------------------------------------------------------

    @event(Event.LOAD)
    def start_session(
        self,
        command: str = "",
        restore: bool = True,
        *,
        change_id: str | None = None,
        checkpoint_id: str | None = None,
    ) -> StartResult:
        """Load: restore the latest valid checkpoint (or ``checkpoint_id``) when asked and
        one exists, else start fresh. Returns session_id, is_fresh_session,
        restored_state."""
        self._driver.legal(Event.LOAD)
        limits.text("command", command, limits.COMMAND_CHARS)
        limits.optional_text("change id", change_id, limits.COMMAND_CHARS)
        warnings: list[str] = []
        latest: Latest | None = None  # None: checkpoints/latest not read yet
        if restore or checkpoint_id is not None:
            latest = self._driver.read_restore(checkpoint_id, warnings)
        restored = None if latest is None else latest.checkpoint
        version = None if latest is None else latest.version
        session_id, said = self._driver.load(Begin(command, change_id, version), latest, warnings)
        result = StartResult(
            session_id=session_id,
            is_fresh_session=restored is None,
            restored_state=None if restored is None else _restored_state(restored),
            checkpoint_id=None if restored is None else restored.id,
            warnings=said,
        )
        if self._hooks:
            self._call_hooks(
                "on_session_start",
                {"session_id": result.session_id, "command": command, "restored": restored},
            )
        return result

    def should_create_checkpoint(self) -> bool:
        """Would a trigger checkpoint now ("30+ minutes since last checkpoint")? The
        table's answer for a tick at this moment, with nothing changed."""
        with self._lock:
            return self._driver.would_checkpoint()

    @event(Event.SAVE)
    def create_checkpoint(
        self,
        checkpoint: Checkpoint | None = None,
        *,
        phase: str | None = None,
        progress: Mapping[str, JSONValue] | None = None,
        context: Mapping[str, JSONValue] | None = None,
    ) -> CheckpointResult:
        """Manual checkpoint. A no-op (status UNCHANGED, the last checkpoint's id) when
        nothing changed since the last one; a new phase, progress or context is a change."""
        if checkpoint is not None:
            base_phase, base_progress = checkpoint.phase, dict(checkpoint.progress)
            base_context, label = dict(checkpoint.context), checkpoint.id
        else:
            base_phase, base_progress, base_context, label = None, None, None, None
        edit = Edit(
            phase=base_phase if phase is None else phase,
            progress=base_progress if progress is None else dict(progress),
            context=base_context if context is None else dict(context),
            label=label,
        )
        _within_limits(edit.phase, edit.progress, edit.context)
        effects = self._driver.begin(Event.SAVE)
        at = self._driver.now(peek=True)
        call = CheckpointCall.of(
            CheckpointKind.MANUAL, at, trigger="user-requested", reason="manual checkpoint"
        )
        step = self._driver.step(Activity(Event.SAVE, at), edit, effects, call=call)
        self._driver.dispatch(Event.SAVE, step, effects)
        if effects.written is not None:
            return effects.written
        if effects.failed is not None:
            return effects.failed
        return CheckpointResult.unchanged(self._driver.saved)

    @event(None)
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
                at = self._driver.now()
                learning = Learning(type=type, key=key, content=content, timestamp=at, tags=tags)
            learning = checked(learning, self.session_id or "")
            return self._driver.learnings.capture(learning, self._driver.learned)

    @event(Event.COMPLETE)
    def end_session(
        self, success: bool | None = True, phase: str | None = None, *, command: str = ""
    ) -> EndResult:
        """Complete: final checkpoint (if anything is unsaved), session record, summary."""
        _within_limits(phase, None, None)
        effects = self._driver.begin(Event.COMPLETE, success=success)
        at = self._driver.now(peek=True)
        call = CheckpointCall.of(
            CheckpointKind.MANUAL, at, trigger="session-end", reason="final checkpoint"
        )
        step = self._driver.step(
            Activity(Event.COMPLETE, at), Edit(phase=phase), effects, call=call
        )
        self._driver.dispatch(Event.COMPLETE, step, effects)
        summary = effects.summary
        assert summary is not None
        self._call_hooks("on_session_end", summary)
        return EndResult(
            session_id=summary.session_id,
            checkpoint=effects.written or effects.failed,
            summary=summary,
        )

    def snapshot(self) -> SessionSnapshot:
        """The session as it stands, frozen (what reports read)."""
        with self._lock:
            return SessionSnapshot(
                project=self.project,
                store=self._store,
                state=self.state,
                session=self.session,
                phase=self.phase,
                progress=self.progress,
                work=self.work,
                restored_from=self._driver.restored,
                warnings=self.warnings,
                context=self.context,
                learnings_count=self.learnings_count(),
            )

    def search(
        self,
        query: str,
        *,
        kinds: Iterable[str] | str | None = None,
        since: datetime | str | None = None,
        limit: int = 20,
    ) -> list[Any]:
        """Full-text search over this project's records (:func:`lifecycle.search.search`)."""
        from lifecycle.search import search

        return search(self._store, self.project, query, kinds=kinds, since=since, limit=limit)

    def report(self) -> str:
        """The Session Report ("Session restored: Phase: ... Progress: ...")."""
        from lifecycle.report import session_report

        return session_report(self.snapshot())

    def apply(self, message: EventMessage) -> Any:
        """Apply an event given as data: ``EventMessage("complete_task", {"task_id": "T1"})``
        calls ``complete_task(task_id="T1")`` and returns its result. A message with an
        ``idempotency_key`` this session already applied changes nothing and returns the
        first result again. See :mod:`lifecycle.journal`."""
        from lifecycle.session import journal as journaling  # messages and their keys

        with self._lock:
            return journaling.apply(self, self._driver, message)

    def _run_event(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """How a decorated event method runs: under the session's lock, and through
        :meth:`apply` (so it is journaled) when the manager keeps a journal."""
        journal = self._driver.journal
        if journal is None or not journal.enabled or journal.applying:
            with self._lock:
                return method(self, *args, **kwargs)
        return self.apply(build(name, args, kwargs, None))

    def flush_journal(self) -> int:
        """Write journal entries a store failure held back; return how many remain."""
        with self._lock:
            journal = self._driver.journal
            if journal is None:
                return 0
            from lifecycle.session import journal as journaling

            return journaling.flush(journal, self._store)

    # -- continuing one session across processes -------------------------------------------

    def save_context(self, *, fence: bool = False) -> None:
        """Write ``session/context``: the open session's complete live state, so that
        :meth:`attach` in another process continues it, unsaved work included.

        ``fence=True`` writes it only over the version this manager attached or last
        wrote (VersionConflict otherwise): what a process holding the session lease
        does, so that one that overran its lease cannot drop the next one's work."""
        with self._lock:
            continuity.save(self._driver, fence=fence)

    def attach(self) -> bool:
        """Continue the project's open session (``session/context``) in this manager.

        Returns False, changing nothing, when there is no open session to continue (none
        saved, or the last one completed): call :meth:`start_session` then. This is the
        same session continued, not a transition: its live record is read back whole.
        """
        with self._lock:
            return continuity.attach(self._driver)

    # -- work events -----------------------------------------------------------------------

    @event(Event.RECORD)
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
        at = self._driver.now(peek=True)
        return self._work_event(
            Event.RECORD, work.open_task(task_id, description, priority, status, progress, at)
        )

    @event(Event.TASK_COMPLETED)
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
        at = self._driver.now(peek=True)
        task = work.completed_task(self.work, task_id, description, priority, duration_minutes, at)
        outcome = self._work_event(Event.TASK_COMPLETED, work.complete_task(task), task=task)
        self._call_hooks("on_task_complete", task_id, outcome)
        return outcome

    @event(Event.RECORD)
    def record_decision(
        self, decision: str, rationale: str = "", impact: str = "", *, at: datetime | None = None
    ) -> Outcome:
        item = Decision(
            timestamp=at or self._driver.now(peek=True),
            decision=decision,
            rationale=rationale,
            impact=impact,
        )
        return self._work_event(Event.RECORD, work.decide(item))

    @event(Event.RECORD)
    def record_file_change(
        self, path: str, operations: Iterable[str] | str = ("edit",), changes: int | None = None
    ) -> Outcome:
        change = work.change_file(path, work.operations(operations), changes)
        return self._work_event(Event.RECORD, change)

    @event(Event.RECORD)
    def record_discovery(
        self, *, pattern: str | None = None, insight: str | None = None
    ) -> Outcome:
        return self._work_event(Event.RECORD, work.discover(pattern, insight))

    @event(Event.RECORD)
    def add_open_question(self, question: str) -> Outcome:
        return self._work_event(Event.RECORD, work.ask(question))

    @event(Event.RECORD)
    def resolve_question(self, question: str) -> Outcome:
        return self._work_event(Event.RECORD, work.resolve(question))

    @event(Event.RECORD)
    def add_blocker(self, blocker: str) -> Outcome:
        return self._work_event(Event.RECORD, work.block(blocker))

    @event(Event.RECORD)
    def clear_blocker(self, blocker: str) -> Outcome:
        return self._work_event(Event.RECORD, work.unblock(blocker))

    @event(Event.RECORD)
    def update_context(self, values: Mapping[str, JSONValue]) -> Outcome:
        """Merge ``values`` into the session's context (a key set to None is removed). The
        context is saved in the next checkpoint and restored with it."""
        merged = {k: v for k, v in {**self.context, **values}.items() if v is not None}
        limits.encoded("context", merged, limits.CONTEXT_BYTES)
        return self._work_event(Event.RECORD, None, edit=Edit(context=merged))

    @event(Event.TICK)
    def tick(self) -> Outcome:
        """Activity with nothing to record: drives the time trigger."""
        return self._work_event(Event.TICK, None)

    @event(Event.BEFORE_OPERATION)
    def before_operation(self, operation: Operation | str, **fields: Any) -> Clearance:
        """Ask before running an operation. A risky one is checkpointed first, and the
        answer says ``proceed=False`` if that checkpoint could not be written."""
        op = (
            operation
            if isinstance(operation, Operation)
            else Operation(command=operation, **fields)
        )
        with self._lock:
            row, effects = self._driver.work(Event.BEFORE_OPERATION, None, operation=op)
            return Clearance.of(self.state, row.label, effects.written, effects.failed)

    @event(Event.ERROR_RECOVERED)
    def error_recovered(
        self, error: str, recovery_steps: Iterable[str] | str = (), *, operation: str | None = None
    ) -> Outcome:
        """Record a recovery from an error; the error trigger checkpoints it."""
        item = work.error(error, recovery_steps, operation)
        outcome = self._work_event(Event.ERROR_RECOVERED, work.recover(item), error=item)
        self._call_hooks("on_error_recovery", item, outcome)
        return outcome

    # -- memory ----------------------------------------------------------------------------

    def read_checkpoint(self, checkpoint_id: str | None = None) -> Checkpoint:
        """The latest valid checkpoint, or the one with ``checkpoint_id``."""
        with self._lock:
            if checkpoint_id is None:
                cp = self._driver.checkpoints.latest_valid([]).checkpoint
                if cp is None:
                    raise CheckpointNotFound("latest")
                return cp
            return self._driver.checkpoints.by_id(checkpoint_id)

    def list_checkpoints(self) -> list[tuple[datetime, str]]:
        """(timestamp, key) of every checkpoint, oldest first (names only, no reads)."""
        return self._driver.checkpoints.listing()

    def learnings_count(self) -> int:
        return self._driver.learnings.count()

    def _work_event(
        self, event: Event, change: Change | None, *, edit: Edit | None = None, **activity: Any
    ) -> Outcome:
        # Under the session's lock already: every work event is an @event method.
        row, effects = self._driver.work(event, change, edit=edit, **activity)
        checkpoint = effects.written or effects.failed
        if checkpoint is not None:
            return Outcome(self._driver.state, row.label, checkpoint)
        # No checkpoint: the outcome is the row's (its state after is the row's target),
        # one frozen record per row.
        known = _OUTCOMES.get(id(row))
        if known is None or known[0] is not row:
            known = (row, Outcome(self._driver.state, row.label))
            _OUTCOMES[id(row)] = known
        return known[1]

    # -- hooks -----------------------------------------------------------------------------

    def _call_hooks(self, name: str, *args: Any) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, name)(*args)
            except Exception as exc:
                if self._strict:
                    raise
                log.error("hook.failed", hook=type(hook).__name__, method=name, error=repr(exc))


#: The outcome of each row that fired writing no checkpoint, by the row's id (with the
#: row, so that an id reused by another row is not taken for it).
_OUTCOMES: dict[int, tuple[Row, Outcome]] = {}


def _within_limits(
    phase: str | None,
    progress: Mapping[str, JSONValue] | None,
    context: Mapping[str, JSONValue] | None,
) -> None:
    """OverLimit for a phase, progress or context past its cap (before the event)."""
    limits.optional_text("phase", phase, limits.PHASE_CHARS)
    if progress is not None:
        limits.encoded("progress", progress, limits.PROGRESS_BYTES)
    if context is not None:
        limits.encoded("context", context, limits.CONTEXT_BYTES)


def _restored_state(cp: Checkpoint) -> dict[str, JSONValue]:
    return {"phase": cp.phase, "progress": dict(cp.progress), "context": dict(cp.context)}
