"""``lifecycle rewind``: bring the work tree's files back from a checkpoint's snapshot.

The files of the snapshot (:mod:`lifecycle.snapshots`) are written into the work
tree through a temporary index (``git read-tree`` then ``git checkout-index``), so
git's own filters, modes and symlinks apply and the user's index and HEAD are never
touched. What changed since the snapshot is found by comparing it with a snapshot
of the work tree as it is now (``git diff-tree``):

- *restored*: in the snapshot, gone now (deleted since): written back;
- *modified*: changed since (content, type or executable bit): written back;
- *created*: not in the snapshot (created since): deleted only with ``delete_new``;
- *blocked*: cannot be written because a file or folder created since is in its
  way (``delete_new`` clears the way);
- *skipped*: submodules, which a snapshot records only as a commit id.

Before it writes anything, a real rewind keeps the current state in
``refs/lifecycle/{project}/undo`` (and the snapshot it restores in ``undo-target``):
``rewind --undo`` restores that state, and deletes the files the rewind brought
back that are still as it wrote them (*undone*); a file changed or created after
the rewind stays. The undo keeps the state it replaces in turn. A dry run writes
nothing to the repository, not even objects: its snapshot of the current state goes
to a temporary object folder.
It refuses while a merge, rebase, cherry-pick or revert is in progress.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from lifecycle import snapshots
from lifecycle.errors import LifecycleError
from lifecycle.snapshots import Repo, git, git_env

if TYPE_CHECKING:
    from lifecycle.stores.base import ProjectStore

GITLINK = "160000"
#: Files in ``$GIT_DIR`` that mean an operation is half done, and what it is.
IN_PROGRESS = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase or git am"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
)


class RewindRefused(LifecycleError):
    """A rewind that cannot run: an operation in progress, no snapshot, bad paths."""


@attrs.frozen
class RewindResult:
    """What a rewind changed (or, for a dry run, would change): paths from the top of
    the work tree."""

    source: str  # the checkpoint id, or "undo"
    commit: str
    work_tree: str
    dry_run: bool
    restored: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    deleted_new: bool = False
    #: Files the undone rewind had brought back, unchanged since: deleted (``--undo``).
    undone: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    #: The ref holding the state this rewind replaced (None for a dry run).
    undo_ref: str | None = None

    @property
    def complete(self) -> bool:
        return not self.blocked

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "commit": self.commit,
            "work_tree": self.work_tree,
            "dry_run": self.dry_run,
            "restored": list(self.restored),
            "modified": list(self.modified),
            "created": list(self.created),
            "created_deleted": self.deleted_new,
            "undone": list(self.undone),
            "blocked": list(self.blocked),
            "skipped": list(self.skipped),
            "undo_ref": self.undo_ref,
            "complete": self.complete,
        }

    def lines(self) -> list[str]:
        verb = "would restore" if self.dry_run else "restored"
        name = "the state before the last rewind" if self.source == snapshots.UNDO else self.source
        out = [
            f"{verb} {len(self.restored) + len(self.modified)} file(s) from {name} "
            f"(snapshot {self.commit[:12]}) in {self.work_tree}"
        ]
        out += [f"  restore   {p}  (deleted since)" for p in self.restored]
        out += [f"  restore   {p}  (modified since)" for p in self.modified]
        if self.deleted_new:
            done = "would delete" if self.dry_run else "deleted"
            out += [f"  {done:<9} {p}  (created since)" for p in self.created]
        else:
            note = "(created since; --delete-new deletes it)"
            out += [f"  keep      {p}  {note}" for p in self.created]
        gone = "would delete" if self.dry_run else "deleted"
        out += [f"  {gone:<9} {p}  (brought back by the rewind undone)" for p in self.undone]
        out += [f"  blocked   {p}  (a file created since is in the way)" for p in self.blocked]
        out += [f"  skipped   {p}  (a submodule)" for p in self.skipped]
        if not (self.restored or self.modified or self.created or self.undone):
            out.append("  nothing differs from the snapshot")
        if self.undo_ref is not None:
            out.append("the state before is kept: `lifecycle rewind --undo` brings it back")
        return out


def refuse_in_progress(repo: Repo) -> None:
    for name, what in IN_PROGRESS:
        if os.path.exists(os.path.join(repo.git_dir, name)):
            raise RewindRefused(
                f"{what} is in progress in {repo.top}; finish or abort it first "
                "(rewind never changes the index or HEAD under an operation)"
            )


def snapshot_of(store: ProjectStore, checkpoint_id: str) -> str:
    """The commit of ``checkpoint_id``'s snapshot; RewindRefused when it took none."""
    from lifecycle.session.checkpoints import Checkpoints

    cp = Checkpoints(store).by_id(checkpoint_id)  # CheckpointNotFound
    snap = cp.snapshot
    if snap is None or snap.commit is None:
        why = (
            snap.skipped
            if snap is not None and snap.skipped
            else "snapshots are taken at risk checkpoints (SessionManager(snapshot=...))"
        )
        raise RewindRefused(f"checkpoint {checkpoint_id} has no snapshot of the work tree: {why}")
    return snap.commit


def rewind(
    store: ProjectStore | None,
    project: str,
    checkpoint_id: str | None = None,
    *,
    undo: bool = False,
    paths: Sequence[str] = (),
    delete_new: bool = False,
    dry_run: bool = False,
    work_tree: str | os.PathLike[str] | None = None,
) -> RewindResult:
    """Restore the files of ``checkpoint_id``'s snapshot (or, with ``undo``, of the state
    the last rewind replaced) into the work tree; ``paths`` limits it."""
    if undo == (checkpoint_id is not None):
        raise RewindRefused("name a checkpoint id or ask for --undo (one of the two)")
    repo = snapshots.find_repo(work_tree)
    refuse_in_progress(repo)
    specs = _pathspecs(repo, paths, work_tree)
    rewound: str | None = None  # with undo: the snapshot the rewind being undone restored
    if undo:
        commit = snapshots.resolve_ref(repo, snapshots.ref_name(project, snapshots.UNDO))
        if commit is None:
            raise RewindRefused(f"nothing to undo: no rewind has run in project {project!r} here")
        rewound = snapshots.resolve_ref(repo, snapshots.ref_name(project, snapshots.UNDO_TARGET))
        source = snapshots.UNDO
    else:
        if store is None or checkpoint_id is None:
            raise RewindRefused("rewinding to a checkpoint needs its store")
        commit = snapshot_of(store, checkpoint_id)
        source = checkpoint_id
        if not _has_commit(repo, commit):
            raise RewindRefused(
                f"the snapshot {commit[:12]} of {checkpoint_id} is not in the repository at "
                f"{repo.top} (another repository, or pruned and collected by git gc)"
            )
    excludes = snapshots.excluded(repo, _store_paths(store))
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="lifecycle-rewind-") as objects:
            tree, index = snapshots.write_tree(repo, excludes, objects=objects)
            snapshots.remove_file(index)
            env = git_env(**snapshots.scratch_objects(repo, objects))
            changes = _diff(repo, tree, commit, specs, env)
            same = _unchanged_since(repo, rewound, tree, changes, env)
        plan = _plan(repo, changes, delete_new, same)
        return attrs.evolve(plan, source=source, commit=commit, dry_run=True)
    undo_ref = snapshots.ref_name(project, snapshots.UNDO)
    current = snapshots.take(repo, excludes, undo_ref)  # the state before: kept first
    env = git_env()
    changes = _diff(repo, current.tree, commit, specs, env)
    plan = _plan(
        repo, changes, delete_new, _unchanged_since(repo, rewound, current.tree, changes, env)
    )
    snapshots.set_ref(repo, snapshots.ref_name(project, snapshots.UNDO_TARGET), commit)
    blocked = _apply(repo, commit, plan)
    return attrs.evolve(
        plan, source=source, commit=commit, dry_run=False, blocked=blocked, undo_ref=undo_ref
    )


# -- the plan ---------------------------------------------------------------------------


@attrs.frozen
class _Change:
    path: str
    status: str  # A: only in the snapshot; D: only now; M, T: both, different
    mode: str  # the snapshot's mode (A, M, T), or the current one (D)


def _store_paths(store: ProjectStore | None) -> tuple[str, ...]:
    return () if store is None else snapshots.store_paths(store.store)


def _pathspecs(repo: Repo, paths: Sequence[str], work_tree: Any) -> list[str]:
    """``paths`` (relative to ``work_tree``, default the current folder) as pathspecs from
    the top. A path's own last part is not resolved: ``--paths link`` means the link."""
    base = os.path.realpath(os.getcwd() if work_tree is None else os.fspath(work_tree))
    top = os.path.realpath(repo.top)
    specs = []
    for p in paths:
        full = os.path.normpath(os.path.join(base, p))
        rel = os.path.relpath(full, top)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise RewindRefused(f"--paths {p!r} is outside the work tree {repo.top}")
        specs.append(":(top,literal)" + ("" if rel == "." else rel.replace(os.sep, "/")))
    return specs


def _has_commit(repo: Repo, commit: str) -> bool:
    code, _, _ = git(["cat-file", "-e", f"{commit}^{{tree}}"], repo.top, ok=(0, 1, 128))
    return code == 0


def _diff(repo: Repo, now: str, then: str, specs: list[str], env: dict[str, str]) -> list[_Change]:
    args = ["diff-tree", "-r", "-z", "--no-renames", "--raw", now, then]
    _, out, _ = git([*args, "--", *specs] if specs else args, repo.top, env=env)
    fields = out.split(b"\0")
    changes = []
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i].decode(), os.fsdecode(fields[i + 1])
        old_mode, new_mode, _, _, status = meta.lstrip(":").split(" ")
        changes.append(_Change(path, status[0], old_mode if status[0] == "D" else new_mode))
    return changes


def _unchanged_since(
    repo: Repo, rewound: str | None, now: str, changes: list[_Change], env: dict[str, str]
) -> set[str]:
    """Of the files created since the undo state, those still exactly as the rewind
    being undone wrote them (in ``rewound``, the same blob and mode)."""
    created = [c.path for c in changes if c.status == "D" and c.mode != GITLINK]
    if rewound is None or not created:
        return set()
    args = ["diff-tree", "-r", "-z", "--no-renames", "--name-only", rewound, now, "--"]
    specs = [f":(top,literal){p}" for p in created]
    _, out, _ = git([*args, *specs], repo.top, env=env)
    differ = {os.fsdecode(p) for p in out.split(b"\0") if p}
    return {p for p in created if p not in differ}


def _plan(
    repo: Repo, changes: Iterable[_Change], delete_new: bool, undone: set[str]
) -> RewindResult:
    restored, modified, created, skipped = [], [], [], []
    for c in changes:
        if c.mode == GITLINK:
            skipped.append(c.path)
        elif c.status == "A":
            restored.append(c.path)
        elif c.status == "D":
            created.append(c.path)
        else:
            modified.append(c.path)
    gone = set(created) if delete_new else undone
    blocked = [p for p in (*restored, *modified) if _in_the_way(repo.top, p, gone)]
    return RewindResult(
        source="",
        commit="",
        work_tree=repo.top,
        dry_run=True,
        restored=tuple(p for p in restored if p not in blocked),
        modified=tuple(p for p in modified if p not in blocked),
        created=tuple(p for p in created if delete_new or p not in undone),
        deleted_new=delete_new,
        undone=() if delete_new else tuple(sorted(undone)),
        blocked=tuple(blocked),
        skipped=tuple(skipped),
    )


def _in_the_way(top: str, path: str, gone: set[str]) -> bool:
    """Something not in the snapshot stands where ``path`` goes: a file or symlink in
    place of one of its folders, or a folder in place of the file. ``gone``: paths
    about to be deleted (created since, with delete_new)."""
    parts = path.split("/")
    for depth in range(1, len(parts)):
        lead = "/".join(parts[:depth])
        try:
            st = os.lstat(os.path.join(top, lead))
        except (FileNotFoundError, NotADirectoryError):
            return False  # the rest is created as folders
        if not _is_dir(st) and lead not in gone:
            return True
    try:
        st = os.lstat(os.path.join(top, path))
    except (FileNotFoundError, NotADirectoryError):
        return False
    if _is_dir(st):
        prefix = path + "/"
        # a folder created since: only its files going (delete_new) clears the way
        return not any(g.startswith(prefix) for g in gone)
    return False


def _is_dir(st: os.stat_result) -> bool:
    return stat.S_ISDIR(st.st_mode)


# -- doing it ---------------------------------------------------------------------------


def _apply(repo: Repo, commit: str, plan: RewindResult) -> tuple[str, ...]:
    """Delete what was created since (with delete_new; what an undone rewind wrote),
    then write the snapshot's files; what is still in the way stays blocked."""
    for path in (*(plan.created if plan.deleted_new else ()), *plan.undone):
        _delete(repo.top, path)
    blocked = list(plan.blocked)
    writes = []
    for path in (*plan.restored, *plan.modified):
        if _in_the_way(repo.top, path, set()):
            blocked.append(path)
        else:
            writes.append(path)
    if writes:
        state = repo.state
        os.makedirs(state, exist_ok=True)
        index = os.path.join(state, f"rewind-index.{os.getpid()}")
        try:
            env = git_env(GIT_INDEX_FILE=index)
            git(["read-tree", commit], repo.top, env=env)
            stdin = b"".join(os.fsencode(p) + b"\0" for p in writes)
            git(["checkout-index", "-f", "-z", "--stdin"], repo.top, env=env, stdin=stdin)
        finally:
            snapshots.remove_file(index)
    return tuple(sorted(blocked))


def _delete(top: str, path: str) -> None:
    """Delete a file created since the snapshot, then the folders it leaves empty."""
    full = os.path.join(top, path)
    try:
        os.unlink(full)
    except FileNotFoundError:
        return
    parent = os.path.dirname(path)
    while parent:
        try:
            os.rmdir(os.path.join(top, parent))
        except OSError:
            return  # not empty (or not ours to remove)
        parent = os.path.dirname(parent)
