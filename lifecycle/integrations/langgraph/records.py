"""The records :class:`LifecycleSaver` stores, and the keys it stores them under.

Keys (under the project, in the key grammar of :mod:`lifecycle.keys`)::

    langgraph/{thread}/{ns}/{checkpoint}           one checkpoint, its metadata, its parent
    langgraph/{thread}/{ns}/{checkpoint}/{task}    one task's pending writes to it

A checkpoint's writes sort right after it and before the next checkpoint, so a
reverse scan of a namespace meets the newest checkpoint's writes and then the
checkpoint itself: the latest checkpoint with its writes is usually one query.

Each part is any text, escaped into a key segment by :func:`encode_segment`: letters,
digits, ``.`` and ``-`` stay (so a uuid checkpoint id sorts as itself and a reverse
scan is newest first), every other byte of its UTF-8 form becomes ``_xx``, the empty
text is ``_``. A part whose escaped form would be over 90 characters is named by its
hash instead (``_h`` + 32 hex); the record holds the part itself, so every part can be
read back either way.

Values are LangGraph's typed serde bytes, after a JSON header that is a record of
:mod:`lifecycle.codec` (kind, ``schema_version``, upcasters) and under a crc32 of the
whole, checked on every read: a torn or altered record is a
:class:`~lifecycle.errors.CorruptRecord` on any store, not silently wrong state.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import zlib
from collections.abc import Sequence
from typing import TypeVar, cast

import attrs
import orjson

from lifecycle import codec, keys
from lifecycle.errors import CorruptRecord

#: The escaped form of a part may be this long; a longer one is named by its hash.
MAX_SEGMENT = 90
ROOT = keys.LANGGRAPH_PREFIX
CHECKPOINTS = "c"
WRITES = "w"

_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,89}", re.ASCII)
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
_HEX = frozenset(b"0123456789abcdef")


@functools.lru_cache(maxsize=4096)
def encode_segment(text: str) -> str:
    """``text`` as one key segment; :func:`decode_segment` reverses it."""
    if _PLAIN.fullmatch(text):
        return text
    if text == "":
        return "_"
    raw = text.encode("utf-8", "surrogatepass")
    out = []
    for i, byte in enumerate(raw):
        if byte in _KEEP and not (i == 0 and byte in b".-"):
            out.append(chr(byte))
        else:
            out.append(f"_{byte:02x}")
    segment = "".join(out)
    if len(segment) > MAX_SEGMENT:
        return "_h" + hashlib.blake2b(raw, digest_size=16).hexdigest()
    return segment


def decode_segment(segment: str) -> str | None:
    """The text :func:`encode_segment` made ``segment`` from; None for a hashed part
    (its record holds the text)."""
    if segment == "_":
        return ""
    if segment.startswith("_h"):
        return None
    raw = bytearray()
    data = segment.encode("ascii")
    i = 0
    while i < len(data):
        if data[i] == ord("_"):
            pair = data[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise ValueError(f"{segment!r} is not an escaped key segment")
            raw.append(int(pair, 16))
            i += 3
        else:
            raw.append(data[i])
            i += 1
    return raw.decode("utf-8", "surrogatepass")


def thread_prefix(thread_id: str) -> str:
    return f"{ROOT}{encode_segment(thread_id)}/"


def namespace_prefix(thread_id: str, checkpoint_ns: str) -> str:
    return f"{thread_prefix(thread_id)}{encode_segment(checkpoint_ns)}/"


def checkpoint_key(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    return namespace_prefix(thread_id, checkpoint_ns) + encode_segment(checkpoint_id)


def writes_prefix(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    return checkpoint_key(thread_id, checkpoint_ns, checkpoint_id) + "/"


def writes_key(thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str) -> str:
    return writes_prefix(thread_id, checkpoint_ns, checkpoint_id) + encode_segment(task_id)


#: The key grammar's rule for these keys (:data:`lifecycle.keys._GRAMMAR`'s last), alone:
#: the saver checks each key it writes against it, not against the whole grammar.
_SEGMENT = keys.LANGGRAPH_SEGMENT
KEY = re.compile(rf"{re.escape(ROOT)}{_SEGMENT}/{_SEGMENT}/{_SEGMENT}(?:/{_SEGMENT})?", re.ASCII)


def checked_key(key: str) -> str:
    """``key`` if the key grammar allows it (InvalidKey naming why if not)."""
    if KEY.fullmatch(key):
        return key
    return keys.validate(key)


def kind_of_key(key: str) -> str | None:
    """``"c"`` for a checkpoint key, ``"w"`` for a writes key, None for anything else
    (keys relative to the project)."""
    slashes = key.count("/")
    if slashes == 3:
        return CHECKPOINTS
    if slashes == 4:
        return WRITES
    return None


# -- records ------------------------------------------------------------------------------
#
# A stored value is a frame:
#     b"LG1 " + crc32 (8 hex) + b" " + sizes + b" " + header + b"\n" + body
# The header is a JSON record of lifecycle.codec (kind, schema_version, its fields);
# the body is the serde bytes of each part, one after another, as LangGraph's serde
# made them (no base64, no second encoding), and sizes their lengths in decimal,
# comma-separated. The crc covers all after it: a torn or altered value is a
# CorruptRecord.

MAGIC = b"LG1 "
_FRAME_HEAD = len(MAGIC) + 9  # magic, 8 hex digits, a space


@attrs.frozen
class GraphCheckpoint:
    """One LangGraph checkpoint (``langgraph/{thread}/{ns}/c/{checkpoint}``); its body
    is the checkpoint's serde bytes, then its metadata's."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint_type: str
    metadata_type: str
    schema_version: int = 1


@attrs.frozen
class WriteHead:
    """One pending write: its index in the task's writes (negative for LangGraph's
    special channels: error, interrupt, resume, scheduled), channel and serde type."""

    idx: int
    channel: str
    type: str


@attrs.frozen
class GraphWrites:
    """One task's pending writes to one checkpoint
    (``langgraph/{thread}/{ns}/w/{checkpoint}/{task}``), in ``idx`` order; its body is
    each write's serde bytes."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: tuple[WriteHead, ...]
    schema_version: int = 1


def _write_heads(value: object, _: object) -> tuple[WriteHead, ...]:
    """cattrs' hook for ``GraphWrites.writes`` (stored as ``[idx, channel, type]``
    triples): its generic tuple structuring was most of a read's cost."""
    if not isinstance(value, list):
        raise TypeError(f"writes must be a list, not {type(value).__name__}")
    heads = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and type(item[0]) is int
            and isinstance(item[1], str)
            and isinstance(item[2], str)
        ):
            raise TypeError(f"a write must be [idx, channel, type], not {item!r}")
        heads.append(WriteHead(*item))
    return tuple(heads)


_HEADS = tuple[WriteHead, ...]
codec.converter.register_structure_hook_func(lambda t: t == _HEADS, _write_heads)
codec.converter.register_unstructure_hook_func(
    lambda t: t == _HEADS, lambda heads: [[h.idx, h.channel, h.type] for h in heads]
)
codec.register_kind("langgraph_checkpoint", GraphCheckpoint)
codec.register_kind("langgraph_writes", GraphWrites)

Record = GraphCheckpoint | GraphWrites
R = TypeVar("R", bound=Record)


KINDS: dict[type, str] = {GraphCheckpoint: "langgraph_checkpoint", GraphWrites: "langgraph_writes"}
_NAMES = {cls: tuple(attrs.fields_dict(cls)) for cls in KINDS}
_FIELDS = {cls: frozenset(["kind", *_NAMES[cls]]) for cls in KINDS}
_TEXT = ("thread_id", "checkpoint_ns", "checkpoint_id")


def _header(cls: type[R], raw: bytes, key: str) -> R:
    """The header record: built directly when it is of the current schema with exactly
    its fields, each of its type (every read of this code's own records); otherwise
    through :func:`lifecycle.codec.from_dict`, which upcasts and names what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CorruptRecord(key, f"its header is not valid JSON ({exc})") from None
    if (
        type(data) is dict
        and data.keys() == _FIELDS[cls]
        and data["kind"] == KINDS[cls]
        and data["schema_version"] == codec.CURRENT[KINDS[cls]]
        and all(type(data[name]) is str for name in _TEXT)
    ):
        if cls is GraphCheckpoint:
            parent = data["parent_checkpoint_id"]
            if (
                (parent is None or type(parent) is str)
                and type(data["checkpoint_type"]) is str
                and type(data["metadata_type"]) is str
            ):
                return cast(
                    R,
                    GraphCheckpoint(
                        data["thread_id"],
                        data["checkpoint_ns"],
                        data["checkpoint_id"],
                        parent,
                        data["checkpoint_type"],
                        data["metadata_type"],
                    ),
                )
        elif type(data["task_id"]) is str and type(data["task_path"]) is str:
            try:
                heads = _write_heads(data["writes"], None)
            except TypeError:
                pass
            else:
                return cast(
                    R,
                    GraphWrites(
                        data["thread_id"],
                        data["checkpoint_ns"],
                        data["checkpoint_id"],
                        data["task_id"],
                        data["task_path"],
                        heads,
                    ),
                )
    return codec.from_dict(cls, data, key=key)


#: Where each part of a body lies in its frame: ``(start, end)`` offsets.
Spans = tuple[tuple[int, int], ...]


def frame(header: bytes, parts: Sequence[bytes | memoryview]) -> bytes:
    """The stored bytes for a header (JSON, no newline) and the parts of a body."""
    sizes = ",".join(str(len(p)) for p in parts).encode("ascii")
    head = b"%s %s\n" % (sizes, header)
    # The crc of all after it, piece by piece: the body is copied once, into the frame.
    crc = zlib.crc32(head)
    for part in parts:
        crc = zlib.crc32(part, crc)
    return b"".join([MAGIC, b"%08x " % crc, head, *parts])


def encode(record: Record, parts: Sequence[bytes | memoryview]) -> bytes:
    """``record`` framed with ``parts`` as its body. The header is the record's
    :mod:`lifecycle.codec` form (``kind`` and its fields), written here directly: its
    fields are text, None, ints and the write triples, which cattrs' unstructuring only
    copied."""
    data = {name: getattr(record, name) for name in _NAMES[type(record)]}
    if isinstance(record, GraphWrites):
        data["writes"] = [[h.idx, h.channel, h.type] for h in record.writes]
    data["kind"] = KINDS[type(record)]
    return frame(orjson.dumps(data), parts)


def decode(cls: type[R], raw: bytes, key: str) -> tuple[R, list[memoryview]]:
    """The record and its body's parts (views of ``raw``, not copies); CorruptRecord if
    the frame or its crc is wrong."""
    record, spans = _decoded(cls, raw, key)
    view = memoryview(raw)
    return record, [view[a:b] for a, b in spans]


def _decoded(cls: type[R], raw: bytes, key: str) -> tuple[R, Spans]:
    if raw[: len(MAGIC)] != MAGIC or raw[_FRAME_HEAD - 1 : _FRAME_HEAD] != b" ":
        raise CorruptRecord(key, "not a LangGraph record of lifecycle (no LG1 header)")
    try:
        crc = int(raw[len(MAGIC) : _FRAME_HEAD - 1], 16)
    except ValueError:
        raise CorruptRecord(key, "its checksum is not hexadecimal") from None
    if zlib.crc32(memoryview(raw)[_FRAME_HEAD:]) != crc:
        raise CorruptRecord(key, "its checksum does not match its content")
    space = raw.find(b" ", _FRAME_HEAD)
    end = raw.find(b"\n", space)
    if space < 0 or end < 0:
        raise CorruptRecord(key, "no end to its header")
    record = _header(cls, raw[space + 1 : end], key)
    spans, at = [], end + 1
    sizes = raw[_FRAME_HEAD:space]
    for size in sizes.split(b",") if sizes else ():
        if not size.isdigit():
            raise CorruptRecord(key, "its part sizes are not numbers")
        spans.append((at, at + int(size)))
        at += int(size)
    if at != len(raw):
        raise CorruptRecord(key, "its parts do not add up to its body")
    return record, tuple(spans)


# -- the memo of decoded records -----------------------------------------------------------


class Decoded:
    """The records of the last few values read, each kept with the exact bytes it was
    decoded from: the same bytes read again (the latest checkpoint of a thread, read by
    every ``get_tuple``) are not checked and parsed again.

    As :data:`lifecycle.session.checkpoints.DECODED` does for lifecycle's checkpoints,
    nothing is taken on trust: every read still reads the value from the store (which
    checks its own checksum there), and only bytes equal to those a record came from
    give that record, so a write by another process, a rewritten key or a damaged value
    is seen exactly as without the memo. A record is a function of its bytes alone
    (:func:`decode` reads nothing else; records are frozen, their parts are views of
    the bytes read now), which is what makes this safe; the place (store, project,
    key) only says which slot to look in. Bounded by slots and by bytes kept."""

    SLOTS = 32
    #: Bytes of values kept at most (a value over it is never kept).
    BUDGET = 32 * 1024 * 1024

    def __init__(self) -> None:
        self._slots: dict[tuple[type, tuple[str, str], str], tuple[bytes, Record, Spans]] = {}
        self._kept = 0
        self._lock = threading.Lock()

    def decode(
        self, cls: type[R], where: tuple[str, str], key: str, raw: bytes
    ) -> tuple[R, list[memoryview]]:
        """:func:`decode` ``raw``, or the record decoded from equal bytes at this place."""
        hit = self._slots.get((cls, where, key))
        if hit is not None and hit[0] == raw:
            record, spans = cast(R, hit[1]), hit[2]
        else:
            record, spans = _decoded(cls, raw, key)
            self._remember(where, key, raw, record, spans)
        view = memoryview(raw)
        return record, [view[a:b] for a, b in spans]

    def _remember(
        self, where: tuple[str, str], key: str, raw: bytes, record: Record, spans: Spans
    ) -> None:
        """Keep ``record`` as what ``raw`` (its exact stored bytes) decodes to. (Not done
        on writes: keeping each written value alive until it is evicted cost a put more
        CPU, 18 us of 370, than it saved the next read.)"""
        if type(raw) is not bytes or len(raw) > self.BUDGET:
            return  # only immutable bytes can be compared later
        slot = (type(record), where, key)
        with self._lock:
            old = self._slots.pop(slot, None)
            if old is not None:
                self._kept -= len(old[0])
            while self._slots and (
                len(self._slots) >= self.SLOTS or self._kept + len(raw) > self.BUDGET
            ):
                self._kept -= len(self._slots.pop(next(iter(self._slots)))[0])
            self._slots[slot] = (raw, record, spans)
            self._kept += len(raw)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()
            self._kept = 0


#: The process's memo of decoded saver records (shared by every LifecycleSaver).
MEMO = Decoded()
