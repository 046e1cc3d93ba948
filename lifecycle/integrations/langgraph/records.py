"""The records :class:`LifecycleSaver` stores, and the keys it stores them under.

Keys (under the project, in the key grammar of :mod:`lifecycle.keys`)::

    langgraph/{thread}/{ns}/c/{checkpoint}           one checkpoint, its metadata, its parent
    langgraph/{thread}/{ns}/w/{checkpoint}/{task}    one task's pending writes to it

Each part is any text, escaped into a key segment by :func:`encode_segment`: letters,
digits, ``.`` and ``-`` stay (so a uuid checkpoint id sorts as itself and a reverse
scan is newest first), every other byte of its UTF-8 form becomes ``_xx``, the empty
text is ``_``. A part whose escaped form would be over 90 characters is named by its
hash instead (``_h`` + 32 hex); the record holds the part itself, so every part can be
read back either way.

Values are LangGraph's typed serde bytes (``(type, bytes)``), base64 in a JSON record
with a ``schema_version`` (:mod:`lifecycle.codec`) and a ``digest`` over everything
the record says, checked on every read: a torn or altered record is a
:class:`~lifecycle.errors.CorruptRecord` on any store, not silently wrong state.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re

import attrs

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
    ns = namespace_prefix(thread_id, checkpoint_ns)
    return f"{ns}{CHECKPOINTS}/{encode_segment(checkpoint_id)}"


def writes_prefix(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    ns = namespace_prefix(thread_id, checkpoint_ns)
    return f"{ns}{WRITES}/{encode_segment(checkpoint_id)}/"


def writes_key(thread_id: str, checkpoint_ns: str, checkpoint_id: str, task_id: str) -> str:
    return writes_prefix(thread_id, checkpoint_ns, checkpoint_id) + encode_segment(task_id)


def kind_of_key(key: str) -> str | None:
    """``"c"`` for a checkpoint key, ``"w"`` for a writes key, None for anything else."""
    parts = key.split("/")
    if len(parts) == 5 and parts[3] == CHECKPOINTS:
        return CHECKPOINTS
    if len(parts) == 6 and parts[3] == WRITES:
        return WRITES
    return None


# -- records ------------------------------------------------------------------------------


@attrs.frozen
class Blob:
    """A value as LangGraph's serde typed it: ``(type, bytes)``, the bytes in base64."""

    type: str
    data: str

    @classmethod
    def of(cls, typed: tuple[str, bytes]) -> Blob:
        return cls(typed[0], base64.b64encode(typed[1]).decode("ascii"))

    def typed(self, key: str) -> tuple[str, bytes]:
        try:
            return self.type, base64.b64decode(self.data, validate=True)
        except (binascii.Error, ValueError):
            raise CorruptRecord(key, "a value is not valid base64") from None


@attrs.frozen
class Write:
    """One pending write: its index in the task's writes (negative for LangGraph's
    special channels: error, interrupt, resume, scheduled), channel and value."""

    idx: int
    channel: str
    value: Blob


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


@attrs.frozen
class GraphCheckpoint:
    """One LangGraph checkpoint (``langgraph/{thread}/{ns}/c/{checkpoint}``)."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint: Blob
    metadata: Blob
    digest: str = ""
    schema_version: int = 1

    def expected_digest(self) -> str:
        return _digest(
            self.thread_id,
            self.checkpoint_ns,
            self.checkpoint_id,
            "" if self.parent_checkpoint_id is None else "p" + self.parent_checkpoint_id,
            self.checkpoint.type,
            self.checkpoint.data,
            self.metadata.type,
            self.metadata.data,
        )

    def sealed(self) -> GraphCheckpoint:
        return attrs.evolve(self, digest=self.expected_digest())


@attrs.frozen
class GraphWrites:
    """One task's pending writes to one checkpoint
    (``langgraph/{thread}/{ns}/w/{checkpoint}/{task}``), ordered by ``idx``."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    writes: tuple[Write, ...]
    digest: str = ""
    schema_version: int = 1

    def expected_digest(self) -> str:
        parts = [self.thread_id, self.checkpoint_ns, self.checkpoint_id]
        parts += [self.task_id, self.task_path]
        for w in self.writes:
            parts += [str(w.idx), w.channel, w.value.type, w.value.data]
        return _digest(*parts)

    def sealed(self) -> GraphWrites:
        return attrs.evolve(self, digest=self.expected_digest())


codec.register_kind("langgraph_checkpoint", GraphCheckpoint)
codec.register_kind("langgraph_writes", GraphWrites)


def encode(record: GraphCheckpoint | GraphWrites) -> bytes:
    return codec.encode(record.sealed())


def decode_checkpoint(raw: bytes, key: str) -> GraphCheckpoint:
    record = codec.decode(GraphCheckpoint, raw, key=key)
    if record.digest != record.expected_digest():
        raise CorruptRecord(key, "its digest does not match its content")
    return record


def decode_writes(raw: bytes, key: str) -> GraphWrites:
    record = codec.decode(GraphWrites, raw, key=key)
    if record.digest != record.expected_digest():
        raise CorruptRecord(key, "its digest does not match its content")
    return record
