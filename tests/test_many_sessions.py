"""Many live sessions in one process: memory per session stays under 25 KB (design.md
budget), measured with tracemalloc after gc by bench/many_sessions.py. Memory is
deterministic enough to bound loosely; time is never asserted."""

from __future__ import annotations

import importlib.util
import sys
import tracemalloc
from pathlib import Path
from types import ModuleType

import orjson
import pytest

BUDGET = 25 * 1024


def bench() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "many_sessions.py"
    spec = importlib.util.spec_from_file_location("many_sessions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("many_sessions", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def quiet_logs():  # type: ignore[no-untyped-def]
    from lifecycle.logs import configure

    configure("warning", cache=False)
    yield
    import structlog

    structlog.reset_defaults()


@pytest.mark.parametrize("journal", [False, True])
def test_a_live_session_driven_for_a_while_costs_under_25_kb(journal: bool) -> None:
    kwargs = {"journal": True} if journal else {}
    measured = bench().memory_pass(400, 3, **kwargs)
    assert measured["bytes_per_session"] < BUDGET, measured


def test_the_memory_store_keeps_each_value_at_its_own_size() -> None:
    """orjson's bytes keep a ~4 KB write buffer; the store must not hold on to it."""
    from lifecycle.stores.memory import MemoryStore

    values = [orjson.dumps({"i": i, "text": "x" * 100}) for i in range(200)]
    store = MemoryStore()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, value in enumerate(values):
            store.put(f"k/{i:04d}", value)
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(values)
    finally:
        tracemalloc.stop()
    assert per_value < 1024, per_value
    assert store.get("k/0007").value == values[7]
