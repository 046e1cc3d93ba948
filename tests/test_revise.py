"""records.revise: a copy with some fields changed, the others the same objects."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from lifecycle.records import Checkpoint, ContextSnapshot, revise


def _checkpoint() -> Checkpoint:
    return Checkpoint(id="cp-1", timestamp=datetime(2026, 1, 25, tzinfo=UTC), progress={"done": 1})


def test_revise_changes_the_named_fields_and_keeps_every_other_object() -> None:
    cp = _checkpoint()
    new = revise(cp, label="x", context_snapshot=ContextSnapshot(size_bytes=7))
    assert (new.label, new.context_snapshot.size_bytes) == ("x", 7)
    assert new == attrs.evolve(cp, label="x", context_snapshot=ContextSnapshot(size_bytes=7))
    assert new.progress is cp.progress  # not converted (copied) again
    assert all(
        getattr(new, f.name) is getattr(cp, f.name)
        for f in attrs.fields(Checkpoint)
        if f.name not in ("label", "context_snapshot")
    )
    assert cp.label is None  # the original is unchanged


def test_revise_refuses_a_field_the_record_does_not_have() -> None:
    with pytest.raises(TypeError, match=r"Checkpoint has no field \['lable'\]"):
        revise(_checkpoint(), lable="x")
