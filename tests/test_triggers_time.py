"""The time trigger and active-time accounting (design.md lifecycle rule 8)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.errors import InvalidSettings
from lifecycle.keys import format_ts
from lifecycle.records import CheckpointType, Priority, Task
from lifecycle.spec import WORK_EVENTS, Event
from lifecycle.triggers import (
    ActiveTime,
    Activity,
    CheckpointCall,
    CheckpointKind,
    Evaluator,
    Operation,
    SessionFacts,
    TimeSettings,
    TimeTrigger,
    advance,
    default_evaluators,
    evaluate_all,
    reset,
)
from lifecycle.triggers.time import interval_name

START = datetime(2025, 1, 31, 14, 30, tzinfo=UTC)
DEFAULT = TimeSettings()
MIN = timedelta(minutes=1)


def tick(at: datetime) -> Activity:
    return Activity(Event.TICK, at)


# -- advance / reset --------------------------------------------------------------------


def test_first_activity_starts_the_account_without_counting() -> None:
    assert advance(ActiveTime(), START, DEFAULT) == ActiveTime(0.0, START)


def test_gap_within_the_idle_threshold_counts_as_work() -> None:
    account = ActiveTime(10.0, START)
    assert advance(account, START + 2 * MIN, DEFAULT) == ActiveTime(130.0, START + 2 * MIN)


def test_gap_of_exactly_the_idle_threshold_counts_as_work() -> None:
    account = ActiveTime(0.0, START)
    assert advance(account, START + 5 * MIN, DEFAULT) == ActiveTime(300.0, START + 5 * MIN)


def test_idle_gap_does_not_count_but_moves_the_last_activity() -> None:
    account = ActiveTime(10.0, START)
    later = START + 5 * MIN + timedelta(microseconds=1)
    assert advance(account, later, DEFAULT) == ActiveTime(10.0, later)


def test_clock_going_backwards_counts_nothing_and_keeps_the_latest_moment() -> None:
    account = ActiveTime(10.0, START)
    assert advance(account, START - MIN, DEFAULT) == account
    # Back on track: only the time after the latest moment seen counts.
    assert advance(account, START + MIN, DEFAULT) == ActiveTime(70.0, START + MIN)


def test_reset_zeroes_active_time_at_the_checkpoint() -> None:
    assert reset(ActiveTime(1800.0, START), START + MIN) == ActiveTime(0.0, START + MIN)
    assert reset(ActiveTime(), START) == ActiveTime(0.0, START)


def test_reset_with_an_earlier_moment_keeps_the_later_last_activity() -> None:
    assert reset(ActiveTime(5.0, START), START - MIN) == ActiveTime(0.0, START)


def test_an_event_at_the_moment_of_the_last_one_counts_nothing_and_keeps_the_account() -> None:
    account = ActiveTime(0.1234567, START)  # not rounded: only advance rounds
    assert advance(account, START, DEFAULT) is account


def test_active_time_is_rounded_to_the_microsecond() -> None:
    account = ActiveTime(0.00000049, START)
    assert advance(account, START + timedelta(seconds=1), DEFAULT).active_seconds == 1.0
    up = ActiveTime(0.00000051, START)
    assert advance(up, START + timedelta(microseconds=1), DEFAULT).active_seconds == 0.000002


# -- the trigger ------------------------------------------------------------------------


def test_fires_after_an_interval_of_active_work() -> None:
    call = TimeTrigger().evaluate(tick(START), SessionFacts(active_seconds=1800.0), START)
    assert call == CheckpointCall(
        type=CheckpointType.AUTOMATIC,
        trigger="30-minute-interval",
        key=f"checkpoints/auto-{format_ts(START)}",
        reason="30.0 minutes of active work since the last checkpoint (interval 30 minutes)",
        kind=CheckpointKind.AUTO,
    )


def test_does_not_fire_before_an_interval_of_active_work() -> None:
    view = SessionFacts(active_seconds=1799.999999)
    assert TimeTrigger().evaluate(tick(START), view, START) is None


def test_does_not_fire_within_an_interval_of_the_last_automatic_checkpoint() -> None:
    view = SessionFacts(active_seconds=7200.0, last_auto_checkpoint_at=START - 29 * MIN)
    assert TimeTrigger().evaluate(tick(START), view, START) is None


def test_fires_one_interval_after_the_last_automatic_checkpoint() -> None:
    view = SessionFacts(active_seconds=1800.0, last_auto_checkpoint_at=START - 30 * MIN)
    assert TimeTrigger().evaluate(tick(START), view, START) is not None


def test_a_clock_behind_the_last_automatic_checkpoint_does_not_fire() -> None:
    view = SessionFacts(active_seconds=7200.0, last_auto_checkpoint_at=START + MIN)
    assert TimeTrigger().evaluate(tick(START), view, START) is None


@pytest.mark.parametrize("event", WORK_EVENTS)
def test_every_work_event_is_evaluated(event: Event) -> None:
    activity = Activity(event, START)
    assert TimeTrigger().evaluate(activity, SessionFacts(active_seconds=1800.0), START) is not None


@pytest.mark.parametrize("event", [e for e in Event if e not in WORK_EVENTS])
def test_session_events_are_not_evaluated(event: Event) -> None:
    activity = Activity(event, START)
    assert TimeTrigger().evaluate(activity, SessionFacts(active_seconds=1e9), START) is None


@pytest.mark.parametrize(
    ("interval", "name"),
    [
        (timedelta(minutes=30), "30-minute-interval"),
        (timedelta(hours=2), "120-minute-interval"),
        (timedelta(seconds=90), "90-second-interval"),
    ],
)
def test_trigger_is_named_for_the_interval(interval: timedelta, name: str) -> None:
    assert interval_name(interval) == name


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval", timedelta(0)),
        ("idle_threshold", timedelta(seconds=-1)),
        ("interval", 1800),
    ],
)
def test_non_positive_durations_raise_invalid_settings(field: str, value: object) -> None:
    with pytest.raises(InvalidSettings) as raised:
        TimeSettings(**{field: value})  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"{field} must be a positive timedelta, got {value!r}; e.g. timedelta(minutes=30)"
    )


def test_the_smallest_positive_durations_are_accepted() -> None:
    tiny = timedelta(microseconds=1)
    assert TimeSettings(interval=tiny, idle_threshold=tiny) == TimeSettings(tiny, tiny)


def test_an_interval_of_whole_minutes_with_a_fraction_of_a_second_is_named_in_seconds() -> None:
    assert interval_name(timedelta(minutes=1, microseconds=500_000)) == "60.5-second-interval"


# -- properties (rule 8) ----------------------------------------------------------------

_settings = st.builds(
    TimeSettings,
    interval=st.integers(60, 7200).map(lambda s: timedelta(seconds=s)),
    idle_threshold=st.integers(1, 1800).map(lambda s: timedelta(seconds=s)),
)


@st.composite
def timelines(draw: st.DrawFn, *, idle: bool) -> tuple[TimeSettings, list[timedelta]]:
    """Settings and the gaps between events; ``idle`` allows gaps over the threshold."""
    settings = draw(_settings)
    limit = int(settings.idle_threshold / timedelta(microseconds=1))
    busy = st.integers(0, limit).map(lambda us: timedelta(microseconds=us))
    gap = busy
    if idle:
        away = st.integers(limit + 1, 3 * limit + 10_800_000_000)
        gap = st.one_of(busy, busy, busy, away.map(lambda us: timedelta(microseconds=us)))
    gaps = draw(st.lists(gap, min_size=1, max_size=300))
    return settings, gaps


@attrs.define
class Session:
    """The session side as the test models it: on a call, checkpoint and reset the account."""

    settings: TimeSettings
    evaluators: tuple[Evaluator, ...]
    now: datetime = START
    account: ActiveTime = attrs.Factory(ActiveTime)
    facts: SessionFacts = attrs.Factory(SessionFacts)
    checkpoints: list[tuple[datetime, CheckpointCall]] = attrs.Factory(list)
    # Reference model: active work since the last checkpoint, and its largest gap.
    ref_active: timedelta = timedelta(0)
    ref_largest_gap: timedelta = timedelta(0)
    last_checkpoint: datetime = START

    def step(self, gap: timedelta, activity: Activity | None = None) -> CheckpointCall | None:
        self.now += gap
        # The previous event did not call, so it had not yet reached an interval of work.
        assert self.ref_active < self.settings.interval
        if self.account.last_activity_at is None:  # the session starts at its first event
            self.last_checkpoint = self.now
        elif gap <= self.settings.idle_threshold:
            self.ref_active += gap
            self.ref_largest_gap = max(self.ref_largest_gap, gap)
        self.account = advance(self.account, self.now, self.settings)
        completed = activity is not None and activity.event is Event.TASK_COMPLETED
        self.facts = attrs.evolve(
            self.facts,
            active_seconds=self.account.active_seconds,
            tasks_completed_since_checkpoint=self.facts.tasks_completed_since_checkpoint
            + completed,
        )
        call = evaluate_all(self.evaluators, activity or tick(self.now), self.facts, self.now)
        assert math.isclose(
            self.account.active_seconds, self.ref_active.total_seconds(), abs_tol=1e-6
        )
        # Rule 8: no more than one interval (+ the largest gap) of work without a checkpoint.
        assert self.ref_active <= self.settings.interval + self.ref_largest_gap
        if call is not None:
            self.checkpoints.append((self.now, call))
            self.account = reset(self.account, self.now)
            auto = call.kind is CheckpointKind.AUTO
            self.facts = attrs.evolve(
                self.facts,
                last_checkpoint_at=self.now,
                tasks_completed_since_checkpoint=0,
                last_auto_checkpoint_at=self.now if auto else self.facts.last_auto_checkpoint_at,
            )
            self.ref_active = timedelta(0)
            self.ref_largest_gap = timedelta(0)
            self.last_checkpoint = self.now
        return call

    def auto_times(self) -> list[datetime]:
        return [t for t, c in self.checkpoints if c.kind is CheckpointKind.AUTO]


def _assert_auto_checkpoints_an_interval_apart(session: Session) -> None:
    times = session.auto_times()
    for earlier, later in itertools.pairwise(times):
        assert later - earlier >= session.settings.interval


@given(timelines(idle=True))
def test_time_checkpoints_are_an_interval_apart_and_count_only_active_time(
    timeline: tuple[TimeSettings, list[timedelta]],
) -> None:
    settings, gaps = timeline
    session = Session(settings, (TimeTrigger(settings),))
    for gap in gaps:
        session.step(gap)
    _assert_auto_checkpoints_an_interval_apart(session)


@given(timelines(idle=False))
def test_while_events_keep_coming_no_more_than_an_interval_passes_without_a_checkpoint(
    timeline: tuple[TimeSettings, list[timedelta]],
) -> None:
    settings, gaps = timeline
    session = Session(settings, (TimeTrigger(settings),))
    largest = timedelta(0)
    for gap in gaps:
        largest = max(largest, gap)
        session.step(gap)
        assert session.now - session.last_checkpoint <= settings.interval + largest
    _assert_auto_checkpoints_an_interval_apart(session)
    assert all(c.type is CheckpointType.AUTOMATIC for _, c in session.checkpoints)


_ACTIVITIES = st.sampled_from(
    [
        ("tick", None),
        ("record", None),
        ("task", Priority.LOW),
        ("task", Priority.MEDIUM),
        ("task", Priority.HIGH),
        ("operation", "pytest -q"),
        ("operation", "git push --force"),
        ("error", None),
    ]
)


def _activity(kind: str, detail: object, at: datetime, n: int) -> Activity:
    if kind == "task":
        return Activity(Event.TASK_COMPLETED, at, task=Task(id=f"T{n:03d}", priority=detail))
    if kind == "operation":
        return Activity(Event.BEFORE_OPERATION, at, operation=Operation(command=str(detail)))
    if kind == "error":
        return Activity(Event.ERROR_RECOVERED, at)
    return Activity(Event.RECORD if kind == "record" else Event.TICK, at)


@given(
    timeline=timelines(idle=True),
    kinds=st.lists(_ACTIVITIES, min_size=300, max_size=300),
)
def test_with_every_trigger_rule_8_holds_and_rule_7_checkpoints_always_happen(
    timeline: tuple[TimeSettings, list[timedelta]], kinds: list[tuple[str, object]]
) -> None:
    settings, gaps = timeline
    session = Session(settings, default_evaluators(time=settings))
    for n, (gap, (kind, detail)) in enumerate(zip(gaps, kinds, strict=False)):
        activity = _activity(kind, detail, session.now + gap, n)
        call = session.step(gap, activity)
        if kind == "task" and detail is Priority.HIGH:
            assert call is not None
            assert call.trigger == "task-complete"
        if kind == "operation" and detail == "git push --force":
            assert call is not None
            assert call.trigger == "risk:deletion"
        if kind == "error":
            assert call is not None
            assert call.type is CheckpointType.RECOVERY
    _assert_auto_checkpoints_an_interval_apart(session)


@given(
    settings=_settings,
    moves=st.lists(st.integers(-3_600_000_000, 3_600_000_000), min_size=1, max_size=200),
)
def test_active_time_with_a_clock_that_jumps_both_ways_matches_the_reference(
    settings: TimeSettings, moves: list[int]
) -> None:
    account = ActiveTime()
    now = START
    latest: datetime | None = None
    expected = timedelta(0)
    for us in moves:
        now += timedelta(microseconds=us)
        if latest is not None and timedelta(0) < now - latest <= settings.idle_threshold:
            expected += now - latest
        latest = now if latest is None else max(latest, now)
        account = advance(account, now, settings)
        assert account.last_activity_at == latest
    assert math.isclose(account.active_seconds, expected.total_seconds(), abs_tol=1e-6)
