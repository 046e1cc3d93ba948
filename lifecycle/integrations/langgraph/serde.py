"""LangGraph's serde protocol without pickle, in either direction.

:class:`NoPickleSerializer` wraps LangGraph's ``JsonPlusSerializer`` (msgpack with
LangGraph's extension types; the JSON form is read for old data). It refuses to be
built on a serializer with ``pickle_fallback``; a value that serializer cannot encode
is an :class:`UnsupportedValue` naming its type, never a pickle; and a stored payload
of any other type than the JSON-plus ones (``pickle`` above all) is an
:class:`UnsafePayload`, raised before a byte of it is looked at.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from lifecycle.errors import InvalidRecord, InvalidSettings

#: The payload types JSON-plus writes (msgpack, null, bytes) or reads (json).
SAFE_TYPES = frozenset({"msgpack", "json", "null", "bytes", "bytearray"})


class UnsupportedValue(InvalidRecord):
    """A value LangGraph's JSON-plus serializer cannot encode (and pickle is not used)."""

    def __init__(self, value: object, reason: str) -> None:
        self.value_type = f"{type(value).__module__}.{type(value).__qualname__}"
        super().__init__(
            f"cannot store a {self.value_type} value in a LangGraph checkpoint: {reason}; "
            "lifecycle stores only what LangGraph's JSON-plus serializer encodes (str, "
            "numbers, lists, dicts, dataclasses, pydantic models, LangChain messages, ...) "
            "and never pickles"
        )


class UnsafePayload(InvalidRecord):
    """A stored payload whose type lifecycle refuses to deserialize (a pickle, above all)."""

    def __init__(self, payload_type: str, key: str = "") -> None:
        self.payload_type = payload_type
        self.key = key
        where = f" in {key!r}" if key else ""
        super().__init__(
            f"refusing to deserialize a {payload_type!r} payload{where}: lifecycle reads "
            f"only LangGraph's JSON-plus payloads ({', '.join(sorted(SAFE_TYPES))}) and "
            "never unpickles stored data"
        )


class NoPickleSerializer(SerializerProtocol):
    """The serde of :class:`~lifecycle.integrations.langgraph.LifecycleSaver`."""

    def __init__(self, inner: JsonPlusSerializer | None = None) -> None:
        if inner is None:
            inner = JsonPlusSerializer()
        if not isinstance(inner, JsonPlusSerializer):
            raise InvalidSettings(
                f"LifecycleSaver serializes with LangGraph's JsonPlusSerializer, "
                f"not {type(inner).__name__}"
            )
        if inner.pickle_fallback:
            raise InvalidSettings(
                "LifecycleSaver refuses JsonPlusSerializer(pickle_fallback=True): "
                "stored pickles run code when read"
            )
        self.inner = inner

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        try:
            typed = self.inner.dumps_typed(obj)
        except (TypeError, ValueError) as exc:  # ormsgpack's encode error is a TypeError
            raise UnsupportedValue(obj, str(exc) or type(exc).__name__) from None
        if typed[0] not in SAFE_TYPES:
            raise UnsupportedValue(obj, f"it serialized as {typed[0]!r}")
        return typed

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.load(data)

    def load(self, data: tuple[str, bytes | memoryview], key: str = "") -> Any:
        """``loads_typed`` of a stored payload; msgpack is read from a view of the record
        (no copy), the other types from bytes."""
        type_, raw = data
        if type_ not in SAFE_TYPES:
            raise UnsafePayload(type_, key)
        if type_ != "msgpack" and not isinstance(raw, bytes):
            raw = bytes(raw)
        return self.inner.loads_typed((type_, raw))  # type: ignore[arg-type]
