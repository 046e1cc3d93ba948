"""Crash safety, short version: SIGKILL a checkpoint writer 30 times per store.

The full run (1,000 kills per store) is ``python -m tests.crash_harness``; see
tests/crash_harness.py for what each trial checks.
"""

from __future__ import annotations

from pathlib import Path

import crash_harness
import pgserver
import pytest

postgres_url = pgserver.postgres_url  # the session fixture: a throwaway server

KILLS = 30
PG_KILLS = 10


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_sigkilled_writer_loses_no_acknowledged_checkpoint(kind: str, tmp_path: Path) -> None:
    counts = crash_harness.run(kind, KILLS, seed=7, folder=tmp_path)
    assert counts.trials == KILLS
    assert counts.acknowledged > 0, "the writer never acknowledged a checkpoint"
    assert (counts.acknowledged_losses, counts.unrecoverable_sessions, counts.writer_errors) == (
        0,
        0,
        0,
    ), counts.problems


@pytest.mark.timeout(300)
def test_sigkilled_writer_loses_no_acknowledged_checkpoint_postgres(
    postgres_url: str, tmp_path: Path
) -> None:
    url = f"{postgres_url}?schema={pgserver.unique_schema()}"
    counts = crash_harness.run("postgres", PG_KILLS, seed=7, folder=tmp_path, url=url)
    assert counts.trials == PG_KILLS
    assert counts.acknowledged > 0
    assert (counts.acknowledged_losses, counts.unrecoverable_sessions, counts.writer_errors) == (
        0,
        0,
        0,
    ), counts.problems


def test_a_torn_last_line_is_not_an_acknowledgement() -> None:
    out = b"ready -\nack cp-1 checkpoints/1\nack cp-2 checkpoints/2\nack cp-3 check"
    assert crash_harness._acks(out) == [("cp-1", "checkpoints/1"), ("cp-2", "checkpoints/2")]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_search_after_each_kill_finds_the_words_of_the_newest_acknowledged_checkpoint(
    kind: str, postgres_url: str, tmp_path: Path
) -> None:
    """The index is brought up to date by searches: what a killed writer acknowledged
    is queued with it, so the next search finds it."""
    url = f"{postgres_url}?schema={pgserver.unique_schema()}" if kind == "postgres" else None
    counts = crash_harness.run(kind, 10, seed=3, folder=tmp_path, url=url, searched=True)
    assert counts.acknowledged > 0
    assert (counts.search_misses, counts.acknowledged_losses, counts.writer_errors) == (
        0,
        0,
        0,
    ), counts.problems
