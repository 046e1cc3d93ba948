"""Rules of the fallback store: queue locally, retry on the next operation, lose nothing."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from lifecycle.errors import InvalidKey, InvalidStoreURL, VersionConflict
from lifecycle.stores import open_store
from lifecycle.stores.base import Delete, Entry, Op, Put
from lifecycle.stores.fallback import FallbackStore, fallback_url
from lifecycle.stores.file import FileStore
from lifecycle.stores.memory import MemoryStore
from lifecycle.testing import WRITES, Call, FaultyStore


class FaultyPrimary(FaultyStore):
    """A memory store failing on demand (the kit's FaultyStore), with the views these
    tests assert on: ``applied`` counts every (key, value) put that took effect, also
    when a fault with ``after=True`` then lost its answer."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(MemoryStore(), seed=seed, record=True)

    @property
    def applied(self) -> Counter[tuple[str, bytes]]:
        return Counter(
            (op.key, op.value)
            for call in self.history
            if call.answered
            for op in call.ops
            if isinstance(op, Put)
        )

    @property
    def batches(self) -> int:
        return sum(1 for call in self.history if call.operation == "batch" and call.answered)

    def contents(self) -> dict[str, bytes]:
        return {e.key: e.value for e in self.inner.scan()}


def _refuse_every_key(call: Call) -> InvalidKey:
    return InvalidKey("k", "this primary refuses every key")


@pytest.fixture
def primary() -> FaultyPrimary:
    return FaultyPrimary()


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    return tmp_path / "local"


@pytest.fixture
def store(primary: FaultyPrimary, local_root: Path) -> FallbackStore:
    return FallbackStore(primary, FileStore(local_root))


def _events(logs: list[dict[str, object]]) -> list[object]:
    return [log["event"] for log in logs]


# -- writes while the primary is down ------------------------------------------------------


def test_a_failed_primary_write_is_acknowledged_queued_durably_and_warned(
    store: FallbackStore, primary: FaultyPrimary, local_root: Path
) -> None:
    primary.fail()
    with capture_logs() as logs:
        assert store.put("k/a", b"v") == 1
    assert _events(logs) == ["store.primary_failed_write_queued"]
    assert logs[0]["log_level"] == "warning"
    assert store.pending() == 1
    assert [p.name for p in (local_root / "recovery").glob("*.op")] == ["00000000000000000001.op"]
    assert primary.contents() == {}
    assert store.local.get("k/a") == Entry("k/a", b"v", 1)


def test_the_next_operation_drains_the_queue_to_the_primary_in_order(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    store.put("k/gone", b"x")
    primary.fail()
    with capture_logs():
        store.put("k/a", b"1")
        store.put("k/a", b"2")
        store.delete("k/gone")
        store.batch([Put("k/b", b"b"), Put("k/a", b"3")])
    assert store.pending() == 4
    primary.clear()
    assert store.get("k/other") is None
    assert store.pending() == 0
    assert primary.contents() == {"k/a": b"3", "k/b": b"b"}
    assert store.local.get("k/a") == Entry("k/a", b"3", primary.inner.get("k/a").version)


def test_drain_returns_how_many_queued_calls_were_applied(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    primary.fail()
    with capture_logs():
        store.put("k/a", b"1")
        store.put("k/b", b"2")
        assert store.drain() == 0
    primary.clear()
    assert store.drain() == 2
    assert store.drain() == 0


def test_writes_after_a_failure_queue_behind_it_even_when_the_primary_is_back(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    primary.fail(WRITES)
    with capture_logs():
        store.put("k/a", b"old")
    primary.clear()
    assert store.put("k/a", b"new") == 2
    assert store.pending() == 0
    assert primary.contents() == {"k/a": b"new"}
    assert primary.applied == Counter({("k/a", b"old"): 1, ("k/a", b"new"): 1})


def test_the_queue_survives_a_restart(primary: FaultyPrimary, local_root: Path) -> None:
    primary.fail()
    with capture_logs():
        FallbackStore(primary, FileStore(local_root)).put("k/a", b"v")
    primary.clear()
    reopened = FallbackStore(primary, FileStore(local_root))
    assert reopened.pending() == 1
    assert reopened.drain() == 1
    assert primary.contents() == {"k/a": b"v"}


def test_a_queued_batch_is_replayed_as_one_batch(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    store.put("k/c", b"c")
    primary.fail()
    with capture_logs():
        assert store.batch([Put("k/a", b"a"), Put("k/b", b"b"), Delete("k/c")]) == [1, 1, 0]
    primary.clear()
    assert store.drain() == 1
    assert primary.batches == 1
    assert primary.contents() == {"k/a": b"a", "k/b": b"b"}


# -- idempotent replay ---------------------------------------------------------------------


def test_a_write_whose_answer_was_lost_is_not_applied_twice(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    primary.fail(WRITES, after=True)
    with capture_logs():
        store.put("k/a", b"v")
    primary.clear()
    assert store.pending() == 1
    assert store.drain() == 1
    assert primary.applied == Counter({("k/a", b"v"): 1})
    assert primary.contents() == {"k/a": b"v"}


def test_a_replay_whose_answer_was_lost_is_not_applied_again(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    primary.fail()
    with capture_logs():
        store.put("k/a", b"1")
        store.put("k/a", b"2")
    primary.clear()
    primary.fail(WRITES, after=True)
    with capture_logs():
        assert store.drain() == 0
    primary.clear()
    assert store.drain() == 2
    assert primary.applied == Counter({("k/a", b"1"): 1, ("k/a", b"2"): 1})


# -- compare-and-swap ----------------------------------------------------------------------


def test_a_version_conflict_from_the_primary_is_raised_and_not_queued(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    store.put("k/a", b"1")
    with pytest.raises(VersionConflict):
        store.put("k/a", b"2", expected_version=0)
    assert store.pending() == 0
    assert store.get("k/a") == Entry("k/a", b"1", 1)


def test_a_queued_compare_and_swap_is_checked_against_the_local_cache(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    store.put("k/a", b"1")
    primary.fail()
    with capture_logs():
        assert store.put("k/a", b"2", expected_version=1) == 2
        with pytest.raises(VersionConflict):
            store.put("k/a", b"3", expected_version=1)
    assert store.pending() == 1


# -- reads ---------------------------------------------------------------------------------


def test_reads_use_the_local_cache_with_a_warning_when_the_primary_fails(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    store.put("k/a", b"1")
    store.put("k/b", b"2")
    primary.fail()
    with capture_logs() as logs:
        assert store.get("k/a") == Entry("k/a", b"1", 1)
        assert store.list_keys("k/") == ["k/a", "k/b"]
        assert [e.value for e in store.scan("k/")] == [b"1", b"2"]
    assert _events(logs) == [
        "store.primary_failed_read_local",
        "store.primary_failed_list_local",
        "store.primary_failed_list_local",
    ]


def test_a_key_with_a_queued_write_reads_from_the_cache_not_the_stale_primary(
    store: FallbackStore, primary: FaultyPrimary
) -> None:
    store.put("k/a", b"old")
    store.put("k/gone", b"x")
    primary.fail(WRITES)
    with capture_logs():
        store.put("k/a", b"new")
        store.put("k/new", b"n")
        assert store.delete("k/gone") is True
    assert store.get("k/a") == Entry("k/a", b"new", 2)
    assert store.get("k/gone") is None
    assert store.list_keys("k/") == ["k/a", "k/new"]
    assert store.list_keys("k/", reverse=True, limit=1) == ["k/new"]
    assert [(e.key, e.value) for e in store.scan("k/")] == [("k/a", b"new"), ("k/new", b"n")]


# -- refusals ------------------------------------------------------------------------------


def test_a_queued_call_the_primary_refuses_is_moved_to_rejected_with_an_error(
    store: FallbackStore, primary: FaultyPrimary, local_root: Path
) -> None:
    primary.fail()
    with capture_logs():
        store.put("k/a", b"v")
    primary.clear()
    primary.fail(WRITES, error=_refuse_every_key)
    with capture_logs() as logs:
        assert store.drain() == 0
    assert store.pending() == 0
    assert [p.name for p in (local_root / "recovery" / "rejected").iterdir()] == [
        "00000000000000000001.op"
    ]
    assert [(log["event"], log["log_level"]) for log in logs] == [
        ("store.fallback_queued_call_rejected", "error")
    ]


# -- URLs ----------------------------------------------------------------------------------


def test_a_fallback_url_opens_the_primary_and_the_local_folder(tmp_path: Path) -> None:
    url = fallback_url(f"file://{tmp_path}/primary", tmp_path / "local")
    store = open_store(url)
    assert isinstance(store, FallbackStore)
    assert store.url == url
    assert isinstance(store.primary, FileStore)
    assert store.primary.root == tmp_path / "primary"
    assert store.local.root == tmp_path / "local"
    store.put("k/a", b"v")
    assert store.primary.get("k/a") == Entry("k/a", b"v", 1)


def test_the_local_folder_defaults_to_dot_lifecycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("fallback://?primary=memory://")
    assert isinstance(store, FallbackStore)
    assert store.local.root == tmp_path / ".lifecycle"
    assert (tmp_path / ".lifecycle" / "recovery").is_dir()


def test_a_fallback_url_keeps_a_plus_in_the_primary_url() -> None:
    assert fallback_url("serena+stdio://x?a=1&b=2", "/tmp/l") == (
        "fallback://?primary=serena%2Bstdio%3A%2F%2Fx%3Fa%3D1%26b%3D2&local=/tmp/l"
    )


@pytest.mark.parametrize(
    "url",
    [
        "fallback://",
        "fallback://?local=x",
        "fallback://?primary=nope",
        "fallback://?primary=fallback%3A%2F%2F%3Fprimary%3Dmemory%3A%2F%2F",
        "fallback://?primary=memory://&color=red",
        "fallback://host?primary=memory://",
    ],
)
def test_a_malformed_fallback_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidStoreURL):
        open_store(url)


# -- random faults -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_under_random_faults_nothing_acknowledged_is_lost_or_applied_twice(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    primary = FaultyPrimary(seed + 1000)
    primary.fail(rate=0.3)
    primary.fail(WRITES, rate=0.15, after=True)
    store = FallbackStore(primary, FileStore(tmp_path / "local"))
    keys = ["k/a", "k/b", "k/c", "k/d/e"]
    model: dict[str, bytes] = {}
    acknowledged: list[tuple[str, bytes]] = []
    with capture_logs() as logs:
        for step in range(150):
            roll = rng.random()
            key = rng.choice(keys)
            if roll < 0.55:
                value = b"v%d" % step
                store.put(key, value)
                model[key] = value
                acknowledged.append((key, value))
            elif roll < 0.65:
                store.delete(key)
                model.pop(key, None)
            elif roll < 0.8:
                ops: list[Op] = []
                for n, key in enumerate(rng.sample(keys, 2)):
                    if rng.random() < 0.8:
                        ops.append(Put(key, b"b%d.%d" % (step, n)))
                    else:
                        ops.append(Delete(key))
                store.batch(ops)
                for op in ops:
                    if isinstance(op, Put):
                        model[op.key] = op.value
                        acknowledged.append((op.key, op.value))
                    else:
                        model.pop(op.key, None)
            elif roll < 0.9:
                entry = store.get(key)
                assert (entry.value if entry else None) == model.get(key), (step, key)
            else:
                assert store.list_keys("k/") == sorted(model), step
    queued = _events(logs).count("store.primary_failed_write_queued")
    assert queued > 20  # the faults did bite: many writes went through the queue
    primary.clear()
    store.drain()
    assert store.pending() == 0
    assert primary.contents() == model
    assert primary.applied == Counter(acknowledged)
    assert {e.key: e.value for e in store.local.scan()} == model
