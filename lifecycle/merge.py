"""The "merge" conflict policy: two sessions' states combined, and where they disagree.

SuperClaude's Session Lifecycle Pattern asks for "last-write-wins with merge option"
for concurrent sessions and to "present diff to user" for divergent contexts. When a
manager with ``conflict="merge"`` finds that another writer moved ``checkpoints/latest``
since it last looked, it merges that checkpoint's state into its own before writing.

:func:`merge_work` takes the fields from the record class (``attrs.fields``), so a
field added to :class:`~lifecycle.records.WorkState` is merged without a change
here. Each field's rule comes from its type:

- a tuple of records with an ``id`` (tasks, decisions): unioned by id, ours first,
  then theirs that we lack; an item both sides hold differently keeps ours and is
  reported as a :class:`Divergence` (``active_tasks[T1]``);
- any other tuple (questions, blockers, errors, recent changes): unioned by value,
  ours first;
- a nested record (discoveries): merged field by field, by the same rules;
- a mapping: key by key; keys only one side has are kept, a key both sides hold
  differently keeps ours and is reported (``progress.done``);
- anything else: ours, reported when theirs differs (and is not None).

Three fields say more than their type (:data:`FIELD_RULES`): a task completed on
either side is no longer active; files are one item per ``path``, and a file both
sides changed is merged field by field (operations unioned); recent changes keep the
last :data:`RECENT_KEEP`. :func:`merge_state` adds the session's phase, progress
and context. A pure function of its inputs: no I/O, no clock.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from lifecycle.records import JSONValue, WorkState

T = TypeVar("T")
R = TypeVar("R")

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


#: ``rule(name, ours, theirs, found) -> merged value``; appends to ``found``.
Rule = Callable[[str, Any, Any, list[Divergence]], Any]


def _union(
    ours: Iterable[T],
    theirs: Iterable[T],
    key: Callable[[T], Hashable],
    name: str,
    found: list[Divergence],
    *,
    combine: Callable[[str, T, T, list[Divergence]], T] | None = None,
) -> tuple[T, ...]:
    """Ours first, then theirs that we lack, one item per ``key``; an item both sides
    hold differently is ``combine``d, or (without ``combine``) ours, reported."""
    merged: dict[Hashable, T] = {}
    for item in ours:
        merged.setdefault(key(item), item)
    for item in theirs:
        k = key(item)
        mine = merged.get(k)
        if mine is None:
            merged[k] = item
        elif mine != item:
            if combine is None:
                found.append(Divergence(f"{name}[{k}]", mine, item))
            else:
                merged[k] = combine(f"{name}[{k}]", mine, item, found)
    return tuple(merged.values())


def _values(ours: Iterable[T], theirs: Iterable[T]) -> tuple[T, ...]:
    """Ordered union by value: ours, then theirs that are not already there."""
    items = (*ours, *theirs)
    try:
        return tuple(dict.fromkeys(items))
    except TypeError:  # unhashable items (records holding a dict): by equality
        kept: list[T] = []
        for item in items:
            if item not in kept:
                kept.append(item)
        return tuple(kept)


def _by_id(name: str, ours: Any, theirs: Any, found: list[Divergence]) -> Any:
    return _union(ours, theirs, lambda item: item.id, name, found)


def _by_value(name: str, ours: Any, theirs: Any, found: list[Divergence]) -> Any:
    return _values(ours, theirs)


def _scalar(name: str, ours: Any, theirs: Any, found: list[Divergence]) -> Any:
    if theirs is not None and ours != theirs:
        found.append(Divergence(name, ours, theirs))
    return ours


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


def merge_record(name: str, ours: R, theirs: R, found: list[Divergence]) -> R:
    """Two records of one attrs class merged field by field, each by its type's rule
    (``name`` prefixes the divergences' field names; empty for the top level)."""
    cls: type[Any] = type(ours)
    values: dict[str, Any] = {}
    for field, init_name, rule in _plan(cls):
        path = f"{name}.{field}" if name else field
        values[init_name] = rule(path, getattr(ours, field), getattr(theirs, field), found)
    merged: R = cls(**values)
    return merged


def _rule_for(hint: Any) -> Rule:
    """The merge rule a field's type gives (see the module's docstring)."""
    origin = typing.get_origin(hint)
    if attrs.has(hint):
        return merge_record
    if origin is tuple:
        args = typing.get_args(hint)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is not None and attrs.has(item) and hasattr(item, "id"):
            return _by_id
        return _by_value
    if origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return _merge_map
    return _scalar


#: ``(field name, init argument, rule)`` per init field, per record class.
_PLANS: dict[type, tuple[tuple[str, str, Rule], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, str, Rule], ...]:
    """Every init field of ``cls`` with its rule: :data:`FIELD_RULES` for the work
    state's named fields, else the rule the field's type gives."""
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        named = FIELD_RULES if issubclass(cls, WorkState) else {}
        plan = tuple(
            (f.name, f.alias or f.name, named.get(f.name) or _rule_for(hints[f.name]))
            for f in attrs.fields(cls)
            if f.init
        )
        _PLANS[cls] = plan
    return plan


# -- the fields whose rule says more than their type ------------------------------------


def _files(name: str, ours: Any, theirs: Any, found: list[Divergence]) -> Any:
    """One file per path; a file both sides changed: operations unioned, our count kept."""
    return _union(ours, theirs, lambda f: f.path, name, found, combine=merge_record)


def _recent(name: str, ours: Any, theirs: Any, found: list[Divergence]) -> Any:
    return _values(ours, theirs)[-RECENT_KEEP:]


#: WorkState fields merged by a rule of their own (active tasks: see :func:`merge_work`).
FIELD_RULES: dict[str, Rule] = {
    "files_modified": _files,
    "recent_changes": _recent,
}


def merge_work(ours: WorkState, theirs: WorkState) -> tuple[WorkState, tuple[Divergence, ...]]:
    """Merge every field of two work states (of the same class) by its rule; report
    the items and values the two sides hold differently."""
    done = {t.id for t in (*ours.completed_tasks, *theirs.completed_tasks)}
    if done:  # a task completed on either side is no longer active
        ours, theirs = (
            attrs.evolve(w, active_tasks=tuple(t for t in w.active_tasks if t.id not in done))
            for w in (ours, theirs)
        )
    found: list[Divergence] = []
    work = merge_record("", ours, theirs, found)
    return work, tuple(found)


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
