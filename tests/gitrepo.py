"""A real git repository for the snapshot and rewind tests, and the check that
lifecycle left the user's side of it alone.

:class:`GitRepo` runs git as the user would. :meth:`GitRepo.user` marks the state
after something the user did (a commit, ``rm -rf``, ``git reset --hard``): the
index, HEAD, branches, stash and config lifecycle must leave exactly as they are,
and the ``git status`` output. :meth:`GitRepo.untouched` asserts that nothing of it
changed across a lifecycle call (``status=False`` for a real rewind, which changes
the work tree on purpose: its tests assert the status it leaves).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TIMEOUT = 60


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.baseline: dict[str, Any] = {}

    def git(self, *args: str, check: bool = True, input: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", *args],
            cwd=self.path,
            capture_output=True,
            input=input,
            timeout=TIMEOUT,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"git {' '.join(args)}: {done.stderr.decode()}")
        return done.stdout.decode("utf-8", "surrogateescape")

    def sh(self, command: str) -> None:
        subprocess.run(command, shell=True, cwd=self.path, check=True, timeout=TIMEOUT)

    def write(self, rel: str, data: str | bytes, mode: int | None = None) -> Path:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
        if mode is not None:
            path.chmod(mode)
        return path

    def commit_all(self, message: str = "commit") -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)

    @property
    def git_dir(self) -> Path:
        return Path(self.git("rev-parse", "--absolute-git-dir").strip())

    def state(self) -> dict[str, Any]:
        """The user's side of the repository, byte for byte."""
        git_dir = self.git_dir
        common = Path(self.git("rev-parse", "--git-common-dir").strip())
        common = common if common.is_absolute() else self.path / common
        index = git_dir / "index"
        return {
            "index": index.read_bytes() if index.exists() else None,
            "HEAD": (git_dir / "HEAD").read_bytes(),
            "head_commit": self.git("rev-parse", "-q", "--verify", "HEAD", check=False),
            "branches": self.git("for-each-ref", "refs/heads", "refs/tags", "refs/remotes"),
            "stash": self.git("for-each-ref", "refs/stash")
            + self.git("stash", "list", check=False),
            "config": (common / "config").read_bytes(),
            "status": self.status(),
        }

    def status(self) -> str:
        # GIT_OPTIONAL_LOCKS=0: this status must not refresh (rewrite) the index itself.
        done = subprocess.run(
            ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
            cwd=self.path,
            capture_output=True,
            timeout=TIMEOUT,
            check=True,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
        return done.stdout.decode("utf-8", "surrogateescape")

    def user(self) -> dict[str, Any]:
        """Mark the state the user left (after setup or a user action)."""
        self.baseline = self.state()
        return self.baseline

    def assert_unchanged(self, *, status: bool = True) -> None:
        now = self.state()
        for name, before in self.baseline.items():
            if name == "status" and not status:
                continue
            assert now[name] == before, f"lifecycle changed the user's {name}"

    @contextlib.contextmanager
    def untouched(self, *, status: bool = True) -> Iterator[None]:
        self.user()
        yield
        self.assert_unchanged(status=status)
        if not status:
            self.baseline["status"] = self.status()

    def objects(self) -> set[str]:
        """Every object in the repository's object folder (loose and packed)."""
        found = self.git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
        return set(found.split())

    def files(self) -> dict[str, tuple[str, bytes, int]]:
        """Every file of the work tree outside .git: (kind, content or link target, mode)."""
        out: dict[str, tuple[str, bytes, int]] = {}
        for root, dirs, names in os.walk(self.path):
            dirs[:] = [d for d in dirs if d != ".git"]
            for name in names + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                full = os.path.join(root, name)
                rel = os.path.relpath(full, self.path)
                st = os.lstat(full)
                if os.path.islink(full):
                    out[rel] = ("link", os.readlink(full).encode(), 0)
                else:
                    out[rel] = ("file", Path(full).read_bytes(), st.st_mode & 0o111)
        return out


def make_repo(path: Path, *, commit: bool = True) -> GitRepo:
    path.mkdir(parents=True, exist_ok=True)
    repo = GitRepo(path)
    repo.git("init", "-q", "-b", "main")
    repo.git("config", "user.name", "Test User")
    repo.git("config", "user.email", "user@example.com")
    if commit:
        repo.write("src/app.py", "print('app')\n")
        repo.write("src/lib/util.py", "def util():\n    return 1\n")
        repo.write("README.md", "# project\n")
        repo.write(".gitignore", "*.log\n/build/\n")
        repo.commit_all("initial")
        # a stash entry and a second branch, so that leaving them alone is checked for real
        repo.write("README.md", "# stashed edit\n")
        repo.git("stash", "push", "-q", "-m", "the user's stash")
        repo.git("branch", "feature")
    repo.user()
    return repo
