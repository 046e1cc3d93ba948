"""Snapshots of the work tree at risk checkpoints, and ``lifecycle rewind``, on real git
repositories. Every lifecycle call runs inside ``repo.untouched()``: the user's index,
HEAD, branches, stash, config and ``git status`` are byte-identical afterwards (for a
real rewind, everything but the status, which the test asserts); the fixture checks
the same once more when the test ends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitrepo import TIMEOUT, GitRepo, make_repo

from lifecycle import SessionManager, open_store
from lifecycle.errors import CheckpointNotFound, InvalidSettings
from lifecycle.rewind import RewindRefused, RewindResult, rewind
from lifecycle.snapshots import find_repo, list_refs, take

PROJECT = "p"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No global or system git config: the repository's own is the user's config."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("LIFECYCLE_SNAPSHOT", raising=False)
    return home


@pytest.fixture
def repo(tmp_path: Path, home: Path) -> Iterator[GitRepo]:
    made = make_repo(tmp_path / "work")
    yield made
    made.assert_unchanged(status=False)


def session(repo: GitRepo, tmp_path: Path, **options: Any) -> SessionManager:
    options.setdefault("snapshot", "risk")
    store = open_store(options.pop("store", f"file://{tmp_path / 'store'}"))
    m = SessionManager(store=store, project=PROJECT, work_tree=repo.path, **options)
    m.start_session(restore=False)
    return m


def risk_checkpoint(
    m: SessionManager, repo: GitRepo, command: str = "rm -rf src", *, status: bool = True
) -> str:
    with repo.untouched(status=status):
        clearance = m.before_operation(command)
    assert clearance.proceed
    assert clearance.checkpoint is not None
    cp_id = clearance.checkpoint.checkpoint_id
    assert cp_id is not None
    return cp_id


def rewind_to(m: SessionManager, repo: GitRepo, cp_id: str | None, **options: Any) -> RewindResult:
    dry = options.get("dry_run", False)
    with repo.untouched(status=dry):
        return rewind(m.store, PROJECT, cp_id, work_tree=repo.path, **options)


# -- taking snapshots ---------------------------------------------------------------------


def test_a_risk_checkpoint_names_a_snapshot_commit_referenced_from_the_project_ref(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    snap = m.read_checkpoint(cp_id).snapshot
    assert snap is not None
    assert snap.ref == f"refs/lifecycle/{PROJECT}/{cp_id}"
    assert repo.git("rev-parse", snap.ref).strip() == snap.commit
    assert list_refs(find_repo(repo.path), PROJECT) == {cp_id: snap.commit}


def test_a_snapshot_holds_tracked_and_untracked_files_but_not_ignored_ones(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.write("src/app.py", "print('changed, not staged')\n")
    repo.write("notes.txt", "untracked\n")
    repo.write("debug.log", "ignored\n")
    repo.write("build/out.bin", b"ignored too")
    m = session(repo, tmp_path)
    snap = m.read_checkpoint(risk_checkpoint(m, repo)).snapshot
    assert snap is not None
    files = repo.git("ls-tree", "-r", "--name-only", str(snap.commit)).split()
    assert files == [".gitignore", "README.md", "notes.txt", "src/app.py", "src/lib/util.py"]
    app = repo.git("show", f"{snap.commit}:src/app.py")
    assert app == "print('changed, not staged')\n"


def test_an_unchanged_work_tree_adds_no_objects_and_reuses_the_commit(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    first = m.read_checkpoint(risk_checkpoint(m, repo)).snapshot
    objects = repo.objects()
    second = m.read_checkpoint(risk_checkpoint(m, repo, "git reset --hard")).snapshot
    assert first is not None
    assert second is not None
    assert repo.objects() == objects
    assert (second.commit, second.unchanged, first.unchanged) == (first.commit, True, False)


def test_an_unchanged_snapshot_rewrites_none_of_its_own_files(repo: GitRepo) -> None:
    """The kept index is the hard-link seed git left alone: nothing is copied or renamed
    (on ext4 a rename over the 800 KB index of 10,000 files cost milliseconds)."""
    import time

    from lifecycle.snapshots import DEFAULT_EXCLUDES, kept_index

    # Files written in the second an index is written are "racily clean" (git's term),
    # and git rewrites that index to check them again: let the files be older.
    old = time.time() - 60
    for path in repo.path.rglob("*"):
        if ".git" not in path.parts:
            os.utime(path, (old, old), follow_symlinks=False)
    found = find_repo(repo.path)
    take(found, ref="refs/lifecycle/p/cp-1")
    kept = kept_index(found, DEFAULT_EXCLUDES)

    def state() -> dict[str, tuple[int, int]]:
        folder = Path(found.state)
        return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}

    before = state()
    again = take(found, ref="refs/lifecycle/p/cp-2")
    assert again.unchanged and state() == before
    assert Path(kept).stat().st_nlink == 1  # no link to it left behind
    repo.write("src/app.py", "print('changed')\n")
    changed = take(found, ref="refs/lifecycle/p/cp-3")
    assert not changed.unchanged and state()[Path(kept).name] != before[Path(kept).name]


def test_a_git_command_past_its_timeout_is_stopped_with_a_clear_error(repo: GitRepo) -> None:
    import time

    from lifecycle.snapshots import GitFailed, git

    started = time.monotonic()
    with pytest.raises(GitFailed, match="took more than 0.5 s and was stopped"):
        git(["-c", "alias.hang=!sleep 30", "hang"], str(repo.path), timeout=0.5)
    assert time.monotonic() - started < 10
    code, out, _ = git(["hash-object", "--stdin"], str(repo.path), stdin=b"x" * 200_000)
    assert code == 0 and len(out.strip()) == 40  # input larger than a pipe's buffer


def test_a_changed_file_is_a_new_commit_with_only_the_new_objects(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    risk_checkpoint(m, repo)
    objects = repo.objects()
    repo.write("src/lib/util.py", "def util():\n    return 2\n")
    repo.user()
    second = m.read_checkpoint(risk_checkpoint(m, repo)).snapshot
    assert second is not None
    assert not second.unchanged
    # the new blob, the trees above it (src/lib, src, the root) and the commit
    assert len(repo.objects() - objects) == 5


def test_a_manual_checkpoint_takes_no_snapshot_under_the_default_setting(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path, snapshot=None)
    with repo.untouched():
        written = m.create_checkpoint(phase="Phase 1")
    assert m.read_checkpoint(written.checkpoint_id).snapshot is None
    cp_id = risk_checkpoint(m, repo)  # the default is "risk"
    assert m.read_checkpoint(cp_id).snapshot is not None


def test_snapshot_all_snapshots_every_checkpoint_and_never_none(
    repo: GitRepo, tmp_path: Path
) -> None:
    every = session(repo, tmp_path, snapshot="all", store="memory://")
    with repo.untouched():
        written = every.create_checkpoint(phase="Phase 1")
    snap = every.read_checkpoint(written.checkpoint_id).snapshot
    assert snap is not None
    assert snap.commit is not None
    never = session(repo, tmp_path, snapshot="never", store="memory://")
    with repo.untouched():
        cp_id = risk_checkpoint(never, repo)
    assert never.read_checkpoint(cp_id).snapshot is None


def test_the_environment_sets_the_policy_when_the_code_does_not(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFECYCLE_SNAPSHOT", "all")
    m = session(repo, tmp_path, snapshot=None, store="memory://")
    with repo.untouched():
        written = m.create_checkpoint(phase="x")
    assert m.read_checkpoint(written.checkpoint_id).snapshot is not None


def test_an_unknown_policy_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match=r"snapshot='sometimes'; use one of"):
        SessionManager(store=open_store("memory://"), snapshot="sometimes")


def test_a_folder_outside_git_gets_no_snapshot_and_the_checkpoint_says_so(
    tmp_path: Path, home: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    m = SessionManager(store=open_store("memory://"), project=PROJECT, work_tree=plain)
    m.start_session(restore=False)
    clearance = m.before_operation("rm -rf src")
    assert clearance.proceed
    assert clearance.checkpoint is not None
    snap = m.read_checkpoint(clearance.checkpoint.checkpoint_id).snapshot
    assert snap is not None
    assert snap.commit is None
    assert "is not in a git work tree" in snap.skipped


def test_without_git_on_the_path_the_checkpoint_says_git_is_missing(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    m = session(repo, tmp_path, store="memory://")
    clearance = m.before_operation("rm -rf src")
    monkeypatch.undo()
    assert clearance.proceed
    assert clearance.checkpoint is not None
    snap = m.read_checkpoint(clearance.checkpoint.checkpoint_id).snapshot
    assert snap is not None
    assert (snap.commit, snap.skipped) == (None, "git is not installed (no `git` on PATH)")


def test_the_store_folder_in_the_work_tree_is_left_out(repo: GitRepo, tmp_path: Path) -> None:
    m = session(repo, tmp_path, store=f"file://{repo.path / 'state'}")
    db = open_store(f"sqlite:///{repo.path / 'sessions.db'}")
    other = SessionManager(store=db, project=PROJECT, work_tree=repo.path, snapshot="risk")
    other.start_session(restore=False)
    repo.user()
    for manager, own in ((m, "state/"), (other, "sessions.db")):
        # the store's own files change the status: they are the store's, not lifecycle's
        snap = manager.read_checkpoint(risk_checkpoint(manager, repo, status=False)).snapshot
        assert snap is not None
        files = repo.git("ls-tree", "-r", "--name-only", str(snap.commit)).split()
        assert files
        assert not [f for f in files if f.startswith(own)]
    db.close()


def test_an_empty_repository_with_no_commits_is_snapshotted_and_restored(
    tmp_path: Path, home: Path
) -> None:
    repo = make_repo(tmp_path / "empty", commit=False)
    repo.write("first.txt", "before any commit\n")
    repo.user()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    (repo.path / "first.txt").unlink()
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert result.restored == ("first.txt",)
    assert (repo.path / "first.txt").read_text() == "before any commit\n"
    assert repo.git("rev-parse", "-q", "--verify", "HEAD", check=False) == ""
    repo.assert_unchanged(status=False)


def test_a_linked_worktree_where_git_is_a_file_is_snapshotted(
    repo: GitRepo, tmp_path: Path
) -> None:
    linked_path = tmp_path / "linked"
    repo.git("worktree", "add", "-q", "-b", "side", str(linked_path))
    linked = GitRepo(linked_path)
    assert (linked_path / ".git").is_file()
    linked.write("src/app.py", "print('side work')\n")
    linked.user()
    repo.user()
    m = session(linked, tmp_path)
    cp_id = risk_checkpoint(m, linked)
    shutil.rmtree(linked_path / "src")
    linked.user()
    result = rewind_to(m, linked, cp_id)
    assert set(result.restored) == {"src/app.py", "src/lib/util.py"}
    assert (linked_path / "src/app.py").read_text() == "print('side work')\n"
    linked.assert_unchanged(status=False)
    repo.assert_unchanged()  # the main work tree saw nothing


def test_two_hooks_snapshotting_at_once_both_get_their_snapshot(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.write("src/app.py", "print('wip')\n")
    repo.write("new.txt", "new\n")
    repo.user()
    env = {**os.environ, "CLAUDE_PROJECT_DIR": str(repo.path), "LIFECYCLE_SNAPSHOT": "risk"}
    env["LIFECYCLE_STORE"] = f"file://{tmp_path / 'store'}"
    event = {
        "session_id": "s1",
        "cwd": str(repo.path),
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "rm -rf src"},
    }
    hooks = [
        subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "hook", "claude"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=repo.path,
            env={**env, "LIFECYCLE_PROJECT": name},
        )
        for name in ("one", "two", "one", "two")
    ]
    for hook in hooks:
        out, _ = hook.communicate(json.dumps(event).encode(), timeout=TIMEOUT)
        assert hook.returncode == 0
        assert out.strip() == b""  # nothing to say: the checkpoint and its snapshot are written
    repo.assert_unchanged()
    where = find_repo(repo.path)
    refs = {**list_refs(where, "one"), **list_refs(where, "two")}
    assert len(refs) == 4
    assert len(set(refs.values())) == 1  # the same tree: the same snapshot
    files = repo.git("ls-tree", "-r", "--name-only", next(iter(refs.values()))).split()
    assert "new.txt" in files


def test_snapshots_taken_by_many_threads_at_once_all_hold_the_work_tree(repo: GitRepo) -> None:
    repo.write("a file.txt", "x\n")
    repo.user()
    where = find_repo(repo.path)
    trees: list[str] = []
    errors: list[BaseException] = []

    def snap() -> None:
        try:
            trees.append(take(where).tree)
        except BaseException as exc:
            errors.append(exc)

    with repo.untouched():
        threads = [threading.Thread(target=snap) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
    assert errors == []
    assert len(set(trees)) == 1
    left = [p.name for p in (repo.git_dir / "lifecycle").iterdir()]
    assert not [name for name in left if name.startswith("index.")]  # no temporary index left


# -- rewinding ----------------------------------------------------------------------------


def test_rewind_after_rm_rf_src_brings_the_folder_back(repo: GitRepo, tmp_path: Path) -> None:
    repo.write("src/lib/new_module.py", "NEW = 1\n")
    before = repo.user()
    files = repo.files()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    shutil.rmtree(repo.path / "src")
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert set(result.restored) == {"src/app.py", "src/lib/util.py", "src/lib/new_module.py"}
    assert repo.files() == files
    assert repo.status() == before["status"]


def test_rewind_after_git_reset_hard_brings_the_uncommitted_work_back(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.write("src/app.py", "print('uncommitted')\n")
    repo.write("scratch.txt", "untracked work\n")
    before = repo.user()
    files = repo.files()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo, "git reset --hard")
    repo.git("reset", "-q", "--hard")
    repo.git("clean", "-q", "-f")
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert (result.restored, result.modified) == (("scratch.txt",), ("src/app.py",))
    assert repo.files() == files
    assert repo.status() == before["status"]


def test_rewind_after_a_bulk_sed_brings_every_file_back(repo: GitRepo, tmp_path: Path) -> None:
    for i in range(30):
        repo.write(f"pkg/mod{i}.py", f"value = 'old'  # {i}\n")
    repo.commit_all("modules")
    repo.user()
    files = repo.files()
    m = session(repo, tmp_path)
    command = "find pkg -name '*.py' -exec sed -i s/old/new/ {} +"
    cp_id = risk_checkpoint(m, repo, command)
    repo.sh(command)
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert len(result.modified) == 30
    assert repo.files() == files
    assert repo.status() == ""


def test_binary_files_symlinks_and_executable_bits_come_back_exactly(
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.write("bin/blob.bin", bytes(range(256)) * 64)
    repo.write("bin/run.sh", "#!/bin/sh\necho run\n", mode=0o755)
    os.symlink("src/app.py", repo.path / "app-link")
    os.symlink("nowhere/at/all", repo.path / "dangling")
    os.symlink("src/lib", repo.path / "lib-link")
    repo.user()
    files = repo.files()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    (repo.path / "bin/blob.bin").write_bytes(b"\x00corrupted")
    (repo.path / "bin/run.sh").chmod(0o644)
    for name in ("app-link", "dangling", "lib-link"):
        (repo.path / name).unlink()
    (repo.path / "app-link").write_text("a file where a link was\n")
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert set(result.restored) == {"dangling", "lib-link"}
    assert set(result.modified) == {"bin/blob.bin", "bin/run.sh", "app-link"}
    assert repo.files() == files
    assert os.readlink(repo.path / "lib-link") == "src/lib"


def test_paths_with_spaces_and_unicode_come_back(repo: GitRepo, tmp_path: Path) -> None:
    names = ["docs/read me.txt", "données/été.md", "日本語/ファイル 1.txt", "tab\tname.txt"]
    for name in names:
        repo.write(name, f"content of {name}\n")
    repo.user()
    files = repo.files()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    for name in names:
        (repo.path / name).unlink()
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert sorted(result.restored) == sorted(names)
    assert repo.files() == files


def test_a_50_mb_file_comes_back(repo: GitRepo, tmp_path: Path) -> None:
    block = os.urandom(1024 * 1024)
    big = repo.write("data/big.bin", block * 50)
    repo.user()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    big.unlink()
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert result.restored == ("data/big.bin",)
    assert big.stat().st_size == 50 * 1024 * 1024
    assert big.read_bytes() == block * 50


def test_a_dry_run_lists_the_changes_and_writes_nothing_not_even_objects(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    (repo.path / "src/app.py").unlink()
    repo.write("README.md", "# changed since\n")
    repo.write("later.txt", "created since\n")
    repo.user()
    files, objects, refs = repo.files(), repo.objects(), repo.git("for-each-ref")
    result = rewind_to(m, repo, cp_id, dry_run=True)
    assert (result.restored, result.modified, result.created) == (
        ("src/app.py",),
        ("README.md",),
        ("later.txt",),
    )
    assert result.undo_ref is None
    assert (repo.files(), repo.objects(), repo.git("for-each-ref")) == (files, objects, refs)


def test_files_created_since_are_kept_unless_delete_new(repo: GitRepo, tmp_path: Path) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    repo.write("src/created.py", "x = 1\n")
    repo.write("fresh/deep/new.txt", "new\n")
    repo.write("fresh/debug.log", "ignored: never ours to delete\n")
    repo.user()
    kept = rewind_to(m, repo, cp_id)
    assert set(kept.created) == {"src/created.py", "fresh/deep/new.txt"}
    assert (repo.path / "src/created.py").exists()
    deleted = rewind_to(m, repo, cp_id, delete_new=True)
    assert deleted.deleted_new
    assert not (repo.path / "src/created.py").exists()
    assert not (repo.path / "fresh/deep").exists()  # the folder it left empty went too
    assert (repo.path / "fresh/debug.log").exists()


def test_paths_limit_the_rewind(repo: GitRepo, tmp_path: Path) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    shutil.rmtree(repo.path / "src")
    (repo.path / "README.md").unlink()
    repo.user()
    result = rewind_to(m, repo, cp_id, paths=["src/lib"])
    assert result.restored == ("src/lib/util.py",)
    assert not (repo.path / "src/app.py").exists()
    assert not (repo.path / "README.md").exists()
    with pytest.raises(RewindRefused, match="outside the work tree"):
        rewind_to(m, repo, cp_id, paths=["../elsewhere"])


def test_undo_brings_back_what_the_rewind_replaced(repo: GitRepo, tmp_path: Path) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    repo.write("src/app.py", "print('newer work')\n")
    repo.write("newer.txt", "newer\n")
    after = repo.user()
    files = repo.files()
    rewind_to(m, repo, cp_id, delete_new=True)
    assert not (repo.path / "newer.txt").exists()
    undone = rewind_to(m, repo, None, undo=True)
    assert undone.source == "undo"
    assert repo.files() == files
    assert repo.status() == after["status"]


def test_undo_keeps_a_file_created_after_the_rewind_and_one_changed_since(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    shutil.rmtree(repo.path / "src")
    repo.user()
    rewind_to(m, repo, cp_id)
    repo.write("src/lib/util.py", "def util():\n    return 'edited after the rewind'\n")
    repo.write("src/after.py", "created after the rewind\n")
    repo.user()
    undone = rewind_to(m, repo, None, undo=True)
    assert undone.undone == ("src/app.py",)  # as the rewind wrote it: its doing, undone
    assert set(undone.created) == {"src/lib/util.py", "src/after.py"}
    assert (repo.path / "src/after.py").exists()
    assert "edited after the rewind" in (repo.path / "src/lib/util.py").read_text()


def test_a_file_created_where_a_folder_was_blocks_only_without_delete_new(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    shutil.rmtree(repo.path / "src")
    repo.write("src", "a file named like the folder\n")
    repo.user()
    blocked = rewind_to(m, repo, cp_id)
    assert set(blocked.blocked) == {"src/app.py", "src/lib/util.py"}
    assert not blocked.complete
    assert (repo.path / "src").read_text() == "a file named like the folder\n"
    cleared = rewind_to(m, repo, cp_id, delete_new=True)
    assert cleared.complete
    assert (repo.path / "src/app.py").read_text() == "print('app')\n"


@pytest.mark.parametrize("operation", ["merge", "rebase", "cherry-pick"])
def test_rewind_refuses_while_an_operation_is_in_progress(
    repo: GitRepo, tmp_path: Path, operation: str
) -> None:
    repo.git("checkout", "-q", "-b", "other")
    repo.write("README.md", "# other\n")
    repo.commit_all("other")
    repo.git("checkout", "-q", "main")
    repo.write("README.md", "# main\n")
    repo.commit_all("main")
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    repo.git(operation, "other", check=False)  # conflicts on README.md: stops half done
    repo.user()
    files = repo.files()
    with repo.untouched(), pytest.raises(RewindRefused, match=r"in progress"):
        rewind(m.store, PROJECT, cp_id, work_tree=repo.path)
    assert repo.files() == files


def test_a_checkpoint_without_a_snapshot_or_unknown_is_a_clear_error(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    written = m.create_checkpoint(phase="manual")
    assert written.checkpoint_id is not None
    with pytest.raises(RewindRefused, match="has no snapshot of the work tree"):
        rewind(m.store, PROJECT, written.checkpoint_id, work_tree=repo.path)
    with pytest.raises(CheckpointNotFound):
        rewind(m.store, PROJECT, "cp-20200101T000000.000000Z", work_tree=repo.path)
    with pytest.raises(RewindRefused, match="nothing to undo"):
        rewind(m.store, PROJECT, None, undo=True, work_tree=repo.path)


# -- the command line ---------------------------------------------------------------------


def cli(
    repo: GitRepo, tmp_path: Path, *args: str, project: str = PROJECT
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LIFECYCLE_STORE": f"file://{tmp_path / 'store'}"}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args, "--project", project],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_the_command_line_rewinds_with_json_output_and_undoes(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    m.store.close()
    files = repo.files()
    shutil.rmtree(repo.path / "src")
    repo.write("later.txt", "later\n")
    repo.user()
    with repo.untouched():
        dry = cli(repo, tmp_path, "rewind", cp_id, "--dry-run", "--format", "json")
    assert (dry.returncode, dry.stderr) == (0, "")
    data = json.loads(dry.stdout)
    assert (data["dry_run"], data["restored"], data["created"]) == (
        True,
        ["src/app.py", "src/lib/util.py"],
        ["later.txt"],
    )
    with repo.untouched(status=False):
        done = cli(repo, tmp_path, "rewind", cp_id, "--delete-new")
    assert done.returncode == 0, done.stderr
    assert "lifecycle rewind --undo" in done.stdout
    assert repo.files() == files
    with repo.untouched(status=False):
        undone = cli(repo, tmp_path, "rewind", "--undo", "--format", "json")
    assert undone.returncode == 0, undone.stderr
    data = json.loads(undone.stdout)
    assert (data["source"], data["restored"]) == ("undo", ["later.txt"])
    assert data["undone"] == ["src/app.py", "src/lib/util.py"]  # what the rewind brought back
    assert (repo.path / "later.txt").exists()
    assert not (repo.path / "src").exists()


def test_the_command_line_refuses_in_one_line(repo: GitRepo, tmp_path: Path) -> None:
    both = cli(repo, tmp_path, "rewind", "cp-20200101T000000.000000Z", "--undo")
    assert (both.returncode, both.stderr) == (
        1,
        "lifecycle: error: name a CHECKPOINT_ID or give --undo (one of the two)\n",
    )
    unknown = cli(repo, tmp_path, "rewind", "cp-20200101T000000.000000Z")
    assert unknown.returncode == 4
    assert unknown.stderr.count("\n") == 1
    outside = tmp_path / "outside"
    outside.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "rewind", "--undo", "--store", "memory://"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert "is not in a git work tree" in done.stderr
    assert "Traceback" not in done.stderr


# -- retention and history ----------------------------------------------------------------


def test_prune_deletes_the_snapshot_refs_of_the_checkpoints_it_prunes(
    repo: GitRepo, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from lifecycle.retention import Policy, prune

    now = datetime(2026, 6, 1, tzinfo=UTC)
    old = session(repo, tmp_path, clock=lambda: now - timedelta(days=100))
    pruned = [risk_checkpoint(old, repo), risk_checkpoint(old, repo, "git clean -fd")]
    recent = session(repo, tmp_path, clock=lambda: now - timedelta(days=1))
    kept = risk_checkpoint(recent, repo)
    where = find_repo(repo.path)
    commit = list_refs(where, PROJECT)[kept]
    repo.git("update-ref", f"refs/lifecycle/{PROJECT}/cp-20200101T000000.000000Z", commit)
    repo.user()
    orphan = "cp-20200101T000000.000000Z"  # a ref whose checkpoint is not stored
    with repo.untouched():
        dry = prune(recent.store, now, Policy(), dry_run=True, work_tree=repo.path)
    assert dry.snapshot_refs == (orphan, *sorted(pruned))
    assert set(list_refs(where, PROJECT)) == {*pruned, kept, orphan}
    with repo.untouched():
        done = prune(recent.store, now, Policy(), work_tree=repo.path)
    assert done.snapshot_refs == dry.snapshot_refs
    assert list_refs(where, PROJECT) == {kept: commit}


def test_history_marks_the_checkpoints_that_have_a_snapshot(repo: GitRepo, tmp_path: Path) -> None:
    from lifecycle.history import build_history

    m = session(repo, tmp_path)
    with repo.untouched():
        manual = m.create_checkpoint(phase="by hand")
    risky = risk_checkpoint(m, repo)
    tree = build_history(m.store)
    marked = {n["id"]: n["snapshot"] for n in tree.as_dict()["checkpoints"]}
    assert marked == {
        manual.checkpoint_id: None,
        risky: list_refs(find_repo(repo.path), PROJECT)[risky],
    }
    lines = list(tree.lines())
    assert [line for line in lines if "[snapshot]" in line] == [
        line for line in lines if line.startswith(risky)
    ]


# -- Claude Code ----------------------------------------------------------------------------


def hook(repo: GitRepo, tmp_path: Path, event: dict[str, Any]) -> dict[str, Any] | None:
    env = {**os.environ, "CLAUDE_PROJECT_DIR": str(repo.path)}
    env.pop("LIFECYCLE_SNAPSHOT", None)  # the default: risk checkpoints snapshot
    env["LIFECYCLE_STORE"] = f"file://{tmp_path / 'store'}"
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "hook", "claude"],
        input=json.dumps({"cwd": str(repo.path / "src"), **event}),
        capture_output=True,
        text=True,
        cwd=repo.path / "src",
        env=env,
        timeout=TIMEOUT,
        check=True,
    )
    answer: dict[str, Any] | None = json.loads(done.stdout) if done.stdout.strip() else None
    return answer


def test_the_risky_pre_tool_use_hook_snapshots_before_it_answers_and_the_next_session_says_how_to_rewind(  # noqa: E501
    repo: GitRepo, tmp_path: Path
) -> None:
    repo.write("src/wip.py", "work in progress\n")
    repo.user()
    files = repo.files()
    start = {"session_id": "c1", "hook_event_name": "SessionStart", "source": "startup"}
    with repo.untouched():
        hook(repo, tmp_path, start)
        answer = hook(
            repo,
            tmp_path,
            {
                "session_id": "c1",
                "hook_event_name": "PreToolUse",
                "tool_name": "Bash",
                "tool_input": {"command": "rm -rf src"},
            },
        )
    assert answer is None
    from lifecycle.project import default_name

    hooks_project = default_name(str(repo.path))  # the project a hook names: its folder's
    (cp_id, commit), *others = list_refs(find_repo(repo.path), hooks_project).items()
    assert others == []
    files_then = repo.git("ls-tree", "-r", "--name-only", commit).split()
    assert "src/wip.py" in files_then
    shutil.rmtree(repo.path / "src")
    (repo.path / "src").mkdir()  # the hook's cwd
    repo.user()
    with repo.untouched():
        context = hook(repo, tmp_path, {**start, "session_id": "c2"})
    assert context is not None
    text = context["hookSpecificOutput"]["additionalContext"]
    assert f"files can be restored with `lifecycle rewind {cp_id}` (taken before `rm -rf src`)" in (
        text
    )
    with repo.untouched(status=False):
        done = cli(repo, tmp_path, "rewind", cp_id, project=hooks_project)
    assert done.returncode == 0, done.stderr
    assert repo.files() == files


# -- MCP ------------------------------------------------------------------------------------


def test_the_mcp_rewind_tool_lists_with_dry_run_then_restores(
    repo: GitRepo, tmp_path: Path
) -> None:
    pytest.importorskip("mcp")
    import anyio
    from mcp import ClientSession, StdioServerParameters, stdio_client

    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    m.store.close()
    files = repo.files()
    shutil.rmtree(repo.path / "src")
    repo.user()
    answers: dict[str, Any] = {}

    async def main() -> None:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "lifecycle", "mcp", "--store", f"file://{tmp_path / 'store'}"],
            env={**os.environ, "LIFECYCLE_PROJECT": PROJECT},
            cwd=str(repo.path),
        )
        with anyio.fail_after(TIMEOUT):
            async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
                await s.initialize()
                tool = next(t for t in (await s.list_tools()).tools if t.name == "rewind")
                answers["annotations"] = tool.annotations
                for name, args in (
                    ("dry", {"checkpoint_id": cp_id, "dry_run": True}),
                    ("done", {"checkpoint_id": cp_id}),
                    ("bad", {"checkpoint_id": "cp-20200101T000000.000000Z"}),
                ):
                    result = await s.call_tool("rewind", args)
                    answers[name] = result

    with repo.untouched(status=False):
        anyio.run(main)
    assert answers["annotations"].destructive_hint is True
    dry, done, bad = answers["dry"], answers["done"], answers["bad"]
    assert dry.structured_content["dry_run"] is True
    assert dry.structured_content["restored"] == ["src/app.py", "src/lib/util.py"]
    assert done.structured_content["undo_ref"] == f"refs/lifecycle/{PROJECT}/undo"
    assert repo.files() == files
    assert bad.is_error
    assert "no valid checkpoint with id" in bad.content[0].text


def test_a_snapshot_whose_commit_was_collected_by_git_gc_is_written_again(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    first = m.read_checkpoint(risk_checkpoint(m, repo)).snapshot
    assert first is not None
    repo.git("update-ref", "-d", str(first.ref))  # as prune does
    repo.git("gc", "-q", "--prune=now")
    repo.user()
    assert repo.git("cat-file", "-t", str(first.commit), check=False) == ""
    cp_id = risk_checkpoint(m, repo)
    again = m.read_checkpoint(cp_id).snapshot
    assert again is not None
    assert not again.unchanged
    assert repo.git("cat-file", "-t", str(again.commit)).strip() == "commit"
    assert repo.git("rev-parse", str(again.ref)).strip() == again.commit


def test_a_submodule_is_recorded_as_its_commit_skipped_by_rewind_and_snapshots_on_its_own(
    repo: GitRepo, tmp_path: Path
) -> None:
    library = make_repo(tmp_path / "library")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library.path), "lib")
    repo.commit_all("add the submodule")
    sub = GitRepo(repo.path / "lib")
    assert (sub.path / ".git").is_file()
    repo.user()
    m = session(repo, tmp_path)
    cp_id = risk_checkpoint(m, repo)
    snap = m.read_checkpoint(cp_id).snapshot
    assert snap is not None
    assert repo.git("ls-tree", str(snap.commit), "lib").split()[:2] == ["160000", "commit"]
    sub.git("config", "user.name", "Test User")
    sub.git("config", "user.email", "user@example.com")
    sub.write("new.txt", "work in the submodule\n")
    sub.commit_all("submodule work")
    sub_head = sub.git("rev-parse", "HEAD")
    (repo.path / "README.md").unlink()
    repo.user()
    result = rewind_to(m, repo, cp_id)
    assert (result.restored, result.skipped) == (("README.md",), ("lib",))
    assert sub.git("rev-parse", "HEAD") == sub_head  # the submodule is not moved back
    # inside the submodule's own work tree, a session snapshots that repository
    sub.user()
    inner = SessionManager(
        store=open_store("memory://"), project=PROJECT, work_tree=sub.path, snapshot="risk"
    )
    inner.start_session(restore=False)
    inner_id = risk_checkpoint(inner, sub)
    inner_snap = inner.read_checkpoint(inner_id).snapshot
    assert inner_snap is not None
    assert "new.txt" in sub.git("ls-tree", "--name-only", str(inner_snap.commit)).split()
    sub.assert_unchanged()


def test_a_snapshot_that_fails_leaves_the_checkpoint_written_saying_why(
    repo: GitRepo, tmp_path: Path
) -> None:
    (repo.git_dir / "lifecycle").write_text("not a folder: where the temporary index would go\n")
    repo.user()
    m = session(repo, tmp_path)
    with repo.untouched():
        clearance = m.before_operation("rm -rf src")
    assert clearance.proceed
    assert clearance.checkpoint is not None
    snap = m.read_checkpoint(clearance.checkpoint.checkpoint_id).snapshot
    assert snap is not None
    assert snap.commit is None
    assert snap.skipped.startswith("the snapshot failed: ")
    assert list_refs(find_repo(repo.path), PROJECT) == {}


def test_the_previous_tree_is_reused_only_with_the_index_it_was_written_for(
    repo: GitRepo, tmp_path: Path
) -> None:
    """A crash between keeping the index and recording its tree must not make a later
    snapshot reuse a tree that is not the work tree's."""
    where = find_repo(repo.path)
    with repo.untouched():
        first = take(where)
    kept = next(
        p
        for p in (repo.git_dir / "lifecycle").iterdir()
        if p.name.startswith("index-") and not p.name.endswith(".last")
    )
    old_index = kept.read_bytes()
    repo.write("README.md", "# changed\n")
    repo.user()
    with repo.untouched():
        second = take(where)
    assert second.tree != first.tree
    # the crash: the index of the first snapshot is back, the record names the second
    os.unlink(kept)
    kept.write_bytes(old_index)
    repo.write("README.md", "# project\n")
    repo.user()
    with repo.untouched():
        third = take(where)
    assert third.tree == first.tree


def test_a_checkpoint_written_again_under_a_later_id_leaves_no_ref_behind(
    repo: GitRepo, tmp_path: Path
) -> None:
    """Two sessions on one store: the second one's first write loses the race for the
    latest pointer and is written again, one microsecond later."""
    first = session(repo, tmp_path)
    risk_checkpoint(first, repo)
    second = session(repo, tmp_path)
    cp_id = risk_checkpoint(second, repo)
    from lifecycle.history import build_history

    stored = set(build_history(second.store).nodes)
    assert cp_id in stored
    assert len(stored) == 2
    assert set(list_refs(find_repo(repo.path), PROJECT)) == stored


def _git_sees_a_work_tree(folder: Path) -> bool:
    done = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    return done.returncode == 0 and done.stdout.strip() == "true"


def test_the_shortcut_past_git_is_taken_only_where_git_finds_no_repository(
    repo: GitRepo, tmp_path: Path
) -> None:
    from lifecycle.snapshots import _certainly_no_repo

    plain = tmp_path / "plain" / "deep"
    plain.mkdir(parents=True)
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True, timeout=TIMEOUT)
    linked = tmp_path / "linked"
    repo.git("worktree", "add", "-q", "--detach", str(linked))
    sub = repo.path / "src" / "pkg"
    sub.mkdir(parents=True, exist_ok=True)
    cases = {plain: True, repo.path: False, sub: False, linked: False, bare: False}
    for folder, expected in cases.items():
        assert _certainly_no_repo(str(folder)) is expected, folder
        if expected:  # never claimed where git would find one
            assert not _git_sees_a_work_tree(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_DIR", str(repo.path / ".git"))
        assert not _certainly_no_repo(str(plain))


def test_a_ref_is_written_as_git_writes_it_and_by_git_when_the_commit_is_packed(
    repo: GitRepo, tmp_path: Path
) -> None:
    m = session(repo, tmp_path)
    first = m.read_checkpoint(risk_checkpoint(m, repo)).snapshot
    assert first is not None
    loose = repo.path / ".git" / "refs" / "lifecycle" / PROJECT / first.ref.rsplit("/", 1)[1]
    assert loose.read_text() == f"{first.commit}\n"  # a loose ref, no lock left beside it
    assert not loose.with_name(loose.name + ".lock").exists()
    listed = repo.git("for-each-ref", "--format=%(objectname)", str(first.ref))
    assert listed.strip() == first.commit
    repo.git("gc", "-q")  # the commit and the refs are packed now
    repo.user()
    assert not loose.exists()
    cp_id = risk_checkpoint(m, repo, "git reset --hard")  # unchanged: the packed commit
    again = m.read_checkpoint(cp_id).snapshot
    assert again is not None and again.unchanged and again.commit == first.commit
    assert repo.git("rev-parse", str(again.ref)).strip() == first.commit
    assert list_refs(find_repo(repo.path), PROJECT) == {
        first.ref.rsplit("/", 1)[1]: first.commit,
        cp_id: first.commit,
    }
