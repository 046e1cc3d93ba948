"""What the session's events return (the Output formats of SuperSpec's session manager)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import attrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from lifecycle import codec
from lifecycle.records import (
    Checkpoint,
    CheckpointType,
    JSONValue,
    SessionRecord,
    SessionSummary,
    WorkState,
)
from lifecycle.spec import SessionState
from lifecycle.stores import ProjectStore


class CheckpointStatus(StrEnum):
    """What became of a checkpoint an event asked for."""

    WRITTEN = "written"  # durable now
    UNCHANGED = "unchanged"  # nothing changed since the last one: nothing written
    FAILED = "failed"  # the write failed twice; the work is kept, unsaved

    def __str__(self) -> str:
        return self.value


class ConflictPolicy(StrEnum):
    """What a checkpoint does when another writer moved ``checkpoints/latest`` first."""

    LAST_WRITE_WINS = "last-write-wins"
    MERGE = "merge"  # lists unioned by id, scalar divergences reported (lifecycle.merge)

    def __str__(self) -> str:
        return self.value


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
    status: CheckpointStatus = CheckpointStatus.WRITTEN
    error: str | None = None

    @property
    def written(self) -> bool:
        return self.status is CheckpointStatus.WRITTEN

    @classmethod
    def unchanged(cls, last: Checkpoint | None) -> CheckpointResult:
        """Nothing to write: the last durable checkpoint (if any) still holds the work."""
        if last is None:
            return cls(None, None, status=CheckpointStatus.UNCHANGED)
        return cls(
            last.id, last.timestamp, last.key, last.type, last.trigger,
            status=CheckpointStatus.UNCHANGED,
        )  # fmt: skip

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
    """The answer to ``before_operation``: may the operation run?"""

    proceed: bool = True
    reason: str = ""

    @classmethod
    def of(
        cls,
        state: SessionState,
        transition: str,
        written: CheckpointResult | None,
        failed: CheckpointResult | None,
    ) -> Clearance:
        """The answer after the event: blocked only when the checkpoint it needed failed."""
        if failed is not None and written is None:
            reason = f"checkpoint before a risky operation failed: {failed.error}"
            return cls(state, transition, failed, proceed=False, reason=reason)
        reason = "not risky" if written is None else written.trigger or ""
        return cls(state, transition, written, proceed=True, reason=reason)


@attrs.frozen
class SessionSnapshot:
    """A session as it stands, frozen: what reports and summaries read (never the manager).

    ``store`` is the project's store, for reading the records around the session
    (earlier sessions, learnings)."""

    project: str
    store: ProjectStore = attrs.field(eq=False, repr=False)
    state: SessionState
    session: SessionRecord | None
    phase: str
    progress: dict[str, JSONValue]
    work: WorkState
    restored_from: Checkpoint | None
    warnings: tuple[str, ...]
    learnings_count: int
    #: The session's free-form context (a front end's ``prompts``, ``risky_operations``).
    context: dict[str, JSONValue] = attrs.field(factory=dict)

    @property
    def session_id(self) -> str | None:
        return None if self.session is None else self.session.id


@attrs.frozen
class EndResult:
    session_id: str
    checkpoint: CheckpointResult | None
    summary: SessionSummary


def _status_of(data: dict[str, Any]) -> CheckpointStatus:
    """A stored result's status; results journaled before ``status`` existed carry
    ``written`` (and ``error`` when it failed)."""
    if "status" in data:
        return CheckpointStatus(data["status"])
    if data.get("written", True):
        return CheckpointStatus.WRITTEN
    return CheckpointStatus.FAILED if data.get("error") else CheckpointStatus.UNCHANGED


# cattrs' own functions for the class, with the journal's extra ``written`` around them.
_unstructure_fields = make_dict_unstructure_fn(CheckpointResult, codec.converter)
_structure_fields = make_dict_structure_fn(CheckpointResult, codec.converter)
_FIELDS = frozenset(f.name for f in attrs.fields(CheckpointResult))


def _unstructure_result(result: CheckpointResult) -> dict[str, Any]:
    data: dict[str, Any] = _unstructure_fields(result)
    data["written"] = result.written  # the field's name in journals and front ends
    return data


def _structure_result(data: Any, _: type) -> CheckpointResult:
    if not isinstance(data, dict):
        raise TypeError(f"a checkpoint result is an object, got {type(data).__name__}")
    values = {k: v for k, v in data.items() if k in _FIELDS}
    result: CheckpointResult = _structure_fields(
        {**values, "status": _status_of(data).value}, CheckpointResult
    )
    return result


codec.converter.register_unstructure_hook(CheckpointResult, _unstructure_result)
codec.converter.register_structure_hook(CheckpointResult, _structure_result)
