"""The audit's defects (issue 17), one rule each: the reproduction, and what must happen.

Each test is the audit's reproduction made small: a flipped bit, a FIFO, a read-only
store, a primary down at open, a symlinked folder, a sparse file, a hostile argument.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import procs
import pytest
from structlog.testing import capture_logs

from lifecycle import SessionManager
from lifecycle.errors import (
    CorruptRecord,
    InvalidKey,
    InvalidStoreURL,
    SchemaVersionError,
    StoreError,
)
from lifecycle.stores import open_store
from lifecycle.stores.file import FileStore
from lifecycle.testing import FaultyStore

AT = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)


def _cli(tmp_path: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The command in ``tmp_path`` on its store, as project ``default`` (the folder's own
    name is the default: a fixed one keeps the record paths below)."""
    env = {"LIFECYCLE_PROJECT": "default", **(kwargs.pop("env", None) or {})}  # type: ignore[dict-item]
    return procs.run(
        [*args, "--store", f"file://{tmp_path / 'lc'}"], cwd=tmp_path, env=env, **kwargs
    )  # type: ignore[arg-type]


def _context_file(tmp_path: Path) -> Path:
    return tmp_path / "lc" / "default.d" / "session.d" / "context.rec"


def _flip(path: Path, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))


# -- 1. a flipped bit in session/context -----------------------------------------------


def test_a_flipped_bit_in_the_context_is_a_warning_and_every_command_still_runs(
    tmp_path: Path,
) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    path = _context_file(tmp_path)
    _flip(path, 8 * (len(path.read_bytes()) - 5))  # a bit in the value: the CRC fails
    with pytest.raises(CorruptRecord):
        FileStore(tmp_path / "lc").get("default/session/context")
    for args in (("status",), ("report",), ("session", "start", "--new")):
        done = _cli(tmp_path, *args)
        assert done.returncode == 0, (args, done.stderr)
    hook = procs.run(
        ["hook", "claude"],
        cwd=tmp_path,
        stdin=json.dumps({"hook_event_name": "Stop"}),
        env={"LIFECYCLE_STORE": f"file://{tmp_path / 'lc'}"},
    )
    assert hook.returncode == 0 and "failed" not in hook.stdout, hook.stdout


# -- 2. a FIFO where a record file should be -------------------------------------------


def test_a_fifo_in_place_of_a_record_is_refused_without_blocking(tmp_path: Path) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    path = _context_file(tmp_path)
    path.unlink()
    os.mkfifo(path, 0o600)
    store = FileStore(tmp_path / "lc")
    with pytest.raises(CorruptRecord, match="not a regular file"):
        store.get("default/session/context")
    done = _cli(tmp_path, "checkpoint", "save", "--phase", "P")
    assert done.returncode == 3, done.stderr  # no session to continue: the FIFO is not one
    hook = procs.run(
        ["hook", "claude"],
        cwd=tmp_path,
        stdin=json.dumps({"hook_event_name": "Stop"}),
        env={"LIFECYCLE_STORE": f"file://{tmp_path / 'lc'}"},
    )
    assert hook.returncode == 0


# -- 3. and 4. an end that could not be written ----------------------------------------


def test_an_end_whose_session_record_is_not_written_fails_and_the_session_stays_open(
    tmp_path: Path,
) -> None:
    from lifecycle.integrations.live import end_open_session, live_session

    store = FaultyStore(FileStore(tmp_path / "lc"))
    with live_session(store, "default", clock=lambda: AT) as live:
        live.manager.start_session(restore=False)
        live.manager.add_task("T1", "work")
    store.fail("batch", prefix="default/session/2")  # the closing batch: disk full
    with (
        pytest.raises(StoreError, match="session record"),
        live_session(store, "default", clock=lambda: AT) as live,
    ):
        end_open_session(live, success=True)
    with live_session(store, "default", save=False) as live:
        assert live.attached and live.is_open
        assert [t.id for t in live.manager.work.active_tasks] == ["T1"]


def test_session_end_exits_nonzero_when_its_session_record_cannot_be_written(
    tmp_path: Path,
) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    (record,) = (tmp_path / "lc" / "default.d" / "session.d").glob("2*.rec")
    record.unlink()
    record.mkdir()  # the record cannot be replaced: every closing batch fails
    done = _cli(tmp_path, "session", "end")
    assert done.returncode == 5, (done.stdout, done.stderr)
    assert "ended" not in done.stdout
    status = _cli(tmp_path, "status", "--format", "json")
    assert json.loads(status.stdout).get("session_id"), status.stdout


def test_cli_session_start_new_keeps_the_old_session_when_its_final_checkpoint_fails(
    tmp_path: Path,
) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    latest = tmp_path / "lc" / "default.d" / "checkpoints.d" / "latest.rec"
    latest.parent.mkdir(parents=True, exist_ok=True)
    latest.mkdir()  # every checkpoint write fails
    assert _cli(tmp_path, "checkpoint", "save", "--phase", "unsaved").returncode == 5
    done = _cli(tmp_path, "session", "start", "--new")
    assert done.returncode == 5, (done.stdout, done.stderr)
    status = _cli(tmp_path, "status", "--format", "json")
    assert json.loads(status.stdout)["phase"] == "unsaved", status.stdout


def test_session_start_new_keeps_the_old_session_when_its_final_checkpoint_fails(
    tmp_path: Path,
) -> None:
    from lifecycle.integrations.live import end_open_session, live_session

    inner = FileStore(tmp_path / "lc")
    store = FaultyStore(inner)
    with live_session(store, "default", clock=lambda: AT) as live:
        live.manager.start_session(restore=False)
        live.manager.add_task("T1", "unsaved work")
    store.fail(("put", "batch"), prefix="default/checkpoints/")
    with pytest.raises(StoreError), live_session(store, "default") as live:
        end_open_session(live, success=False)
    store.clear()
    with live_session(store, "default", save=False) as live:
        assert live.attached
        assert [t.id for t in live.manager.work.active_tasks] == ["T1"]


# -- 5. the fallback store opened while its primary is down ----------------------------


def test_the_fallback_store_opens_and_queues_while_the_primary_is_down(tmp_path: Path) -> None:
    from pgserver import PostgresServer, PostgresServerError

    from lifecycle.stores.fallback import fallback_url

    try:
        server = PostgresServer()
    except PostgresServerError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    try:
        server.initdb()  # initialised, not started: the primary is down at open
        primary = server.url()
        url = fallback_url(primary, str(tmp_path / "local"))
        store = open_store(url)
        try:
            assert store.put("p/a", b"1") == 1
            assert store.get("p/a").value == b"1"  # type: ignore[union-attr]
            assert store.pending() == 1  # type: ignore[attr-defined]
        finally:
            store.close()
        server.start()
        store = open_store(url)
        try:
            assert store.get("p/a").value == b"1"  # type: ignore[union-attr]
            assert store.pending() == 0  # type: ignore[attr-defined]
        finally:
            store.close()
        direct = open_store(primary)
        try:
            assert direct.get("p/a").value == b"1"  # type: ignore[union-attr]
        finally:
            direct.close()
    finally:
        server.cleanup()


# -- 7. a password in a fallback URL ---------------------------------------------------


def test_the_fallback_store_never_shows_a_percent_encoded_password(tmp_path: Path) -> None:
    from lifecycle.errors import url_secrets
    from lifecycle.stores.fallback import fallback_url

    secret = "pa ss/w@rd:x"
    from urllib.parse import quote

    primary = f"postgresql://user:{quote(secret, safe='')}@127.0.0.1:1/db?connect_timeout=1"
    url = fallback_url(primary, str(tmp_path / "local"))
    hidden = [secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")]
    assert all(any(h in s or s in h for s in url_secrets(url)) for h in hidden[1:])
    with capture_logs() as logs:
        store = open_store(url)
        try:
            store.put("p/a", b"1")
            store.get("p/a")
            shown = [store.url, repr(store)]
        finally:
            store.close()
    text = json.dumps([str(v) for line in logs for v in line.values()]) + " ".join(shown)
    for form in hidden:
        assert form not in text, form
    with pytest.raises(InvalidStoreURL) as err:
        open_store(url.replace("fallback://?", "fallback://x?"))
    for form in hidden:
        assert form not in str(err.value)


# -- 8. the stale-temp sweep and a symlinked folder ------------------------------------


def test_the_stale_temp_sweep_does_not_follow_a_symlinked_folder(tmp_path: Path) -> None:
    root = tmp_path / "lc"
    store = FileStore(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / ".precious.rec.tmp"
    victim.write_text("not the store's")
    (root / "evil.d").symlink_to(outside)
    (root / ".lock").write_text("evil.d\n")
    store.put("p/a", b"1")
    assert victim.read_text() == "not the store's"


# -- 9. a sparse record file far larger than its header says ---------------------------


def test_a_huge_sparse_record_is_refused_from_its_header(tmp_path: Path) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    path = _context_file(tmp_path)
    head = path.read_bytes().split(b"\n", 1)[0] + b"\n"
    with path.open("wb") as f:
        f.write(head)
        f.truncate(2 * 1024**3)
    store = FileStore(tmp_path / "lc")
    with pytest.raises(CorruptRecord, match="bytes"):
        store.get("default/session/context")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1024**3, 1024**3))

    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "session", "start", "--new", "--store",
         f"file://{tmp_path / 'lc'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=procs.TIMEOUT,
        env=procs.environment(), preexec_fn=limit, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


# -- 10. exit 70 on bad input -----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["checkpoint", "save", "--progress", "[" * 900 + "]" * 900],
        ["checkpoint", "save", "--progress", '{"a":' * 1000 + "1" + "}" * 1000],
        ["checkpoint", "save", "--context", '{"a":' * 900 + "1" + "}" * 900],
        ["status", "--store", "file:///x/a%00b"],
        ["status", "--store", "file://[x/y"],
        ["status", "--store", "sqlite://[x/y.db"],
        ["status", "--store", "postgresql://[x/y"],
        ["status", "--store", "fallback://?primary=file%3A%2F%2F%5Bx&local=l"],
    ],
)
def test_bad_input_is_a_typed_error_never_exit_70(tmp_path: Path, args: list[str]) -> None:
    if "--store" not in args:
        assert _cli(tmp_path, "session", "start").returncode == 0
        done = _cli(tmp_path, *args)
    else:
        done = procs.run(args, cwd=tmp_path)
    assert done.returncode in (2, 4, 5), (done.returncode, done.stderr)
    assert "internal error" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_store_path_that_is_not_utf8_is_used_or_refused_never_exit_70(tmp_path: Path) -> None:
    bad = os.fsencode(tmp_path) + b"/st\xffre"
    env = procs.environment()
    for argv in (
        [b"status", b"--store", b"file://" + bad],
        [b"session", b"start", b"--store", b"file://" + bad],
        [b"status", b"--store", b"sqlite:///" + bad + b".db"],
    ):
        done = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"lifecycle", *argv],
            cwd=tmp_path, capture_output=True, timeout=procs.TIMEOUT, env=env, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 2), (argv, done.stderr)
    folder = tmp_path / os.fsdecode(b"proj\xff")
    folder.mkdir()
    hook = subprocess.run(
        [sys.executable, "-m", "lifecycle", "hook", "claude"],
        input=json.dumps({"hook_event_name": "SessionStart", "cwd": str(folder)}).encode(
            "utf-8", "surrogateescape"
        ),
        cwd=folder, capture_output=True, timeout=procs.TIMEOUT,
        env={**env, "CLAUDE_PROJECT_DIR": str(folder)}, check=False,
    )  # fmt: skip
    assert hook.returncode == 0
    assert b"Error" not in hook.stdout, hook.stdout


# -- 11. learning names ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["a:b", "a b", "a\\b", "\u00e9t\u00e9", "x" * 101, "-a"])
def test_a_learning_name_that_would_be_rewritten_is_refused(name: str) -> None:
    m = SessionManager(store="memory://", project="p", clock=lambda: AT)
    with pytest.raises(InvalidKey):
        m.capture_learning(type="pattern", key=name, content="c")
    assert m.store.list_keys("learning/") == []


def test_two_learnings_never_share_a_key() -> None:
    m = SessionManager(store="memory://", project="p", clock=lambda: AT)
    assert m.capture_learning(type="pattern", key="a-b", content="first").success
    with pytest.raises(InvalidKey):
        m.capture_learning(type="pattern", key="a b", content="second")
    entry = m.store.get("learning/patterns/a-b")
    assert entry is not None and b"first" in entry.value


# -- 12. records from a newer lifecycle ------------------------------------------------


def _future(store: FileStore, key: str) -> bytes:
    entry = store.get(key)
    assert entry is not None
    data = json.loads(entry.value)
    data["schema_version"] = 99
    body = json.dumps(data).encode()
    store.put(key, body)
    return body


def test_a_context_from_a_newer_lifecycle_is_not_overwritten(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "lc")
    m = SessionManager(store=store, project="p", clock=lambda: AT)
    m.start_session(restore=False)
    m.save_context()
    body = _future(store, "p/session/context")
    m2 = SessionManager(store=store, project="p", clock=lambda: AT)
    with pytest.raises(SchemaVersionError):
        m2.attach()
    done = procs.run(
        ["session", "start", "--new", "--project", "p", "--store", f"file://{tmp_path / 'lc'}"],
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert store.get("p/session/context").value == body  # type: ignore[union-attr]


def test_a_daily_summary_from_a_newer_lifecycle_is_not_overwritten(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "lc")
    m = SessionManager(store=store, project="p", clock=lambda: AT)
    m.start_session(restore=False)
    m.end_session()
    daily = "p/summaries/daily/2026-01-25"
    body = _future(store, daily)
    m = SessionManager(store=store, project="p", clock=lambda: AT)
    m.start_session(restore=False)
    m.end_session()
    assert store.get(daily).value == body  # type: ignore[union-attr]
    assert any("newer" in w or "schema_version" in w for w in m.warnings), m.warnings


# -- 13. SQLite files ------------------------------------------------------------------


def test_an_existing_sqlite_database_and_its_wal_are_made_private(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "lc.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o644)
    store = open_store(f"sqlite:///{path}")
    try:
        store.put("p/a", b"1")
        for name in ("lc.db", "lc.db-wal", "lc.db-shm"):
            mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
            assert mode == 0o600, (name, oct(mode))
    finally:
        store.close()


def test_an_sqlite_store_on_a_device_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    before = set(os.listdir("/dev"))
    with pytest.raises(InvalidStoreURL, match="regular file"):
        open_store("sqlite:////dev/null")
    assert set(os.listdir("/dev")) - before == set()


# -- 14. numbers JSON cannot hold, and duplicate keys ----------------------------------


@pytest.mark.parametrize(
    "text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}', '{"a": 1e999}',
             '{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}']
)  # fmt: skip
def test_progress_that_json_cannot_hold_exactly_is_refused(tmp_path: Path, text: str) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    done = _cli(tmp_path, "checkpoint", "save", "--progress", text)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""


# -- 15. one line per error, nothing on stdout, no terminal escapes --------------------


def test_a_failed_checkpoint_save_prints_one_line_on_stderr_and_nothing_on_stdout(
    tmp_path: Path,
) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    folder = tmp_path / "lc" / "default.d" / "checkpoints.d"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.rec").mkdir()  # every checkpoint write fails: latest is a folder
    done = _cli(tmp_path, "checkpoint", "save", "--phase", "P")
    assert done.returncode == 5, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_phase_with_terminal_escapes_is_shown_escaped(tmp_path: Path) -> None:
    assert _cli(tmp_path, "session", "start").returncode == 0
    phase = "P\x1b]0;owned\x07\x1b[2J\r"
    assert _cli(tmp_path, "checkpoint", "save", "--phase", phase).returncode == 0
    for args in (("status",), ("report",)):
        done = _cli(tmp_path, *args)
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout and "\r" not in done.stdout
        assert "\\x1b" in done.stdout


def test_a_multi_line_error_is_printed_as_one_line() -> None:
    from lifecycle.cli import one_line

    assert one_line("a\n  b\r\nc") == "a b c"


# -- 16. the store folder and URLs with passwords --------------------------------------


def test_a_store_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / ".lifecycle").symlink_to(real)
    done = procs.run(["status"], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "symbolic link" in done.stderr
    assert os.listdir(real) == []


def test_an_open_store_folder_is_made_private(tmp_path: Path) -> None:
    root = tmp_path / ".lifecycle"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    FileStore(root)
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700


def test_a_file_url_with_a_password_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidStoreURL) as err:
        open_store("file://u:hunter2@host/x")
    assert "hunter2" not in str(err.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2@127.0.0.1:1/db?connect_timeout=1&bad=%ZZ",
        "fallback://?primary=postgresql%3A%2F%2Fu%3Ahunter2%40127.0.0.1%3A1%2Fdb&local=l&x=1",
        "fallback://h?primary=postgresql%3A%2F%2Fu%3Ahunter2%40127.0.0.1%3A1%2Fdb",
        "sqlite://u:hunter2@h/x.db",
        "file://u:hunter2@h/x",
    ],
)
def test_the_mcp_server_and_the_cli_hide_the_password_of_the_store_url(
    tmp_path: Path, url: str
) -> None:
    for args, env in (
        (["mcp"], {"LIFECYCLE_STORE": url}),
        (["status"], {"LIFECYCLE_STORE": url}),
        (["status", "--store", url], {}),
    ):
        done = procs.run(args, cwd=tmp_path, env=env)
        assert done.returncode != 0
        assert "hunter2" not in done.stderr + done.stdout, (args, done.stderr)
        assert "internal error" not in done.stderr
