"""Records to JSON bytes and back: cattrs (orjson preconf), schema versions, upcasters.

Stored form: a JSON object with ``kind`` (see :data:`records.RECORD_KINDS`),
``schema_version`` and the record's fields. Reading an older version runs it
through the registered upcasters, one version at a time; a newer version than
this code knows is a :class:`SchemaVersionError`, never a guess.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import attrs
import cattrs
import orjson
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.orjson import make_converter

from lifecycle import records
from lifecycle.errors import CorruptRecord, InvalidRecord, SchemaVersionError
from lifecycle.redact import piecewise, redact_json

T = TypeVar("T")
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: Reads convert each value once: a field with an attrs converter gets the stored value
#: (the converter parses it), and no cattrs hook converts it before. No detailed
#: validation on the way in (see ``_why`` for the message when a record does not fit).
converter = make_converter(
    forbid_extra_keys=True, prefer_attrib_converters=True, detailed_validation=False
)
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


def register_kind(kind: str, cls: type) -> None:
    """Store records of ``cls`` as ``kind``: for an integration that keeps its own records
    in its own module (:data:`records.RECORD_KINDS` lists the core's). Registering the
    same pair again does nothing; a kind or class already taken is an InvalidRecord."""
    taken = _KIND_OF.get(cls)
    if taken == kind:
        return
    if taken is not None or kind in CURRENT:
        raise InvalidRecord(f"record kind {kind!r} or class {cls.__name__} is already registered")
    version = _written_version(cls)
    _KIND_OF[cls] = kind
    CURRENT[kind] = version


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
    raw = dumps(record)
    if len(raw) > MAX_RECORD_BYTES:
        raise too_big(record, len(raw))
    return memoryview(raw).tobytes()


def encode_pointer(pointer: records.Pointer) -> bytes:
    """:func:`encode` of a :class:`~lifecycle.records.Pointer` (``checkpoints/latest``,
    written with every checkpoint), its JSON put together from its four values' own
    (orjson's, as in the whole record) without cattrs: the same bytes, redacted."""
    version = pointer.schema_version
    if type(pointer) is not records.Pointer or type(version) is not int or not piecewise():
        return encode(pointer)
    try:
        raw = b'{"key":%b,"id":%b,"timestamp":%b,"schema_version":%d,"kind":"pointer"}' % (
            orjson.dumps(pointer.key), orjson.dumps(pointer.id),
            orjson.dumps(pointer.timestamp), version,
        )  # fmt: skip
    except orjson.JSONEncodeError:
        return encode(pointer)  # which says why
    return redact_json(raw)


#: How many unstructured task, decision and file records the codec keeps (~1 KB each).
MEMO_RECORDS = 4096


#: How many tuples of them (a work state's task, decision and file lists) it keeps.
MEMO_LISTS = 256


def _memoized(cls: type, lists: tuple[str, ...] = ()) -> None:
    """Unstructure each ``cls`` record once: a session's checkpoints hold the same task,
    decision and file records (immutable, shared by identity) one checkpoint after
    another, and unstructuring them again was most of what encoding a checkpoint cost.
    The memo holds the record itself, so an id is never reused while it is kept; every
    caller gets its own dict (and its own copy of the ``lists`` fields), so one that
    edits what :func:`to_dict` returned changes nothing for the next. :func:`dumps`
    gets the record's JSON itself, encoded and redacted once, and a tuple of them (a
    work state's list, shared by identity too while it does not change) as one piece of
    JSON (see ``_Encoding``). The plain function is generated at the first use, not at
    import (hook start-up)."""
    memo: dict[int, list[Any]] = {}  # id -> [record, its dict, its redacted JSON or None]
    many: dict[int, tuple[tuple[Any, ...], bytes, orjson.Fragment]] = {}
    plain: Callable[[Any], dict[str, Any]] | None = None

    def entry(obj: object) -> list[Any]:
        nonlocal plain
        hit = memo.get(id(obj))
        if hit is None or hit[0] is not obj:
            if plain is None:
                plain = converter.gen_unstructure_attrs_fromdict(cls)
            if len(memo) >= MEMO_RECORDS:
                memo.clear()
            hit = memo[id(obj)] = [obj, plain(obj), None]
        return hit

    def piece(hit: list[Any]) -> bytes:
        if hit[2] is None:  # right-sized (see encode): the memo keeps it
            hit[2] = redact_json(memoryview(orjson.dumps(hit[1])).tobytes())
        own: bytes = hit[2]
        return own

    def unstructure(obj: object) -> Any:
        hit = entry(obj)
        encoding = _encoding
        if encoding.active:
            if not encoding.pieces:
                return hit[1]  # straight to orjson, which only reads it
            own = piece(hit)
            encoding.found.append(own)
            return orjson.Fragment(own)
        out = dict(hit[1])
        for name in lists:
            out[name] = list(out[name])
        return out

    def unstructure_many(items: tuple[Any, ...]) -> Any:
        encoding = _encoding
        if not (encoding.active and encoding.pieces and items):
            return [unstructure(obj) for obj in items]
        found = many.get(id(items))
        if found is None or found[0] is not items:
            if len(many) >= MEMO_LISTS:
                many.clear()
            joined = b"[" + b",".join([piece(entry(obj)) for obj in items]) + b"]"
            found = many[id(items)] = (items, joined, orjson.Fragment(joined))
        encoding.found.append(found[1])
        return found[2]

    converter.register_unstructure_hook(cls, unstructure)
    tuple_of = tuple.__class_getitem__((cls, ...))  # tuple[cls, ...], the fields' type
    converter.register_unstructure_hook_func(lambda t: t == tuple_of, unstructure_many)


#: How many work states' JSON the codec keeps (a session's live one, mostly).
MEMO_STATES = 16


def _omit_empty_omitted() -> None:
    """A work state with nothing left out past the caps is stored as it was before the
    field existed (``omitted`` only appears once something was counted, not kept).
    Generated at the first use (hook start-up), after the memo's hooks are registered,
    so its fields use them.

    While :func:`dumps` encodes by pieces, a work state is one piece too: its JSON,
    redacted as :func:`dumps` redacts a record, kept by identity (with a copy of
    ``omitted``, its one mutable field) while the session's checkpoints carry it
    unchanged, so an unchanged work state is neither unstructured nor checked again."""
    plain: Callable[[Any], dict[str, Any]] | None = None
    memo: dict[int, tuple[records.WorkState, dict[str, int], bytes, orjson.Fragment]] = {}

    def unstructure(work: records.WorkState) -> Any:
        nonlocal plain
        if plain is None:
            plain = make_dict_unstructure_fn(
                records.WorkState, converter, omitted=override(omit_if_default=True)
            )
        encoding = _encoding
        if not (encoding.active and encoding.pieces):
            return plain(work)
        hit = memo.get(id(work))
        if hit is None or hit[0] is not work or hit[1] != work.omitted:
            outer = encoding.found
            inner: list[bytes] = []
            encoding.found = inner
            try:
                tree = plain(work)
            finally:
                encoding.found = outer
            own = memoryview(_redacted(orjson.dumps(tree), tree, inner)).tobytes()
            if len(memo) >= MEMO_STATES:
                memo.clear()
            hit = memo[id(work)] = (work, dict(work.omitted), own, orjson.Fragment(own))
        encoding.found.append(hit[2])
        return hit[3]

    converter.register_unstructure_hook(records.WorkState, unstructure)


class _Encoding(threading.local):
    """What this thread's :func:`dumps` is doing. ``active``: the memo's dicts go
    straight to orjson. ``pieces``: memoized records come as their own JSON, already
    redacted (``orjson.Fragment``), and ``found`` holds their JSON in the order
    ``to_dict`` made them; only while :func:`lifecycle.redact.piecewise` says redacting
    a record on its own is the same as redacting it where it stands."""

    active = False
    pieces = False
    found: list[bytes] = []  # each dumps call sets its own


_encoding = _Encoding()
_memoized(records.Task)
_memoized(records.Decision)
_memoized(records.FileChange, lists=("operations",))
_omit_empty_omitted()


def dumps(record: object) -> bytes:
    """orjson's own output for the record (not right-sized: see :func:`encode`), for a
    caller that makes its own copy; InvalidRecord for what JSON cannot hold.

    Nothing secret is stored, whichever front end recorded it: the JSON is redacted.
    Task, decision and file records are redacted once each, when first encoded (they
    are immutable, and a session's checkpoints repeat them); the rest of the record is
    checked with each of them in place as ``0``. When that finds nothing, the JSON is
    the record's; else (rare: a secret outside any task, decision or file) the whole
    JSON is redacted, as it always is when added patterns make records not piecewise."""
    encoding = _encoding
    try:
        encoding.active = True
        encoding.pieces = piecewise()
        found: list[bytes] = []
        encoding.found = found
        try:
            tree = to_dict(record)
            raw = orjson.dumps(tree)
        finally:
            encoding.active = encoding.pieces = False
            encoding.found = []
        return _redacted(raw, tree, found)
    except orjson.JSONEncodeError as exc:
        raise InvalidRecord(
            f"{kind_of(type(record))} cannot be stored as JSON: {exc} "
            "(values must be str, int within 64 bits, float, bool, None, lists or mappings)"
        ) from None


def dumps_sized(record: object, holder: str) -> tuple[bytes, int] | None:
    """:func:`dumps` of a record whose ``holder`` field (a record with ``size_bytes``,
    0 in ``record``) says the length of the bytes, with that length in it: the bytes
    :func:`dumps` gives with the last ``"size_bytes":0`` made the length, and the
    length. The length is counted before the whole JSON is written (the rest of the
    record with each memoized piece as ``0``, plus the pieces), so the bytes are
    written once, by orjson. None when this cannot say (pieces off, a piece not at the
    top, a secret outside the pieces): the caller patches what :func:`dumps` gives."""
    encoding = _encoding
    try:
        encoding.active = True
        encoding.pieces = piecewise()
        if not encoding.pieces:
            return None
        found: list[bytes] = []
        encoding.found = found
        try:
            tree = to_dict(record)
        finally:
            encoding.active = encoding.pieces = False
            encoding.found = []
        rest_tree = dict(tree)
        pieces = 0
        for name, value in tree.items():
            if type(value) is orjson.Fragment:
                rest_tree[name] = 0
                pieces += 1
        if pieces != len(found) or tree[holder]["size_bytes"] != 0:
            return None  # a piece below the top: dumps finds it by searching
        size = len(orjson.dumps(rest_tree)) - 1 + sum(map(len, found)) - len(found)
        size += len(str(size + len(str(size))))  # the digits are part of the size
        tree[holder]["size_bytes"] = size  # rest_tree's too: the same dict
        rest = orjson.dumps(rest_tree)
        if redact_json(rest) is not rest:
            return None
        raw = orjson.dumps(tree)
        return (raw, size) if len(raw) == size else None
    except orjson.JSONEncodeError:
        return None  # dumps says why


def _redacted(raw: bytes, tree: Any, found: list[bytes]) -> bytes:
    """``raw`` (the JSON of ``tree``, holding the pieces ``found``, each redacted on its
    own) redacted: the rest checked with each piece in place as ``0``, else the whole."""
    if not found:
        return redact_json(raw)
    rest = _cut(raw, found)
    if rest is None:  # not where they were expected: make the rest from the tree
        rest = orjson.dumps(_without_fragments(tree))
    return raw if redact_json(rest) is rest else redact_json(raw)


def _cut(raw: bytes, found: list[bytes]) -> bytes | None:
    """``raw`` with each piece of ``found``, in order, as ``0``; None when one is not
    there. Each piece is a record's JSON or a list of them (``{"`` then a field name),
    which cannot start inside a JSON string: there a ``"`` is escaped, and a string's
    closing quote is never followed by a letter. So each match is a whole JSON value
    (the piece itself, or an equal value, just as clean), and the rest is what
    :func:`_without_fragments` gives, without walking the tree and encoding it again."""
    parts: list[bytes] = []
    at = 0
    for piece in found:
        head = piece[:32]  # found by its head, then compared whole (a long needle is slow)
        start = raw.find(head, at)
        while start >= 0 and not raw.startswith(piece, start):
            start = raw.find(head, start + 1)
        if start < 0:
            return None
        parts.append(raw[at:start])
        at = start + len(piece)
    parts.append(raw[at:])
    return b"0".join(parts)


def _without_fragments(node: Any) -> Any:
    """``node`` with every ``orjson.Fragment`` in it as ``0`` (what :func:`dumps` checks
    for secrets besides the records, which were checked on their own)."""
    kind = type(node)
    if kind is dict:
        return {k: _without_fragments(v) for k, v in node.items()}
    if kind is list:
        return [0 if type(v) is orjson.Fragment else _without_fragments(v) for v in node]
    if kind is orjson.Fragment:
        return 0
    return node


def too_big(record: object, size: int) -> InvalidRecord:
    return InvalidRecord(
        f"{kind_of(type(record))} record is {size} bytes, over the "
        f"{MAX_RECORD_BYTES}-byte limit; store large content elsewhere and keep a reference"
    )


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
    except Exception as exc:  # whatever stored bytes hold: a bad record, never a crash
        detail = _why(data, cls) or str(exc)
        raise InvalidRecord(f"record {key or kind!r} does not fit its schema: {detail}") from None


@functools.cache
def _detailed() -> cattrs.Converter:
    """The converter that says where a record does not fit (built at the first refusal)."""
    detailed = make_converter(forbid_extra_keys=True, prefer_attrib_converters=True)
    detailed.register_structure_hook(datetime, lambda v, _: records.utc(v))
    return detailed


def _why(data: dict[str, Any], cls: type) -> str:
    """Where a record does not fit, field by field. :data:`converter` structures without
    cattrs' detailed validation (a read converts each value once, with no error lists);
    a record that fails is structured again by a detailed converter to say why."""
    try:
        _detailed().structure(data, cls)
    except cattrs.BaseValidationError as exc:
        return "; ".join(cattrs.transform_error(exc, path=kind_of(cls)))
    except Exception as exc:
        return str(exc)
    return ""


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


@upcaster("checkpoint", 2)
def _checkpoint_v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    """v3 adds ``snapshot`` (the work tree's git snapshot); a v2 checkpoint took none."""
    data.setdefault("snapshot", None)
    return data
