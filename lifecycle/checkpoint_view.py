"""One checkpoint as a person reads it (``lifecycle show``), and what changed between two
(``lifecycle diff``).

Both read records only: a :class:`~lifecycle.records.Checkpoint`, or the open session's
:class:`~lifecycle.records.LiveContext` for "now". A :class:`State` is the part of
either that a diff compares; :func:`diff` is pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import CheckpointNotFound, CorruptRecord, InvalidKey, InvalidRecord
from lifecycle.records import Checkpoint, LiveContext, WorkState
from lifecycle.stores.base import ProjectStore

NOW = "now"


@attrs.frozen
class State:
    """What a diff compares: a checkpoint's, or the open session's."""

    label: str
    phase: str
    progress: dict[str, Any]
    work: WorkState


def state_of(record: Checkpoint | LiveContext) -> State:
    if isinstance(record, Checkpoint):
        return State(record.id, record.phase, dict(record.progress), record.state)
    return State(NOW, record.phase, dict(record.progress), record.work)


# -- reading -------------------------------------------------------------------------------


def read_checkpoint(store: ProjectStore, checkpoint_id: str) -> Checkpoint:
    """The checkpoint with ``checkpoint_id`` (``latest`` for the newest), or
    :class:`CheckpointNotFound`."""
    from lifecycle.history import checkpoint_key_for

    if checkpoint_id == "latest":
        return _latest(store)
    if checkpoint_id.startswith(keys.CHECKPOINTS_PREFIX):
        key: str | None = keys.validate(checkpoint_id)
    else:
        key = checkpoint_key_for(store, checkpoint_id)
    entry = None if key is None else store.get(key)
    if entry is None or key is None:
        raise CheckpointNotFound(checkpoint_id)
    cp = codec.decode(Checkpoint, entry.value, key=key)
    if checkpoint_id != key and cp.id != checkpoint_id:
        raise CheckpointNotFound(checkpoint_id)
    return cp


def _latest(store: ProjectStore) -> Checkpoint:
    """The checkpoint ``checkpoints/latest`` names; when the pointer is torn, was left
    unflushed before the machine restarted, or names a missing or damaged checkpoint:
    the newest that reads, as a restore takes."""
    from lifecycle.history import newest_valid
    from lifecycle.records import Pointer

    try:
        entry = store.get(keys.LATEST)
        if entry is None:
            raise CheckpointNotFound("latest")
        key = codec.decode(Pointer, entry.value, key=keys.LATEST).key
        found = store.get(key)
        if found is not None:
            return codec.decode(Checkpoint, found.value, key=key)
    except (CorruptRecord, InvalidRecord):
        pass
    newest = newest_valid(store)
    if newest is None:
        raise CheckpointNotFound("latest")
    return newest


def read_now(store: ProjectStore) -> State:
    """The open session's state, or the latest checkpoint's when no session is open."""
    entry = store.get(keys.CONTEXT)
    if entry is not None:
        return state_of(codec.decode(LiveContext, entry.value, key=keys.CONTEXT))
    try:
        return state_of(read_checkpoint(store, "latest"))
    except CheckpointNotFound:
        raise CheckpointNotFound("now (no open session and no checkpoint)") from None


def read_state(store: ProjectStore, name: str) -> State:
    if name == NOW:
        return read_now(store)
    try:
        return state_of(read_checkpoint(store, name))
    except InvalidKey:
        raise CheckpointNotFound(name) from None


# -- show ----------------------------------------------------------------------------------


def describe(cp: Checkpoint) -> dict[str, Any]:
    """The checkpoint's fields a reader wants, as plain data (``--format json``)."""
    data = codec.to_dict(cp)
    data.pop("kind", None)
    return data


def _progress(progress: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in progress.items()) or "-"


def show_text(cp: Checkpoint) -> str:
    s = cp.state
    lines = [
        f"Checkpoint {cp.id}  ({cp.type.value}, trigger: {cp.trigger})",
        f"  key: {cp.key or '-'}",
        f"  time: {cp.timestamp.isoformat()}",
        f"  session: {cp.session_id or '-'}   parent: {cp.parent_id or '-'}",
    ]
    if cp.label:
        lines.append(f"  label: {cp.label}")
    if cp.operation:
        lines.append(f"  before operation: {cp.operation}")
    lines += [f"Phase: {cp.phase or '-'}", f"Progress: {_progress(cp.progress)}"]
    lines.append(f"Tasks: {len(s.active_tasks)} open, {len(s.completed_tasks)} completed")
    for t in s.active_tasks:
        extra = f", {t.progress}" if t.progress else ""
        lines.append(f"  [{t.status.value}] {t.id} {t.description} ({t.priority.value}{extra})")
    for t in s.completed_tasks:
        lines.append(f"  [completed] {t.id} {t.description}")
    lines += _section("Open questions", s.open_questions)
    lines += _section("Blockers", s.blockers)
    if s.decisions:
        lines.append("Decisions:")
        for d in s.decisions:
            why = f" (because {d.rationale})" if d.rationale else ""
            impact = f" [{d.impact}]" if d.impact else ""
            lines.append(f"  - {d.decision}{why}{impact}")
    if s.files_modified:
        lines.append("Files modified:")
        for f in s.files_modified:
            ops = ", ".join(f.operations) or "changed"
            count = f", {f.changes} changes" if f.changes is not None else ""
            lines.append(f"  {f.path} ({ops}{count})")
    if s.errors:
        lines.append("Errors recovered:")
        lines += [f"  {e.error}: {'; '.join(e.recovery_steps) or '-'}" for e in s.errors]
    if cp.context:
        lines.append(f"Context: {_progress(cp.context)}")
    lines.append(f"Recovery: {cp.recovery_info.restore_command or '-'}")
    return "\n".join(lines)


def _section(title: str, items: Iterable[str]) -> list[str]:
    items = list(items)
    return [f"{title}:", *(f"  - {i}" for i in items)] if items else [f"{title}: none"]


# -- diff ----------------------------------------------------------------------------------


@attrs.frozen
class Diff:
    a: str
    b: str
    phase: tuple[str, str] | None = None
    progress: dict[str, tuple[Any, Any]] = attrs.field(factory=dict)
    tasks_added: tuple[str, ...] = ()
    tasks_completed: tuple[str, ...] = ()
    tasks_removed: tuple[str, ...] = ()
    tasks_changed: tuple[str, ...] = ()
    decisions_added: tuple[str, ...] = ()
    decisions_removed: tuple[str, ...] = ()
    files_added: tuple[str, ...] = ()
    files_changed: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()
    questions_added: tuple[str, ...] = ()
    questions_resolved: tuple[str, ...] = ()
    blockers_added: tuple[str, ...] = ()
    blockers_cleared: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not any(
            getattr(self, f.name) for f in attrs.fields(Diff) if f.name not in ("a", "b")
        )

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, recurse=False)
        data["phase"] = None if self.phase is None else {"a": self.phase[0], "b": self.phase[1]}
        data["progress"] = {k: {"a": a, "b": b} for k, (a, b) in self.progress.items()}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    def text(self) -> str:
        lines = [f"{self.a} -> {self.b}"]
        if self.empty:
            return lines[0] + "\n  no changes"
        if self.phase:
            lines.append(f"  phase: {self.phase[0] or '-'} -> {self.phase[1] or '-'}")
        for key, (a, b) in self.progress.items():
            lines.append(f"  progress {key}: {a!r} -> {b!r}")
        for title, items in (
            ("tasks added", self.tasks_added),
            ("tasks completed", self.tasks_completed),
            ("tasks removed", self.tasks_removed),
            ("tasks changed", self.tasks_changed),
            ("decisions added", self.decisions_added),
            ("decisions removed", self.decisions_removed),
            ("files added", self.files_added),
            ("files changed", self.files_changed),
            ("files removed", self.files_removed),
            ("questions added", self.questions_added),
            ("questions resolved", self.questions_resolved),
            ("blockers added", self.blockers_added),
            ("blockers cleared", self.blockers_cleared),
        ):
            if items:
                lines.append(f"  {title}:")
                mark = (
                    "+"
                    if "added" in title
                    else "*"
                    if title.endswith(("completed", "changed"))
                    else "-"
                )
                lines += [f"    {mark} {i}" for i in items]
        return "\n".join(lines)


def _only(a: Iterable[str], b: Iterable[str]) -> tuple[str, ...]:
    seen = set(b)
    return tuple(dict.fromkeys(x for x in a if x not in seen))


def diff(a: State, b: State) -> Diff:
    """What changed from ``a`` to ``b``."""
    wa, wb = a.work, b.work
    active_a = {t.id: t for t in wa.active_tasks}
    active_b = {t.id: t for t in wb.active_tasks}
    done_a = {t.id: t for t in wa.completed_tasks}
    done_b = {t.id: t for t in wb.completed_tasks}
    all_a, all_b = {**active_a, **done_a}, {**active_b, **done_b}
    label = {**all_a, **all_b}

    def named(ids: Iterable[str]) -> tuple[str, ...]:
        return tuple(f"{i} {label[i].description}".rstrip() for i in ids)

    changed = [
        i
        for i, t in active_b.items()
        if i in active_a
        and (t.status, t.progress, t.priority)
        != (active_a[i].status, active_a[i].progress, active_a[i].priority)
    ]
    dec_a = {d.id: d.decision for d in wa.decisions}
    dec_b = {d.id: d.decision for d in wb.decisions}
    files_a = {f.path: f for f in wa.files_modified}
    files_b = {f.path: f for f in wb.files_modified}
    keys_ = dict.fromkeys([*a.progress, *b.progress])
    return Diff(
        a=a.label,
        b=b.label,
        phase=None if a.phase == b.phase else (a.phase, b.phase),
        progress={
            k: (a.progress.get(k), b.progress.get(k))
            for k in keys_
            if a.progress.get(k) != b.progress.get(k)
        },
        tasks_added=named(_only(all_b, all_a)),
        tasks_completed=named(i for i in done_b if i not in done_a),
        tasks_removed=named(_only(all_a, all_b)),
        tasks_changed=tuple(
            f"{i} {active_a[i].status.value} -> {active_b[i].status.value}"
            + (f" ({active_b[i].progress})" if active_b[i].progress else "")
            for i in changed
        ),
        decisions_added=tuple(dec_b[i] for i in _only(dec_b, dec_a)),
        decisions_removed=tuple(dec_a[i] for i in _only(dec_a, dec_b)),
        files_added=_only(files_b, files_a),
        files_changed=tuple(p for p in files_b if p in files_a and files_a[p] != files_b[p]),
        files_removed=_only(files_a, files_b),
        questions_added=_only(wb.open_questions, wa.open_questions),
        questions_resolved=_only(wa.open_questions, wb.open_questions),
        blockers_added=_only(wb.blockers, wa.blockers),
        blockers_cleared=_only(wa.blockers, wb.blockers),
    )
