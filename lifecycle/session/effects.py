"""The persistence side of one event: what the table's effects do to the store.

:class:`EventEffects` is the step's collaborator for one event. It starts from
the session's live record and builds the next one; the façade adopts it only
when the event returns, so an event that raises changes nothing in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import StoreError, VersionConflict
from lifecycle.keys import CheckpointKind
from lifecycle.logs import get_logger
from lifecycle.machine import EffectFailed
from lifecycle.records import (
    RECENT_CHECKPOINTS,
    Checkpoint,
    CheckpointRef,
    ContextSnapshot,
    LiveContext,
    Pointer,
    RecoveryInfo,
    SessionRecord,
    SessionSummary,
    revise,
)
from lifecycle.session import finish
from lifecycle.session.checkpoints import (
    LATEST,
    MAX_BYTES,
    Checkpoints,
    MergeFrom,
    WriteFailed,
)
from lifecycle.session.learnings import Learnings
from lifecycle.session.results import CheckpointResult, CheckpointStatus, ConflictPolicy
from lifecycle.session.step import Snapshot, Step
from lifecycle.spec import TABLE, Event
from lifecycle.stores import ProjectStore, Put
from lifecycle.triggers.base import CheckpointCall
from lifecycle.triggers.time import ActiveTime, reset

if TYPE_CHECKING:
    from lifecycle.merge import Merged

log = get_logger(__name__)

CURRENT = keys.CURRENT


@attrs.frozen
class Env:
    """What every event's effects share: the store and the session's settings."""

    store: ProjectStore
    checkpoints: Checkpoints
    learnings: Learnings
    conflict: ConflictPolicy


@attrs.frozen
class Begin:
    """How a session starts (the load event's arguments)."""

    command: str = ""
    change_id: str | None = None
    latest_version: int | None = None
    #: The key ``checkpoints/latest`` named at the start (the session record's
    #: ``latest_at_start``; not written with the record at the start).
    latest_key: str | None = None


class EventEffects:
    """Does the effects of one event; ``live`` is the session's next live record."""

    __slots__ = (
        "_live",
        "_pending",
        "begin",
        "env",
        "failed",
        "floor",
        "merged",
        "restored",
        "saved",
        "success",
        "summary",
        "written",
    )

    def __init__(
        self,
        env: Env,
        live: LiveContext | None,
        changes: Mapping[str, Any],
        saved: Checkpoint | None,
        restored: Checkpoint | None,
        *,
        begin: Begin = Begin(),
        success: bool | None = None,
        floor: datetime | None = None,
    ) -> None:
        self.env = env
        self._live = live
        # Field changes not yet folded into the live record (``changes``: the ones the
        # session holds unfolded): most events change a few fields, and folding them
        # only when the record is read costs less than a copy of it per change.
        self._pending: dict[str, Any] = dict(changes)
        self.saved = saved
        self.restored = restored
        self.begin = begin
        self.success = success
        self.floor = floor
        self.written: CheckpointResult | None = None
        self.failed: CheckpointResult | None = None
        self.merged: Merged | None = None
        self.summary: SessionSummary | None = None

    @property
    def live(self) -> LiveContext | None:
        """The session's next live record, with every change so far."""
        if self._pending and self._live is not None:
            self._live = revise(self._live, **self._pending)
            self._pending = {}
        return self._live

    @live.setter
    def live(self, value: LiveContext | None) -> None:
        self._live = value
        self._pending = {}

    def commit(self, state: str, at: datetime) -> tuple[LiveContext, dict[str, Any]]:
        """The live record the event leaves (every change, the state, the clock floor), as
        a record and the field changes not yet folded into it."""
        base = self._live
        assert base is not None
        pending = self._pending
        floor = pending.get("last_moment", base.last_moment)
        pending["state"] = state
        pending["last_moment"] = at if floor is None or at > floor else floor
        self._pending = {}  # the session holds them now
        return base, pending

    def update(self, **fields: Any) -> None:
        """Change fields of the live record (folded in when it is next read)."""
        self._pending.update(fields)

    def count(self, active_seconds: float, last_activity_at: datetime | None) -> None:
        """The active time this event counted (``update`` of the two, with no dict built)."""
        pending = self._pending
        pending["active_seconds"] = active_seconds
        pending["last_activity_at"] = last_activity_at

    # loading ------------------------------------------------------------------------------

    def restore(self, step: Step, checkpoint: Checkpoint) -> None:
        self._begin(step, checkpoint)

    def start_fresh(self, step: Step) -> None:
        self._begin(step, None)

    def _begin(self, step: Step, restored: Checkpoint | None) -> None:
        """Write the session record and build the live record. ``restored`` is the
        checkpoint as the session holds it (resumed: the driver reads it so)."""
        now = step.at
        begin = self.begin
        record = SessionRecord(
            id=f"session-{keys.format_ts(now)}",
            project=self.env.store.project,
            start_time=now,
            command=begin.command,
            change_id=begin.change_id,
            restored_from=None if restored is None else restored.id,
            phase="" if restored is None else restored.phase,
        )
        record = _create(self.env.store, record)
        if begin.latest_key is not None:
            # Which checkpoint was the newest at the start (the retention ratio's base),
            # kept so that the session's end reads it without listing every checkpoint.
            record = revise(record, latest_at_start=begin.latest_key)
        floor = max(self.floor or record.start_time, record.start_time)
        if restored is None:
            live = LiveContext(
                session=record, state=TABLE.initial.value, last_moment=floor,
                latest_version=begin.latest_version,
            )  # fmt: skip
        else:
            # The restored record's values, already what a live record holds (the
            # converters copy the dicts: the live record's own).
            live = LiveContext(
                session=record, state=TABLE.initial.value, last_moment=floor,
                latest_version=begin.latest_version, phase=restored.phase,
                progress=restored.progress, context=restored.context, work=restored.state,
                saved_checkpoint_id=restored.id, restored_from=restored.id,
            )  # fmt: skip
            self.saved = self.restored = restored
        self.live = live

    # work ---------------------------------------------------------------------------------

    def record(self, step: Step) -> None:
        base = self._live
        assert base is not None
        after = step.after
        pending = self._pending
        pending["phase"] = after.phase
        pending["progress"] = after.progress
        pending["context"] = after.context
        pending["work"] = after.work
        if step.event is Event.TASK_COMPLETED:
            pending = self._pending
            tasks = pending.get("tasks_since_checkpoint", base.tasks_since_checkpoint)
            pending["tasks_since_checkpoint"] = tasks + 1

    def write_checkpoint(self, step: Step) -> None:
        live = self.live
        assert live is not None
        call = step.triggered()
        assert call is not None
        session_id = live.session.id
        merge = self._merge_into(step) if self.env.conflict is ConflictPolicy.MERGE else None
        try:
            done = self.env.checkpoints.write(
                lambda c, at: self._build(step, session_id, c, at), call, step.at,
                live.latest_version, merge,
            )  # fmt: skip
        except WriteFailed as exc:
            step.warnings.append(str(exc))
            self.failed = CheckpointResult(
                checkpoint_id=None, timestamp=None, type=call.type, trigger=call.trigger,
                status=CheckpointStatus.FAILED, error=str(exc.error),
            )  # fmt: skip
            raise EffectFailed(exc) from exc
        cp = done.checkpoint
        if done.trimmed:
            step.warnings.append(
                f"checkpoint {cp.id} was over {MAX_BYTES:,} bytes; trimmed: "
                + ", ".join(done.trimmed)
            )
        ref = CheckpointRef(cp.id, cp.key, cp.timestamp, cp.type, cp.trigger)
        session = live.session
        session = revise(
            session,
            checkpoints=(*session.checkpoints[-(RECENT_CHECKPOINTS - 1) :], ref),
            checkpoint_count=session.checkpoint_count + 1,
            checkpoint_bytes=session.checkpoint_bytes + done.size,
        )
        account = reset(_account(live), cp.timestamp)
        self.update(
            session=session,
            # What was written (the step's state, unless it had to be trimmed to fit).
            phase=cp.phase,
            progress=cp.progress,
            context=cp.context,
            work=cp.state,
            saved_checkpoint_id=cp.id,
            tasks_since_checkpoint=0,
            active_seconds=account.active_seconds,
            last_activity_at=account.last_activity_at,
            last_auto_checkpoint_at=(
                cp.timestamp if call.kind is CheckpointKind.AUTO else live.last_auto_checkpoint_at
            ),
            last_moment=max(live.last_moment or cp.timestamp, cp.timestamp),
            latest_version=done.latest_version,
        )  # fmt: skip
        self.saved = cp
        self.written = CheckpointResult(
            checkpoint_id=cp.id, timestamp=cp.timestamp, key=cp.key, type=cp.type,
            trigger=cp.trigger,
        )  # fmt: skip

    def _build(self, step: Step, session_id: str, call: CheckpointCall, at: datetime) -> Checkpoint:
        after = step.after
        parent = self.saved
        cp_id = f"cp-{keys.format_ts(at)}"
        return Checkpoint(
            id=cp_id,
            timestamp=at,
            phase=after.phase,
            progress=after.progress,
            context=after.context,
            session_id=session_id,
            project=self.env.store.project,
            type=call.type,
            trigger=call.trigger,
            key=call.key,
            parent_id=None if parent is None else parent.id,
            operation=call.operation,
            label=step.edit.label,
            state=after.work,
            context_snapshot=ContextSnapshot(
                key_memories=(CURRENT, LATEST), recent_changes=after.work.recent_changes
            ),
            recovery_info=RecoveryInfo(
                restore_command=f"lifecycle session start --checkpoint {cp_id}"
            ),
        )

    def _merge_into(self, step: Step) -> MergeFrom:
        def merge_from(theirs: Checkpoint) -> None:
            from lifecycle.merge import merge_state  # only under conflict="merge"

            after = step.after
            merged = merge_state(
                after.phase, after.progress, after.context, after.work,
                their_phase=theirs.phase, their_progress=theirs.progress,
                their_context=theirs.context, their_work=theirs.state,
            )  # fmt: skip
            step.set_after(Snapshot(merged.phase, merged.progress, merged.context, merged.work))
            self.merged = merged
            if merged.divergences:
                diff = "; ".join(d.describe() for d in merged.divergences)
                step.warnings.append(f"merged with checkpoint {theirs.id}: {diff}")
                log.warning("checkpoint.merged", other=theirs.id, divergences=diff)

        return merge_from

    # finishing ----------------------------------------------------------------------------

    def finalize(self, step: Step, *, checkpoint: bool) -> None:
        if self.live is None:  # completed before it was loaded
            self._begin(step, None)
        if checkpoint:
            self.write_checkpoint(step)  # EffectFailed: the table's failure row finalizes
        else:
            self.record(step)
        env = self.env
        env.learnings.retry(self.learned)
        live = self.live
        assert live is not None
        record = finish.record_now(live, end=step.at, success=self.success)
        summary = finish.summary(live, record, self.success, self.saved, step.at)
        from lifecycle.summaries import consolidate  # never raises: warns instead

        record = consolidate(env.store, record, summary, step.warnings, self.restored)
        finish.close(env.store, record, summary, step.warnings)
        self.live = attrs.evolve(live, session=record)
        self.summary = summary

    def learned(self, key: str) -> None:
        """A learning is durable: the session record lists it."""
        live = self.live
        if live is not None and key not in live.session.learnings:
            session = attrs.evolve(live.session, learnings=(*live.session.learnings, key))
            self.live = attrs.evolve(live, session=session)


def _account(live: LiveContext) -> ActiveTime:
    return ActiveTime(live.active_seconds, live.last_activity_at)


def _create(store: ProjectStore, record: SessionRecord) -> SessionRecord:
    """Create the session record with compare-and-swap: two processes starting in the
    same microsecond get distinct keys."""
    for _ in range(100):
        key = keys.session_key(record.start_time)
        try:
            store.batch(
                [
                    Put(key, codec.encode(record), expected_version=0),
                    Put(CURRENT, codec.encode(Pointer(key, record.id, record.start_time)),
                        sync=False, lazy=True),
                ]
            )  # fmt: skip
            return record
        except VersionConflict:
            moment = record.start_time + timedelta(microseconds=1)
            record = attrs.evolve(record, start_time=moment, id=f"session-{keys.format_ts(moment)}")
    raise StoreError("could not create the session record: too many sessions at once")
