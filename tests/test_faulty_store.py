"""The kit's store wrappers (lifecycle.testing): ForwardingStore forwards every call,
FaultyStore fails exactly the calls its faults name and counts what it saw."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lifecycle.errors import InvalidSettings, StoreError, StoreUnavailable, VersionConflict
from lifecycle.stores import base
from lifecycle.stores.base import Delete, Entry, Put, Store
from lifecycle.stores.memory import MemoryStore
from lifecycle.testing import (
    OPERATIONS,
    READS,
    WRITES,
    Call,
    FaultyStore,
    FlakyStore,
    ForwardingStore,
)


def _every_call(store: Store) -> dict[str, object]:
    """Call each Store operation once on a store holding k/a; what each answered."""
    return {
        "get": store.get("k/a"),
        "put": store.put("k/b", b"b"),
        "delete": store.delete("k/b"),
        "list_keys": store.list_keys("k/"),
        "scan": list(store.scan("k/")),
        "batch": store.batch([Put("k/c", b"c"), Delete("k/c")]),
    }


def _outcome(call: Callable[[], object]) -> str:
    try:
        call()
    except StoreError as exc:
        return type(exc).__name__
    return "ok"


def _calls(store: Store) -> dict[str, Callable[[], object]]:
    return {
        "get": lambda: store.get("k/a"),
        "put": lambda: store.put("k/b", b"b"),
        "delete": lambda: store.delete("k/b"),
        "list_keys": lambda: store.list_keys("k/"),
        "scan": lambda: store.scan("k/"),
        "batch": lambda: store.batch([Put("k/c", b"c")]),
    }


# -- ForwardingStore ---------------------------------------------------------------------------


def test_a_forwarding_store_answers_every_call_as_its_inner_store_does() -> None:
    inner, twin = MemoryStore(), MemoryStore()
    for store in (inner, twin):
        store.put("k/a", b"a")
    wrapped = ForwardingStore(inner)
    assert isinstance(wrapped, Store)
    assert _every_call(wrapped) == _every_call(twin)
    assert wrapped.url == inner.url == "memory://"
    assert ForwardingStore(inner, url="slow://").url == "slow://"


def test_the_forwarding_base_lives_in_the_stores_so_the_product_can_use_it() -> None:
    code = (
        "import sys; from lifecycle.stores.base import ForwardingStore; "
        "assert 'hypothesis' not in sys.modules, 'the base pulled in the test kit'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert ForwardingStore is base.ForwardingStore


def test_a_forwarding_subclass_changes_only_what_it_overrides() -> None:
    class Renaming(ForwardingStore):
        def get(self, key: str) -> Entry | None:
            return super().get(key.replace("x/", "k/"))

    store = Renaming(MemoryStore())
    store.put("k/a", b"a")
    assert store.get("x/a") == Entry("k/a", b"a", 1)
    assert store.list_keys() == ["k/a"]


# -- FaultyStore: which calls fail -------------------------------------------------------------


def test_without_faults_a_faulty_store_fails_nothing_and_counts_every_call() -> None:
    inner = MemoryStore()
    inner.put("k/a", b"a")
    store = FaultyStore(inner)
    _every_call(store)
    assert store.calls == dict.fromkeys(OPERATIONS, 1)
    assert store.failed == {}
    assert store.in_flight == 0


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_fault_on_one_operation_fails_only_that_operation_and_changes_nothing(
    operation: str,
) -> None:
    inner = MemoryStore()
    inner.put("k/a", b"a")
    store = FaultyStore(inner)
    store.fail(operation)
    outcomes = {name: _outcome(call) for name, call in _calls(store).items()}
    assert outcomes == {
        name: "StoreUnavailable" if name == operation else "ok" for name in outcomes
    }
    assert store.failed == {operation: 1}
    written = {"put": "k/b", "batch": "k/c"}.get(operation)
    if written is not None:
        assert inner.get(written) is None  # the failed write never reached the store


def test_fail_with_no_arguments_fails_every_operation() -> None:
    store = FaultyStore(MemoryStore())
    store.fail()
    assert {_outcome(call) for call in _calls(store).values()} == {"StoreUnavailable"}
    assert store.failed == dict.fromkeys(OPERATIONS, 1)


def test_a_prefix_fails_calls_on_keys_under_it_batches_touching_it_and_listings_inside_it() -> None:
    store = FaultyStore(MemoryStore())
    store.fail(prefix="demo/checkpoints/")
    assert _outcome(lambda: store.put("demo/checkpoints/latest", b"x")) == "StoreUnavailable"
    assert _outcome(lambda: store.put("demo/session/current", b"x")) == "ok"
    assert _outcome(lambda: store.get("demo/checkpoints/latest")) == "StoreUnavailable"
    mixed = [Put("demo/session/last", b"s"), Put("demo/checkpoints/a", b"c")]
    assert _outcome(lambda: store.batch(mixed)) == "StoreUnavailable"
    assert _outcome(lambda: store.batch([Put("demo/session/last", b"s")])) == "ok"
    assert _outcome(lambda: store.list_keys("demo/checkpoints/")) == "StoreUnavailable"
    assert _outcome(lambda: store.list_keys("demo/session/")) == "ok"


def test_times_fails_that_many_calls_then_lets_them_through() -> None:
    store = FaultyStore(MemoryStore())
    store.fail("put", times=2)
    assert [_outcome(lambda: store.put("k/a", b"v")) for _ in range(4)] == [
        "StoreUnavailable",
        "StoreUnavailable",
        "ok",
        "ok",
    ]
    assert (store.calls["put"], store.failed["put"]) == (4, 2)


def test_at_fails_exactly_the_numbered_calls_to_its_operations() -> None:
    store = FaultyStore(MemoryStore())
    store.fail(WRITES, at={1, 3})
    outcomes = []
    for i in range(5):
        try:
            store.batch([Put(f"k/{i}", b"v")]) if i % 2 else store.put(f"k/{i}", b"v")
            outcomes.append("ok")
        except StoreUnavailable as exc:
            outcomes.append(str(exc))
    assert outcomes == [
        "ok",
        "injected fault on batch (store write #1)",
        "ok",
        "injected fault on batch (store write #3)",
        "ok",
    ]
    assert store.inner.list_keys() == ["k/0", "k/2", "k/4"]


def test_a_rate_fails_that_share_of_calls_and_the_seed_makes_it_repeatable() -> None:
    def failing(seed: int, rate: float) -> list[int]:
        store = FaultyStore(MemoryStore(), seed=seed)
        store.fail("get", rate=rate)
        return [i for i in range(400) if _outcome(lambda: store.get("k/a")) != "ok"]

    assert failing(7, 0.25) == failing(7, 0.25)
    assert failing(7, 0.25) != failing(8, 0.25)
    assert 60 < len(failing(7, 0.25)) < 140
    assert failing(7, 0.0) == []
    assert failing(7, 1.0) == list(range(400))


def test_the_error_is_a_class_made_with_a_message_or_a_function_of_the_call() -> None:
    store = FaultyStore(MemoryStore())
    store.fail("get", error=TimeoutError)
    with pytest.raises(TimeoutError, match=r"^injected fault on get \(store read #0\)$"):
        store.get("k/a")
    store.clear()
    store.fail("put", error=lambda call: OSError(28, f"disk full writing {call.keys[0]}"))
    with pytest.raises(OSError, match="disk full writing k/b"):
        store.put("k/b", b"v")


def test_a_fault_after_the_call_applies_it_then_loses_the_answer() -> None:
    store = FaultyStore(MemoryStore(), record=True)
    store.fail("put", after=True)
    with pytest.raises(StoreUnavailable):
        store.put("k/a", b"v")
    assert store.inner.get("k/a") == Entry("k/a", b"v", 1)
    (call,) = store.history
    assert (call.operation, call.answered, type(call.fault)) == ("put", True, StoreUnavailable)


def test_the_first_fault_that_hits_raises_and_clear_removes_one_or_all() -> None:
    store = FaultyStore(MemoryStore())
    first = store.fail("get", error=lambda _: StoreUnavailable("first"))
    store.fail(READS, error=lambda _: StoreUnavailable("second"))
    with pytest.raises(StoreUnavailable, match="first"):
        store.get("k/a")
    store.clear(first)
    with pytest.raises(StoreUnavailable, match="second"):
        store.get("k/a")
    assert len(store.faults) == 1
    store.clear()
    assert store.get("k/a") is None and store.faults == ()


def test_an_error_from_the_inner_store_passes_through_and_is_not_counted_as_a_fault() -> None:
    store = FaultyStore(MemoryStore(), record=True)
    store.put("k/a", b"1")
    with pytest.raises(VersionConflict):
        store.put("k/a", b"2", expected_version=0)
    assert store.failed == {}
    assert [(c.operation, c.answered, c.fault) for c in store.history] == [
        ("put", True, None),
        ("put", False, None),
    ]


# -- FaultyStore: delay and counters ---------------------------------------------------------


def test_a_delay_slows_the_named_calls_after_they_took_effect() -> None:
    store = FaultyStore(MemoryStore(), delay=0.3, delay_on=WRITES)
    seen: list[object] = []
    writer = threading.Thread(target=lambda: store.put("k/a", b"v"))
    started = time.monotonic()
    writer.start()
    while store.in_flight == 0 and time.monotonic() - started < 5:
        time.sleep(0.001)
    while store.inner.get("k/a") is None and time.monotonic() - started < 5:
        time.sleep(0.001)
    seen.append(store.in_flight)  # applied, and still running
    writer.join()
    assert time.monotonic() - started >= 0.3
    assert (seen, store.in_flight) == ([1], 0)
    read_started = time.monotonic()
    store.get("k/a")
    assert time.monotonic() - read_started < 0.3  # reads are not in delay_on


def test_history_records_every_call_with_its_keys_and_ops() -> None:
    store = FaultyStore(MemoryStore(), record=True)
    store.fail("delete")
    store.put("k/a", b"v", expected_version=0)
    with pytest.raises(StoreUnavailable):
        store.delete("k/a")
    store.batch([Put("k/b", b"b"), Delete("k/a")])
    store.list_keys("k/")
    assert [(c.operation, c.keys, c.ops, c.answered) for c in store.history] == [
        ("put", ("k/a",), (Put("k/a", b"v", 0),), True),
        ("delete", ("k/a",), (Delete("k/a"),), False),
        ("batch", ("k/b", "k/a"), (Put("k/b", b"b"), Delete("k/a")), True),
        ("list_keys", ("k/",), (), True),
    ]
    assert isinstance(store.history[1].fault, StoreUnavailable)
    assert FaultyStore(MemoryStore()).history == []  # off unless record=True


@pytest.mark.parametrize(
    ("configure", "message"),
    [
        (lambda s: s.fail("fetch"), "unknown store operation 'fetch'"),
        (lambda s: s.fail(rate=1.5), r"rate must be between 0 and 1, got 1\.5"),
        (lambda s: s.fail(times=-1), "times must be at least 0"),
        (lambda s: FaultyStore(MemoryStore(), delay=-1), "delay must be at least 0"),
        (lambda s: FaultyStore(MemoryStore(), delay_on="flush"), "unknown store operation"),
    ],
)
def test_a_bad_fault_configuration_is_refused_with_invalid_settings(
    configure: Callable[[FaultyStore], object], message: str
) -> None:
    store = FaultyStore(MemoryStore())
    with pytest.raises(InvalidSettings, match=message):
        configure(store)
    assert store.faults == ()


# -- FlakyStore: the kit's schedule-driven configuration ---------------------------------------


def test_flaky_store_is_a_faulty_store_whose_rate_can_change_at_any_time() -> None:
    store = FlakyStore(MemoryStore(), rate=1.0)
    assert isinstance(store, FaultyStore)
    with pytest.raises(StoreUnavailable, match=r"injected fault on put \(store write #0\)"):
        store.put("k/a", b"v")
    assert store.get("k/a") is None  # reads fail only with fail_reads
    store.fail_reads = True
    with pytest.raises(StoreUnavailable, match=r"injected fault on get \(store read #1\)"):
        store.get("k/a")
    assert list(store.scan("k/")) == []  # a scan never fails
    store.rate = 0.0
    assert store.put("k/a", b"v") == 1
    assert store.failures == 2


def test_a_call_record_names_its_operation_and_keys() -> None:
    assert Call("get", ("k/a",)) == Call("get", ("k/a",), (), False, None)


def test_the_example_in_docs_testing_md_runs() -> None:
    doc = (Path(__file__).parent.parent / "docs/testing.md").read_text(encoding="utf-8")
    section = doc.split("## Store wrappers", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/testing.md", "exec"), {})
