"""SessionManager: the façade users call (SuperSpec's session manager API, kept by name).

Every public method that changes the session is one table event: it gathers the
event's facts into a :class:`~lifecycle.session.step.Step`, fires the event on
the shared transitions machine (which asks the step for guard values and hands
it the row that fired), and adopts the live record the row's effect built.

Precise meaning of the states, checked by the tests:

- ACTIVE: the work state differs from the last durable checkpoint (or none exists);
- CHECKPOINTED: the last durable checkpoint equals the work state, and this session
  wrote it;
- RESUMED: the work state equals the checkpoint it was restored from.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from lifecycle import codec, limits
from lifecycle.errors import (
    CheckpointNotFound,
    CorruptRecord,
    IllegalTransition,
    InvalidRecord,
    InvalidSettings,
    LifecycleError,
    NoSession,
    SchemaVersionError,
    StoreError,
)
from lifecycle.events import EVENTS, arguments, build, event
from lifecycle.keys import CheckpointKind
from lifecycle.logs import get_logger
from lifecycle.machine import fire
from lifecycle.records import (
    Checkpoint,
    Decision,
    EventMessage,
    JSONValue,
    Learning,
    LearningType,
    LiveContext,
    Priority,
    SessionRecord,
    TaskStatus,
    WorkState,
    revise,
)
from lifecycle.session import finish, work
from lifecycle.session.checkpoints import Checkpoints, fit_live, resumed
from lifecycle.session.effects import Begin, Env, EventEffects
from lifecycle.session.hooks import LifecycleHooks
from lifecycle.session.learnings import Learnings, checked
from lifecycle.session.results import (
    CheckpointResult,
    CheckpointStatus,
    Clearance,
    ConflictPolicy,
    EndResult,
    LearningResult,
    Outcome,
    SessionSnapshot,
    StartResult,
)
from lifecycle.session.step import Change, Edit, Snapshot, Step
from lifecycle.spec import ACTIVE_TIME_EVENTS, TABLE, Event, Row, SessionState
from lifecycle.stores import ProjectStore, Store, open_store
from lifecycle.triggers import evaluate_all
from lifecycle.triggers.base import Activity, CheckpointCall, Evaluator, Operation, SessionFacts
from lifecycle.triggers.time import ActiveTime, TimeSettings, advance

if TYPE_CHECKING:
    from lifecycle.merge import Merged
    from lifecycle.session import journal as journaling

log = get_logger(__name__)

Clock = Callable[[], datetime]
#: The facts record the step copies with the event's facts (see ``_step``).
_FACTS = SessionFacts()
#: Warnings a session keeps (the newest), in memory and in ``session/context``.
WARNINGS_KEPT = 50


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
        from lifecycle.triggers import default_evaluators

        try:
            policy = ConflictPolicy(conflict)
        except ValueError:
            choices = tuple(p.value for p in ConflictPolicy)
            raise InvalidSettings(f"conflict={conflict!r}; use one of {choices}") from None
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
        from lifecycle.snapshots import session_snapshots

        self._checkpoints = Checkpoints(self._store, session_snapshots(snapshot, work_tree, raw))
        self._learnings = Learnings(self._store)
        self._env = Env(self._store, self._checkpoints, self._learnings, policy)
        self._conflict = policy
        # The session's whole live state: one frozen record (``session/context``).
        self._live: LiveContext | None = None
        self._state = TABLE.initial
        self._saved: Checkpoint | None = None  # the last durable checkpoint
        self._saved_at: Snapshot | None = None  # what it holds, for has_unsaved
        self._last_after: Snapshot | None = None  # the state the last event computed
        self._restored: Checkpoint | None = None  # the checkpoint this session restored
        self._floor: datetime | None = None  # the clock floor before a session exists
        self._warnings: list[str] = []
        self._last_merge: Merged | None = None
        # journal=True: every applied event goes to journal/{session-id}/{seq}
        self._journal: journaling.Journal | None = None
        if journal:
            from lifecycle.session import journal as journaling

            self._journal = journaling.Journal(enabled=True)
        self._pinned: datetime | None = None  # the moment the event being applied runs at
        #: The version of ``session/context`` attach read (0: none), for save_context's
        #: compare-and-swap; None when unknown (no attach, or an unreadable record).
        self._context_version: int | None = None

    # -- what callers may read -------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    @property
    def store(self) -> ProjectStore:
        return self._store

    @property
    def session(self) -> SessionRecord | None:
        """The session record as it stands now (with the work recorded so far)."""
        with self._lock:
            live = self._live
            return None if live is None else finish.record_now(live)

    @property
    def session_id(self) -> str | None:
        live = self._live
        return None if live is None else live.session.id

    @property
    def work(self) -> WorkState:
        live = self._live
        return WorkState() if live is None else live.work

    @property
    def phase(self) -> str:
        live = self._live
        return "" if live is None else live.phase

    @property
    def progress(self) -> dict[str, JSONValue]:
        live = self._live
        return {} if live is None else dict(live.progress)

    @property
    def context(self) -> dict[str, JSONValue]:
        live = self._live
        return {} if live is None else dict(live.context)

    @property
    def active_seconds(self) -> float:
        live = self._live
        return 0.0 if live is None else float(live.active_seconds)

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._saved

    @property
    def last_checkpoint_at(self) -> datetime | None:
        cp = self._saved
        return None if cp is None else cp.timestamp

    @property
    def last_auto_checkpoint_at(self) -> datetime | None:
        live = self._live
        return None if live is None else live.last_auto_checkpoint_at

    @property
    def tasks_completed_since_checkpoint(self) -> int:
        live = self._live
        return 0 if live is None else live.tasks_since_checkpoint

    @property
    def restored_from(self) -> Checkpoint | None:
        """The checkpoint this session was restored from (None: a fresh session)."""
        return self._restored

    @property
    def has_unsaved_work(self) -> bool:
        with self._lock:
            return self._saved_snapshot() != self._snapshot()

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self._warnings)

    @property
    def last_merge(self) -> Merged | None:
        """The last merge with another writer's checkpoint (``conflict="merge"``)."""
        return self._last_merge

    @property
    def pending_learnings(self) -> tuple[Learning, ...]:
        return tuple(self._learnings.pending)

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
        self._legal(Event.LOAD)
        limits.text("command", command, limits.COMMAND_CHARS)
        limits.optional_text("change id", change_id, limits.COMMAND_CHARS)
        at = self._now(peek=True)
        warnings: list[str] = []
        restored: Checkpoint | None = None
        version: int | None = None
        if restore or checkpoint_id is not None:
            # Read before dispatch: the guard only asks whether one was found.
            try:
                if checkpoint_id is not None:
                    restored = self._checkpoints.by_id(checkpoint_id)
                else:
                    restored, version = self._checkpoints.latest_valid(warnings)
            except (StoreError, OSError) as exc:
                # "Checkpoint read failure: start fresh session, log warning".
                log.warning("restore.failed", error=str(exc))
                warnings.append(f"could not read checkpoints ({exc}); starting a fresh session")
                restored = None
        effects = EventEffects(
            self._env, None, None, None,
            begin=Begin(command, change_id, version), floor=self._floor,
        )  # fmt: skip
        step = Step(
            Activity(Event.LOAD, at), Snapshot("", {}, {}, WorkState()), None, effects,
            restore=restored,
        )  # fmt: skip
        step.warnings.extend(warnings)
        self._dispatch(Event.LOAD, step, effects)
        live = self._live
        assert live is not None
        # Which checkpoint was the newest at the start (the retention ratio's base),
        # kept now so that the session's end reads it without listing every checkpoint.
        latest_key = self._checkpoints.latest_key()
        if latest_key is not None:
            live = self._live = revise(
                live, session=revise(live.session, latest_at_start=latest_key)
            )
        result = StartResult(
            session_id=live.session.id,
            is_fresh_session=restored is None,
            restored_state=None if restored is None else _restored_state(restored),
            checkpoint_id=None if restored is None else restored.id,
            warnings=tuple(step.warnings),
        )
        self._call_hooks(
            "on_session_start",
            {"session_id": result.session_id, "command": command, "restored": restored},
        )
        return result

    def should_create_checkpoint(self) -> bool:
        """Would a trigger checkpoint now ("30+ minutes since last checkpoint")? The
        table's answer for a tick at this moment, with nothing changed."""
        with self._lock:
            if Event.TICK not in TABLE.legal_events(self.state):
                return False
            step = self._step(Activity(Event.TICK, self._now(peek=True)), Edit())
            row = TABLE.resolve(Event.TICK, self.state, _Outcome(step))
            return row is not None and row.writes

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
        effects = self._begin_event(Event.SAVE)
        at = self._now(peek=True)
        call = CheckpointCall.of(
            CheckpointKind.MANUAL, at, trigger="user-requested", reason="manual checkpoint"
        )
        step = self._step(Activity(Event.SAVE, at), edit, effects, call=call)
        self._dispatch(Event.SAVE, step, effects)
        if effects.written is not None:
            return effects.written
        if effects.failed is not None:
            return effects.failed
        last = self._saved
        return CheckpointResult(
            checkpoint_id=None if last is None else last.id,
            timestamp=None if last is None else last.timestamp,
            key=None if last is None else last.key,
            type=None if last is None else last.type,
            trigger=None if last is None else last.trigger,
            status=CheckpointStatus.UNCHANGED,
        )

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
                learning = Learning(
                    type=type, key=key, content=content, timestamp=self._now(), tags=tags
                )
            learning = checked(learning, self.session_id or "")
            self._learnings.retry(self._learned)
            try:
                self._learnings.write(learning, self._learned)
            except StoreError as exc:
                self._learnings.pending.append(learning)
                log.warning(
                    "learning.queued", key=learning.key, error=str(exc), session_id=self.session_id
                )
                return LearningResult(False, learning.key, queued=True, error=str(exc))
            return LearningResult(True, learning.key)

    @event(Event.COMPLETE)
    def end_session(
        self, success: bool | None = True, phase: str | None = None, *, command: str = ""
    ) -> EndResult:
        """Complete: final checkpoint (if anything is unsaved), session record, summary."""
        _within_limits(phase, None, None)
        effects = self._begin_event(Event.COMPLETE, success=success)
        at = self._now(peek=True)
        call = CheckpointCall.of(
            CheckpointKind.MANUAL, at, trigger="session-end", reason="final checkpoint"
        )
        step = self._step(Activity(Event.COMPLETE, at), Edit(phase=phase), effects, call=call)
        self._dispatch(Event.COMPLETE, step, effects)
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
                restored_from=self._restored,
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
            journal = self._journal
            if journal is None:
                journal = self._journal = journaling.Journal(enabled=False)
            kwargs = arguments(message)  # checks the name and the payload
            method = EVENTS[message.name]
            key = message.idempotency_key
            if key is not None:
                record = self._live.session if self._live is not None else None
                found = journaling.lookup(
                    journal, self._store, self.session_id,
                    None if record is None else record.restored_from,
                    self._checkpoints.by_id, key,
                )  # fmt: skip
                if found is not journaling.MISSING:
                    log.info(
                        "event.duplicate",
                        session_id=self.session_id,
                        name=message.name,
                        idempotency_key=key,
                    )
                    return found
            # The moment the event runs at, as the manager would take it (strictly after
            # its last one): pinned for the whole event, and journaled, so replay takes it.
            moment = self._now(peek=True)
            self._pinned = moment
            journal.applying = True
            try:
                result = method(self, **kwargs)
            finally:
                self._pinned = None
                journal.applying = False
            if key is not None:
                journal.remember(key, result)
            if journal.enabled:
                journaling.append(
                    journal, self._store, self.session_id, self.state.value, message, moment,
                    result,
                )  # fmt: skip
            return result

    def _run_event(
        self, name: str, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """How a decorated event method runs: under the session's lock, and through
        :meth:`apply` (so it is journaled) when the manager keeps a journal."""
        journal = self._journal
        if journal is None or not journal.enabled or journal.applying:
            with self._lock:
                return method(self, *args, **kwargs)
        return self.apply(build(name, args, kwargs, None))

    def flush_journal(self) -> int:
        """Write journal entries a store failure held back; return how many remain."""
        with self._lock:
            journal = self._journal
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
            live = self._live
            if live is None:
                raise NoSession("no session to save: call start_session first")
            body = self._context_body(live)
            if body is None:
                # Past the live record's cap (work piled up since the last checkpoint):
                # trimmed like a checkpoint over the hard limit, never refused.
                live, notes = fit_live(live)
                self._live = live
                warning = "the session's live state was over its limit; trimmed: " + ", ".join(
                    notes
                )
                log.warning("context.trimmed", trimmed=list(notes))
                self._warnings.append(warning)
                body = self._context_body(live, check=False)
            assert body is not None
            self._context_version = self._store.put(
                finish.CONTEXT,
                body,
                expected_version=self._context_version if fence else None,
            )

    def _context_body(self, live: LiveContext, *, check: bool = True) -> bytes | None:
        """``session/context``'s bytes; None when ``check`` and they pass the cap."""
        journal = self._journal
        live = attrs.evolve(
            live,
            session=finish.record_now(live),
            state=self._state.value,
            warnings=tuple(self._warnings[-WARNINGS_KEPT:]),
            saved_checkpoint_key=None if self._saved is None else self._saved.key or None,
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

    def attach(self) -> bool:
        """Continue the project's open session (``session/context``) in this manager.

        Returns False, changing nothing, when there is no open session to continue (none
        saved, or the last one completed): call :meth:`start_session` then. This is the
        same session continued, not a transition: its live record is read back whole.
        """
        with self._lock:
            if self.state is not TABLE.initial:
                raise LifecycleError(f"attach needs a new manager, this one is {self.state}")
            try:
                entry = self._store.get(finish.CONTEXT)
                self._context_version = 0 if entry is None else entry.version
                if entry is None:
                    return False
                live = codec.decode(LiveContext, entry.value, key=finish.CONTEXT)
                state = SessionState(live.state)
            except SchemaVersionError:
                raise  # a newer lifecycle's session: never replaced by a new one
            except (CorruptRecord, InvalidRecord, ValueError) as exc:
                log.warning("attach.unreadable", error=str(exc))
                self._warnings.append(f"{finish.CONTEXT} is unreadable ({exc})")
                return False
            if state in TABLE.final or live.session.end_time is not None:
                return False
            warnings = list(live.warnings)
            saved: Checkpoint | None = None
            if live.saved_checkpoint_id is not None:
                try:
                    # By its key: one read, no listing of the checkpoints folder.
                    saved = self._checkpoints.by_id(
                        live.saved_checkpoint_id, key=live.saved_checkpoint_key
                    )
                except CheckpointNotFound:
                    warnings.append(
                        f"checkpoint {live.saved_checkpoint_id} is gone; all work counts as unsaved"
                    )
                if saved is not None and saved.id == live.restored_from:
                    saved = resumed(saved)  # what the session holds of it (see work.carried)
            self._live = attrs.evolve(live, saved_checkpoint_id=None if saved is None else saved.id)
            self._state = state
            self._saved = saved
            self._saved_at = None if saved is None else Snapshot.of(saved)
            restored = live.restored_from
            self._restored = saved if saved is not None and saved.id == restored else None
            self._warnings = warnings
            if live.journal_seq is not None and self._journal is not None:
                from lifecycle.session.journal import resume_at

                resume_at(self._journal, live.session.id, live.journal_seq)
            return True

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
        at = self._now(peek=True)
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
        at = self._now(peek=True)
        task = work.completed_task(self.work, task_id, description, priority, duration_minutes, at)
        outcome = self._work_event(Event.TASK_COMPLETED, work.complete_task(task), task=task)
        self._call_hooks("on_task_complete", task_id, outcome)
        return outcome

    @event(Event.RECORD)
    def record_decision(
        self, decision: str, rationale: str = "", impact: str = "", *, at: datetime | None = None
    ) -> Outcome:
        item = Decision(
            timestamp=at or self._now(peek=True),
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
        effects = self._begin_event(Event.BEFORE_OPERATION)
        at = self._now(peek=True)
        step = self._step(Activity(Event.BEFORE_OPERATION, at, operation=op), Edit(), effects)
        row = self._dispatch(Event.BEFORE_OPERATION, step, effects)
        written, failed = effects.written, effects.failed
        blocked = failed is not None and written is None
        return Clearance(
            state=self.state,
            transition=row.label,
            checkpoint=written or failed,
            proceed=not blocked,
            reason=(
                f"checkpoint before a risky operation failed: {failed.error}"
                if blocked and failed
                else (written.trigger or "")
                if written
                else "not risky"
            ),
        )

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
                cp, _ = self._checkpoints.latest_valid([])
                if cp is None:
                    raise CheckpointNotFound("latest")
                return cp
            return self._checkpoints.by_id(checkpoint_id)

    def list_checkpoints(self) -> list[tuple[datetime, str]]:
        """(timestamp, key) of every checkpoint, oldest first (names only, no reads)."""
        return self._checkpoints.listing()

    def learnings_count(self) -> int:
        return self._learnings.count()

    # -- the step --------------------------------------------------------------------------

    def _now(self, *, peek: bool = False) -> datetime:
        """The clock (the pinned moment while a message is applied), made strictly
        increasing so ids and keys never collide."""
        now = self._clock() if self._pinned is None else self._pinned
        if now.tzinfo is None:
            raise InvalidRecord("the clock must return an aware datetime (UTC)")
        now = now.astimezone(UTC)
        live = self._live
        last = self._floor if live is None else live.last_moment
        if last is not None and now <= last:
            now = last + timedelta(microseconds=1)
        if not peek:
            if live is None:
                self._floor = now
            else:
                self._live = attrs.evolve(live, last_moment=now)
        return now

    def _legal(self, event: Event) -> None:
        """Raise IllegalTransition before anything is read, evaluated or written."""
        legal = TABLE.legal_events(self.state)
        if event not in legal:
            raise IllegalTransition(self.state.value, event.value, (e.value for e in legal))

    def _snapshot(self) -> Snapshot:
        live = self._live
        if live is None:
            return Snapshot("", {}, {}, WorkState())
        last = self._last_after  # the state the last event left, if the live record holds it
        if (
            last is not None
            and last.work is live.work
            and last.phase is live.phase
            and last.progress is live.progress
            and last.context is live.context
        ):
            return last
        return Snapshot(live.phase, live.progress, live.context, live.work)

    def _saved_snapshot(self) -> Snapshot | None:
        return self._saved_at

    def _begin_event(self, event: Event, *, success: bool | None = None) -> EventEffects:
        """Check the event is legal, retry queued learnings, and start its effects."""
        self._legal(event)
        if self._learnings.pending:
            self._learnings.retry(self._learned)
        return self._effects(success=success)

    def _effects(self, *, success: bool | None = None) -> EventEffects:
        return EventEffects(
            self._env, self._live, self._saved, self._restored, success=success,
            floor=self._floor,
        )  # fmt: skip

    def _step(
        self,
        activity: Activity,
        edit: Edit,
        effects: EventEffects | None = None,
        *,
        call: CheckpointCall | None = None,
    ) -> Step:
        """The event's facts. Active time first counts the gap up to this event (the time
        trigger reads it), in the event's effects: the live record changes only if the
        event does."""
        live = self._live
        active, last_auto, tasks = 0.0, None, 0
        if live is not None:
            active, last_auto = live.active_seconds, live.last_auto_checkpoint_at
            tasks = live.tasks_since_checkpoint
            if activity.event in ACTIVE_TIME_EVENTS:
                account = advance(
                    ActiveTime(active, live.last_activity_at), activity.at, self._time_settings
                )
                active = account.active_seconds
                if effects is not None:
                    effects.update(
                        active_seconds=active,
                        last_activity_at=account.last_activity_at,
                    )
        if activity.event is Event.TASK_COMPLETED:
            tasks += 1  # the completion being evaluated counts
        state, last_at, evaluators = self.state, self.last_checkpoint_at, self._evaluators

        def evaluate(a: Activity, unsaved: bool) -> CheckpointCall | None:
            # The facts come from the live record, already checked: no validators again.
            facts = revise(
                _FACTS,
                state=state,
                active_seconds=float(active),
                last_checkpoint_at=last_at,
                last_auto_checkpoint_at=last_auto,
                tasks_completed_since_checkpoint=tasks,
                has_unsaved=unsaved,
            )
            return evaluate_all(evaluators, a, facts, a.at)

        saved = self._saved
        return Step(
            activity,
            self._snapshot(),
            self._saved_at,
            effects if effects is not None else self._effects(),
            edit=edit,
            evaluate=None if call is not None else evaluate,
            call=call,
            saved_is_restored=saved is not None and saved is self._restored,
        )

    def _work_event(
        self, event: Event, change: Change | None, *, edit: Edit | None = None,
        **activity: Any,
    ) -> Outcome:  # fmt: skip
        with self._lock:
            effects = self._begin_event(event)
            edit = Edit(change) if edit is None else attrs.evolve(edit, change=change)
            step = self._step(Activity(event, self._now(peek=True), **activity), edit, effects)
            row = self._dispatch(event, step, effects)
            return Outcome(self.state, row.label, effects.written or effects.failed)

    def _dispatch(self, event: Event, step: Step, effects: EventEffects) -> Row:
        """Fire the event; adopt what its effects built. An event that raises changes
        nothing, not even the clock floor or the active time."""
        with self._lock:
            source = self.state
            logs_on = log.enabled()
            started = time.perf_counter() if logs_on else 0.0
            row, state = fire(source, event, step)
            self._live = effects.commit(state.value, step.at)
            self._last_after = step.known_after
            self._state = state
            if effects.saved is not self._saved:
                self._saved_at = None if effects.saved is None else Snapshot.of(effects.saved)
            self._saved, self._restored = effects.saved, effects.restored
            if effects.merged is not None:
                self._last_merge = effects.merged
            if step.warnings:
                self._warnings.extend(step.warnings)
                del self._warnings[:-WARNINGS_KEPT]
            if logs_on:
                written = effects.written
                log.info(
                    "transition",
                    session_id=self.session_id,
                    source=source.value,
                    dest=state.value,
                    trigger=event.value,
                    reason=(written.trigger if written else row.note),
                    checkpoint_id=written.checkpoint_id if written else None,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
            return row

    def _learned(self, key: str) -> None:
        live = self._live
        if live is not None and key not in live.session.learnings:
            session = attrs.evolve(live.session, learnings=(*live.session.learnings, key))
            self._live = attrs.evolve(live, session=session)

    # -- hooks -----------------------------------------------------------------------------

    def _call_hooks(self, name: str, *args: Any) -> None:
        for hook in self._hooks:
            try:
                getattr(hook, name)(*args)
            except Exception as exc:
                if self._strict:
                    raise
                log.error("hook.failed", hook=type(hook).__name__, method=name, error=repr(exc))


class _Outcome(dict):  # type: ignore[type-arg]
    """A step's guard values as a mapping, for ``Spec.resolve`` (asked lazily)."""

    def __init__(self, step: Step) -> None:
        super().__init__()
        self._step = step

    def __missing__(self, guard: Any) -> bool:
        value: bool = self._step.guard(guard)
        return value


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
