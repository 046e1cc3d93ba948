"""Which rows of the transition table fired: a recorder for transition coverage.

Set ``LIFECYCLE_COVERAGE=<path>`` and every row the machine fires is recorded
(the machine calls :func:`record` with the row's index in
``lifecycle.spec.TABLE.rows``); at process exit the indexes are merged into the
JSON file at ``path``, so several processes (a test run's subprocesses too) add
to one file. :func:`load` reads it back and
:func:`lifecycle.diagrams.coverage_diagram` draws it.

When the variable is not set, :func:`record` is one module-level flag check.

The file names the table it was recorded against (a digest of its rows), so
that indexes recorded against another version of the table are refused
instead of being drawn on the wrong edges.
"""

from __future__ import annotations

import atexit
import hashlib
import os
from pathlib import Path

import orjson

from lifecycle.errors import CorruptRecord
from lifecycle.logs import get_logger

log = get_logger(__name__)

ENV_VAR = "LIFECYCLE_COVERAGE"

_enabled = False
_path: Path | None = None
_fired: set[int] = set()


def record(row_index: int) -> None:
    """Note that row ``row_index`` of the table fired (nothing when coverage is off)."""
    if _enabled:
        _fired.add(row_index)


def fired() -> frozenset[int]:
    """The rows recorded so far in this process."""
    return frozenset(_fired)


def enabled() -> bool:
    return _enabled


def table_digest() -> str:
    """A digest of the table's rows: what the indexes in a coverage file refer to."""
    from lifecycle.spec import TABLE

    text = "\n".join(f"{row.event}|{row.source}|{row.dest}|{row.label}" for row in TABLE.rows)
    return hashlib.sha256(text.encode()).hexdigest()


def enable(path: str | os.PathLike[str]) -> None:
    """Start recording; merge the rows into ``path`` at process exit."""
    global _enabled, _path
    if _path is None:
        atexit.register(_write_at_exit)
    _path = Path(path)
    _enabled = True


def _write_at_exit() -> None:
    if _path is not None:
        try:
            write(_path, _fired)
        except OSError as err:  # at exit there is no caller left to raise to
            log.warning("coverage_not_written", path=str(_path), error=str(err))


def write(path: str | os.PathLike[str], rows: set[int] | frozenset[int]) -> None:
    """Merge ``rows`` into the coverage file at ``path`` (created if absent)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = table_digest()
    with open(path, "a+b") as handle:
        _lock(handle.fileno())
        handle.seek(0)
        existing = handle.read()
        merged = set(rows)
        if existing:
            merged |= _parse(existing, str(path), digest)
        handle.seek(0)
        handle.truncate()
        handle.write(orjson.dumps({"table": digest, "rows": sorted(merged)}))
        handle.flush()


def load(path: str | os.PathLike[str]) -> set[int]:
    """The rows recorded in the coverage file at ``path``."""
    data = Path(path).read_bytes()
    return _parse(data, str(path), table_digest())


def _parse(data: bytes, name: str, digest: str) -> set[int]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise CorruptRecord(name, f"not a coverage file: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise CorruptRecord(name, 'not a coverage file: expected {"table": ..., "rows": [...]}')
    if doc.get("table") != digest:
        raise CorruptRecord(
            name,
            "recorded against a different transition table; delete it and record again",
        )
    rows = doc["rows"]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in rows):
        raise CorruptRecord(name, "rows must be non-negative integers")
    return set(rows)


def never_fired(rows: set[int] | frozenset[int]) -> list[int]:
    """The indexes of the table rows not in ``rows``, in table order."""
    from lifecycle.spec import TABLE

    return [i for i in range(len(TABLE.rows)) if i not in rows]


def report(rows: set[int] | frozenset[int]) -> str:
    """``N of 57 rows exercised``, then one line per row never exercised."""
    from lifecycle.spec import TABLE

    missing = never_fired(rows)
    total = len(TABLE.rows)
    lines = [f"transition coverage: {total - len(missing)} of {total} rows exercised"]
    if missing:
        lines.append("never exercised:")
        for i in missing:
            row = TABLE.rows[i]
            lines.append(f"  row {i}: {row.source} -> {row.target}: {row.label}")
    return "\n".join(lines)


def _lock(fd: int) -> None:
    """Serialize writers from several processes (POSIX; elsewhere the last writer wins)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


if os.environ.get(ENV_VAR):
    enable(os.environ[ENV_VAR])
