"""Export, import and migrate (``lifecycle.transfer``) on the file, SQLite and PostgreSQL
stores: the format round-trips, importing is idempotent and checked before anything is
written, and a migration killed half-way is finished by running it again."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from procs import ROOT, environment
from stores import STORE_FACTORIES

from lifecycle import Learning, LearningType, SessionManager
from lifecycle.errors import InvalidExport
from lifecycle.stores.base import ProjectStore, Put, Store
from lifecycle.stores.file import FileStore
from lifecycle.stores.sqlite import SqliteStore
from lifecycle.transfer import export_store, import_file, migrate
from lifecycle.transfer.format import FORMAT_VERSION, read_export

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STORES = ("file", "sqlite", "postgres")


def make_store(name: str, where: Path) -> Store:
    return STORE_FACTORIES[name](where)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = make_store(request.param, tmp_path)
    yield made
    made.close()


def worked(store: Store, project: str = "demo") -> None:
    now = [T0]
    m = SessionManager(store=store, project=project, clock=lambda: now[0])
    m.start_session(command="impl", restore=False)
    m.add_task("T1", "Export the store")
    m.record_decision("JSON Lines", rationale="one record per line streams")
    now[0] += timedelta(minutes=3)
    m.complete_task("T1", priority="high")
    m.capture_learning(
        Learning(
            type=LearningType.PATTERN,
            key="learning/patterns/stream",
            content="read one line at a time",
            timestamp=now[0],
        )
    )
    ProjectStore(store, project).put("memories/notes", "plain text, ünïcode".encode())
    ProjectStore(store, project).put("memories/raw", b"\xff\xfe not utf-8")
    now[0] += timedelta(minutes=3)
    m.end_session(success=True, phase="Phase 1")


def contents(store: Store) -> dict[str, bytes]:
    return {e.key: e.value for e in store.scan("")}


def snapshot(store: Store) -> list[tuple[str, bytes, int]]:
    return [(e.key, e.value, e.version) for e in store.scan("")]


def exported(store: Store, project: str | None = None) -> bytes:
    out = io.BytesIO()
    export_store(store, out, project)
    return out.getvalue()


# -- the format ------------------------------------------------------------------------------


def test_an_export_is_a_header_records_with_checksums_and_a_trailer(store: Store) -> None:
    worked(store)
    lines = [json.loads(line) for line in exported(store).splitlines()]
    head, *records, end = lines
    assert (head["format"], head["format_version"], head["project"]) == (
        "lifecycle-export",
        FORMAT_VERSION,
        None,
    )
    assert end == {"end": True, "records": len(records), "digest": end["digest"]}
    by_key = {r["key"]: r for r in records}
    learning = by_key["learning/patterns/stream"]
    assert learning["kind"] == "learning" and learning["schema_version"] == 1
    assert learning["record"]["content"] == "read one line at a time"
    assert learning["checksum"].startswith("sha256:")
    assert by_key["memories/notes"]["text"] == "plain text, ünïcode"
    assert "base64" in by_key["memories/raw"]
    assert {r["project"] for r in records} == {"demo"}


def test_a_round_trip_file_sqlite_postgres_file_gives_the_same_records(tmp_path: Path) -> None:
    first = make_store("file", tmp_path / "a")
    worked(first)
    worked(first, project="other")
    data = exported(first)
    chain = [make_store(name, tmp_path / name) for name in ("sqlite", "postgres", "file")]
    for target in chain:
        result = import_file(target, io.BytesIO(data))
        assert result.written == result.total
        data = exported(target)
    assert contents(chain[-1]) == contents(first)
    for made in (first, *chain):
        made.close()


def test_importing_twice_changes_nothing(store: Store, tmp_path: Path) -> None:
    source = make_store("file", tmp_path / "src")
    worked(source)
    data = exported(source)
    import_file(store, io.BytesIO(data))
    before = snapshot(store)
    again = import_file(store, io.BytesIO(data))
    assert (again.written, again.unchanged, again.kept) == (0, again.total, ())
    assert snapshot(store) == before


def test_an_older_record_never_overwrites_a_newer_one_unless_forced(
    store: Store, tmp_path: Path
) -> None:
    source = make_store("sqlite", tmp_path / "src")
    old = Learning(type="pattern", key="learning/patterns/x", content="old", timestamp=T0)
    new = Learning(
        type="pattern", key="learning/patterns/x", content="new", timestamp=T0 + timedelta(days=1)
    )
    from lifecycle import codec

    ProjectStore(source, "demo").put("learning/patterns/x", codec.encode(old))
    ProjectStore(store, "demo").put("learning/patterns/x", codec.encode(new))
    data = exported(source)
    kept = import_file(store, io.BytesIO(data))
    assert kept.kept == ("demo/learning/patterns/x",) and kept.written == 0
    assert b'"new"' in ProjectStore(store, "demo").get("learning/patterns/x").value  # type: ignore[union-attr]
    forced = import_file(store, io.BytesIO(data), force=True)
    assert forced.written == 1
    assert b'"old"' in ProjectStore(store, "demo").get("learning/patterns/x").value  # type: ignore[union-attr]
    # and the other way round, a newer record replaces an older one without --force
    ProjectStore(source, "demo").put("learning/patterns/x", codec.encode(new))
    assert import_file(store, io.BytesIO(exported(source))).written == 1


def test_project_renames_a_one_project_export(store: Store, tmp_path: Path) -> None:
    source = make_store("file", tmp_path / "src")
    worked(source)
    import_file(store, io.BytesIO(exported(source, "demo")), project="copy")
    assert ProjectStore(store, "copy").get("learning/patterns/stream") is not None
    assert ProjectStore(store, "demo").list_keys("") == []
    worked(source, project="second")
    with pytest.raises(InvalidExport, match="holds 2 projects"):
        import_file(store, io.BytesIO(exported(source)), project="copy")


# -- hostile files: clear errors, nothing changed ----------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


HOSTILE = {
    "cut in half": lambda d: d[: len(d) // 2],
    "cut at a line break, without its trailer": lambda d: b"".join(_lines(d)[:-1]),
    "a record line removed": lambda d: b"".join(_lines(d)[:2] + _lines(d)[3:]),
    "two record lines swapped": lambda d: b"".join(
        [_lines(d)[0], _lines(d)[2], _lines(d)[1], *_lines(d)[3:]]
    ),
    "a record changed under its checksum": lambda d: d.replace(
        b"read one line at a time", b"read two lines at a time"
    ),
    "a bad checksum": lambda d: b"".join(
        [
            _lines(d)[0],
            _lines(d)[1].replace(b'"checksum":"sha256:', b'"checksum":"sha256:00'),
            *_lines(d)[2:],
        ]
    ),
    "not JSON": lambda d: b"".join([_lines(d)[0], b"{not json\n", *_lines(d)[1:]]),
    "empty": lambda d: b"",
    "not an export": lambda d: b'{"hello": "world"}\n',
    "a key outside the grammar": lambda d: d.replace(
        b'"key":"learning/patterns/stream"', b'"key":"../../etc/passwd"'
    ),
    "lines after the trailer": lambda d: d + _lines(d)[1],
    "NUL bytes": lambda d: d[:100] + b"\x00" * 10 + d[100:],
}


@pytest.mark.parametrize("damage", list(HOSTILE))
def test_a_damaged_export_is_refused_and_changes_nothing(
    store: Store, tmp_path: Path, damage: str
) -> None:
    source = make_store("file", tmp_path / "src")
    worked(source)
    data = HOSTILE[damage](exported(source))
    ProjectStore(store, "demo").put("memories/mine", b"already here")
    before = snapshot(store)
    with pytest.raises(InvalidExport):
        import_file(store, io.BytesIO(data))
    assert snapshot(store) == before


def test_a_newer_format_version_is_refused_clearly(store: Store) -> None:
    data = orjson.dumps({"format": "lifecycle-export", "format_version": FORMAT_VERSION + 1})
    with pytest.raises(
        InvalidExport, match=r"format version 2; this lifecycle reads versions 1 to 1"
    ):
        import_file(store, io.BytesIO(data + b"\n"))
    assert snapshot(store) == []


def test_a_record_of_a_future_schema_version_is_refused_clearly(
    store: Store, tmp_path: Path
) -> None:
    source = make_store("file", tmp_path / "src")
    future = {"kind": "learning", "schema_version": 99, "type": "pattern", "content": "x"}
    ProjectStore(source, "demo").put("learning/patterns/future", orjson.dumps(future))
    with pytest.raises(
        InvalidExport, match="schema_version 99, this lifecycle reads versions 1 to 1"
    ):
        import_file(store, io.BytesIO(exported(source)))
    assert snapshot(store) == []


def test_reading_an_export_holds_one_record_at_a_time(tmp_path: Path) -> None:
    source = SqliteStore(tmp_path / "big.db")
    blob = os.urandom(3000).hex()  # 6 KB of text per record
    for i in range(0, 3000, 500):
        source.batch(
            [Put(f"demo/memories/m{j}", f"{j} {blob}".encode()) for j in range(i, i + 500)]
        )
    path = tmp_path / "big.jsonl"
    tracemalloc.start()
    with path.open("wb") as out:
        export_store(source, out)
    _, export_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with path.open("rb") as f:
        count = sum(1 for _ in read_export(f))
    _, read_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 3000
    size = path.stat().st_size
    assert size > 18_000_000
    assert export_peak < size / 4 and read_peak < size / 20, (export_peak, read_peak, size)
    source.close()


# -- migrate ---------------------------------------------------------------------------------


def test_migrate_copies_every_project_and_verifies_it(store: Store, tmp_path: Path) -> None:
    source = make_store("sqlite", tmp_path / "src")
    worked(source)
    worked(source, project="other")
    seen: list[tuple[int, int]] = []
    result = migrate(source, store, progress=lambda done, total: seen.append((done, total)))
    assert contents(store) == contents(source)
    assert result.verified == result.copy.total == len(contents(source))
    assert seen[-1] == (result.copy.total, result.copy.total)
    again = migrate(source, store)
    assert (again.copy.written, again.copy.unchanged) == (0, again.copy.total)
    assert again.source_checksum == result.source_checksum


def cli(*args: str, cwd: Path, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lifecycle", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**environment(), "PYTHONPATH": str(ROOT)},
        **kw,  # type: ignore[arg-type]
    )


def test_a_migration_killed_half_way_is_finished_by_running_it_again(tmp_path: Path) -> None:
    source = SqliteStore(tmp_path / "src.db")
    for i in range(0, 2000, 200):
        source.batch([Put(f"demo/memories/m{j:05d}", b"note %d" % j) for j in range(i, i + 200)])
    source.close()
    src, dst = f"sqlite:///{tmp_path / 'src.db'}", f"file://{tmp_path / 'dst'}"
    first = cli("migrate", "--from", src, "--to", dst, cwd=tmp_path)
    assert first.stderr is not None
    line = first.stderr.readline()  # "migrate: 0/2000 keys (0%)", then a line per tenth
    deadline = time.monotonic() + 60
    while "migrate: " not in line or line.startswith("migrate: 0/"):
        assert time.monotonic() < deadline and line, line
        line = first.stderr.readline()
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    copied = len(FileStore(tmp_path / "dst").list_keys(""))
    assert 0 < copied < 2000
    second = cli("migrate", "--from", src, "--to", dst, "--format", "json", cwd=tmp_path)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err
    result = json.loads(out)
    assert result["written"] == 2000 - copied and result["unchanged"] == copied
    assert result["verified"] == 2000
    assert "migrate: 2000/2000 keys (100%)" in err.splitlines()


def test_a_migration_on_a_terminal_draws_a_bar_in_place(tmp_path: Path) -> None:
    import os
    import pty

    source = SqliteStore(tmp_path / "src.db")
    source.batch([Put(f"demo/memories/m{j:03d}", b"note") for j in range(300)])
    source.close()
    src, dst = f"sqlite:///{tmp_path / 'src.db'}", f"file://{tmp_path / 'dst'}"
    leader, follower = pty.openpty()  # stderr is a terminal, as a person runs it
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lifecycle", "migrate", "--from", src, "--to", dst],
            stdout=subprocess.PIPE, stderr=follower, timeout=120, cwd=tmp_path,
            env={**environment(), "PYTHONPATH": str(ROOT)}, check=False,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0, drawn
    text = drawn.decode()
    assert "\rmigrate [" in text and "] 300/300" in text, text
    assert "keys (" not in text  # the plain lines are for a log, not a terminal


# -- the command line ------------------------------------------------------------------------


def run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        input=stdin,
        env={**environment(), "PYTHONPATH": str(ROOT)},
    )


def test_the_commands_export_and_import_through_files_and_stdin(tmp_path: Path) -> None:
    assert run("demo", cwd=tmp_path).returncode == 0
    done = run("export", "--project", "demo", "--output", "out.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exported" in done.stderr and (tmp_path / "out.jsonl").exists()
    done = run(
        "import", "out.jsonl", "--store", "sqlite:///copy.db", "--format", "json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["written"] == first["total"] > 0
    text = (tmp_path / "out.jsonl").read_text()
    done = run(
        "import", "-", "--store", "sqlite:///copy.db", "--format", "json", cwd=tmp_path, stdin=text
    )
    assert json.loads(done.stdout)["unchanged"] == first["total"]


def test_the_import_command_refuses_a_cut_file_in_one_line_and_creates_no_store(
    tmp_path: Path,
) -> None:
    assert run("demo", cwd=tmp_path).returncode == 0
    assert run("export", "-o", "out.jsonl", cwd=tmp_path).returncode == 0
    data = (tmp_path / "out.jsonl").read_bytes()
    (tmp_path / "cut.jsonl").write_bytes(data[: len(data) // 2])
    done = run("import", "cut.jsonl", "--store", "sqlite:///new.db", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("lifecycle: error: line ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "new.db").exists()
    done = run("import", "missing.jsonl", cwd=tmp_path)
    assert (done.returncode, done.stderr.count("\n")) == (1, 1)
