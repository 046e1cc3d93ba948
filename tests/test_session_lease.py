"""The session lease lives in the store: every process reaching the same store is excluded,
whatever its machine, temp folder or spelling of the URL (issue 17, item 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import procs
import pytest

from lifecycle.errors import StoreUnavailable, VersionConflict
from lifecycle.integrations.live import live_session
from lifecycle.session import SessionManager
from lifecycle.session.lease import HOST, LEASE, Lease
from lifecycle.stores import ProjectStore, open_store

UPDATES = 6  # per writer; each is a whole CLI process


def _progress_keys(folder: Path, url: str) -> set[str]:
    done = procs.run(["status", "--format", "json", "--store", url], cwd=folder)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout)["progress"])


def _writer(folder: Path, url: str, name: str, tmpdir: Path) -> list[str]:
    """``UPDATES`` acknowledged progress updates ``{name}-{i}``, as a separate machine: its
    own temp folder, its own spelling of the store's URL."""
    tmpdir.mkdir(exist_ok=True)
    acked = []
    for i in range(UPDATES):
        key = f"{name}-{i}"
        done = procs.run(
            ["checkpoint", "save", "--progress", json.dumps({key: i}), "--store", url],
            cwd=folder,
            env={"TMPDIR": str(tmpdir)},
        )
        if done.returncode == 0:
            acked.append(key)
    return acked


@pytest.mark.parametrize("kind", ["sqlite", "file"])
def test_two_machines_with_two_spellings_of_one_store_lose_no_acknowledged_update(
    tmp_path: Path, kind: str
) -> None:
    if kind == "sqlite":
        spellings = ("sqlite:///lc.db", f"sqlite:///{tmp_path}/lc.db")
    else:
        spellings = ("file://lc", f"file://{tmp_path}/./lc")
    assert procs.run(["session", "start", "--store", spellings[0]], cwd=tmp_path).returncode == 0
    with ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(_writer, tmp_path, url, f"m{n}", tmp_path / f"tmp{n}")
            for n, url in enumerate(spellings)
        ]
        acked = [key for run in runs for key in run.result()]
    assert len(acked) == 2 * UPDATES  # every update was acknowledged ...
    assert set(acked) <= _progress_keys(tmp_path, spellings[1])  # ... and none was lost


def test_hooks_and_commands_at_once_lose_nothing(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/lc"
    env = {"LIFECYCLE_STORE": url, "CLAUDE_PROJECT_DIR": str(tmp_path)}
    assert procs.run(["session", "start"], cwd=tmp_path, env=env).returncode == 0

    def hooks() -> list[str]:
        paths = []
        for i in range(UPDATES):
            path = f"f{i}.py"
            event = {
                "hook_event_name": "PostToolUse",
                "tool_name": "Edit",
                "tool_input": {"file_path": str(tmp_path / path)},
                "cwd": str(tmp_path),
            }
            done = procs.run(["hook", "claude"], cwd=tmp_path, stdin=json.dumps(event), env=env)
            if done.returncode == 0 and "failed" not in done.stdout:
                paths.append(path)
        return paths

    with ThreadPoolExecutor(2) as pool:
        edits = pool.submit(hooks)
        saves = pool.submit(_writer, tmp_path, url, "cli", tmp_path / "tmp-cli")
        acked_edits, acked_saves = edits.result(), saves.result()
    status = procs.run(["status", "--format", "json"], cwd=tmp_path, env=env)
    data = json.loads(status.stdout)
    assert len(acked_edits) == len(acked_saves) == UPDATES
    assert set(acked_edits) <= set(data["files_modified"])
    assert set(acked_saves) <= set(data["progress"])


def test_threads_of_one_process_are_excluded_by_the_lease(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/lc.db")
    with live_session(store, "p") as live:
        live.manager.start_session(restore=False)

    def bump(n: int) -> None:
        for i in range(20):
            with live_session(store, "p") as live:
                live.manager.update_context({f"t{n}-{i}": i})

    threads = [threading.Thread(target=bump, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    with live_session(store, "p", save=False) as live:
        assert len(live.manager.context) == 60
    assert store.get(f"p/{LEASE}") is None  # released
    store.close()


def test_a_held_lease_makes_the_next_step_wait_then_fail_with_a_clear_error() -> None:
    store = ProjectStore(open_store("memory://"), "p")
    first = Lease(store)
    first.acquire(1)
    with pytest.raises(StoreUnavailable, match="held the session"):
        Lease(store).acquire(0.05)
    first.release()
    second = Lease(store)
    second.acquire(0.05)
    assert store.get(LEASE) is not None


def test_an_expired_lease_is_taken_over() -> None:
    store = ProjectStore(open_store("memory://"), "p")
    Lease(store, ttl=-1).acquire(1)  # its holder went quiet: expired already
    Lease(store).acquire(0.05)


def test_the_lease_of_a_dead_process_on_this_machine_is_taken_over_at_once() -> None:
    store = ProjectStore(open_store("memory://"), "p")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    body = {"kind": "session_lease", "owner": "x", "host": HOST, "pid": int(gone.stdout),
            "expires": 4e9}  # fmt: skip
    store.put(LEASE, orjson.dumps(body))
    Lease(store).acquire(0.05)


def test_a_live_holder_on_another_machine_is_waited_for() -> None:
    store = ProjectStore(open_store("memory://"), "p")
    body = {"kind": "session_lease", "owner": "x", "host": "elsewhere/boot", "pid": 1,
            "expires": 4e9}  # fmt: skip
    store.put(LEASE, orjson.dumps(body))
    with pytest.raises(StoreUnavailable, match="elsewhere"):
        Lease(store).acquire(0.05)


def test_an_unreadable_lease_is_free() -> None:
    store = ProjectStore(open_store("memory://"), "p")
    store.put(LEASE, b"\xff not json")
    Lease(store).acquire(0.05)


def test_a_process_that_overran_its_lease_cannot_overwrite_the_next_ones_work() -> None:
    raw = open_store("memory://")
    m = SessionManager(store=raw, project="p")
    m.start_session(restore=False)
    m.save_context(fence=True)
    late = SessionManager(store=raw, project="p")
    assert late.attach()
    nxt = SessionManager(store=raw, project="p")
    assert nxt.attach()
    nxt.update_context({"kept": 1})
    nxt.save_context(fence=True)
    late.update_context({"stale": 1})
    with pytest.raises(VersionConflict):
        late.save_context(fence=True)
    again = SessionManager(store=raw, project="p")
    assert again.attach() and again.context == {"kept": 1}


def test_no_lock_file_is_made_in_the_temp_folder(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = procs.run(["session", "start"], cwd=tmp_path, env={"TMPDIR": str(tmpdir)})
    assert done.returncode == 0
    assert os.listdir(tmpdir) == []


def test_taking_and_giving_back_the_lease_flushes_nothing_on_the_file_store(
    tmp_path: Path, flushes: list[str]
) -> None:
    from lifecycle.stores import Put
    from lifecycle.stores.file import FileStore

    store = ProjectStore(FileStore(tmp_path / "s"), "demo")
    store.put("session/context", b"{}")  # the project's folders exist, as in any session
    flushes.clear()  # counted from here
    seen = flushes
    for _ in range(3):
        lease = Lease(store)
        lease.acquire(1.0)
        assert store.get(LEASE) is not None
        lease.release()
        assert store.get(LEASE) is None
    assert seen == []  # a reboot ends every holder: nothing of the lease need survive it
    store.batch([Put("session/context", b"{}")])
    assert seen.count("fsync") == 2  # a durable value still flushes its bytes and its name
    seen.clear()
    store.batch([Put(LEASE, b"x", sync=False, volatile=True), Put("session/current", b"{}")])
    assert "fsync" in seen and seen.count("fsync") >= 2  # a folder with a durable name
