"""The one compare-and-swap rule every store plans its batches with (stores.base)."""

from __future__ import annotations

import pytest

from lifecycle.errors import InvalidKey, VersionConflict
from lifecycle.stores.base import (
    Delete,
    Op,
    Planned,
    Put,
    VersionReader,
    check_ops,
    check_version,
    plan_batch,
    prefix_end,
)


def _reader(
    stored: dict[str, int | None], asked: list[tuple[str, int | None]] | None = None
) -> VersionReader:
    """Versions from ``stored`` (absent: 0), noting each question in ``asked``."""

    def read(key: str, expected: int | None) -> int | None:
        if asked is not None:
            asked.append((key, expected))
        return stored.get(key, 0)

    return read


@pytest.mark.parametrize(
    ("expected", "found", "allowed"),
    [
        (None, 0, True),
        (None, 7, True),
        (0, 0, True),
        (0, 3, False),
        (3, 3, True),
        (3, 0, False),
        (3, 4, False),
        (None, None, True),
        (0, None, False),
        (2, None, False),
    ],
)
def test_none_is_unconditional_zero_is_absent_n_is_version_n(
    expected: int | None, found: int | None, allowed: bool
) -> None:
    if allowed:
        check_version("k/a", expected, found)
        return
    with pytest.raises(VersionConflict) as raised:
        check_version("k/a", expected, found)
    assert (raised.value.key, raised.value.expected, raised.value.found) == ("k/a", expected, found)


def test_a_plan_gives_each_op_the_version_it_finds_and_the_one_it_leaves() -> None:
    ops: list[Op] = [Put("k/a", b"1"), Put("k/b", b"2", expected_version=0), Delete("k/c")]
    plan = plan_batch(ops, _reader({"k/a": 4, "k/c": 2}))
    assert plan == [Planned(ops[0], 4, 5), Planned(ops[1], 0, 1), Planned(ops[2], 2, 0)]


def test_ops_on_one_key_see_the_earlier_ones_and_the_version_is_read_once() -> None:
    asked: list[tuple[str, int | None]] = []
    ops: list[Op] = [
        Put("k/a", b"1", expected_version=2),
        Put("k/a", b"2", expected_version=3),
        Delete("k/a", expected_version=4),
        Put("k/a", b"3", expected_version=0),
    ]
    plan = plan_batch(ops, _reader({"k/a": 2}, asked))
    assert [(p.found, p.version) for p in plan] == [(2, 3), (3, 4), (4, 0), (0, 1)]
    assert asked == [("k/a", 2)]  # once per key, with the first op's expected version


def test_the_first_mismatch_raises_with_key_expected_and_found() -> None:
    ops: list[Op] = [Put("k/a", b"1"), Put("k/a", b"2", expected_version=1)]
    with pytest.raises(VersionConflict) as raised:
        plan_batch(ops, _reader({"k/a": 5}))
    assert (raised.value.key, raised.value.expected, raised.value.found) == ("k/a", 1, 6)


def test_an_unknown_version_lets_only_a_blind_op_through_and_then_counts_as_absent() -> None:
    plan = plan_batch([Put("k/a", b"1")], _reader({"k/a": None}))
    assert (plan[0].found, plan[0].version) == (0, 1)
    with pytest.raises(VersionConflict) as raised:
        plan_batch([Delete("k/a", expected_version=3)], _reader({"k/a": None}))
    assert (raised.value.expected, raised.value.found) == (3, None)


def test_a_reader_error_propagates_before_anything_is_planned() -> None:
    def torn(key: str, expected: int | None) -> int | None:
        raise ValueError(f"{key} is torn")

    with pytest.raises(ValueError, match="k/a is torn"):
        plan_batch([Put("k/a", b"1", expected_version=1)], torn)


def test_a_batch_of_anything_but_puts_and_deletes_is_refused() -> None:
    with pytest.raises(TypeError, match="Put and Delete"):
        plan_batch([Put("k/a", b"1"), "k/b"], _reader({}))  # type: ignore[list-item]
    with pytest.raises(TypeError, match="Put and Delete"):
        check_ops([Put("k/a", b"1"), ("k/b", b"2")])
    with pytest.raises(InvalidKey):
        check_ops([Put("k/a", b"1"), Delete("../etc")])


def test_prefix_end_is_above_every_key_under_the_prefix_and_below_the_next() -> None:
    end = prefix_end("k/a")
    assert "k/a" < "k/a/zzz" < "k/az" < end <= "k/b"
