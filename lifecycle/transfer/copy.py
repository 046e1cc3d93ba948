"""Moving records into a store: the rules of import and migrate, applied in chunks.

For each incoming ``(project, key, value)``:

- the key is absent: written;
- the same bytes are there: nothing (so importing twice, or re-running a migration
  that was killed, changes nothing that is already done);
- different bytes are there: the incoming value is written only if it is newer (its
  record's time: ``updated_at``, ``end_time``, ``timestamp``, ``at``, ``start_time``,
  ``last_moment``, whichever it has first), or with ``force``. A record whose age
  cannot be told (a memory's text) is kept unless ``force``.

Writes go in batches of :data:`CHUNK` with compare-and-swap on the versions just read,
so a concurrent writer is never overwritten blindly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs
import orjson

from lifecycle.errors import MigrationMismatch, VersionConflict
from lifecycle.logs import get_logger
from lifecycle.transfer.format import Item

log = get_logger(__name__)

CHUNK = 200
_TIME_FIELDS = ("updated_at", "end_time", "timestamp", "at", "start_time", "last_moment")

Progress = Callable[[int, int], None]


@attrs.frozen
class CopyResult:
    total: int = 0
    written: int = 0
    unchanged: int = 0
    #: Keys whose stored record is newer (or of unknown age) and was kept.
    kept: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "written": self.written,
            "unchanged": self.unchanged,
            "kept": len(self.kept),
            "kept_keys": list(self.kept[:50]),
        }


def moment_of(value: bytes) -> datetime | None:
    """When a stored record happened, as far as its JSON says; None when it does not."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for name in _TIME_FIELDS:
        text = data.get(name)
        if isinstance(text, str):
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
    session = data.get("session")
    return moment_of(orjson.dumps(session)) if isinstance(session, dict) else None


def should_write(existing: bytes | None, incoming: bytes, *, force: bool) -> str:
    """``"write"``, ``"same"`` or ``"keep"`` (see the module docstring)."""
    if existing is None:
        return "write"
    if existing == incoming:
        return "same"
    if force:
        return "write"
    old, new = moment_of(existing), moment_of(incoming)
    if old is not None and new is not None:
        try:
            return "write" if new > old else "keep"
        except TypeError:  # naive against aware: not comparable
            return "keep"
    return "keep"


def _chunks(items: Iterable[Item]) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def copy_into(
    store: Any,
    items: Iterable[Item],
    *,
    force: bool = False,
    progress: Progress | None = None,
    total: int = 0,
) -> CopyResult:
    """Apply the rules to every item, writing into ``store`` (a raw Store: keys are
    ``{project}/{key}``). ``progress(done, total)`` is called after each chunk."""
    from lifecycle.stores.base import Put

    written = unchanged = done = 0
    kept: list[str] = []
    for chunk in _chunks(items):
        for attempt in (1, 2, 3):
            ops: list[Put] = []
            same = 0
            keep: list[str] = []
            for item in chunk:
                full = f"{item.project}/{item.key}"
                entry = store.get(full)
                verdict = should_write(
                    None if entry is None else entry.value, item.value, force=force
                )
                if verdict == "write":
                    version = 0 if entry is None else entry.version
                    ops.append(Put(full, item.value, expected_version=version))
                elif verdict == "same":
                    same += 1
                else:
                    keep.append(full)
            try:
                if ops:
                    store.batch(ops)
            except VersionConflict:
                if attempt == 3:
                    raise
                continue  # another writer changed a key: read the chunk again
            break
        written += len(ops)
        unchanged += same
        kept += keep
        done += len(chunk)
        if progress is not None:
            progress(done, max(total, done))
    return CopyResult(done, written, unchanged, tuple(kept))


def store_items(store: Any, project: str | None = None) -> Iterator[Item]:
    """Every value of ``project`` (all projects when None) in key order, as items."""
    from lifecycle import keys

    prefix = "" if project is None else keys.validate_project(project) + "/"
    for entry in store.scan(prefix):
        owner, _, key = entry.key.partition("/")
        if not keys.is_valid(key):
            log.warning("transfer.key_skipped", key=entry.key, reason="outside the key grammar")
            continue
        yield Item(owner, key, entry.value)


# -- migrate -------------------------------------------------------------------------------


@attrs.frozen
class MigrateResult:
    copy: CopyResult
    verified: int
    source_checksum: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.copy.as_dict(), "verified": self.verified, "checksum": self.source_checksum}


def migrate(
    source: Any, target: Any, *, force: bool = False, progress: Progress | None = None
) -> MigrateResult:
    """Copy every project of ``source`` into ``target``, then check that each source key
    is in the target with the same bytes (or was kept as newer there).

    Resumable: a migration stopped at any point (killed, the network gone) is finished
    by running it again; what was already copied is read and compared, not rewritten.
    """
    total = len(source.list_keys(""))
    result = copy_into(target, store_items(source), force=force, progress=progress, total=total)
    kept = set(result.kept)
    digest = hashlib.sha256()
    verified = 0
    wrong: list[str] = []
    for item in store_items(source):
        full = f"{item.project}/{item.key}"
        digest.update(hashlib.sha256(full.encode() + b"\x00" + item.value).digest())
        if full in kept:
            continue
        entry = target.get(full)
        if entry is None or entry.value != item.value:
            wrong.append(full)
        else:
            verified += 1
    if wrong:
        raise MigrationMismatch(
            f"after the copy, {len(wrong)} key(s) differ in the target (first: {wrong[0]!r}); "
            "another writer changed them, run the migration again"
        )
    if verified + len(kept) != result.total:
        raise MigrationMismatch(
            f"the source held {verified + len(kept)} keys when checked, {result.total} when "
            "copied: it changed during the migration; run it again"
        )
    return MigrateResult(result, verified, "sha256:" + digest.hexdigest())
