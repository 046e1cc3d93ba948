"""The export format: JSON Lines, versioned, one checksummed record per line.

See docs/export-format.md for the reader's description. In short::

    {"format": "lifecycle-export", "format_version": 1, ...}            header
    {"project": P, "key": K, "kind": ..., "schema_version": N,
     "record": {...} | "text": "..." | "base64": "...", "checksum": "sha256:..."}
    ...
    {"end": true, "records": N, "digest": "sha256:..."}                  trailer

A record's checksum is the SHA-256 of ``project NUL key NUL payload``, where the
payload is the value as it is written back to a store: the compact JSON of
``record`` (orjson), the UTF-8 of ``text``, or the bytes of ``base64``. The trailer
counts the records and hashes their checksums in order, so a file cut anywhere (even
at a line break) or with a line removed, added or reordered is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

import attrs
import orjson

from lifecycle.errors import InvalidExport

FORMAT = "lifecycle-export"
FORMAT_VERSION = 1
#: No line is longer than this: a stored record is at most 4 MB, base64 adds a third.
MAX_LINE_BYTES = 8 * 1024 * 1024


@attrs.frozen
class Item:
    """One stored value of one project, as it moves between stores."""

    project: str
    key: str
    value: bytes


def checksum(project: str, key: str, value: bytes) -> str:
    h = hashlib.sha256()
    h.update(project.encode())
    h.update(b"\x00")
    h.update(key.encode())
    h.update(b"\x00")
    h.update(value)
    return "sha256:" + h.hexdigest()


def _kind_and_payload(value: bytes) -> tuple[str, int | None, dict[str, Any]]:
    """How a value is written in a line: a JSON record when it is one (and reads back to
    the same bytes), else text, else base64."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and orjson.dumps(data) == value:
        kind = data.get("kind")
        version = data.get("schema_version")
        return (
            kind if isinstance(kind, str) else "record",
            version if isinstance(version, int) and not isinstance(version, bool) else None,
            {"record": data},
        )
    try:
        return "text", None, {"text": value.decode("utf-8")}
    except UnicodeDecodeError:
        return "bytes", None, {"base64": base64.b64encode(value).decode()}


def header(project: str | None, *, lifecycle_version: str) -> bytes:
    line = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "lifecycle": lifecycle_version,
        "exported_at": datetime.now(UTC).isoformat(),
        "project": project,
    }
    return orjson.dumps(line) + b"\n"


def record_line(item: Item) -> tuple[bytes, str]:
    kind, version, payload = _kind_and_payload(item.value)
    sum_ = checksum(item.project, item.key, item.value)
    line = {
        "project": item.project,
        "key": item.key,
        "kind": kind,
        "schema_version": version,
        **payload,
        "checksum": sum_,
    }
    return orjson.dumps(line) + b"\n", sum_


def trailer(count: int, digest: str) -> bytes:
    return orjson.dumps({"end": True, "records": count, "digest": digest}) + b"\n"


class Digest:
    """The trailer's hash of every record checksum, in order."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def add(self, sum_: str) -> None:
        self._h.update(sum_.encode() + b"\n")

    def value(self) -> str:
        return "sha256:" + self._h.hexdigest()


def write_export(out: IO[bytes], items: Iterable[Item], project: str | None, version: str) -> int:
    """Write a whole export to ``out``, one item at a time; return the record count."""
    out.write(header(project, lifecycle_version=version))
    digest = Digest()
    count = 0
    for item in items:
        line, sum_ = record_line(item)
        out.write(line)
        digest.add(sum_)
        count += 1
    out.write(trailer(count, digest.value()))
    return count


# -- reading -------------------------------------------------------------------------------


def _lines(source: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    number = 0
    while True:
        raw = source.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise InvalidExport(f"line {number} is over {MAX_LINE_BYTES} bytes: not an export")
        if not raw.endswith(b"\n"):
            raise InvalidExport(
                f"line {number} has no line break: the file is cut short (an export ends "
                "with its trailer line)"
            )
        yield number, raw


def _object(number: int, raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidExport(f"line {number} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidExport(f"line {number} is not a JSON object")
    return data


def _value(number: int, data: dict[str, Any]) -> bytes:
    present = [name for name in ("record", "text", "base64") if name in data]
    if len(present) != 1:
        raise InvalidExport(f"line {number} needs exactly one of record, text, base64")
    payload = data[present[0]]
    if present[0] == "record":
        if not isinstance(payload, dict):
            raise InvalidExport(f"line {number}: record must be a JSON object")
        return orjson.dumps(payload)
    if not isinstance(payload, str):
        raise InvalidExport(f"line {number}: {present[0]} must be a string")
    if present[0] == "text":
        return payload.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise InvalidExport(f"line {number}: base64 is not valid base64") from None


def read_export(source: IO[bytes]) -> Iterator[Item]:
    """Every item of an export, each checked, one at a time.

    Raises :class:`InvalidExport` at the first problem: a header that is not ours or
    of a newer format version, a line that is not a record, a bad key or project, a
    checksum that does not match, a record of a schema version newer than this
    lifecycle reads, a missing or wrong trailer. A caller that must change nothing on
    a bad file reads it through once before writing anything (:func:`verify`).
    """
    from lifecycle import codec, keys
    from lifecycle.errors import InvalidKey

    lines = _lines(source)
    first = next(lines, None)
    if first is None:
        raise InvalidExport("the file is empty: an export starts with its header line")
    head = _object(*first)
    if head.get("format") != FORMAT:
        raise InvalidExport(f"line 1 is not a {FORMAT} header: this is not a lifecycle export")
    version = head.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidExport(f"line 1: format_version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise InvalidExport(
            f"the export is format version {version}; this lifecycle reads versions 1 to "
            f"{FORMAT_VERSION}: upgrade lifecycle to import it"
        )
    digest = Digest()
    count = 0
    for number, raw in lines:
        data = _object(number, raw)
        if data.get("end") is True:
            if data.get("records") != count or data.get("digest") != digest.value():
                raise InvalidExport(
                    f"line {number}: the trailer says {data.get('records')!r} records, the "
                    f"file holds {count} (or their checksums differ): lines were removed, "
                    "added or reordered"
                )
            if next(lines, None) is not None:
                raise InvalidExport(f"line {number + 1}: lines after the trailer")
            return
        project, key = data.get("project"), data.get("key")
        if not isinstance(project, str) or not isinstance(key, str):
            raise InvalidExport(f"line {number} has no project and key")
        try:
            keys.validate_project(project)
            keys.validate(key)
        except InvalidKey as exc:
            raise InvalidExport(f"line {number}: {exc}") from None
        value = _value(number, data)
        sum_ = checksum(project, key, value)
        if data.get("checksum") != sum_:
            raise InvalidExport(
                f"line {number} ({project}/{key}): checksum {data.get('checksum')!r} does not "
                "match the record: the line was changed or damaged"
            )
        kind, schema = data.get("kind"), data.get("schema_version")
        known = codec.CURRENT.get(kind) if isinstance(kind, str) else None
        if known is not None and isinstance(schema, int) and schema > known:
            raise InvalidExport(
                f"line {number} ({project}/{key}): {kind} record of schema_version {schema}, "
                f"this lifecycle reads versions 1 to {known}: upgrade lifecycle to import it"
            )
        digest.add(sum_)
        count += 1
        yield Item(project, key, value)
    raise InvalidExport(
        f"the file ends after {count} records without its trailer line: it is cut short"
    )


def verify(source: IO[bytes]) -> tuple[int, set[str]]:
    """Read a whole export, checking everything; return its record count and projects."""
    count = 0
    projects: set[str] = set()
    for item in read_export(source):
        count += 1
        projects.add(item.project)
    return count, projects
