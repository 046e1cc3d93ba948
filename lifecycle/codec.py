"""Records to JSON bytes and back: cattrs (orjson preconf), schema versions, upcasters.

Stored form: a JSON object with ``kind`` (see :data:`records.RECORD_KINDS`),
``schema_version`` and the record's fields. Reading an older version runs it
through the registered upcasters, one version at a time; a newer version than
this code knows is a :class:`SchemaVersionError`, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.preconf.orjson import make_converter

from lifecycle import records
from lifecycle.errors import CorruptRecord, InvalidRecord, SchemaVersionError
from lifecycle.redact import redact_json

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

converter = make_converter(forbid_extra_keys=True)
converter.register_structure_hook(datetime, lambda v, _: records.utc(v))

_KIND_OF: dict[type, str] = {cls: kind for kind, cls in records.RECORD_KINDS.items()}
#: (kind, version) -> function turning a version-N dict into a version-N+1 dict.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def _written_version(cls: type) -> int:
    default = attrs.fields_dict(cls)["schema_version"].default
    if not isinstance(default, int):
        raise TypeError(f"{cls.__name__}.schema_version needs an int default")
    return default


#: The schema version this code writes, per kind: each record class's default.
CURRENT: dict[str, int] = {
    kind: _written_version(cls) for kind, cls in records.RECORD_KINDS.items()
}
#: No record is stored or parsed above this size: a bound on every input that reaches
#: the codec (learnings, memories, hostile bytes), well above the 200 KB checkpoint
#: maximum, which the session enforces on its own.
MAX_RECORD_BYTES = 4 * 1024 * 1024


def upcaster(kind: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register ``fn`` as the migration of ``kind`` records from ``from_version``."""

    def register(fn: Upcaster) -> Upcaster:
        UPCASTERS[(kind, from_version)] = fn
        return fn

    return register


def kind_of(cls: type) -> str:
    try:
        return _KIND_OF[cls]
    except KeyError:
        raise InvalidRecord(f"{cls.__name__} is not a stored record kind") from None


def to_dict(record: object) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(record)
    data["kind"] = kind_of(type(record))
    return data


def encode(record: object) -> bytes:
    """The record as compact JSON bytes, with its ``kind``.

    A right-sized copy: orjson hands back bytes that keep its whole output buffer
    (about 8 KB even for a 600-byte record), which a store or cache that keeps the
    value would carry for its lifetime. The copy costs ~1 us per 10 KB.
    """
    try:
        raw = memoryview(orjson.dumps(to_dict(record))).tobytes()
    except orjson.JSONEncodeError as exc:
        raise InvalidRecord(
            f"{kind_of(type(record))} cannot be stored as JSON: {exc} "
            "(values must be str, int within 64 bits, float, bool, None, lists or mappings)"
        ) from None
    raw = redact_json(raw)  # nothing secret is stored, whichever front end recorded it
    if len(raw) > MAX_RECORD_BYTES:
        raise InvalidRecord(
            f"{kind_of(type(record))} record is {len(raw)} bytes, over the "
            f"{MAX_RECORD_BYTES}-byte limit; store large content elsewhere and keep a reference"
        )
    return raw


def upcast(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Migrate ``data`` to the current schema version of ``kind``."""
    known = CURRENT[kind]
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SchemaVersionError(kind, version, known)
    if version > known:
        raise SchemaVersionError(kind, version, known)
    while version < known:
        step = UPCASTERS.get((kind, version))
        if step is None:
            raise SchemaVersionError(kind, version, known)
        data = step(dict(data))
        version += 1
        data["schema_version"] = version
    return data


def from_dict(cls: type[T], data: object, *, key: str = "") -> T:
    if not isinstance(data, dict):
        raise CorruptRecord(key, f"expected a JSON object, found {type(data).__name__}")
    kind = kind_of(cls)
    data = dict(data)
    found_kind = data.pop("kind", kind)
    if found_kind != kind:
        raise InvalidRecord(f"record {key!r} is a {found_kind!r}, not a {kind!r}")
    data = upcast(kind, data)
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc, path=kind))
        else:
            detail = str(exc)
        raise InvalidRecord(f"record {key or kind!r} does not fit its schema: {detail}") from None


def decode(cls: type[T], raw: bytes, *, key: str = "") -> T:
    """Bytes written by :func:`encode` back to a record of ``cls``."""
    if len(raw) > MAX_RECORD_BYTES:
        raise CorruptRecord(key, f"{len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte record limit")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CorruptRecord(key, f"not valid JSON ({exc})") from None
    return from_dict(cls, data, key=key)


# -- upcasters: one per (kind, version) that changed ------------------------------------


@upcaster("checkpoint", 1)
def _checkpoint_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v2 drops ``recovery_info.dependencies_check`` and ``estimated_restore_time_ms``:
    nothing computed them (the manager always wrote "all_clear" and 0)."""
    info = data.get("recovery_info")
    if isinstance(info, dict):
        data["recovery_info"] = {
            k: v
            for k, v in info.items()
            if k not in ("dependencies_check", "estimated_restore_time_ms")
        }
    return data
