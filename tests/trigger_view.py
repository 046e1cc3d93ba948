"""A session as the trigger evaluators see it (``SessionView``), for evaluator tests."""

from __future__ import annotations

from datetime import datetime

import attrs

from lifecycle.spec import SessionState


@attrs.define
class View:
    state: SessionState = SessionState.ACTIVE
    active_seconds: float = 0.0
    last_checkpoint_at: datetime | None = None
    last_auto_checkpoint_at: datetime | None = None
