"""A store whose file system is full (issue 17, item 13): reads work, writes are refused.

SQLite deletes its ``-wal`` and ``-shm`` files when the last connection closes and must
create them again to open a WAL database; the ``-shm`` alone takes eight 4 KiB pages.
With fewer free pages than that, the store opens read-only (with a warning), so that
``status``, ``report``, ``history``, ``show`` and ``search`` still answer, and every
write is refused with one line before it starts. Each case runs on a real full
file system: a 2 MiB tmpfs filled page by page (``tests/full_disk.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from full_disk import on_full_disk

READS = [
    ["status", "--format", "json"],
    ["report"],
    ["history"],
    ["show", "ACKED"],
    ["search", "acked"],
]
WRITES = [
    ["checkpoint", "save", "--phase", "late"],
    ["learn", "--type", "insight", "--key", "late", "--content", "learned on a full disk"],
    ["session", "end"],
]
LIBRARY = [
    "python",
    "import sys\n"
    "from lifecycle.errors import StoreReadOnly\n"
    "from lifecycle.stores import open_store\n"
    "store = open_store(sys.argv[1])\n"
    "assert store.read_only and 'file system is full' in store.read_only, store.read_only\n"
    "assert store.get('proj/session/context') is not None\n"
    "for write in (lambda: store.put('proj/x', b'1'), lambda: store.delete('proj/x')):\n"
    "    try:\n"
    "        write()\n"
    "    except StoreReadOnly as exc:\n"
    "        print(exc)\n"
    "    else:\n"
    "        raise AssertionError('a write on a read-only store went through')\n",
]
#: Free pages: none, a few, and the most at which SQLite could not create its -shm.
LEVELS = (0, 4, 9)


@pytest.fixture(scope="module", params=LEVELS, ids=[f"{n}-free-pages" for n in LEVELS])
def full(request: pytest.FixtureRequest) -> dict[str, Any]:
    return on_full_disk("sqlite", request.param, [*READS, *WRITES, LIBRARY])


def _run(full: dict[str, Any], *args: str) -> dict[str, Any]:
    wanted = [full["acked"] if word == "ACKED" else word for word in args]
    return next(run for run in full["runs"] if run["args"] == wanted)


@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a[:2]))
def test_a_read_on_a_full_disk_works_and_says_the_store_is_read_only(
    full: dict[str, Any], args: list[str]
) -> None:
    run = _run(full, *args)
    assert run["code"] == 0, run["stderr"]
    warnings = run["stderr"].splitlines()
    assert len(warnings) == 1 and "read_only" in warnings[0], run["stderr"]
    assert "file system is full" in warnings[0], warnings[0]
    assert not run["changed"]


def test_status_on_a_full_disk_shows_the_acknowledged_checkpoint(full: dict[str, Any]) -> None:
    status = json.loads(_run(full, "status", "--format", "json")["stdout"])
    assert status["session_id"] and status["phase"] == "acked", status


def test_search_on_a_full_disk_finds_what_was_saved(full: dict[str, Any]) -> None:
    key = "checkpoints/" + full["acked"].removeprefix("cp-")
    assert key in _run(full, "search", "acked")["stdout"]


@pytest.mark.parametrize("args", WRITES, ids=lambda a: " ".join(a[:2]))
def test_a_write_on_a_full_disk_fails_with_one_line_and_changes_nothing(
    full: dict[str, Any], args: list[str]
) -> None:
    run = _run(full, *args)
    assert run["code"] == 5, (run["code"], run["stderr"])
    assert run["stdout"] == ""
    lines = run["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("lifecycle: error: "), run["stderr"]
    assert "read-only" in lines[0] and "file system is full" in lines[0], lines[0]
    assert not run["changed"]


def test_with_room_again_the_session_goes_on_where_it_was(full: dict[str, Any]) -> None:
    after = full["after"]
    assert isinstance(after, dict), after
    assert after["session_id"] and after["phase"] == "acked", after
    assert full["save_after"] == 0


def test_the_library_opens_the_store_read_only_and_refuses_writes_with_a_typed_error(
    full: dict[str, Any],
) -> None:
    run = _run(full, *LIBRARY)
    assert run["code"] == 0, run["stderr"]
    refusals = run["stdout"].splitlines()
    assert len(refusals) == 2 and all("is open read-only" in line for line in refusals)
    assert not run["changed"]
