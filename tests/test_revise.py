"""records.revise: a copy with some fields changed, the others the same objects; and
records.assemble: a record from every field's value, unconverted."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from lifecycle.records import Checkpoint, ContextSnapshot, RecoveryInfo, assemble, revise
from lifecycle.spec import SessionState
from lifecycle.triggers.base import SessionFacts


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


def test_assemble_makes_the_record_the_constructor_makes_from_the_same_field_values() -> None:
    at = datetime(2026, 1, 25, tzinfo=UTC)
    values = (SessionState.ACTIVE, 12.5, at, None, 2, True)
    names = [f.name for f in attrs.fields(SessionFacts)]
    assert assemble(SessionFacts, *values) == SessionFacts(**dict(zip(names, values, strict=True)))


def test_assemble_refuses_a_value_missing_or_too_many() -> None:
    with pytest.raises(TypeError, match="SessionFacts has 6 fields, got 5 values"):
        assemble(SessionFacts, SessionState.ACTIVE, 1.0, None, None, 0)


def test_revise_copies_a_record_of_one_field_and_of_many() -> None:
    info = RecoveryInfo(restore_command="lifecycle session start")
    assert revise(info) == info and revise(info) is not info
    cp = revise(_checkpoint(), recovery_info=info)
    assert revise(cp) == cp and revise(cp, label="y") == attrs.evolve(cp, label="y")
