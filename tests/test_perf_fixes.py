"""The speed-ups the benchmark led to keep their exact meaning (bench/run.py, issue 9)."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle import codec, keys, records
from lifecycle.records import Pointer
from lifecycle.spec import TABLE, Effect, Event, SessionState


def _strptime(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


@given(st.datetimes(timezones=st.just(UTC)))
def test_parse_ts_fast_path_equals_strptime_for_every_formatted_moment(moment: datetime) -> None:
    text = keys.format_ts(moment)
    parsed = keys.parse_ts(text)
    assert parsed == _strptime(text) == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "20241301T000000.000000Z",  # month 13
        "20240230T000000.000000Z",  # February 30
        "20240101T250000.000000Z",  # hour 25
        "20240101T000000.000000",  # no Z
        "2024-01-01T00:00:00.000000Z",  # extended form is not the key form
    ],
)
def test_parse_ts_rejects_what_strptime_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="time data|out of range"):
        _strptime(text)
    with pytest.raises(ValueError, match="time data|out of range"):
        keys.parse_ts(text)


def test_encode_returns_bytes_that_do_not_keep_orjsons_output_buffer() -> None:
    pointer = Pointer(
        "checkpoints/20240101T000000.000000Z", "cp-x", datetime(2024, 1, 1, tzinfo=UTC)
    )
    size = len(codec.encode(pointer))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [codec.encode(pointer) for _ in range(200)]
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    # orjson's own bytes hold a buffer of about 8 KB whatever the length.
    assert per_value < size + 200
    assert kept[0] == kept[-1] and codec.decode(Pointer, kept[0]) == pointer


def test_spec_indexes_equal_a_scan_of_the_rows() -> None:
    for state in SessionState:
        assert TABLE.legal_events(state) == frozenset(
            r.event for r in TABLE.rows if r.source is state
        )
        for event in Event:
            expected = tuple(r for r in TABLE.rows if r.event is event and r.source is state)
            assert TABLE.rows_for(event, state) == expected


def test_row_label_follows_the_row_after_evolve() -> None:
    row = next(r for r in TABLE.rows if r.effect is Effect.WRITE_CHECKPOINT and r.when)
    conds = ", ".join(("" if want else "!") + guard.value for guard, want in row.when)
    assert row.label == f"{row.event.value} [{conds}] / write_checkpoint"
    bare = attrs.evolve(row, effect=None, when=())
    assert bare.label == row.event.value
    assert bare == attrs.evolve(row, effect=None, when=())  # the cached label is not compared


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])))
def test_utc_normalizes_every_aware_datetime_and_its_iso_text(moment: datetime) -> None:
    expected = moment.astimezone(UTC)
    for value in (moment, expected, expected.isoformat().replace("+00:00", "Z")):
        got = records.utc(value)
        assert got == expected and got.tzinfo is UTC


def test_strs_keeps_a_tuple_of_str_and_converts_anything_else() -> None:
    kept = ("a", "b")
    assert records._strs(kept) is kept
    assert records._strs(["a", 1]) == ("a", "1")
    assert records._strs("one") == ("one",)
