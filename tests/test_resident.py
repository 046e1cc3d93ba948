"""The resident hook process (issue 16): each promise of lifecycle.integrations.resident.

Real processes throughout: hooks are ``python -m lifecycle hook claude`` processes, the
server is the one they start, the store is a file store in the test's folder. Each test
has its own runtime folder (``$XDG_RUNTIME_DIR``), and every server a test started is
stopped (SIGKILL if it must) when the test ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecycle.integrations import resident
from lifecycle.session.lease import held
from lifecycle.stores import ProjectStore, open_store
from lifecycle.stores.file import FileStore

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "demo"
pytestmark = pytest.mark.skipif(not hasattr(os, "posix_spawn"), reason="POSIX only")


class Project:
    """A project folder, the environment Claude Code gives its hooks, and the hooks."""

    def __init__(self, folder: Path, runtime: str, **env: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "CLAUDE_"))}
        base.update(
            CLAUDE_PROJECT_DIR=str(folder),
            LIFECYCLE_PROJECT=PROJECT,
            LIFECYCLE_SNAPSHOT="never",
            PYTHONPATH=str(ROOT),
            XDG_RUNTIME_DIR=runtime,
            GIT_CEILING_DIRECTORIES=str(folder.parent),
        )
        base.update(env)
        self.env = base

    def event(self, name: str, **fields: Any) -> str:
        common = {"session_id": "s1", "transcript_path": "/dev/null", "cwd": str(self.folder)}
        return json.dumps({**common, "hook_event_name": name, **fields})

    def lifecycle(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifecycle", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.folder,
            env=self.env,
            check=False,
        )

    def hook(self, name: str, **fields: Any) -> subprocess.CompletedProcess[str]:
        return self.lifecycle("hook", "claude", stdin=self.event(name, **fields))

    def risky(self, command: str = "rm -rf build/") -> subprocess.CompletedProcess[str]:
        return self.hook("PreToolUse", tool_name="Bash", tool_input={"command": command})

    def status(self) -> dict[str, Any] | None:
        return resident.status(str(self.folder), self.env)

    def wait_for_server(self, timeout: float = 60.0) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = self.status()
            if found is not None:
                return found
            time.sleep(0.05)
        raise AssertionError("no resident process answered")

    def store(self) -> ProjectStore:
        url = self.env.get("LIFECYCLE_STORE")
        raw = open_store(url) if url else FileStore(self.folder / ".lifecycle")
        return ProjectStore(raw, PROJECT)

    def checkpoint_types(self) -> list[str]:
        from lifecycle import codec
        from lifecycle.records import Checkpoint

        store = self.store()
        try:
            return [
                codec.decode(Checkpoint, e.value, key=e.key).type.value
                for e in store.scan("checkpoints/")
                if not e.key.endswith("/latest")
            ]
        finally:
            store.close()


def servers(runtime: str) -> list[int]:
    """The pids of resident processes holding a lock in ``runtime``."""
    out = []
    where = Path(runtime) / f"lifecycle-{os.getuid()}"
    for lock in where.glob("r-*.lock"):
        text = lock.read_text().strip()
        if text.isdigit() and _alive(int(text)) and _holds(lock):
            out.append(int(text))
    return out


def _holds(lock: Path) -> bool:
    import fcntl

    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) is not alive
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def server_processes(folder: Path) -> list[int]:
    """Every live resident process serving ``folder``, found in /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        mine = b"resident_server" in b" ".join(argv) and argv[-2:-1] == [str(folder).encode()]
        if mine and _alive(int(entry.name)):
            out.append(int(entry.name))
    return out


def gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def runtime() -> Iterator[str]:
    """A runtime folder of the test's own (short: a socket path holds 107 bytes)."""
    where = tempfile.mkdtemp(prefix="lcr-", dir="/tmp")
    try:
        yield where
    finally:
        for pid in servers(where):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(where, ignore_errors=True)


def test_an_engine_hook_starts_one_server_that_answers_the_hooks_after_it(
    tmp_path: Path, runtime: str
) -> None:
    p = Project(tmp_path / "p", runtime)
    first = p.hook("SessionStart", source="startup")
    assert first.returncode == 0, first.stderr
    found = p.wait_for_server()
    assert found["root"] == str(p.folder)
    assert found["events"] == 0
    assert server_processes(p.folder) == [found["pid"]]
    done = p.risky()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    after = p.status()
    assert after is not None and after["events"] == 1  # the server answered it
    assert p.checkpoint_types().count("risk") == 1  # durable when the hook answered


def _normal(text: str) -> str:
    """An answer with what differs between two runs (ids, moments, ages) taken out."""
    text = re.sub(r"session-\d{8}T[\d.]+Z", "SESSION", text)
    text = re.sub(r"cp-[\w.-]+", "CP", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?Z?", "MOMENT", text)
    return re.sub(r"\d+(\.\d+)? ?(s|ms|min|minutes?|seconds?|hours?|h)\b", "AGE", text)


def _workday(p: Project) -> list[tuple[int, str, str]]:
    answers = []
    path = str(p.folder / "src" / "app.py")
    for name, fields in [
        ("SessionStart", {"source": "startup"}),
        ("UserPromptSubmit", {"prompt": "make the parser accept empty lines"}),
        ("PostToolUse", {"tool_name": "Write", "tool_input": {"file_path": path}}),
        ("PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "rm -rf build/"}}),
        ("PostToolUse", {"tool_name": "Bash", "tool_input": {"command": "rm -rf build/"}}),
        ("Stop", {}),
        ("SessionEnd", {"reason": "other"}),
        ("SessionStart", {"source": "startup"}),
        ("PreToolUse", {"tool_name": "Bash", "tool_input": {"command": "git reset --hard"}}),
        ("SessionStart", {"source": "resume"}),
        ("SessionEnd", {"reason": "other"}),
    ]:
        done = p.hook(name, **fields)
        answers.append((done.returncode, _normal(done.stdout), done.stderr))
        if name == "SessionStart" and p.env.get("LIFECYCLE_RESIDENT") != "0":
            p.wait_for_server()
    return answers


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_session_answered_by_the_server_is_the_same_as_one_run_by_each_hook(
    tmp_path: Path, runtime: str, kind: str
) -> None:
    def store(name: str) -> dict[str, str]:
        if kind == "file":
            return {}
        return {"LIFECYCLE_STORE": f"sqlite:///{tmp_path / name}.db"}

    alone = Project(tmp_path / "alone" / "p", runtime, LIFECYCLE_RESIDENT="0", **store("a"))
    served = Project(tmp_path / "served" / "p", runtime, **store("s"))
    expected = _workday(alone)
    assert _workday(served) == expected
    assert any("additionalContext" in out for _, out, _ in expected)
    status = served.status()
    assert status is not None and status["events"] >= 6  # all but the first and the recordings
    assert served.checkpoint_types() == alone.checkpoint_types()
    assert servers(runtime) == [status["pid"]]  # none for the project without it


def test_at_most_one_server_runs_for_a_project(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pids = [resident.start(p.env) for _ in range(5)]  # five more asked for at once
    first = p.wait_for_server()
    time.sleep(1.0)  # long enough for every extra one to have tried the lock
    assert server_processes(p.folder) == [first["pid"]]
    assert all(pid is None or pid == first["pid"] or gone(pid, 30) for pid in pids)


def test_a_server_exits_when_idle(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime, LIFECYCLE_RESIDENT_IDLE="1")
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    assert gone(pid, 30)
    sock = Path(runtime) / f"lifecycle-{os.getuid()}" / f"{resident.name(str(p.folder))}.sock"
    assert not sock.exists()
    assert resident.running(str(p.folder), p.env) is None


def test_a_server_exits_when_its_project_folder_is_gone(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    shutil.rmtree(p.folder)
    assert gone(pid, 30)


def test_a_server_exits_when_asked_and_on_sigterm(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    assert resident.stop(str(p.folder), p.env) is not None
    assert gone(pid, 30)
    p.hook("SessionStart", source="resume")
    pid = p.wait_for_server()["pid"]
    os.kill(pid, signal.SIGTERM)
    assert gone(pid, 30)


def test_a_server_killed_while_it_answers_loses_no_event(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    # the test holds the session's lease: the server, answering, waits for it
    store = p.store()
    with held(store, 5.0):
        event = tmp_path / "event.json"
        event.write_text(
            p.event("PreToolUse", tool_name="Bash", tool_input={"command": "rm -rf build/"})
        )
        with event.open("rb") as stdin:
            hook = subprocess.Popen(
                [sys.executable, "-m", "lifecycle", "hook", "claude"],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=p.folder,
                env=p.env,
            )
        time.sleep(1.0)  # the server has the event and waits for the lease
        assert hook.poll() is None  # not answered yet
        os.kill(pid, signal.SIGKILL)
        assert gone(pid, 30)
    store.close()
    out, err = hook.communicate(timeout=120)
    assert (hook.returncode, out, err) == (0, "", "")
    assert p.checkpoint_types().count("risk") == 1  # the hook ran it itself


def test_an_event_of_another_configuration_is_run_by_the_hook_and_the_server_exits(
    tmp_path: Path, runtime: str
) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    other = Project(p.folder, runtime, LIFECYCLE_CONTEXT_BUDGET="4000")
    done = other.risky()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert p.checkpoint_types().count("risk") == 1
    assert gone(pid, 30)


def test_when_lifecycles_files_change_the_hook_runs_the_event_and_the_server_exits(
    tmp_path: Path, runtime: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(
        ROOT / "lifecycle", copy / "lifecycle", ignore=shutil.ignore_patterns("__pycache__")
    )
    p = Project(tmp_path / "p", runtime, PYTHONPATH=str(copy))
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    assert str(copy).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    records = copy / "lifecycle" / "records.py"
    stat = records.stat()
    os.utime(records, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # an edit
    done = p.risky()
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert p.checkpoint_types().count("risk") == 1
    assert gone(pid, 30)


def test_with_the_setting_off_no_server_starts(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime, LIFECYCLE_RESIDENT="off")
    assert p.hook("SessionStart", source="startup").returncode == 0
    assert p.risky().returncode == 0
    time.sleep(1.0)
    assert servers(runtime) == [] and server_processes(p.folder) == []
    assert p.checkpoint_types().count("risk") == 1


def test_a_runtime_folder_open_to_others_is_not_used(tmp_path: Path, runtime: str) -> None:
    where = Path(runtime) / f"lifecycle-{os.getuid()}"
    where.mkdir(mode=0o700)
    where.chmod(0o755)
    p = Project(tmp_path / "p", runtime)
    assert resident.folder(p.env) is None
    assert p.hook("SessionStart", source="startup").returncode == 0
    assert p.risky().returncode == 0
    time.sleep(1.0)
    assert server_processes(p.folder) == []
    assert p.checkpoint_types().count("risk") == 1


def _raw(path: str, data: bytes, *, close: bool = True) -> bytes:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(path)
    sock.sendall(data)
    if close:
        sock.shutdown(socket.SHUT_WR)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello\n",
        b"Q1 5 5\n",  # cut short
        b"Q1 2 0\n{}",  # no key, cwd or env
        b"Q1 4 0\nnope",  # a header that is not JSON
        b"Q1 99999999999 0\n",  # too large
        b"Q1 -1 2\n",
        b"x" * 200,  # no request line
        b'Q1 40 2\n{"key": "k", "cwd": "/", "env": {"A": 1}}{}',  # env not strings
    ],
)
def test_a_request_that_is_not_one_is_refused_and_the_server_carries_on(
    tmp_path: Path, runtime: str, data: bytes
) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]
    where = Path(runtime) / f"lifecycle-{os.getuid()}" / f"{resident.name(str(p.folder))}.sock"
    answer = _raw(str(where), data)
    assert answer == b"" or answer.startswith(b"N1 ")
    assert resident.parse_answer(answer) is None  # a hook would run the event itself
    after = p.status()
    assert after is not None and after["pid"] == pid and after["events"] == 0
    done = p.risky()
    assert (done.returncode, done.stderr) == (0, "")
    assert p.checkpoint_types().count("risk") == 1


def test_a_hook_that_stalls_cannot_hold_the_server(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    p.wait_for_server()
    where = Path(runtime) / f"lifecycle-{os.getuid()}" / f"{resident.name(str(p.folder))}.sock"
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(str(where))
    stalled.sendall(b"Q1 10 10\n")  # and nothing more
    try:
        done = p.risky()  # waits behind it at most the server's request timeout
        assert (done.returncode, done.stderr) == (0, "")
        after = p.status()
        assert after is not None and after["events"] == 1
    finally:
        stalled.close()


@pytest.mark.parametrize(
    "answer",
    [b"", b"A1 0 5 0\nabc", b"A1 0 1\nx", b"N1 no\n", b"A1 x 0 0\n", b"A1 0 -1 1\nx"],
)
def test_only_a_whole_answer_counts_as_answered(answer: bytes) -> None:
    assert resident.parse_answer(answer) is None


def test_a_whole_answer_is_parsed() -> None:
    assert resident.parse_answer(b"A1 0 3 2\nabcde") == (0, b"abc", b"de")


def test_the_command_line_shows_the_server_and_stops_it(tmp_path: Path, runtime: str) -> None:
    p = Project(tmp_path / "p", runtime)
    p.hook("SessionStart", source="startup")
    pid = p.wait_for_server()["pid"]

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return p.lifecycle("hook", "resident", *args)

    shown = command()
    assert (shown.returncode, shown.stderr) == (0, "")
    assert shown.stdout.startswith(f"resident hook process {pid} for {p.folder}: 0 events")
    stopped = command("--stop", "--format", "json")
    assert json.loads(stopped.stdout)["pid"] == pid and json.loads(stopped.stdout)["stopping"]
    assert gone(pid, 30)
    after = command()
    assert after.stdout == f"no resident hook process for {p.folder}\n"


def test_no_server_starts_while_transition_coverage_is_recorded(
    tmp_path: Path, runtime: str
) -> None:
    p = Project(tmp_path / "p", runtime, LIFECYCLE_COVERAGE=str(tmp_path / "cov.json"))
    assert p.hook("SessionStart", source="startup").returncode == 0
    assert p.risky().returncode == 0
    time.sleep(1.0)
    assert server_processes(p.folder) == []
    assert p.checkpoint_types().count("risk") == 1
