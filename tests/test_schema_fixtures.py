"""Every record kind, as first stored (schema version 1), keeps loading.

The files in ``tests/fixtures/v1/`` are frozen: never regenerate them. When a
record's schema changes, add an upcaster (``lifecycle.codec.upcaster``) so these
still load; add fixtures for the new version beside them.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lifecycle import codec, records

FIXTURES = Path(__file__).parent / "fixtures" / "v1"


def test_there_is_a_v1_fixture_for_every_record_kind() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} >= set(records.RECORD_KINDS)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.stem)
def test_a_v1_record_loads_through_the_upcasters(path: Path) -> None:
    raw = path.read_bytes()
    data = orjson.loads(raw)
    assert data["schema_version"] == 1
    cls = records.RECORD_KINDS[data["kind"]]
    record = codec.decode(cls, raw, key=path.name)
    assert isinstance(record, cls)
    assert record.schema_version == codec.CURRENT[data["kind"]]
