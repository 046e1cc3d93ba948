"""N processes on one project and on one session, under both conflict policies.

The model of what must survive:

- last-write-wins: every acknowledged checkpoint is readable with its id; ids are
  unique and sort in the order of their keys' timestamps; ``checkpoints/latest``
  (and so a restore) is the newest checkpoint in the store;
- merge: all of that, and the newest checkpoint holds every task and decision that
  any writer acknowledged: nothing a writer added is dropped by another's write.
"""

from __future__ import annotations

from pathlib import Path

import concurrency_worker
import pytest
from conftest import FakeClock

from lifecycle import Checkpoint, SessionManager, codec, keys, open_store
from lifecycle.errors import InvalidSettings
from lifecycle.records import Pointer

WORKERS = 4
MERGE_WORKERS = 8
COUNT = 5


def _url(kind: str, tmp_path: Path) -> str:
    return f"file://{tmp_path / 'store'}" if kind == "file" else f"sqlite:///{tmp_path / 's.db'}"


def _acks(results: list[tuple[int, str, str]]) -> list[tuple[str, str]]:
    acks = []
    for rc, out, err in results:
        assert rc == 0, err[-3000:]
        lines = out.splitlines()
        assert all(line.startswith("ack ") for line in lines), lines
        acks += [tuple(line.split()[1:]) for line in lines]
    return acks  # type: ignore[return-value]


def _check_model(url: str, acks: list[tuple[str, str]]) -> Checkpoint:
    """The last-write-wins model; returns the newest checkpoint."""
    store = open_store(url)
    try:
        project = concurrency_worker.PROJECT
        ids = [cp_id for cp_id, _ in acks]
        assert len(set(ids)) == len(ids), "two acknowledgements share a checkpoint id"
        for cp_id, key in acks:
            entry = store.get(f"{project}/{key}")
            assert entry is not None, f"acknowledged {cp_id} is gone"
            assert codec.decode(Checkpoint, entry.value).id == cp_id
        stored = []
        for key in store.list_keys(f"{project}/checkpoints/"):
            parsed = keys.parse_checkpoint_key(key.removeprefix(f"{project}/"))
            if parsed is not None:
                entry = store.get(key)
                assert entry is not None
                cp = codec.decode(Checkpoint, entry.value)
                stored.append((parsed[1], cp))
        stored.sort(key=lambda item: item[0])
        order = [cp.id for _, cp in stored]
        assert order == sorted(order), "ids do not sort in creation order"
        assert [cp.timestamp for _, cp in stored] == [ts for ts, _ in stored]
        assert set(ids) <= set(order)
        pointer = store.get(f"{project}/checkpoints/latest")
        assert pointer is not None
        newest = stored[-1][1]
        assert codec.decode(Pointer, pointer.value).id == newest.id, "latest is not the newest"
        restored = SessionManager(store=store, project=project, clock=FakeClock()).read_checkpoint()
        assert restored.id == newest.id
        return newest
    finally:
        store.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_processes_on_one_project_lose_no_acknowledged_checkpoint_last_write_wins(
    kind: str, tmp_path: Path
) -> None:
    url = _url(kind, tmp_path)
    results = concurrency_worker.run_all(
        url, "project", "last-write-wins", COUNT, WORKERS, tmp_path
    )
    acks = _acks(results)
    assert len(acks) == WORKERS * COUNT
    _check_model(url, acks)


def _open_shared_session(url: str) -> str:
    store = open_store(url)
    try:
        m = SessionManager(store=store, project=concurrency_worker.PROJECT)
        start = m.start_session(command="shared", restore=False)
        m.save_context()
        return start.session_id
    finally:
        store.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_processes_continuing_one_session_keep_it_one_session_last_write_wins(
    kind: str, tmp_path: Path
) -> None:
    url = _url(kind, tmp_path)
    session_id = _open_shared_session(url)
    results = concurrency_worker.run_all(
        url, "session", "last-write-wins", COUNT, WORKERS, tmp_path
    )
    acks = _acks(results)
    assert len(acks) == WORKERS * COUNT
    newest = _check_model(url, acks)
    assert newest.session_id == session_id
    store = open_store(url)
    try:
        later = SessionManager(store=store, project=concurrency_worker.PROJECT)
        assert later.attach() is True
        assert later.session_id == session_id
    finally:
        store.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["project", "session"])
def test_under_merge_every_acknowledged_task_and_decision_survives_eight_writers(
    mode: str, tmp_path: Path
) -> None:
    url = _url("file", tmp_path)
    if mode == "session":
        _open_shared_session(url)
    results = concurrency_worker.run_all(url, mode, "merge", COUNT, MERGE_WORKERS, tmp_path)
    acks = _acks(results)
    assert len(acks) == MERGE_WORKERS * COUNT
    newest = _check_model(url, acks)
    expected = {f"w{w}-t{i}" for w in range(MERGE_WORKERS) for i in range(COUNT)}
    assert {t.id for t in newest.state.active_tasks} == expected
    decisions = {d.decision for d in newest.state.decisions}
    assert decisions == {f"w{w}-d{i}" for w in range(MERGE_WORKERS) for i in range(COUNT)}


def test_under_last_write_wins_a_later_writer_drops_the_other_writers_tasks(
    tmp_path: Path,
) -> None:
    """The contrast that makes the merge test meaningful: LWW keeps only the winner's list."""
    store = open_store(_url("file", tmp_path))
    clock = FakeClock()
    a = SessionManager(store=store, project="p", clock=clock)
    b = SessionManager(store=store, project="p", clock=clock)
    a.start_session(restore=False)
    b.start_session(restore=False)
    a.add_task("A1")
    assert a.create_checkpoint().written
    clock.advance(seconds=1)
    b.add_task("B1")
    assert b.create_checkpoint().written
    assert [t.id for t in b.read_checkpoint().state.active_tasks] == ["B1"]


def test_merge_reports_diverging_scalars_and_keeps_the_later_writers_value(
    tmp_path: Path,
) -> None:
    store = open_store(_url("file", tmp_path))
    clock = FakeClock()
    a = SessionManager(store=store, project="p", clock=clock, conflict="merge")
    b = SessionManager(store=store, project="p", clock=clock, conflict="merge")
    a.start_session(restore=False)
    b.start_session(restore=False)
    a.add_task("A1")
    assert a.create_checkpoint(phase="Phase 1", progress={"done": 1, "a": True}).written
    clock.advance(seconds=1)
    b.add_task("B1")
    assert b.create_checkpoint(phase="Phase 2", progress={"done": 2}).written
    latest = b.read_checkpoint()
    assert [t.id for t in latest.state.active_tasks] == ["B1", "A1"]
    assert (latest.phase, latest.progress) == ("Phase 2", {"done": 2, "a": True})
    assert b.last_merge is not None
    assert [(d.field, d.ours, d.theirs) for d in b.last_merge.divergences] == [
        ("phase", "Phase 2", "Phase 1"),
        ("progress.done", 2, 1),
    ]
    assert b.warnings[-1].startswith("merged with checkpoint cp-")


def test_an_unknown_conflict_policy_is_refused() -> None:
    with pytest.raises(InvalidSettings, match="conflict='union'"):
        SessionManager(store="memory://", conflict="union")
