"""lifecycle: an AI coding agent's work sessions as an explicit finite-state machine.

Names are imported on first use, so ``import lifecycle`` (and every Claude Code
hook, which is a new process) pays only for what it touches.
"""

from __future__ import annotations

# No imports at run time (not even typing): every Claude Code hook imports this package.
TYPE_CHECKING = False

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "SessionManager": "lifecycle.session",
    "AsyncSessionManager": "lifecycle.aio",
    "EventMessage": "lifecycle.records",
    "StartResult": "lifecycle.session",
    "CheckpointResult": "lifecycle.session",
    "LearningResult": "lifecycle.session",
    "Outcome": "lifecycle.session",
    "Clearance": "lifecycle.session",
    "EndResult": "lifecycle.session",
    "LifecycleHooks": "lifecycle.session",
    "CheckpointStatus": "lifecycle.session",
    "ConflictPolicy": "lifecycle.session",
    "SessionSnapshot": "lifecycle.session",
    "SessionFacts": "lifecycle.triggers.base",
    "CheckpointKind": "lifecycle.keys",
    "SessionState": "lifecycle.spec",
    "Event": "lifecycle.spec",
    "Checkpoint": "lifecycle.records",
    "CheckpointType": "lifecycle.records",
    "Learning": "lifecycle.records",
    "LearningType": "lifecycle.records",
    "Task": "lifecycle.records",
    "Priority": "lifecycle.records",
    "TaskStatus": "lifecycle.records",
    "Operation": "lifecycle.triggers.base",
    "open_store": "lifecycle.stores",
    "LifecycleError": "lifecycle.errors",
    "IllegalTransition": "lifecycle.errors",
    "InvalidKey": "lifecycle.errors",
    "InvalidRecord": "lifecycle.errors",
    "StoreError": "lifecycle.errors",
    "CorruptRecord": "lifecycle.errors",
}

__all__ = [
    "AsyncSessionManager",
    "Checkpoint",
    "CheckpointKind",
    "CheckpointResult",
    "CheckpointStatus",
    "CheckpointType",
    "Clearance",
    "ConflictPolicy",
    "CorruptRecord",
    "EndResult",
    "Event",
    "EventMessage",
    "IllegalTransition",
    "InvalidKey",
    "InvalidRecord",
    "Learning",
    "LearningResult",
    "LearningType",
    "LifecycleError",
    "LifecycleHooks",
    "Operation",
    "Outcome",
    "Priority",
    "SessionFacts",
    "SessionManager",
    "SessionSnapshot",
    "SessionState",
    "StartResult",
    "StoreError",
    "Task",
    "TaskStatus",
    "__version__",
    "open_store",
]

if TYPE_CHECKING:
    from typing import Any

    from lifecycle.aio import AsyncSessionManager
    from lifecycle.errors import (
        CorruptRecord,
        IllegalTransition,
        InvalidKey,
        InvalidRecord,
        LifecycleError,
        StoreError,
    )
    from lifecycle.keys import CheckpointKind
    from lifecycle.records import (
        Checkpoint,
        CheckpointType,
        EventMessage,
        Learning,
        LearningType,
        Priority,
        Task,
        TaskStatus,
    )
    from lifecycle.session import (
        CheckpointResult,
        CheckpointStatus,
        Clearance,
        ConflictPolicy,
        EndResult,
        LearningResult,
        LifecycleHooks,
        Outcome,
        SessionManager,
        SessionSnapshot,
        StartResult,
    )
    from lifecycle.spec import Event, SessionState
    from lifecycle.stores import open_store
    from lifecycle.triggers.base import Operation, SessionFacts


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lifecycle' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
