"""Every record kind, as first stored (schema version 1), keeps loading.

The files in ``tests/fixtures/v1/`` are frozen: never regenerate them. When a
record's schema changes, add an upcaster (``lifecycle.codec.upcaster``) so these
still load; add fixtures for the new version beside them (``tests/fixtures/v2/``:
the checkpoint without ``recovery_info.dependencies_check`` and
``estimated_restore_time_ms``; ``tests/fixtures/v3/``: with its work tree ``snapshot``).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lifecycle import codec, records
from lifecycle.records import Checkpoint, RecoveryInfo
from lifecycle.session import SessionManager
from lifecycle.stores import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "v1"
LATER = sorted((Path(__file__).parent / "fixtures").glob("v[2-9]*/*.json"))
DROPPED = {"dependencies_check", "estimated_restore_time_ms"}


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


@pytest.mark.parametrize("path", LATER, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_record_of_a_later_version_loads_and_encodes_back_to_the_same_data(path: Path) -> None:
    data = orjson.loads(path.read_bytes())
    assert data["schema_version"] == int(path.parent.name[1:])
    cls = records.RECORD_KINDS[data["kind"]]
    record = codec.decode(cls, path.read_bytes(), key=path.name)
    if data["schema_version"] == codec.CURRENT[data["kind"]]:
        assert orjson.loads(codec.encode(record)) == data


def test_every_kind_whose_version_moved_on_has_a_fixture_of_its_current_version() -> None:
    moved = {kind for kind, version in codec.CURRENT.items() if version > 1}
    assert moved == {"checkpoint"}
    for kind in moved:
        assert (FIXTURES.parent / f"v{codec.CURRENT[kind]}" / f"{kind}.json").is_file()


def test_a_v1_checkpoint_with_the_never_computed_recovery_fields_loads_without_them() -> None:
    raw = (FIXTURES / "checkpoint.json").read_bytes()
    assert set(orjson.loads(raw)["recovery_info"]) >= DROPPED
    cp = codec.decode(Checkpoint, raw)
    assert cp.schema_version == 3
    assert cp.recovery_info == RecoveryInfo(
        restore_command="lifecycle session start --checkpoint cp-20260125T120000.000000Z"
    )


def test_a_v1_checkpoint_without_recovery_info_loads_with_the_default() -> None:
    data = orjson.loads((FIXTURES / "checkpoint.json").read_bytes())
    del data["recovery_info"]
    assert codec.decode(Checkpoint, orjson.dumps(data)).recovery_info == RecoveryInfo()


def test_a_newly_written_checkpoint_is_v3_and_does_not_carry_the_dropped_fields() -> None:
    store = open_store("memory://")
    manager = SessionManager(store=store, project="p")
    manager.start_session(restore=False)
    manager.add_task("T1")
    written = manager.create_checkpoint(phase="Phase 1")
    assert written.key is not None
    entry = store.get(f"p/{written.key}")
    assert entry is not None
    data = orjson.loads(entry.value)
    assert (data["kind"], data["schema_version"]) == ("checkpoint", 3)
    assert set(data["recovery_info"]) == {"restore_command"}
    assert data["recovery_info"]["restore_command"] == (
        f"lifecycle session start --checkpoint {written.checkpoint_id}"
    )


def test_a_v2_checkpoint_loads_with_no_snapshot() -> None:
    raw = (FIXTURES.parent / "v2" / "checkpoint.json").read_bytes()
    assert "snapshot" not in orjson.loads(raw)
    cp = codec.decode(Checkpoint, raw)
    assert (cp.schema_version, cp.snapshot) == (3, None)
