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
    with pytest.raises(InvalidKey) as raised:
        keys.checkpoint_key("hourly", MOMENT)
    assert str(raised.value) == (
        "invalid key 'hourly': unknown checkpoint kind (known: manual, auto, task, risk, recovery)"
    )


@pytest.mark.parametrize("kind", list(keys.CheckpointKind))
def test_checkpoint_key_takes_the_kind_or_its_old_string_name(kind: keys.CheckpointKind) -> None:
    extra = {"task_id": "T1", "operation": "rm-rf"}
    assert keys.checkpoint_key(kind, MOMENT, **extra) == keys.checkpoint_key(
        kind.value, MOMENT, **extra
    )


@pytest.mark.parametrize("kind", list(keys.CheckpointKind))
def test_a_parsed_checkpoint_key_gives_its_kind_as_the_enum(kind: keys.CheckpointKind) -> None:
    parsed = keys.parse_checkpoint_key(keys.checkpoint_key(kind, MOMENT, task_id="T1"))
    assert parsed is not None
    assert parsed[0] is kind


def test_learning_key_accepts_type_or_folder() -> None:
    assert keys.learning_key("solution", "JWT expiry fix") == "learning/solutions/JWT-expiry-fix"
    assert keys.learning_key("anti-pattern", "x") == "learning/anti-patterns/x"
    assert keys.learning_key("patterns", "x") == "learning/patterns/x"


def test_summary_keys() -> None:
    assert keys.daily_summary_key(date(2025, 1, 31)) == "summaries/daily/2025-01-31"
    assert keys.weekly_summary_key(date(2025, 1, 31)) == "summaries/weekly/2025-W05"
    assert keys.insight_summary_key("Testing Strategy") == "summaries/insights/Testing-Strategy"


_KEYISH = st.one_of(
    st.text(max_size=60),
    st.builds(
        "/".join,
        st.lists(
            st.sampled_from([*keys.NAMESPACES, "latest", "history", "auto-", "task-x-", "daily"])
            | st.from_regex(keys.TS, fullmatch=True)
            | st.from_regex(keys.NAME, fullmatch=True),
            min_size=1,
            max_size=5,
        ),
    ),
)


@given(_KEYISH)
def test_the_one_grammar_pattern_accepts_what_one_of_its_rules_accepts(text: str) -> None:
    assert keys.is_valid(text) == any(p.fullmatch(text) for p in keys._GRAMMAR)


@given(st.text(max_size=60))
def test_validate_either_accepts_or_raises_invalid_key(text: str) -> None:
    try:
        assert keys.validate(text) == text
    except InvalidKey as err:
        assert err.suggestion is None or keys.is_valid(err.suggestion)


# -- fixed keys: spelled once, in lifecycle.keys ----------------------------------------

FIXED_KEYS = {
    keys.LATEST: "checkpoints/latest",
    keys.CURRENT: "session/current",
    keys.CONTEXT: "session/context",
    keys.LAST: "session/last",
    keys.SESSION_CHECKPOINT: "session/checkpoint",
    keys.DECISIONS_LOG: "project_state/decisions_log",
    keys.PATTERNS_DISCOVERED: "project_state/patterns_discovered",
    keys.CONTEXT_ENHANCED: "project_state/context_enhanced",
}
PREFIXES = (
    keys.SESSION_PREFIX,
    keys.SESSION_HISTORY_PREFIX,
    keys.CHECKPOINTS_PREFIX,
    keys.LEARNING_PREFIX,
    keys.SUMMARIES_PREFIX,
    keys.PROJECT_STATE_PREFIX,
    keys.JOURNAL_PREFIX,
    keys.MEMORIES_PREFIX,
)
#: Modules of the issue-13 refactor that still spell fixed keys themselves; each is
#: removed from this list when it uses lifecycle.keys (the list only shrinks).
NOT_YET_MIGRATED: frozenset[str] = frozenset()


@pytest.mark.parametrize(("constant", "spelled"), FIXED_KEYS.items())
def test_every_fixed_key_constant_is_a_valid_key(constant: str, spelled: str) -> None:
    assert constant == spelled
    assert keys.validate(constant) == constant


def test_every_prefix_is_a_namespace_folder_that_valid_keys_start_with() -> None:
    for prefix in PREFIXES:
        assert prefix.endswith("/")
        assert prefix.split("/", 1)[0] in keys.NAMESPACES
    moment = keys.session_history_key(MOMENT)
    assert moment.startswith(keys.SESSION_HISTORY_PREFIX)
    assert keys.session_key(MOMENT).startswith(keys.SESSION_PREFIX)
    assert keys.journal_key("s-1", 3).startswith(keys.journal_prefix("s-1"))
    assert keys.journal_prefix("s-1").startswith(keys.JOURNAL_PREFIX)


def _string_literals(source: str) -> list[tuple[int, str]]:
    """Every string constant in ``source`` that is not a docstring, with its line."""
    import ast

    tree = ast.parse(source)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            value = body[0].value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                docstrings.add(id(value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_fixed_keys_are_spelled_only_in_the_keys_module() -> None:
    import re
    from pathlib import Path

    package = Path(keys.__file__).parent
    spelled = re.compile(r"(?<![\w/])(?:" + "|".join(map(re.escape, FIXED_KEYS)) + r")(?![\w-])")
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "keys.py" or path.relative_to(package).as_posix() in NOT_YET_MIGRATED:
            continue
        for line, text in _string_literals(path.read_text(encoding="utf-8")):
            if spelled.search(text):
                found.append(f"{path.relative_to(package)}:{line}: {text!r}")
    assert found == [], "use the constants of lifecycle.keys:\n" + "\n".join(found)
