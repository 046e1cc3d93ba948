"""The key grammar, builders and suggestions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle import keys
from lifecycle.errors import InvalidKey
from lifecycle.stores.base import check_storage_key

MOMENT = datetime(2025, 1, 31, 14, 30, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        "session/current",
        "session/context",
        "session/checkpoint",
        "session/last",
        "session/20250131T143000.123456Z",
        "session/history/20250131T143000.123456Z",
        "checkpoints/latest",
        "checkpoints/20250131T143000.123456Z",
        "checkpoints/auto-20250131T143000.123456Z",
        "checkpoints/task-TASK-006-20250131T143000.123456Z",
        "checkpoints/risk-rm-rf-20250131T143000.123456Z",
        "checkpoints/recovery-20250131T143000.123456Z",
        "learning/patterns/x",
        "learning/solutions/jwt-expiry-fix",
        "learning/anti-patterns/god-object",
        "learning/insights/orchestration",
        "summaries/daily/2025-01-31",
        "summaries/weekly/2025-W05",
        "summaries/insights/testing",
        "project_state/context_enhanced",
        "project_state/patterns_discovered",
        "project_state/decisions_log",
        "memories/project_purpose",
    ],
)
def test_seed_keys_are_valid(key: str) -> None:
    assert keys.validate(key) == key


@pytest.mark.parametrize(
    ("bad", "suggestion"),
    [
        ("learnings/pattern/x", "learning/patterns/x"),
        ("learning/solution/jwt fix", "learning/solutions/jwt-fix"),
        ("learning/antipatterns/x", "learning/anti-patterns/x"),
        ("sesion/curent", "session/current"),
        ("checkpoints/lates", "checkpoints/latest"),
        ("project_state/decision_log", "project_state/decisions_log"),
        ("summary/daily/2025-01-31", "summaries/daily/2025-01-31"),
    ],
)
def test_a_bad_key_suggests_the_nearest_valid_one(bad: str, suggestion: str) -> None:
    with pytest.raises(InvalidKey) as err:
        keys.validate(bad)
    assert err.value.suggestion == suggestion
    assert keys.is_valid(suggestion)


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs/key", "learning/patterns/../../x", "a\\b"])
def test_no_key_can_name_a_path_outside_the_store(bad: str) -> None:
    with pytest.raises(InvalidKey):
        keys.validate(bad)
    with pytest.raises(InvalidKey):
        check_storage_key(bad)


def test_timestamps_sort_as_text_in_time_order_and_hold_no_colon() -> None:
    later = MOMENT.replace(microsecond=123457)
    a, b = keys.format_ts(MOMENT), keys.format_ts(later)
    assert a == "20250131T143000.123456Z"
    assert a < b
    assert ":" not in a
    assert keys.parse_ts(a) == MOMENT


@given(st.datetimes(timezones=st.just(UTC)), st.datetimes(timezones=st.just(UTC)))
def test_timestamp_text_order_equals_time_order(a: datetime, b: datetime) -> None:
    assert (keys.format_ts(a) < keys.format_ts(b)) == (a < b)


@pytest.mark.parametrize(
    ("kind", "extra", "expected"),
    [
        ("manual", {}, "checkpoints/20250131T143000.123456Z"),
        ("auto", {}, "checkpoints/auto-20250131T143000.123456Z"),
        ("task", {"task_id": "TASK-006"}, "checkpoints/task-TASK-006-20250131T143000.123456Z"),
        (
            "risk",
            {"operation": "git push --force"},
            "checkpoints/risk-git-push-force-20250131T143000.123456Z",
        ),
        ("recovery", {}, "checkpoints/recovery-20250131T143000.123456Z"),
    ],
)
def test_checkpoint_keys_follow_the_seed(kind: str, extra: dict, expected: str) -> None:
    key = keys.checkpoint_key(kind, MOMENT, **extra)
    assert key == expected
    parsed = keys.parse_checkpoint_key(key)
    assert parsed is not None
    assert parsed[:2] == (kind, MOMENT)


def test_unknown_checkpoint_kind_is_refused() -> None:
    with pytest.raises(InvalidKey, match="unknown checkpoint kind"):
        keys.checkpoint_key("hourly", MOMENT)


def test_learning_key_accepts_type_or_folder() -> None:
    assert keys.learning_key("solution", "JWT expiry fix") == "learning/solutions/JWT-expiry-fix"
    assert keys.learning_key("anti-pattern", "x") == "learning/anti-patterns/x"
    assert keys.learning_key("patterns", "x") == "learning/patterns/x"


def test_summary_keys() -> None:
    assert keys.daily_summary_key(date(2025, 1, 31)) == "summaries/daily/2025-01-31"
    assert keys.weekly_summary_key(date(2025, 1, 31)) == "summaries/weekly/2025-W05"
    assert keys.insight_summary_key("Testing Strategy") == "summaries/insights/Testing-Strategy"


@given(st.text(max_size=60))
def test_validate_either_accepts_or_raises_invalid_key(text: str) -> None:
    try:
        assert keys.validate(text) == text
    except InvalidKey as err:
        assert err.suggestion is None or keys.is_valid(err.suggestion)
