"""Events a front end recorded earlier and applies now (the Claude Code hook's journal,
:mod:`lifecycle.integrations.claude_journal`): what it needs of the manager.

An event applied later must run at the moment it happened (its moment pinned, as
:meth:`SessionManager.apply` pins a message's), the batch it came in is marked in the
live record in the same write as its effects (so no batch is applied twice), and the
time trigger's next possible moment is read from the live record.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from lifecycle.records import LiveContext, revise

if TYPE_CHECKING:
    from lifecycle.session.manager import SessionManager


def pin(manager: SessionManager, moment: datetime | None) -> None:
    """Run the next events at ``moment`` (made strictly later than the session's last
    moment by the manager); None: the clock again."""
    manager._driver.pinned = moment


def live_record(manager: SessionManager) -> LiveContext | None:
    """The open session's live record as it stands (None: no session)."""
    return manager._driver.live


def mark_folded(manager: SessionManager, batch: int) -> None:
    """Note in the live record that deferred batch ``batch`` is applied."""
    driver = manager._driver
    if driver.live is not None:
        driver.live = revise(driver.live, folded_journal=batch)


def warn(manager: SessionManager, text: str) -> None:
    """Add ``text`` to the session's warnings (kept in ``session/context``)."""
    manager._driver.warn(text)


def time_due(manager: SessionManager) -> float | None:
    """The earliest moment (epoch seconds) the time trigger could fire, if every moment
    from the last activity on were active work: the last activity plus what is left of
    the interval, and not before the last automatic checkpoint plus the interval. None
    without a session or an activity yet."""
    live = manager._driver.live
    if live is None or live.last_activity_at is None:
        return None
    interval = manager._driver.time_settings.interval.total_seconds()
    due = live.last_activity_at.timestamp() + interval - live.active_seconds
    if live.last_auto_checkpoint_at is not None:
        due = max(due, live.last_auto_checkpoint_at.timestamp() + interval)
    return due
