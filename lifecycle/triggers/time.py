"""The time trigger: a checkpoint every 30 minutes of active work.

Active time is counted by :func:`advance`, which the session calls on every
legal event *before* it asks the evaluators, and zeroed by :func:`reset` after
every checkpoint (of any kind). Only gaps between events of at most
``idle_threshold`` count: a longer gap is the agent being idle, not working.

:class:`TimeTrigger` fires when the active time reaches ``interval``, and never
when the last automatic checkpoint is closer than ``interval`` in wall time,
so two automatic checkpoints are always at least one interval apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from lifecycle.errors import InvalidSettings
from lifecycle.keys import CheckpointKind
from lifecycle.spec import WORK_EVENTS
from lifecycle.triggers.base import Activity, CheckpointCall, SessionFacts


def _positive(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidSettings(
            f"{attribute.name} must be a positive timedelta, got {value!r}; "
            "e.g. timedelta(minutes=30)"
        )


@attrs.frozen
class TimeSettings:
    #: Active work between automatic checkpoints (and the least wall time between two).
    interval: timedelta = attrs.field(default=timedelta(minutes=30), validator=_positive)
    #: A gap between two events longer than this is idle time and does not count.
    idle_threshold: timedelta = attrs.field(default=timedelta(minutes=5), validator=_positive)


@attrs.frozen
class ActiveTime:
    """Active work since the last checkpoint, and when the last activity was seen."""

    active_seconds: float = 0.0
    last_activity_at: datetime | None = None


def advance(account: ActiveTime, now: datetime, settings: TimeSettings) -> ActiveTime:
    """Count the gap since the last activity as work if it is at most the idle threshold.

    A clock that goes backwards (or events that arrive out of order) counts 0 and
    does not move ``last_activity_at`` back, so the same span is never counted twice.
    """
    last = account.last_activity_at
    if last is not None and now <= last:
        return account
    return ActiveTime(*counted(account.active_seconds, last, now, settings))


def counted(
    active_seconds: float, last_activity_at: datetime | None, now: datetime, settings: TimeSettings
) -> tuple[float, datetime | None]:
    """:func:`advance` on the account's two values, as (active seconds, last activity):
    what the session does on every event, without building the records."""
    if last_activity_at is None:
        return active_seconds, now
    if now <= last_activity_at:
        return active_seconds, last_activity_at
    gap = now - last_activity_at
    if gap > settings.idle_threshold:
        return active_seconds, now
    # Rounded to the microsecond so that a long sum of gaps does not drift from wall time.
    return round(active_seconds + gap.total_seconds(), 6), now


def reset(account: ActiveTime, now: datetime) -> ActiveTime:
    """The account after a checkpoint at ``now``: no active time since it."""
    last = account.last_activity_at
    return ActiveTime(0.0, now if last is None else max(now, last))


def interval_name(interval: timedelta) -> str:
    """``30-minute-interval`` (the trigger's name in checkpoints) for the default interval."""
    seconds = interval.total_seconds()
    minutes = seconds / 60
    if minutes.is_integer():
        return f"{int(minutes)}-minute-interval"
    return f"{seconds:g}-second-interval"


@attrs.frozen
class TimeTrigger:
    """Checkpoint after ``interval`` of active work, at most once per ``interval``."""

    settings: TimeSettings = TimeSettings()
    name = "time"
    events = frozenset(WORK_EVENTS)

    def evaluate(
        self, activity: Activity, facts: SessionFacts, now: datetime
    ) -> CheckpointCall | None:
        if activity.event not in WORK_EVENTS:
            return None
        interval = self.settings.interval
        active = facts.active_seconds
        if active < interval.total_seconds():
            return None
        last_auto = facts.last_auto_checkpoint_at
        if last_auto is not None and now - last_auto < interval:
            return None
        return CheckpointCall.of(
            CheckpointKind.AUTO,
            now,
            trigger=interval_name(interval),
            reason=(
                f"{active / 60:.1f} minutes of active work since the last checkpoint "
                f"(interval {interval.total_seconds() / 60:g} minutes)"
            ),
        )
