"""Store faults: the session behaves as the seeds' error-handling tables say.

| fault | behaviour |
|---|---|
| checkpoint write failure | retry once, then log and continue, the work kept unsaved |
| learning capture failure | queued, retried on the next operation |
| checkpoint read failure | fresh session, with a warning |
| primary (Serena, a server) unavailable | fallback store answers; its queue drains later |

Faults: a store that raises (unavailable, timed out), disk full (ENOSPC) and
permission denied inside the real file store, and a real PostgreSQL server stopped
under a fallback store. Fault injection is the only fake.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pgserver
import pytest
from conftest import FakeClock
from hypothesis import given
from hypothesis import strategies as st

from lifecycle import SessionManager
from lifecycle.errors import LifecycleError, StoreError, StoreUnavailable
from lifecycle.stores import file as file_module
from lifecycle.stores.base import Store
from lifecycle.stores.fallback import FallbackStore
from lifecycle.stores.file import FileStore
from lifecycle.testing import READS, WRITES, FaultyStore

postgres_url = pgserver.postgres_url


def _disk_full() -> Exception:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _denied() -> Exception:
    return PermissionError(errno.EACCES, os.strerror(errno.EACCES))


#: Store-level faults (what any adapter may raise): name -> error factory, message part.
STORE_FAULTS = {
    "unavailable": (lambda _: StoreUnavailable("injected: server gone"), "server gone"),
    "timeout": (
        lambda _: StoreUnavailable("injected: timed out after 10.0 s waiting for a connection"),
        "timed out",
    ),
}


@pytest.fixture
def faulty(tmp_path: Path) -> FaultyStore:
    return FaultyStore(FileStore(tmp_path / "store"), record=True)


def _manager(store: Store, clock: FakeClock) -> SessionManager:
    return SessionManager(store=store, project="demo", clock=clock)


# -- checkpoint write failure: retry once, then log and continue ------------------------------


@pytest.mark.parametrize("fault", sorted(STORE_FAULTS))
def test_a_failed_checkpoint_write_is_retried_once_then_the_work_continues_unsaved(
    faulty: FaultyStore, clock: FakeClock, fault: str
) -> None:
    error, text = STORE_FAULTS[fault]
    m = _manager(faulty, clock)
    m.start_session(restore=False)
    m.add_task("T1", "write the store", status="in_progress")
    faulty.fail("batch", error=error)
    result = m.create_checkpoint(phase="P1", progress={"n": 1})
    assert (result.written, faulty.failed["batch"]) == (False, 2)
    assert result.error is not None and text in result.error
    assert (m.state.value, m.has_unsaved_work, m.progress, m.phase) == (
        "ACTIVE",
        True,
        {"n": 1},
        "P1",
    )
    assert [t.id for t in m.work.active_tasks] == ["T1"]
    faulty.clear()
    again = m.create_checkpoint()
    assert again.written and m.state.value == "CHECKPOINTED"
    restored = _manager(faulty.inner, clock).start_session(restore=True)
    assert restored.checkpoint_id == again.checkpoint_id
    assert restored.restored_state == {"phase": "P1", "progress": {"n": 1}, "context": {}}


def _break_file_writes(
    monkeypatch: pytest.MonkeyPatch, error: Callable[[], Exception]
) -> Callable[[], int]:
    """Make the file store's data writes fail with ``error``; return a call counter."""
    calls = [0]

    def failing(path: str, data: bytes, *, sync: bool = True) -> None:
        calls[0] += 1
        raise error()

    monkeypatch.setattr(file_module, "_write_file", failing)
    return lambda: calls[0]


@pytest.mark.parametrize(
    ("error", "text"),
    [(_disk_full, "errno 28, No space left on device"), (_denied, "errno 13, Permission denied")],
    ids=["disk-full", "permission-denied"],
)
def test_disk_full_or_permission_denied_in_the_file_store_is_a_store_error_and_work_continues(
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    error: Callable[[], Exception],
    text: str,
) -> None:
    store = FileStore(tmp_path / "store")
    m = _manager(store, clock)
    m.start_session(restore=False)
    with monkeypatch.context() as patch:
        calls = _break_file_writes(patch, error)
        result = m.create_checkpoint(phase="P1", progress={"n": 1})
        assert (result.written, calls()) == (False, 2)  # one try, one retry
    assert result.error is not None and text in result.error
    assert (m.state.value, m.has_unsaved_work) == ("ACTIVE", True)
    assert store.list_keys("demo/checkpoints/") == []
    assert m.create_checkpoint().written  # the fault cleared


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_store_folder_fails_checkpoints_as_store_errors(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = FileStore(tmp_path / "store")
    m = _manager(store, clock)
    m.start_session(restore=False)
    m.create_checkpoint(progress={"n": 0})
    folder = store.root / "demo.d" / "checkpoints.d"
    folder.chmod(0o500)
    try:
        result = m.create_checkpoint(progress={"n": 1})
    finally:
        folder.chmod(0o700)
    assert result.written is False
    assert result.error is not None and "Permission denied" in result.error
    assert m.create_checkpoint().written


# -- learning capture failure: queued and retried ----------------------------------------------


@pytest.mark.parametrize("fault", sorted(STORE_FAULTS))
def test_a_failed_learning_capture_is_queued_and_written_on_the_next_operation(
    faulty: FaultyStore, clock: FakeClock, fault: str
) -> None:
    m = _manager(faulty, clock)
    m.start_session(restore=False)
    faulty.fail("put", error=STORE_FAULTS[fault][0])
    result = m.capture_learning(type="solution", key="jwt-expiry-fix", content="7 days")
    assert (result.success, result.queued, result.learning_key) == (
        False,
        True,
        "learning/solutions/jwt-expiry-fix",
    )
    assert [p.key for p in m.pending_learnings] == ["learning/solutions/jwt-expiry-fix"]
    m.tick()  # still failing: stays queued
    assert len(m.pending_learnings) == 1
    faulty.clear()
    m.tick()
    assert m.pending_learnings == ()
    entry = faulty.inner.get("demo/learning/solutions/jwt-expiry-fix")
    assert entry is not None and b"7 days" in entry.value


# -- checkpoint read failure: fresh session with a warning ------------------------------------


@pytest.mark.parametrize("fault", sorted(STORE_FAULTS))
def test_a_checkpoint_read_failure_starts_a_fresh_session_with_a_warning(
    faulty: FaultyStore, clock: FakeClock, fault: str
) -> None:
    first = _manager(faulty, clock)
    first.start_session(restore=False)
    assert first.create_checkpoint(progress={"n": 1}).written
    faulty.fail(READS, error=STORE_FAULTS[fault][0])
    start = _manager(faulty, clock).start_session(restore=True)
    assert (start.is_fresh_session, start.checkpoint_id) == (True, None)
    assert len(start.warnings) == 1
    assert start.warnings[0].startswith("could not read checkpoints")


def test_a_store_down_for_reads_and_writes_fails_start_with_a_typed_error_and_changes_nothing(
    faulty: FaultyStore, clock: FakeClock
) -> None:
    m = _manager(faulty, clock)
    faulty.fail(READS | WRITES, error=lambda _: StoreUnavailable("injected outage"))
    with pytest.raises(StoreError, match="injected outage"):
        m.start_session(restore=True)
    assert (m.state.value, m.session_id) == ("INITIALIZING", None)
    faulty.clear()
    assert m.start_session(restore=True).is_fresh_session  # the same manager can try again


# -- primary unavailable: the fallback store, and its queue drains -----------------------------


def _primary_keys(store: Store) -> list[str]:
    return [k for k in store.list_keys("demo/") if not k.startswith("demo/session/")]


def test_writes_while_the_primary_is_down_are_acknowledged_and_drain_when_it_returns(
    tmp_path: Path, clock: FakeClock
) -> None:
    primary = FaultyStore(FileStore(tmp_path / "primary"))
    fallback = FallbackStore(primary, FileStore(tmp_path / "local"))
    m = _manager(fallback, clock)
    m.start_session(restore=False)
    primary.fail(READS | WRITES)
    acked = []
    for n in range(1, 4):
        clock.advance(minutes=5)
        result = m.create_checkpoint(progress={"n": n})
        assert result.written
        acked.append(result.key)
    m.capture_learning(type="pattern", key="atomic-rename", content="temp, fsync, rename")
    assert fallback.pending() == 4
    assert _manager(fallback, clock).read_checkpoint().progress == {"n": 3}  # from the cache
    primary.clear()
    clock.advance(minutes=5)
    after = m.create_checkpoint(progress={"n": 4})  # the next store operation drains first
    assert fallback.pending() == 0
    for key in [*acked, after.key]:
        assert primary.inner.get(f"demo/{key}") is not None
    direct = _manager(primary.inner, clock).start_session(restore=True)
    assert direct.restored_state is not None
    assert direct.restored_state["progress"] == {"n": 4}
    assert primary.inner.get("demo/learning/patterns/atomic-rename") is not None


@pytest.fixture
def private_server(postgres_url: str) -> Iterator[pgserver.PostgresServer]:
    server = pgserver.PostgresServer()
    try:
        server.setup()
    except pgserver.PostgresServerError as exc:
        pgserver._unavailable(str(exc))
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.timeout(180)
def test_a_stopped_postgres_server_behind_a_fallback_store_loses_nothing(
    private_server: pgserver.PostgresServer, tmp_path: Path, clock: FakeClock
) -> None:
    import time

    from lifecycle.stores.postgres import PostgresStore

    schema = pgserver.unique_schema()
    primary = PostgresStore(private_server.url(pgserver.TEST_DATABASE), schema=schema, timeout=2)
    fallback = FallbackStore(primary, FileStore(tmp_path / "local"))
    try:
        m = _manager(fallback, clock)
        m.start_session(restore=False)
        assert m.create_checkpoint(progress={"n": 0}).written
        private_server.stop()
        try:
            for n in (1, 2):
                clock.advance(minutes=5)
                assert m.create_checkpoint(progress={"n": n}).written
            assert fallback.pending() == 2
        finally:
            private_server.start()
        deadline = time.monotonic() + 60
        while fallback.pending() and time.monotonic() < deadline:
            m.read_checkpoint()  # every store operation tries to drain; the pool reconnects
            if fallback.pending():
                time.sleep(0.2)
        assert fallback.pending() == 0
        direct = PostgresStore(private_server.url(pgserver.TEST_DATABASE), schema=schema)
        try:
            restored = _manager(direct, clock).start_session(restore=True)
        finally:
            direct.close()
        assert restored.restored_state is not None
        assert restored.restored_state["progress"] == {"n": 2}
    finally:
        fallback.close()


def test_end_session_with_every_write_failing_still_completes_and_says_what_was_not_saved(
    faulty: FaultyStore, clock: FakeClock
) -> None:
    m = _manager(faulty, clock)
    m.start_session(restore=False)
    m.add_task("T1", status="in_progress")
    faulty.fail(WRITES)
    end = m.end_session(success=True)
    assert m.state.value == "COMPLETED"
    assert end.checkpoint is not None and end.checkpoint.written is False
    tried = Counter(
        "checkpoint" if "demo/checkpoints/latest" in keys else "session record"
        for keys in (c.keys for c in faulty.history if c.operation == "batch" and c.fault)
        if "demo/checkpoints/latest" in keys or "demo/session/last" in keys
    )
    assert tried == {"checkpoint": 2, "session record": 2}  # each tried once, retried once
    said = [w.split(":")[0] for w in m.warnings]
    assert "checkpoint not written after 2 attempts" in said
    assert "session record not written" in said


# -- any operation, any time: typed errors only, and nothing acknowledged is lost ------------

OPS = sorted(READS | WRITES)


@given(
    failing=st.lists(st.frozensets(st.sampled_from(OPS)), min_size=8, max_size=8),
    error=st.sampled_from([*sorted(STORE_FAULTS), "disk-full", "denied"]),
)
def test_faults_on_any_store_operation_surface_as_typed_errors_and_lose_no_acknowledged_checkpoint(
    failing: list[frozenset[str]], error: str
) -> None:
    errors = {
        **{k: v[0] for k, v in STORE_FAULTS.items()},
        "disk-full": lambda _: StoreError("errno 28, No space left on device"),
        "denied": lambda _: StoreError("errno 13, Permission denied"),
    }
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as tmp:
        store = FaultyStore(FileStore(Path(tmp) / "s"))
        m = _manager(store, clock)
        steps = [
            lambda: m.start_session(restore=True),
            lambda: m.add_task("T1", status="in_progress"),
            lambda: m.create_checkpoint(progress={"n": 1}),
            lambda: m.capture_learning(type="pattern", key="p", content="c"),
            lambda: m.complete_task("T1", priority="high"),
            lambda: m.save_context(),
            lambda: m.create_checkpoint(progress={"n": 2}),
            lambda: m.end_session(),
        ]
        acked: list[str] = []
        for step, ops in zip(steps, failing, strict=True):
            store.clear()
            store.fail(ops, error=errors[error])
            clock.advance(minutes=1)
            try:
                result = step()
            except LifecycleError:
                continue  # typed; anything else fails the test
            checkpoint = getattr(result, "checkpoint", result)
            if getattr(checkpoint, "written", False) and checkpoint.checkpoint_id:
                acked.append(checkpoint.checkpoint_id)
        store.clear()
        check = _manager(store.inner, clock)
        for cp_id in acked:
            assert check.read_checkpoint(cp_id).id == cp_id
        if acked:
            restored = check.start_session(restore=True).checkpoint_id
            assert restored is not None and restored >= acked[-1]
