"""Snapshots of the work tree, as commits in the project's own git repository.

A risk checkpoint (or every checkpoint, with ``snapshot="all"``) records the work
tree as it is at that moment: tracked and untracked files, not ignored ones, as a
commit referenced from ``refs/lifecycle/{project}/{checkpoint id}``. The user's
index, HEAD, branches, stash, config and work tree are never touched: git works
on a temporary index (``GIT_INDEX_FILE``) seeded from the one the previous snapshot
left in ``$GIT_DIR/lifecycle/index`` (or from a copy of the user's index), so that
``git add -A`` hashes only the files whose stat data changed. A tree equal to the
previous snapshot's reuses its commit: an unchanged work tree adds no objects.

Git runs as a subprocess with a timeout; a folder that is not a git work tree, or a
machine without git, gets no snapshot and the checkpoint says why
(:class:`~lifecycle.records.WorkTreeSnapshot`). Only the standard library and attrs
are imported here: the manager imports this module on every hook's path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from lifecycle.errors import LifecycleError

if TYPE_CHECKING:
    from lifecycle.records import Checkpoint, WorkTreeSnapshot

#: The longest a git command may run (hashing large new files is the slow case): inside
#: the 60 s Claude Code gives a hook by default.
GIT_TIMEOUT = 50.0
#: The longest a snapshot waits for another snapshot of the same work tree.
LOCK_TIMEOUT = 20.0
#: Under ``refs/``: ``refs/lifecycle/{project}/{checkpoint id}``.
REF_ROOT = "refs/lifecycle/"
#: The ref ``lifecycle rewind`` keeps the state it replaced in (``rewind --undo``).
UNDO = "undo"
#: The ref naming the snapshot the last rewind restored: what ``--undo`` takes back.
UNDO_TARGET = "undo-target"
#: Under ``$GIT_DIR``: the index the last snapshot left, and its tree and commit.
STATE_DIR = "lifecycle"
#: Always left out of a snapshot: the default file store's folder.
DEFAULT_EXCLUDES = (".lifecycle",)
#: The identity of snapshot commits (git refuses a commit without one).
IDENTITY = {
    "GIT_AUTHOR_NAME": "lifecycle",
    "GIT_AUTHOR_EMAIL": "lifecycle@localhost",
    "GIT_COMMITTER_NAME": "lifecycle",
    "GIT_COMMITTER_EMAIL": "lifecycle@localhost",
}
#: Variables of the caller's environment that would point git at another index or
#: object folder than the ones chosen here.
_DROPPED_ENV = ("GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")
_IGNORED_HEADER = "The following paths are ignored by one of your .gitignore files:"


class SnapshotPolicy(StrEnum):
    """Which checkpoints take a snapshot of the work tree."""

    RISK = "risk"  # risk checkpoints only (the default)
    ALL = "all"
    NEVER = "never"


class NoWorkTree(LifecycleError):
    """The folder is not inside a git work tree, or git is not installed."""


class GitFailed(LifecycleError):
    """A git command failed or timed out."""


# -- running git ------------------------------------------------------------------------


def git_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0")
    env.update(extra)
    return env


_found: dict[str, str] = {}  # PATH -> the git it finds


def _git_path() -> str:
    """The git that ``PATH`` names, found once per value of ``PATH`` (each process start
    then tries one file instead of every folder before git's); "git" if none."""
    path = os.environ.get("PATH", os.defpath)
    found = _found.get(path)
    if found is None:
        import shutil

        found = shutil.which("git", path=path) or "git"
        _found.clear()
        _found[path] = found
    return found


def git(
    args: Sequence[str],
    cwd: str,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = GIT_TIMEOUT,
    ok: tuple[int, ...] = (0,),
) -> tuple[int, bytes, str]:
    """Run ``git args`` in ``cwd``: (exit status, stdout, stderr). NoWorkTree when git is
    missing, GitFailed on a timeout or an exit status outside ``ok``."""
    import subprocess

    try:
        proc = subprocess.Popen(
            [_git_path(), *args],
            cwd=cwd,
            env=dict(env) if env is not None else git_env(),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError:
        raise NoWorkTree("git is not installed (no `git` on PATH)") from None
    try:
        out, raw_err = _communicate(proc, stdin, timeout)
    except subprocess.TimeoutExpired:
        raise GitFailed(f"git {args[0]} took more than {timeout:g} s and was stopped") from None
    finally:
        if proc.poll() is None:  # timed out or interrupted: leave no git behind
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    err = raw_err.decode("utf-8", "replace")
    if proc.returncode not in ok:
        first = next((line for line in err.splitlines() if line.strip()), "no message")
        raise GitFailed(f"git {args[0]} failed (exit {proc.returncode}): {first}")
    return proc.returncode, out, err


def _communicate(proc: Any, stdin: bytes | None, timeout: float) -> tuple[bytes, bytes]:
    """``proc.communicate(stdin, timeout)``, waiting for the exit on a pidfd where Linux
    has them: ``subprocess`` polls for it with growing sleeps once the pipes close, a
    few milliseconds per command on a busy machine (a snapshot runs two to four)."""
    import selectors
    import subprocess
    import time

    if not hasattr(os, "pidfd_open"):  # pragma: no cover - not Linux 5.3+
        got: tuple[bytes, bytes] = proc.communicate(stdin, timeout=timeout)
        return got
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # pragma: no cover - a kernel without them
        got = proc.communicate(stdin, timeout=timeout)
        return got
    deadline = time.monotonic() + timeout
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    pending = memoryview(stdin) if stdin is not None else None
    try:
        with selectors.DefaultSelector() as selector:
            for fd in chunks:
                selector.register(fd, selectors.EVENT_READ)
            selector.register(pidfd, selectors.EVENT_READ)
            if pending is not None:
                selector.register(proc.stdin.fileno(), selectors.EVENT_WRITE)
            while selector.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(proc.args, timeout)
                for key, _ in selector.select(left):
                    fd = key.fd
                    if fd == pidfd:  # it exited: what is left in the pipes is read below
                        selector.unregister(fd)
                    elif fd in chunks:
                        data = os.read(fd, 65536)
                        if data:
                            chunks[fd].append(data)
                        else:
                            selector.unregister(fd)
                    elif pending is not None:
                        try:
                            pending = pending[os.write(fd, pending[:65536]) :]
                        except BrokenPipeError:
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(fd)
                            proc.stdin.close()
    finally:
        os.close(pidfd)
    proc.wait()  # it has exited: no wait
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])


@attrs.frozen
class Repo:
    """A git work tree: its top folder, its git folder, the user's index, the objects."""

    top: str
    git_dir: str
    index: str
    objects: str

    @property
    def state(self) -> str:
        return os.path.join(self.git_dir, STATE_DIR)


def _certainly_no_repo(cwd: str) -> bool:
    """True only when git could find no repository from ``cwd``: no ``GIT_DIR`` or
    ``GIT_WORK_TREE`` in the environment, and no folder from ``cwd`` up to ``/`` holds a
    ``.git`` or is itself a git folder (``HEAD`` beside ``objects``). Spares a hook the
    ``git`` process in a folder that is not a work tree; anything else asks git."""
    if os.environ.get("GIT_DIR") or os.environ.get("GIT_WORK_TREE"):
        return False
    folder = os.path.abspath(cwd)
    while True:
        if os.path.lexists(os.path.join(folder, ".git")):
            return False
        if os.path.isfile(os.path.join(folder, "HEAD")) and os.path.isdir(
            os.path.join(folder, "objects")
        ):
            return False
        parent = os.path.dirname(folder)
        if parent == folder:
            return True
        folder = parent


def find_repo(path: str | os.PathLike[str] | None = None) -> Repo:
    """The git work tree ``path`` (default: the current folder) is in; NoWorkTree when
    it is in none. Works where ``.git`` is a file (linked worktrees, submodules)."""
    cwd = os.fspath(path) if path is not None else os.getcwd()
    if not os.path.isdir(cwd):
        raise NoWorkTree(f"{cwd} is not a folder")
    if _certainly_no_repo(cwd):
        raise NoWorkTree(f"{cwd} is not in a git work tree (no .git in it or above it)")
    args = ["rev-parse", "--is-inside-work-tree", "--show-toplevel", "--absolute-git-dir"]
    code, out, err = git([*args, "--git-path", "index", "--git-path", "objects"], cwd, ok=(0, 128))
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    if code != 0 or not lines or lines[0] != "true" or len(lines) < 5:
        reason = err.strip().splitlines()[0] if err.strip() else "not inside a work tree"
        raise NoWorkTree(f"{cwd} is not in a git work tree ({reason.removeprefix('fatal: ')})")
    top, git_dir, index, objects = lines[1:5]
    return Repo(
        top=top,
        git_dir=git_dir,
        index=os.path.join(cwd, index),
        objects=os.path.join(cwd, objects),
    )


def ref_name(project: str, name: str) -> str:
    return f"{REF_ROOT}{project}/{name}"


# -- taking a snapshot ------------------------------------------------------------------


@attrs.frozen
class Taken:
    """A snapshot in the object store (referenced from the ref ``take`` was given)."""

    tree: str
    commit: str
    #: The tree equals the previous snapshot's: its commit was reused, nothing was written.
    unchanged: bool


def excluded(repo: Repo, paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """``paths`` (the store's files) relative to the top of the work tree, for those
    inside it, with :data:`DEFAULT_EXCLUDES`."""
    found = list(DEFAULT_EXCLUDES)
    top = Path(repo.top).resolve()
    for path in paths:
        try:
            rel = Path(path).resolve().relative_to(top).as_posix()
        except ValueError:
            continue  # outside the work tree: never in a snapshot anyway
        if rel and rel != "." and rel not in found:
            found.append(rel)
    return tuple(found)


def write_tree(
    repo: Repo, excludes: Sequence[str] = DEFAULT_EXCLUDES, *, objects: str | None = None
) -> tuple[str, str]:
    """The work tree as a tree object, through a temporary index: (tree, that index's
    path; the caller removes or keeps it). With ``objects``, new objects go to that
    folder (the repository's own are read through it): nothing is written to the
    repository."""
    temp, _ = _add_all(repo, excludes, objects)
    try:
        _, out, _ = git(["write-tree"], repo.top, env=_index_env(repo, temp, objects))
        return out.decode().strip(), temp
    except BaseException:
        remove_file(temp)
        raise


def _index_env(repo: Repo, index: str, objects: str | None = None) -> dict[str, str]:
    return git_env(GIT_INDEX_FILE=index, **scratch_objects(repo, objects))


def _add_all(repo: Repo, excludes: Sequence[str], objects: str | None) -> tuple[str, bool]:
    """``git add -A`` into a temporary index seeded from the kept one (or the user's):
    (its path, whether any entry changed from the one it started from)."""
    state = repo.state
    os.makedirs(state, exist_ok=True)
    temp = os.path.join(state, f"index.{os.getpid()}.{os.urandom(6).hex()}")
    try:
        for start in (kept_index(repo, excludes), repo.index):
            try:
                _seed(start, temp)
                break
            except FileNotFoundError:
                continue  # no snapshot yet; an empty repository has no index at all
        specs = [f":(exclude,top,literal){p}" for p in excludes]
        add = ["-c", "core.untrackedCache=true", "-c", "advice.addIgnoredFile=false", "add"]
        env = _index_env(repo, temp, objects)
        code, out, err = git([*add, "-A", "-v", "--", ".", *specs], repo.top, env=env, ok=(0, 1))
        if code == 1 and not _only_excludes_ignored(err, excludes):
            first = next((line for line in err.splitlines() if line.strip()), "no message")
            raise GitFailed(f"git add failed (exit 1): {first}")
        return temp, bool(out.strip())  # -v names every path it added or removed
    except BaseException:
        remove_file(temp)
        raise


def _seed(start: str, temp: str) -> None:
    """``temp`` holding the index ``start``: a hard link where the file system allows
    (git never writes an index in place: it renames a new file over it, so ``start`` is
    left as it was, and an unchanged index costs no copy and no rename), else a copy
    (copy2: its mtime keeps git's racy check exact)."""
    try:
        os.link(start, temp)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copy2(start, temp)


def kept_index(repo: Repo, excludes: Sequence[str]) -> str:
    """The index the last snapshot with these excludes left: one per set of excludes,
    so that a path excluded now is never carried over from a snapshot that held it."""
    import hashlib

    digest = hashlib.blake2b("\x00".join(sorted(excludes)).encode(), digest_size=6).hexdigest()
    return os.path.join(repo.state, f"index-{digest}")


def scratch_objects(repo: Repo, objects: str | None) -> dict[str, str]:
    """The environment that makes git write new objects to ``objects`` (a temporary
    folder) and read the repository's own through it; nothing for None."""
    if objects is None:
        return {}
    return {"GIT_OBJECT_DIRECTORY": objects, "GIT_ALTERNATE_OBJECT_DIRECTORIES": repo.objects}


def _only_excludes_ignored(err: str, excludes: Sequence[str]) -> bool:
    """``git add`` exits 1 when an exclude pathspec names an ignored path, after adding
    everything else; that, and only that, is not a failure."""
    lines = [line for line in err.splitlines() if line and not line.startswith("hint:")]
    if not lines or lines[0] != _IGNORED_HEADER:
        return False
    return all(line.rstrip("/") in excludes for line in lines[1:])


def take(repo: Repo, excludes: Sequence[str] = DEFAULT_EXCLUDES, ref: str | None = None) -> Taken:
    """Snapshot the work tree: a commit of its tree, and ``ref`` pointing at it. When no
    file changed since the previous snapshot (``git add`` changed nothing in the index
    it left), its tree and commit are reused without another git process; the
    temporary index is where the next snapshot starts. Snapshots of one work tree take
    turns (a lock in ``$GIT_DIR/lifecycle``), so the kept index and its tree agree."""
    kept = kept_index(repo, excludes)
    with _locked(repo):
        fingerprint = _fingerprint(kept)
        previous = _read_last(kept + ".last", fingerprint)
        temp, changed = _add_all(repo, excludes, None)
        try:
            taken = None
            if previous is not None and not changed:
                taken = Taken(previous[0], previous[1], unchanged=True)
                if not _point(repo, ref, taken.commit):
                    taken = None  # its commit is gone (a pruned ref and git gc): write it again
            if taken is None:
                taken = _commit(repo, temp, previous)
                if ref is not None:
                    set_ref(repo, ref, taken.commit)
            # the tree and commit of this very index file: a crash between the two
            # lines below leaves a pair that does not match, and the next snapshot
            # writes its tree again instead of trusting it
            last = (taken.tree, taken.commit)
            if last == previous and _fingerprint(temp) == fingerprint:
                return taken  # git left the kept index as it was (temp is a link to it)
            _write_atomic(kept + ".last", f"{last[0]} {last[1]} {_fingerprint(temp)}\n".encode())
            os.replace(temp, kept)
            return taken
        finally:
            remove_file(temp)


def _commit(repo: Repo, index: str, previous: tuple[str, str] | None) -> Taken:
    _, out, _ = git(["write-tree"], repo.top, env=_index_env(repo, index))
    tree = out.decode().strip()
    if previous is not None and previous[0] == tree and _exists(repo, previous[1]):
        return Taken(tree, previous[1], unchanged=True)
    message = b"lifecycle: snapshot of the work tree\n"
    _, out, _ = git(["commit-tree", tree], repo.top, env=git_env(**IDENTITY), stdin=message)
    return Taken(tree, out.decode().strip(), unchanged=False)


def _point(repo: Repo, ref: str | None, commit: str) -> bool:
    """Point ``ref`` at ``commit`` (without a ref: check that it exists); False when the
    commit is no longer in the object store."""
    if ref is None:
        return _exists(repo, commit)
    try:
        set_ref(repo, ref, commit)
    except GitFailed as exc:
        if "nonexistent object" in str(exc) or not _exists(repo, commit):
            return False
        raise
    return True


@contextlib.contextmanager
def _locked(repo: Repo, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """An exclusive ``flock`` on ``$GIT_DIR/lifecycle/lock`` (none where there is no
    fcntl: then two snapshots at once may each write the same objects, harmlessly)."""
    try:
        import fcntl
    except ModuleNotFoundError:  # pragma: no cover - not POSIX
        yield
        return
    import time

    os.makedirs(repo.state, exist_ok=True)
    fd = os.open(os.path.join(repo.state, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise GitFailed(
                        f"another snapshot of {repo.top} has run for {timeout:g} s"
                    ) from None
                time.sleep(0.002)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_last(path: str, index: str | None) -> tuple[str, str] | None:
    """The (tree, commit) the kept index holds, if ``path`` was written for that very
    file (``index``: its fingerprint)."""
    if index is None:
        return None
    try:
        words = Path(path).read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    return (words[0], words[1]) if len(words) == 3 and words[2] == index else None


def _fingerprint(path: str) -> str | None:
    """Which file ``path`` is: inode, size and modification time (``os.replace`` keeps
    all three, and git writes an index as a new file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_ino}.{st.st_size}.{st.st_mtime_ns}"


def _exists(repo: Repo, commit: str) -> bool:
    """The commit is still in the object store (a pruned ref and a ``git gc`` remove it)."""
    code, _, _ = git(["cat-file", "-e", f"{commit}^{{commit}}"], repo.top, ok=(0, 1, 128))
    return code == 0


def _write_atomic(path: str, data: bytes) -> None:
    temp = f"{path}.{os.getpid()}.{os.urandom(6).hex()}"
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    finally:
        remove_file(temp)


def remove_file(path: str) -> None:
    """Remove a temporary index (and the lock git may have left beside it)."""
    for p in (path, path + ".lock"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


def set_ref(repo: Repo, ref: str, commit: str) -> None:
    """Point ``ref`` at ``commit``: written as a loose ref the way git writes one (a
    ``.lock`` file created exclusively, then renamed) when the repository keeps its
    refs as files and the commit is a loose object (so it certainly exists); else,
    and whenever that meets anything unusual, by ``git update-ref``."""
    if not _write_loose_ref(repo, ref, commit):
        git(["update-ref", "--no-deref", ref, commit], repo.top)


def _shared(common: str) -> bool:
    """The repository's config may set ``core.sharedRepository`` (or cannot be read):
    then git decides a ref's permissions."""
    try:
        with open(os.path.join(common, "config"), "rb") as f:
            return b"sharedrepository" in f.read(1 << 20).lower()
    except OSError:
        return True


def _write_loose_ref(repo: Repo, ref: str, commit: str) -> bool:
    common = os.path.dirname(repo.objects)
    if (
        not ref.startswith(REF_ROOT)
        or os.path.basename(repo.objects) != "objects"
        or len(commit) != 40
        or any(c not in "0123456789abcdef" for c in commit)
        or not os.path.isfile(os.path.join(repo.objects, commit[:2], commit[2:]))
        or not os.path.isdir(os.path.join(common, "refs", "heads"))  # a reftable one: a file
        or _shared(common)
    ):
        return False
    path = os.path.join(common, *ref.split("/"))
    lock = path + ".lock"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError:
        return False  # another writer's lock, a file where a folder goes: git says what
    try:
        try:
            os.write(fd, commit.encode() + b"\n")
        finally:
            os.close(fd)
        os.rename(lock, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        return False
    return True


def resolve_ref(repo: Repo, ref: str) -> str | None:
    args = ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]
    code, out, _ = git(args, repo.top, ok=(0, 1))
    return out.decode().strip() if code == 0 else None


def list_refs(repo: Repo, project: str) -> dict[str, str]:
    """``{name: commit}`` of the project's snapshot refs (checkpoint ids and ``undo``)."""
    prefix = ref_name(project, "")
    fmt = "--format=%(refname) %(objectname)"
    _, out, _ = git(["for-each-ref", fmt, prefix], repo.top)
    found = {}
    for line in out.decode("utf-8", "replace").splitlines():
        ref, _, commit = line.rpartition(" ")
        found[ref.removeprefix(prefix)] = commit
    return found


def delete_refs(repo: Repo, project: str, names: Iterable[str]) -> int:
    """Delete the project's snapshot refs ``names`` (one git process); how many."""
    lines = [f"delete {ref_name(project, n)}\n" for n in names]
    if lines:
        git(["update-ref", "--stdin"], repo.top, stdin="".join(lines).encode())
    return len(lines)


# -- what a checkpoint writer calls -----------------------------------------------------


class Snapshots:
    """The session's snapshot setting, for its checkpoint writer: :meth:`attach` takes
    the snapshot a checkpoint is due and names it in the checkpoint."""

    def __init__(
        self,
        policy: SnapshotPolicy | str = SnapshotPolicy.RISK,
        work_tree: str | os.PathLike[str] | None = None,
        store_paths: Iterable[str | os.PathLike[str]] = (),
    ) -> None:
        from lifecycle.errors import InvalidSettings

        try:
            self.policy = SnapshotPolicy(policy)
        except ValueError:
            choices = tuple(p.value for p in SnapshotPolicy)
            raise InvalidSettings(f"snapshot={policy!r}; use one of {choices}") from None
        self.work_tree = None if work_tree is None else os.fspath(work_tree)
        self.store_paths = tuple(store_paths)
        self._repo: Repo | str | None = None  # found once per manager: the repo, or why not

    def repo(self) -> Repo:
        """The work tree's repository, looked up once per manager (a hook or a command is
        one process; a long-lived one keeps the answer); NoWorkTree when there is none."""
        found = self._repo
        if found is None:
            try:
                found = find_repo(self.work_tree)
            except NoWorkTree as exc:
                found = str(exc)
            self._repo = found
        if isinstance(found, str):
            raise NoWorkTree(found)
        return found

    def due(self, checkpoint: Checkpoint) -> bool:
        if self.policy is SnapshotPolicy.NEVER:
            return False
        return self.policy is SnapshotPolicy.ALL or checkpoint.type.value == "risk"

    def attach(self, checkpoint: Checkpoint) -> Checkpoint:
        """``checkpoint`` naming the snapshot taken for it, when one is due; a snapshot
        that cannot be taken is a note in the checkpoint (and a warning), never an
        error: the checkpoint is written either way."""
        if not self.due(checkpoint):
            return checkpoint
        from lifecycle.records import revise

        return revise(checkpoint, snapshot=self.snapshot(checkpoint.project, checkpoint.id))

    def discard(self, checkpoint: Checkpoint) -> None:
        """Delete the snapshot ref of a checkpoint that was not written (it lost the race
        for the latest pointer and is written again under a later id). Best effort: an
        orphan left here is deleted by ``lifecycle prune``."""
        snap = checkpoint.snapshot
        if snap is None or snap.ref is None or not isinstance(self._repo, Repo):
            return
        with contextlib.suppress(GitFailed, NoWorkTree, OSError):
            git(["update-ref", "-d", snap.ref], self._repo.top)

    def snapshot(self, project: str, checkpoint_id: str) -> WorkTreeSnapshot:
        from lifecycle.logs import get_logger
        from lifecycle.records import WorkTreeSnapshot

        try:
            repo = self.repo()
            ref = ref_name(project, checkpoint_id)
            taken = take(repo, excluded(repo, self.store_paths), ref)
        except NoWorkTree as exc:
            return WorkTreeSnapshot(skipped=str(exc))
        except (GitFailed, OSError) as exc:
            get_logger(__name__).warning("snapshot.failed", error=str(exc))
            return WorkTreeSnapshot(skipped=f"the snapshot failed: {exc}")
        return WorkTreeSnapshot(commit=taken.commit, ref=ref, unchanged=taken.unchanged)


def store_paths(store: Any) -> tuple[str, ...]:
    """The files a store keeps in the work tree (left out of every snapshot): a file
    store's folder, an SQLite database and its journal files."""
    root = getattr(store, "root", None)
    if root is not None:
        return (os.fspath(root),)
    path = getattr(store, "path", None)
    if isinstance(path, str) and path and path != ":memory:":
        return tuple(path + suffix for suffix in ("", "-wal", "-shm", "-journal"))
    return ()


#: Sets the snapshot policy where the code does not (Claude Code hooks, the command line).
ENV_VAR = "LIFECYCLE_SNAPSHOT"


def session_snapshots(
    policy: SnapshotPolicy | str | None, work_tree: str | os.PathLike[str] | None, store: Any
) -> Snapshots | None:
    """A manager's snapshot setting (``policy`` None: ``$LIFECYCLE_SNAPSHOT`` or
    ``"risk"``); None for ``"never"``, so its checkpoint writer never runs git."""
    chosen = Snapshots(
        policy if policy is not None else os.environ.get(ENV_VAR) or SnapshotPolicy.RISK,
        work_tree,
        store_paths(store),
    )
    return None if chosen.policy is SnapshotPolicy.NEVER else chosen


def stale_refs(repo: Repo, project: str, checkpoint_ids: Iterable[str]) -> list[str]:
    """The project's snapshot refs whose checkpoint is not among ``checkpoint_ids`` (the
    ones still stored): pruned, or orphaned by a write that lost a race and re-keyed."""
    keep = set(checkpoint_ids)
    return sorted(n for n in list_refs(repo, project) if n.startswith("cp-") and n not in keep)
