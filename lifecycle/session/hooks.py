"""Lifecycle hooks: the plugin protocol (SuperClaude's SessionLifecycleHooks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle.records import ErrorContext, SessionSummary
from lifecycle.session.results import Outcome


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
