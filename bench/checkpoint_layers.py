"""Where one ``create_checkpoint`` spends its time, layer by layer, on a real store.

    bench/.venv/bin/python bench/checkpoint_layers.py [--store sqlite|file|memory] [-n N]

The budget rows of ``bench/run.py`` give one number per write; this splits it. Each
layer of the write path (the manager's call, the machine's dispatch, the checkpoint's
build, its encoding, the store's batch and the backend's own) is wrapped in a timer,
and every checkpoint's inclusive times are kept, so the medians printed are per call.
The checkpoints are timed twice: back to back ("alone"), and taking turns with
LangGraph's ``SqliteSaver.put`` of the same content, as ``bench/run.py`` times them
("interleaved"). The second is what the budget row sees: the same Python runs
slower when another program's code and data have been through the caches in between.

The wrappers cost about 0.3 us each (8 of them), so a layer's time here is a little
above its time unwrapped; the ratios between layers are what this is for.
"""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))

#: (owner, attribute, label): the layers, outermost first.
LAYERS = (
    ("lifecycle.session.manager:SessionManager", "create_checkpoint", "manager.create_checkpoint"),
    ("lifecycle.session.driver:Driver", "dispatch", "  driver.dispatch (machine + effects)"),
    ("lifecycle.session.effects:EventEffects", "write_checkpoint", "    effects.write_checkpoint"),
    ("lifecycle.session.checkpoints:Checkpoints", "_commit", "      checkpoints._commit"),
    ("lifecycle.session.effects:EventEffects", "_build", "        build the record"),
    ("lifecycle.session.checkpoints", "encode_sized", "        encode it (JSON, sized)"),
    ("lifecycle.stores.base:ProjectStore", "batch", "        ProjectStore.batch"),
    (None, "batch", "          the backend's batch"),
)


def _resolve(spec: str) -> Any:
    import importlib

    module, _, attr = spec.partition(":")
    owner = importlib.import_module(module)
    return getattr(owner, attr) if attr else owner


def instrument(backend: type, times: dict[str, int]) -> None:
    """Wrap every layer in a timer adding its inclusive time to ``times[label]``."""
    clock = time.perf_counter_ns
    for spec, name, label in LAYERS:
        owner = backend if spec is None else _resolve(spec)
        inner = getattr(owner, name)

        def wrapped(
            *args: Any, _inner: Callable[..., Any] = inner, _label: str = label, **kw: Any
        ) -> Any:
            start = clock()
            try:
                return _inner(*args, **kw)
            finally:
                times[_label] = times.get(_label, 0) + clock() - start

        setattr(owner, name, functools.wraps(inner)(wrapped))


class _TimedCursor(sqlite3.Cursor):
    spent = 0

    def execute(self, *args: Any, **kw: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return super().execute(*args, **kw)
        finally:
            _TimedCursor.spent += time.perf_counter_ns() - start


class _TimedConnection(sqlite3.Connection):
    """LangGraph's connection, its statements and commits timed (its SQL alone)."""

    def cursor(self, *args: Any, **kw: Any) -> Any:
        return super().cursor(_TimedCursor)

    def commit(self) -> None:
        start = time.perf_counter_ns()
        try:
            super().commit()
        finally:
            _TimedCursor.spent += time.perf_counter_ns() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "file", "memory"), default="sqlite")
    parser.add_argument("-n", type=int, default=400, help="checkpoints per way (default 400)")
    args = parser.parse_args()
    from langgraph.checkpoint.sqlite import SqliteSaver
    from run import LangGraphWriter, checkpoint_action, fill_state, langgraph_payload, new_manager

    from lifecycle.stores import open_store

    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "results") as tmp:
        url = {
            "sqlite": f"sqlite:///{tmp}/lifecycle.db",
            "file": f"file://{tmp}/files",
            "memory": "memory://",
        }[args.store]
        store = open_store(url)
        manager = new_manager(store)
        manager.start_session(restore=False)
        fill_state(manager)
        conn = sqlite3.connect(
            Path(tmp) / "langgraph.db", check_same_thread=False, factory=_TimedConnection
        )
        saver = SqliteSaver(conn)
        saver.setup()
        writer = LangGraphWriter(saver, langgraph_payload(manager))
        save = checkpoint_action(manager)
        times: dict[str, int] = {}
        instrument(type(store), times)
        for _ in range(20):
            save()
            writer.put()
        ways: dict[str, dict[str, list[int]]] = {}
        peer: list[int] = []
        peer_sql: list[int] = []
        for way in ("alone", "interleaved"):
            samples: dict[str, list[int]] = {label: [] for _, _, label in LAYERS}
            gc.collect()
            for _ in range(args.n):
                if way == "interleaved":
                    _TimedCursor.spent = 0
                    start = time.perf_counter_ns()
                    writer.put()
                    peer.append(time.perf_counter_ns() - start)
                    peer_sql.append(_TimedCursor.spent)
                times.clear()
                save()
                for label, spent in times.items():
                    samples[label].append(spent)
            ways[way] = samples
        conn.close()
        store.close()
    print(f"create_checkpoint on {args.store}, {args.n} each way; medians per call (us)")
    print(f"{'layer (inclusive)':44s} {'alone':>9s} {'interleaved':>12s}")
    for _, _, label in LAYERS:
        alone, mixed = (statistics.median(ways[w][label]) / 1000 for w in ways)
        print(f"{label:44s} {alone:9.1f} {mixed:12.1f}")
    blank = ""
    for label, values in (
        ("LangGraph SqliteSaver.put", peer),
        ("  its statements and commit", peer_sql),
    ):
        print(f"{label:44s} {blank:9s} {statistics.median(values) / 1000:12.1f}")


if __name__ == "__main__":
    main()
