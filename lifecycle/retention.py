"""Retention: archive old sessions, prune very old ones, keep what matters.

Rules (from SuperClaude's Session Lifecycle Pattern: "Archived sessions (>30 days)",
"Automatic pruning: Sessions >90 days"):

- a session record older than ``archive_after`` (30 days) moves from
  ``session/{ts}`` to ``session/history/{ts}``;
- a session record older than ``prune_after`` (90 days) is deleted, archived or not;
- a checkpoint older than ``prune_after`` is deleted (so a pruned session's
  checkpoints go with it), ancestors included: every restore makes the new
  checkpoint a descendant of the old one, so protecting ancestry would keep every
  checkpoint ever written. What always stays is the newest checkpoint of each live
  chain: the latest (``checkpoints/latest``), and the ones the open session saved
  and restored (``session/context``); the rest of a chain inside the window stays
  because it is young, not because of its descendants;
- a journal (``journal/{session}/...``) of a session older than ``prune_after`` is
  deleted (the open session's stays);
- learnings, summaries, project state and ``session/current``'s session stay;
  with ``summaries_after`` (off by default), the daily and weekly summaries and the
  decisions log's daily segments older than it go too, so that the store's whole
  size is bounded by retention.
- with a ``work_tree``, the git snapshot refs of the checkpoints that are gone
  (``refs/lifecycle/{project}/{id}``) are deleted too, so ``git gc`` can reclaim them.

Ages come from the timestamps in the key names, so planning reads nothing but two
pointers and the live record. :func:`plan` says what would change and
changes nothing (``lifecycle prune --dry-run``); :func:`apply` carries a plan out
in batches of :data:`BATCH_SIZE` operations, each all-or-nothing: an archived
session is written to ``session/history/`` and removed from ``session/`` in the
same batch, so a crash never loses one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import CorruptRecord, InvalidRecord, InvalidSettings, StoreError
from lifecycle.history import checkpoint_keys_by_ts, checkpoint_ts, current_session, latest_id
from lifecycle.logs import get_logger
from lifecycle.records import LiveContext
from lifecycle.stores.base import Delete, Op, ProjectStore, Put

log = get_logger(__name__)

ARCHIVE_AFTER_DAYS = 30
PRUNE_AFTER_DAYS = 90
#: Operations per store batch: large enough to amortize a transaction (or a folder
#: fsync), small enough that one batch is quick and a failure redoes little.
BATCH_SIZE = 200

#: ``progress(done, total)`` after each batch.
Progress = Callable[[int, int], None]


@attrs.frozen
class Policy:
    archive_after: timedelta = timedelta(days=ARCHIVE_AFTER_DAYS)
    prune_after: timedelta = timedelta(days=PRUNE_AFTER_DAYS)
    #: None: summaries and the decisions' daily segments stay forever.
    summaries_after: timedelta | None = None

    def __attrs_post_init__(self) -> None:
        ages = (self.archive_after, self.prune_after, self.summaries_after or timedelta(0))
        if any(age < timedelta(0) for age in ages):
            raise InvalidSettings(
                f"retention ages must not be negative (archive after {self.archive_after}, "
                f"prune after {self.prune_after}, summaries after {self.summaries_after})"
            )

    @classmethod
    def days(
        cls, archive_after: float, prune_after: float, summaries_after: float | None = None
    ) -> Policy:
        return cls(
            timedelta(days=archive_after),
            timedelta(days=prune_after),
            None if summaries_after is None else timedelta(days=summaries_after),
        )


@attrs.frozen
class Plan:
    """What a prune run would do (keys relative to the project)."""

    now: datetime
    archive: tuple[str, ...] = ()  # session/{ts} -> session/history/{ts}
    prune_sessions: tuple[str, ...] = ()
    prune_checkpoints: tuple[str, ...] = ()
    #: Checkpoints old enough to prune that stay: the newest of each live chain.
    kept_checkpoints: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: Journal entries of sessions older than the prune age.
    prune_journal: tuple[str, ...] = ()
    #: Summaries and decision segments older than ``summaries_after``.
    prune_summaries: tuple[str, ...] = ()

    @property
    def operations(self) -> int:
        return (
            len(self.archive)
            + len(self.prune_sessions)
            + len(self.prune_checkpoints)
            + len(self.prune_journal)
            + len(self.prune_summaries)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "archive": list(self.archive),
            "prune_sessions": list(self.prune_sessions),
            "prune_checkpoints": list(self.prune_checkpoints),
            "kept_checkpoints": list(self.kept_checkpoints),
            "prune_journal": list(self.prune_journal),
            "prune_summaries": list(self.prune_summaries),
            "warnings": list(self.warnings),
        }


@attrs.frozen
class Result:
    plan: Plan
    archived: int
    pruned_sessions: int
    pruned_checkpoints: int
    #: The snapshot refs deleted (a dry run: that would be), by checkpoint id.
    snapshot_refs: tuple[str, ...] = ()


def _ts_of(key: str) -> datetime | None:
    try:
        return keys.parse_ts(key.rsplit("/", 1)[1])
    except ValueError:
        return None


def live_heads(store: ProjectStore, by_ts: dict[str, str], warnings: list[str]) -> set[str]:
    """Keys of the newest checkpoint of each live chain: the latest (by its pointer, or
    the newest by name when the pointer is unreadable), and the checkpoints the open
    session saved and restored. Two reads, whatever the history."""
    kept: set[str] = set()
    current = latest_id(store)
    if current is None and by_ts:
        kept.add(by_ts[max(by_ts)])
    ids = [current]
    try:
        entry = store.get(keys.CONTEXT)
        if entry is not None:
            live = codec.decode(LiveContext, entry.value, key=keys.CONTEXT)
            if live.session.end_time is None:
                ids += [live.saved_checkpoint_id, live.restored_from]
    except (CorruptRecord, InvalidRecord, StoreError) as exc:
        warnings.append(f"{keys.CONTEXT} is unreadable ({exc}); only the latest is kept")
    for checkpoint_id in ids:
        ts = None if checkpoint_id is None else checkpoint_ts(checkpoint_id)
        key = None if ts is None else by_ts.get(ts)
        if key is not None:
            kept.add(key)
    return kept


def _current_session_key(store: ProjectStore) -> str | None:
    try:
        found = current_session(store)
    except StoreError:
        return None
    return None if found is None else found[0]


def plan(store: ProjectStore, now: datetime, policy: Policy = Policy()) -> Plan:
    """What :func:`apply` would do at ``now``; reads only the latest checkpoint chain."""
    warnings: list[str] = []
    archive_before = now - policy.archive_after
    prune_before = now - policy.prune_after
    current = _current_session_key(store)
    archive: list[str] = []
    prune_sessions: list[str] = []
    for key in store.list_keys(keys.SESSION_PREFIX):
        at = _ts_of(key)
        if at is None or key == current:
            continue  # session/current, session/last, session/context; the live session
        if at < prune_before:
            prune_sessions.append(key)
        elif at < archive_before and not key.startswith(keys.SESSION_HISTORY_PREFIX):
            archive.append(key)
    by_ts = checkpoint_keys_by_ts(store)
    old = sorted(k for ts, k in by_ts.items() if keys.parse_ts(ts) < prune_before)
    kept = live_heads(store, by_ts, warnings) if old else set()
    return Plan(
        now=now,
        archive=tuple(archive),
        prune_sessions=tuple(prune_sessions),
        prune_checkpoints=tuple(k for k in old if k not in kept),
        kept_checkpoints=tuple(k for k in old if k in kept),
        warnings=tuple(warnings),
        prune_journal=tuple(_old_journal(store, prune_before, current)),
        prune_summaries=(
            ()
            if policy.summaries_after is None
            else tuple(_old_summaries(store, now - policy.summaries_after))
        ),
    )


def _old_summaries(store: ProjectStore, before: datetime) -> list[str]:
    """Daily and weekly summaries and daily decision segments of days before ``before``."""
    found = []
    day = before.date()
    for prefix in ("summaries/daily/", keys.DECISIONS_DAY_PREFIX):
        for key in store.list_keys(prefix):
            if key.rsplit("/", 1)[1] < day.isoformat():
                found.append(key)
    week = keys.weekly_summary_key(day).rsplit("/", 1)[1]
    for key in store.list_keys("summaries/weekly/"):
        if key.rsplit("/", 1)[1] < week:  # a week wholly before the day's week
            found.append(key)
    return found


def _old_journal(store: ProjectStore, before: datetime, current: str | None) -> list[str]:
    """Journal entries of sessions that began before ``before`` (never the open one's)."""
    open_name = None if current is None else "session-" + current.rsplit("/", 1)[1]
    found = []
    for key in store.list_keys(keys.JOURNAL_PREFIX):
        name = key[len(keys.JOURNAL_PREFIX) :].split("/", 1)[0]
        if name == open_name:
            continue
        try:
            at = keys.parse_ts(name.removeprefix("session-"))
        except ValueError:
            continue  # not a session's journal: not ours to judge
        if at < before:
            found.append(key)
    return found


def _chunks(ops: list[Op], size: int) -> list[list[Op]]:
    return [ops[i : i + size] for i in range(0, len(ops), size)]


def apply(
    store: ProjectStore,
    the_plan: Plan,
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> Result:
    """Carry out ``the_plan`` in batches; an archive move is one Put and one Delete in
    the same batch. Keys that vanished since planning are skipped."""
    total = the_plan.operations
    done = 0
    archived = 0
    half = max(1, batch_size // 2)
    for i in range(0, len(the_plan.archive), half):
        ops: list[Op] = []
        for key in the_plan.archive[i : i + half]:
            entry = store.get(key)
            if entry is None:
                continue
            target = keys.SESSION_HISTORY_PREFIX + key.rsplit("/", 1)[1]
            ops += [Put(target, entry.value), Delete(key, expected_version=entry.version)]
        if ops:
            store.batch(ops)
            archived += len(ops) // 2
        done += len(the_plan.archive[i : i + half])
        if progress is not None:
            progress(done, total)
    deletes: list[Op] = [
        Delete(k)
        for k in (
            *the_plan.prune_sessions,
            *the_plan.prune_checkpoints,
            *the_plan.prune_journal,
            *the_plan.prune_summaries,
        )
    ]
    for chunk in _chunks(deletes, batch_size):
        store.batch(chunk)
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    log.info(
        "retention.applied",
        archived=archived,
        pruned_sessions=len(the_plan.prune_sessions),
        pruned_checkpoints=len(the_plan.prune_checkpoints),
        kept_checkpoints=len(the_plan.kept_checkpoints),
    )
    return Result(the_plan, archived, len(the_plan.prune_sessions), len(the_plan.prune_checkpoints))


def prune(
    store: ProjectStore,
    now: datetime,
    policy: Policy = Policy(),
    *,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    work_tree: str | os.PathLike[str] | None = None,
) -> Result:
    """Plan and (unless ``dry_run``) apply retention at ``now``; with ``work_tree``, also
    delete the snapshot refs of the checkpoints that are gone from that repository."""
    the_plan = plan(store, now, policy)
    if dry_run:
        result = Result(the_plan, 0, 0, 0)
    else:
        result = apply(store, the_plan, batch_size=batch_size, progress=progress)
    if work_tree is None:
        return result
    from lifecycle import snapshots

    try:
        repo = snapshots.find_repo(work_tree)
    except snapshots.NoWorkTree:
        return result
    gone = set(the_plan.prune_checkpoints) if dry_run else set()
    ids = [f"cp-{ts}" for ts, key in checkpoint_keys_by_ts(store).items() if key not in gone]
    stale = snapshots.stale_refs(repo, store.project, ids)
    if not dry_run:
        snapshots.delete_refs(repo, store.project, stale)
    return attrs.evolve(result, snapshot_refs=tuple(stale))
