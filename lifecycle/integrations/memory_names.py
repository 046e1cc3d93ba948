"""Serena's memory names, mapped to keys of the grammar and back.

Serena names a memory by any text: topics separated by ``/`` (``auth/login/logic``),
spaces and any script (``Project Overview``, ``日本語メモ``), a ``global/`` first topic
for memories shared by every project, an optional ``mem:`` prefix and ``.md``
suffix (both dropped). It refuses empty topics, ``..`` and a bare ``global``. This
module accepts exactly those names and maps each one to a key, reversibly:

- a name whose first topic is a namespace of the grammar (``learning/...``,
  ``session/last``, ``memories/...``) is that key (a bad one is an InvalidKey with
  the nearest valid key);
- any other name is ``memories/{name}``, each topic kept as it is when it is already
  a key segment (``A-Z a-z 0-9 . _ -``, starting with a letter or digit, at most 100
  characters, not starting with ``x--``), else encoded as ``x--`` and the Punycode
  of the topic with every ASCII character outside ``A-Z a-z 0-9 . -`` written
  ``_XX`` (hex): ``Project Overview`` is ``x--Project_20Overview-``;
- ``global/{name}`` is the same key in the shared scope (:data:`GLOBAL_SCOPE`).

:func:`memory_name` is the inverse: it gives the name back for a key (a
``memories/`` key whose first topic is a namespace, or ``global``, keeps its
``memories/`` prefix, so that the name means the same key again).
"""

from __future__ import annotations

import re

import attrs

from lifecycle import keys
from lifecycle.errors import InvalidKey, quoted

#: The storage root of Serena's ``global/`` memories: beside the projects' roots, and
#: no project can be called this (project names start with a letter or digit).
GLOBAL_SCOPE = "_global"
#: Serena's first topic for memories shared across projects.
GLOBAL_TOPIC = "global"
#: At most this many topics under ``memories/`` (the key grammar's limit).
MAX_TOPICS = 8
_ENCODED = "x--"
_SEGMENT = re.compile(keys.NAME, re.ASCII)
_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")
_ESCAPE = re.compile(r"_([0-9a-f]{2})")


@attrs.frozen
class MemoryRef:
    """Where a memory name points: a key, in the project's scope or the global one."""

    key: str
    shared: bool = False

    @property
    def name(self) -> str:
        return memory_name(self.key, shared=self.shared)


def _refuse(name: str, reason: str) -> InvalidKey:
    return InvalidKey(name, reason, None)


def encode_topic(topic: str) -> str:
    """One topic as a key segment (itself when it already is one)."""
    if _SEGMENT.fullmatch(topic) and not topic.startswith(_ENCODED):
        return topic
    escaped = "".join(c if c in _KEPT or ord(c) > 0x7F else f"_{ord(c):02x}" for c in topic)
    return _ENCODED + escaped.encode("punycode").decode("ascii")


def decode_topic(segment: str) -> str | None:
    """The topic a key segment holds, or None for a segment no topic encodes to."""
    if not segment.startswith(_ENCODED):
        return segment
    try:
        escaped = segment[len(_ENCODED) :].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return None
    topic = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), escaped)
    return topic if encode_topic(topic) == segment else None


def memory_ref(name: object) -> MemoryRef:
    """The key a Serena memory name means (see the module's rules); InvalidKey if none."""
    if not isinstance(name, str):
        raise InvalidKey(repr(name), "a memory name must be a string", None)
    plain = name.removeprefix("mem:")
    plain = plain[:-3] if plain.endswith(".md") else plain
    if not plain:
        raise _refuse(name, "a memory name cannot be empty")
    topics = plain.split("/")
    if "" in topics:
        raise _refuse(name, "a memory name cannot start or end with '/' or hold '//'")
    if ".." in topics or "." in topics:
        raise _refuse(name, "a memory name cannot hold a '.' or '..' topic")
    shared = topics[0] == GLOBAL_TOPIC
    if shared:
        topics = topics[1:]
        if not topics:
            raise _refuse(name, "a bare 'global' is not a memory name; use 'global/{name}'")
    head = topics[0]
    if head in keys.NAMESPACES and head != "memories":
        key = "/".join(topics)
        if not keys.is_valid(key):
            raise InvalidKey(key, keys._reason(key), keys.suggest(key))
        if shared:
            raise _refuse(name, "only memories are shared (global/...), not records")
        return MemoryRef(key)
    if head == "memories":
        topics = topics[1:]
        if not topics:
            raise _refuse(name, "'memories' alone is a folder; name a memory under it")
    if len(topics) > MAX_TOPICS:
        raise _refuse(name, f"a memory name has at most {MAX_TOPICS} topics")
    segments = [encode_topic(t) for t in topics]
    key = keys.MEMORIES_PREFIX + "/".join(segments)
    if not keys.is_valid(key):
        long = max(topics, key=len)
        raise _refuse(
            name,
            f"topic {quoted(long, 40)} is too long: a topic is stored in at most 100 "
            "characters (about 90 ASCII letters, or 40 in other scripts)",
        )
    return MemoryRef(key, shared)


def memory_key(name: object) -> str:
    """The key of a project memory name (a ``global/`` name: its key in the shared scope)."""
    return memory_ref(name).key


def memory_name(key: str, *, shared: bool = False) -> str:
    """The Serena name of ``key``: the inverse of :func:`memory_ref` (the key itself for a
    ``memories/`` key no name maps to)."""
    if not key.startswith(keys.MEMORIES_PREFIX):
        return key
    topics = [decode_topic(s) for s in key[len(keys.MEMORIES_PREFIX) :].split("/")]
    if any(t is None for t in topics):
        return key
    name = "/".join(t for t in topics if t is not None)
    if topics[0] in keys.NAMESPACES or topics[0] == GLOBAL_TOPIC:
        name = keys.MEMORIES_PREFIX + name
    return f"{GLOBAL_TOPIC}/{name}" if shared else name


__all__ = [
    "GLOBAL_SCOPE",
    "GLOBAL_TOPIC",
    "MemoryRef",
    "decode_topic",
    "encode_topic",
    "memory_key",
    "memory_name",
    "memory_ref",
]
