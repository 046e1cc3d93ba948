"""LangGraph's own checkpointer conformance suite (langgraph-checkpoint-conformance),
every capability, base and extended, against LifecycleSaver on the file, SQLite and
PostgreSQL stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport
from langgraph.checkpoint.conformance.spec import (
    test_copy_thread,
    test_delete_for_runs,
    test_delete_thread,
    test_get_tuple,
    test_list,
    test_prune,
    test_put,
    test_put_writes,
)
from stores import STORE_FACTORIES

from lifecycle.integrations.langgraph import LifecycleSaver

STORES = ("file", "sqlite", "postgres")
#: How many tests the suite has for each capability (its own lists).
SUITE = {
    "put": len(test_put.ALL_PUT_TESTS),
    "put_writes": len(test_put_writes.ALL_PUT_WRITES_TESTS),
    "get_tuple": len(test_get_tuple.ALL_GET_TUPLE_TESTS),
    "list": len(test_list.ALL_LIST_TESTS),
    "delete_thread": len(test_delete_thread.ALL_DELETE_THREAD_TESTS),
    "delete_for_runs": len(test_delete_for_runs.ALL_DELETE_FOR_RUNS_TESTS),
    "copy_thread": len(test_copy_thread.ALL_COPY_THREAD_TESTS),
    "prune": len(test_prune.ALL_PRUNE_TESTS),
}


def run_suite(store_name: str, tmp_path: Path) -> CapabilityReport:
    made = 0

    async def factory() -> AsyncIterator[LifecycleSaver]:
        nonlocal made
        made += 1  # a fresh, empty store for each capability's suite
        store = STORE_FACTORIES[store_name](tmp_path / f"suite-{made}")
        try:
            yield LifecycleSaver(store, project="conformance")
        finally:
            store.close()

    registered = checkpointer_test(name=f"LifecycleSaver[{store_name}]")(factory)
    return asyncio.run(validate(registered))


@pytest.mark.parametrize("store_name", STORES)
def test_langgraph_conformance_suite_passes_every_capability(
    store_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run_suite(store_name, tmp_path)
    with capsys.disabled():
        report.print_report()
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES} == set(SUITE)
    failures = {name: r.failures for name, r in report.results.items() if r.passed is not True}
    assert failures == {}
    passed = {name: (r.detected, r.tests_passed) for name, r in report.results.items()}
    assert passed == {name: (True, n) for name, n in SUITE.items()}
    assert report.conformance_level() == "FULL"
