"""The security review's checks that code can keep (docs/security.md lists them all)."""

from __future__ import annotations

import ast
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FakeClock

from lifecycle import Learning, LearningType, SessionManager, codec
from lifecycle.errors import CorruptRecord, InvalidRecord
from lifecycle.records import Checkpoint
from lifecycle.stores.fallback import FallbackStore
from lifecycle.stores.file import FileStore
from lifecycle.stores.sqlite import SqliteStore

PACKAGE = Path(__file__).resolve().parents[1] / "lifecycle"

#: Modules the package must never import.
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "shelve", "marshal", "dill", "cloudpickle"}
#: Calls the package must never make: plain names and dotted names.
FORBIDDEN_CALLS = {"eval", "exec", "os.system", "os.popen", "yaml.unsafe_load"}
SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader"}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def forbidden(source: str) -> list[str]:
    """What in ``source`` (code, not strings or comments) the package must never do."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            found += [
                f"line {node.lineno}: import {n}"
                for n in names
                if n.split(".")[0] in FORBIDDEN_MODULES
            ]
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in FORBIDDEN_CALLS:
                found.append(f"line {node.lineno}: {name}()")
            if name in ("yaml.load", "yaml.load_all"):
                loader = [k.value for k in node.keywords if k.arg == "Loader"]
                loader += node.args[1:2]
                if not loader or _dotted(loader[0]).rsplit(".", 1)[-1] not in SAFE_LOADERS:
                    found.append(f"line {node.lineno}: {name}() without a safe Loader")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"line {node.lineno}: {name}(shell=...)")
    return found


#: SQL built with an f-string: the only one allowed interpolates an int() (a PRAGMA
#: takes no bound parameter). Everything else binds its values.
SQL_FSTRING = re.compile(r"execute\(\s*f[\"']")
ALLOWED_SQL_FSTRINGS = {'conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")'}


def _sources() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, path.read_text()


def test_the_package_source_uses_no_pickle_eval_exec_unsafe_yaml_or_shell() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {what}"
        for path, text in _sources()
        for what in forbidden(text)
    ]
    assert found == []


def test_the_source_check_catches_what_it_names_and_not_strings_or_lookalikes() -> None:
    bad = {
        "import pickle": "import pickle",
        "from shelve import open": "import shelve",
        "x = eval(text)": "eval()",
        "exec(code)": "exec()",
        "os.system(cmd)": "os.system()",
        "yaml.load(stream)": "yaml.load() without a safe Loader",
        "yaml.load(s, Loader=yaml.Loader)": "yaml.load() without a safe Loader",
        "subprocess.run(cmd, shell=True)": "subprocess.run(shell=...)",
    }
    for source, what in bad.items():
        assert forbidden(source) == [f"line 1: {what}"], source
    harmless = [
        "self._evaluate(x)",
        "conn.execute(sql)",
        "yaml.safe_load(s)",
        "yaml.load(s, Loader=yaml.SafeLoader)",
        "subprocess.run(cmd, shell=False)",
        "PATTERN = 'os.system(rm -rf x) and -exec are risky'",  # a string, not a call
    ]
    assert [s for s in harmless if forbidden(s)] == []


def test_sql_is_parameterized_except_one_int_pragma() -> None:
    found = {
        line.strip()
        for path, text in _sources()
        for line in text.splitlines()
        if SQL_FSTRING.search(line)
    }
    assert found == ALLOWED_SQL_FSTRINGS


@pytest.fixture
def no_umask() -> Iterator[None]:
    """Umask 0: any mode the package does not set explicitly would show as 0666/0777."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, str]:
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        found[str(path.relative_to(root.parent))] = oct(stat.S_IMODE(info.st_mode))
    return found


def _session(store: object) -> None:
    m = SessionManager(store=store, project="p", clock=FakeClock())  # type: ignore[arg-type]
    m.start_session(restore=False)
    m.add_task("T1")
    m.create_checkpoint(progress={"n": 1})
    m.capture_learning(type="pattern", key="x", content="y")
    m.save_context()


@pytest.mark.usefixtures("no_umask")
def test_file_and_fallback_stores_create_files_0600_and_folders_0700(tmp_path: Path) -> None:
    _session(FileStore(tmp_path / "file"))
    _session(FallbackStore(FileStore(tmp_path / "primary"), FileStore(tmp_path / "local")))
    modes = {**_modes(tmp_path / "file"), **_modes(tmp_path / "local")}
    wrong = {
        path: mode
        for path, mode in modes.items()
        if mode != ("0o700" if (tmp_path / path).is_dir() else "0o600")
    }
    assert wrong == {}
    assert len(modes) > 10


@pytest.mark.usefixtures("no_umask")
def test_sqlite_database_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db" / "s.db")
    _session(store)
    names = sorted(p.name for p in (tmp_path / "db").iterdir())
    assert names == ["s.db", "s.db-shm", "s.db-wal"]
    assert {oct(stat.S_IMODE((tmp_path / "db" / n).stat().st_mode)) for n in names} == {"0o600"}
    assert oct(stat.S_IMODE((tmp_path / "db").stat().st_mode)) == "0o700"
    store.close()


def test_an_oversized_record_is_refused_before_it_is_written_or_parsed() -> None:
    from datetime import UTC, datetime

    huge = Learning(
        type=LearningType.PATTERN,
        key="learning/patterns/x",
        content="x" * (codec.MAX_RECORD_BYTES + 1),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
    )
    with pytest.raises(InvalidRecord, match="over the 4194304-byte limit"):
        codec.encode(huge)
    with pytest.raises(CorruptRecord, match="over the 4194304-byte record limit"):
        codec.decode(Checkpoint, b" " * (codec.MAX_RECORD_BYTES + 1), key="k")


def test_a_learning_too_large_to_store_is_a_typed_error_from_capture_learning(
    tmp_path: Path,
) -> None:
    m = SessionManager(store=FileStore(tmp_path / "s"), project="p", clock=FakeClock())
    m.start_session(restore=False)
    with pytest.raises(InvalidRecord, match="learning content is 4,194,305 characters"):
        m.capture_learning(type="pattern", key="x", content="x" * (codec.MAX_RECORD_BYTES + 1))
    assert m.pending_learnings == ()  # refused, not queued for a retry that cannot succeed
