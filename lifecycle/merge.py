"""The "merge" conflict policy: two sessions' states combined, and where they disagree.

Seed: "Concurrent Sessions: last-write-wins with merge option; Divergent Contexts:
present diff to user for resolution". When a manager with ``conflict="merge"``
finds that another writer moved ``checkpoints/latest`` since it last looked, it
merges that checkpoint's state into its own before writing (see
:meth:`lifecycle.session.SessionManager._commit_checkpoint`):

- list fields are unioned by identity: tasks by ``id`` (a task completed on either
  side is no longer active), files by ``path`` (operations unioned), decisions by
  :attr:`~lifecycle.records.Decision.id`, errors, questions, blockers, discoveries
  and recent changes by value; our items first, then theirs that we lack;
- scalars keep our value (we are the later write) and every place where the two
  sides hold different values is reported as a :class:`Divergence`: the phase,
  each key of ``progress`` and ``context`` (keys only one side has are kept), and
  an item present on both sides with different contents (a task, a file).

A pure function of its inputs: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TypeVar

import attrs

from lifecycle.records import Discoveries, FileChange, JSONValue, Task, WorkState

T = TypeVar("T")

#: How many recent changes a merged state keeps (as the manager does).
RECENT_KEEP = 10


@attrs.frozen
class Divergence:
    """One field where the two sides disagree; ``ours`` is the value kept."""

    field: str
    ours: object
    theirs: object

    def describe(self) -> str:
        return f"{self.field}: kept {self.ours!r}, other writer had {self.theirs!r}"


@attrs.frozen
class Merged:
    """The merged state, and the divergences found while merging."""

    phase: str
    progress: dict[str, JSONValue]
    context: dict[str, JSONValue]
    work: WorkState
    divergences: tuple[Divergence, ...] = ()


def _union(
    ours: Iterable[T],
    theirs: Iterable[T],
    key: Callable[[T], Hashable],
    name: str,
    found: list[Divergence],
) -> tuple[T, ...]:
    merged: dict[Hashable, T] = {}
    for item in ours:
        merged.setdefault(key(item), item)
    for item in theirs:
        k = key(item)
        mine = merged.get(k)
        if mine is None:
            merged[k] = item
        elif mine != item:
            found.append(Divergence(f"{name}[{k}]", mine, item))
    return tuple(merged.values())


def _strings(ours: Iterable[str], theirs: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*ours, *theirs)))


def _files(
    ours: Iterable[FileChange], theirs: Iterable[FileChange], found: list[Divergence]
) -> tuple[FileChange, ...]:
    merged: dict[str, FileChange] = {f.path: f for f in ours}
    for item in theirs:
        mine = merged.get(item.path)
        if mine is None or mine == item:
            merged[item.path] = mine or item
            continue
        if mine.changes != item.changes and item.changes is not None:
            found.append(
                Divergence(f"files_modified[{item.path}].changes", mine.changes, item.changes)
            )
        operations = _strings(mine.operations, item.operations)
        merged[item.path] = attrs.evolve(mine, operations=operations)
    return tuple(merged.values())


def merge_work(ours: WorkState, theirs: WorkState) -> tuple[WorkState, tuple[Divergence, ...]]:
    """Union every list field of two work states by identity; report differing items."""
    found: list[Divergence] = []

    def task_id(t: Task) -> Hashable:
        return t.id

    completed = _union(
        ours.completed_tasks, theirs.completed_tasks, task_id, "completed_tasks", found
    )
    done = {t.id for t in completed}
    active = _union(
        (t for t in ours.active_tasks if t.id not in done),
        (t for t in theirs.active_tasks if t.id not in done),
        task_id,
        "active_tasks",
        found,
    )
    work = WorkState(
        active_tasks=active,
        completed_tasks=completed,
        open_questions=_strings(ours.open_questions, theirs.open_questions),
        blockers=_strings(ours.blockers, theirs.blockers),
        files_modified=_files(ours.files_modified, theirs.files_modified, found),
        decisions=_union(ours.decisions, theirs.decisions, lambda d: d.id, "decisions", found),
        discoveries=Discoveries(
            _strings(ours.discoveries.patterns_found, theirs.discoveries.patterns_found),
            _strings(ours.discoveries.insights_gained, theirs.discoveries.insights_gained),
        ),
        recent_changes=_strings(ours.recent_changes, theirs.recent_changes)[-RECENT_KEEP:],
        errors=tuple(dict.fromkeys((*ours.errors, *theirs.errors))),
    )
    return work, tuple(found)


def _merge_map(
    name: str,
    ours: Mapping[str, JSONValue],
    theirs: Mapping[str, JSONValue],
    found: list[Divergence],
) -> dict[str, JSONValue]:
    merged = dict(theirs)
    for key, value in ours.items():
        if key in theirs and theirs[key] != value:
            found.append(Divergence(f"{name}.{key}", value, theirs[key]))
        merged[key] = value
    # our keys first, in our order, then theirs
    return {**{k: merged[k] for k in ours}, **{k: v for k, v in merged.items() if k not in ours}}


def merge_state(
    phase: str,
    progress: Mapping[str, JSONValue],
    context: Mapping[str, JSONValue],
    work: WorkState,
    *,
    their_phase: str,
    their_progress: Mapping[str, JSONValue],
    their_context: Mapping[str, JSONValue],
    their_work: WorkState,
) -> Merged:
    """Merge another writer's checkpointed state into ours (ours is the later write)."""
    found: list[Divergence] = []
    if their_phase and phase != their_phase:
        found.append(Divergence("phase", phase, their_phase))
    merged_progress = _merge_map("progress", progress, their_progress, found)
    merged_context = _merge_map("context", context, their_context, found)
    merged_work, work_found = merge_work(work, their_work)
    return Merged(
        phase=phase or their_phase,
        progress=merged_progress,
        context=merged_context,
        work=merged_work,
        divergences=(*found, *work_found),
    )
