"""A year of sessions: 365 days x 3 sessions, each restoring the last, on the file and
SQLite stores; what every operation costs at sessions 1, 30, 90, 365 and 1,095.

    .venv/bin/python bench/year.py [--days 365] [--stores file sqlite] [--json PATH]

Each session does what a day's work looks like (3 tasks, one of them high priority,
one left open for the next session; 3 decisions with rationale; 10 file changes;
2 learnings; a question, the previous one resolved; a context value), with text of
realistic length, on a simulated clock (40 minutes a task, 3 sessions a day). Once a
day ``prune`` runs with the default ages (archive after 30 days, prune after 90),
as a cron job would, and with ``--summaries-after 90`` (``--summaries-after 0`` here
keeps the summaries, as ``lifecycle prune`` does by default: they then grow by about
5 KB a day). Learnings are named from a pool of 60 names, as an agent reuses
the names of what it learned (``pattern-cache-warmup``), so they update rather than
accumulate.

At each sampled session N (the median over sessions N-4..N; 1..5 for the first):
the restored checkpoint's bytes, ``session/context``'s bytes, one hook step (a
``live_session``: lock, attach, one event, save; the median of 15), ``start_session``,
``end_session``, the Session Report (median of 5), ``history`` (the checkpoint tree),
``prune`` and the store's size (keys and bytes of values). A measurement, not a
test: nothing is asserted (tests/test_bounded_history.py holds the bounds).
Scratch data lives in ``bench/results/tmp-year-*`` and is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

from lifecycle import SessionManager  # noqa: E402
from lifecycle.history import build_history  # noqa: E402
from lifecycle.integrations.live import live_session  # noqa: E402
from lifecycle.retention import Policy, prune  # noqa: E402
from lifecycle.stores import ProjectStore, open_store  # noqa: E402

PROJECT = "demo"
SAMPLES = (1, 30, 90, 365, 1_095)
WINDOW = 5
TEXT = (
    "parse the configuration loader so that cached entries survive a restart and the "
    "migration keeps every index valid while the worker pool drains its queue"
)
WORDS = TEXT.split()


def text(n: int, words: int) -> str:
    return " ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(words)) + f" ({n})"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def ms(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of one call (CPU time moves less with the load of
    a shared machine; the wall clock includes the disk's fsyncs)."""
    c, t = time.thread_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000, (time.thread_time() - c) * 1000


def timed(row: dict[str, float], name: str, samples: list[tuple[float, float]]) -> None:
    row[f"{name} ms"] = statistics.median(w for w, _ in samples)
    row[f"{name} cpu ms"] = statistics.median(c for _, c in samples)


def work(m: SessionManager, clock: Clock, n: int) -> None:
    """One session's work, after its start."""
    for q in m.work.open_questions:
        m.resolve_question(q)
    for t in m.work.active_tasks:
        m.complete_task(t.id)
    for i in range(3):
        m.add_task(f"T{n}-{i}", text(n + i, 14), status="in_progress")
        clock.advance(40 * 60)
        if i < 2:
            m.complete_task(f"T{n}-{i}", priority="high" if i == 0 else "medium")
        m.record_decision(text(n * 3 + i, 12), rationale=text(n + 2 * i, 18), impact="module")
    for f in range(10):
        m.record_file_change(f"src/pkg{f % 4}/module_{(n * 3 + f) % 57}.py", "edit", 3 + f)
    for k in range(2):
        m.capture_learning(
            type="pattern" if k == 0 else "solution",
            key=f"{'pattern' if k == 0 else 'fix'}-{(n + k * 17) % 30}",
            content=text(n + k, 40),
        )
    m.add_open_question(f"should {text(n, 8)}?")
    m.update_context({"branch": f"feat/topic-{n % 11}", "pr": n})


def store_size(ps: ProjectStore) -> dict[str, float]:
    """Keys and KB of values: in all, and of the kept-forever summaries and project state."""
    n = size = checkpoints = kept_n = kept = 0
    for entry in ps.scan(""):
        n += 1
        size += len(entry.value)
        if entry.key.startswith("checkpoints/"):
            checkpoints += 1
        if entry.key.startswith(("summaries/", "project_state/", "learning/")):
            kept_n += 1
            kept += len(entry.value)
    return {
        "store keys": n,
        "store KB": size / 1000,
        "  checkpoints stored": checkpoints,
        "  summaries, project state, learnings KB": kept / 1000,
    }


def run_store(url: str, days: int, policy: Policy) -> dict[int, dict[str, float]]:
    raw = open_store(url)
    ps = ProjectStore(raw, PROJECT)
    clock = Clock()
    figures: dict[int, dict[str, list[float]]] = {}
    total = days * 3
    wanted = {s for s in SAMPLES if s <= total} | {total}
    sampled = {k for s in wanted for k in range(max(1, s - WINDOW + 1), s + 1)}
    n = 0
    try:
        for _day in range(days):
            for _ in range(3):
                n += 1
                m = SessionManager(store=raw, project=PROJECT, clock=clock)
                start = ms(lambda m=m: m.start_session(command="work"))
                work(m, clock, n)
                row: dict[str, float] = {}
                if n in sampled:
                    cp = m.restored_from
                    row["restored checkpoint bytes"] = (
                        0 if cp is None else len(ps.get(cp.key).value)  # type: ignore[union-attr]
                    )
                    m.save_context()
                    row["session/context bytes"] = len(ps.get("session/context").value)  # type: ignore[union-attr]

                    def step(i: int) -> None:
                        with live_session(raw, PROJECT, clock=clock) as live:
                            live.manager.record_file_change(f"src/hook_{i}.py", "edit", 1)

                    timed(row, "hook step", [ms(lambda i=i: step(i)) for i in range(15)])
                    m = SessionManager(store=raw, project=PROJECT, clock=clock)
                    m.attach()
                    timed(row, "start", [start])
                    timed(row, "report", [ms(m.report) for _ in range(5)])
                end = ms(m.end_session)
                clock.advance(2 * 3600)
                if n in sampled:
                    timed(row, "end", [end])
                    timed(row, "history", [ms(lambda: build_history(ps))])
                    timed(row, "prune", [ms(lambda: prune(ps, clock(), policy))])
                    row.update(store_size(ps))
                    for k, v in row.items():
                        figures.setdefault(n, {}).setdefault(k, []).append(v)  # type: ignore[arg-type]
            # the day's prune (as a cron job would run it), then the night
            prune(ps, clock(), policy)
            clock.now = clock.now.replace(hour=8) + timedelta(days=1)
    finally:
        raw.close()
    out: dict[int, dict[str, float]] = {}
    for s in sorted(wanted):
        window = [k for k in range(max(1, s - WINDOW + 1), s + 1)]
        rows = [figures[k] for k in window if k in figures]
        names = list(rows[0]) if rows else []
        out[s] = {name: statistics.median(v for r in rows for v in r[name]) for name in names}
    return out


def table(name: str, out: dict[int, dict[str, float]]) -> str:
    cols = sorted(out)
    names = list(out[cols[0]])
    last = cols[-1]
    bases = [b for b in (30, 365) if b in out and b != last] or [cols[0]]
    head = (
        f"{name:<40}"
        + "".join(f"{c:>10,}" for c in cols)
        + "".join(f"{f'{last}/{b}':>10}" for b in bases)
    )
    lines = [head, "-" * len(head)]
    for metric in names:
        values = [out[c][metric] for c in cols]
        digits = 2 if metric.endswith("ms") else 0 if not metric.endswith("KB") else 1
        cells = "".join(f"{v:>10,.{digits}f}" for v in values)
        ratios = "".join(
            f"{out[last][metric] / out[b][metric]:>9.2f}x" if out[b][metric] else f"{'':>10}"
            for b in bases
        )
        lines.append(f"{metric:<40}{cells}{ratios}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--stores", nargs="+", default=["file", "sqlite"])
    parser.add_argument("--json", type=Path, default=RESULTS / "year.json")
    parser.add_argument("--summaries-after", type=float, default=90.0, metavar="DAYS")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for kind in args.stores:
        scratch = Path(tempfile.mkdtemp(prefix="tmp-year-", dir=RESULTS))
        try:
            url = (
                f"file://{scratch / 'store'}"
                if kind == "file"
                else f"sqlite:///{scratch / 'store.db'}"
            )
            t = time.perf_counter()
            policy = Policy.days(30, 90, args.summaries_after or None)
            out = run_store(url, args.days, policy)
            took = time.perf_counter() - t
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        print(table(f"{kind} store ({args.days} days, {took:.0f} s)", out))
        print()
        results[kind] = {str(k): v for k, v in out.items()}
    args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
