"""Branching: a session can start from any past checkpoint; history is a tree by parent id;
nothing is overwritten; ``lifecycle history`` prints the tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from lifecycle import SessionManager, open_store
from lifecycle.history import build_history
from lifecycle.testing import FaultyStore


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``lifecycle ARGS`` as a real process (in-process runs would reconfigure logging)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def _session(store, clock, *, restore=True, checkpoint_id=None, phases=("a",)):
    m = SessionManager(store=store, project="demo", clock=clock)
    m.start_session(restore=restore, checkpoint_id=checkpoint_id)
    ids = []
    for phase in phases:
        clock.advance(minutes=5)
        ids.append(m.create_checkpoint(phase=phase).checkpoint_id)
    m.end_session()
    clock.advance(minutes=5)
    return ids


def test_the_first_checkpoint_after_restoring_an_older_one_has_it_as_parent(clock) -> None:
    store = open_store("memory://")
    first = _session(store, clock, restore=False, phases=("a1", "a2", "a3"))
    branch = _session(store, clock, checkpoint_id=first[0], phases=("b1", "b2"))
    m = SessionManager(store=store, project="demo", clock=clock)
    assert m.read_checkpoint(branch[0]).parent_id == first[0]
    assert m.read_checkpoint(branch[1]).parent_id == branch[0]
    # nothing overwritten: the old line is still whole
    assert [m.read_checkpoint(i).phase for i in first] == ["a1", "a2", "a3"]
    assert m.read_checkpoint(first[1]).parent_id == first[0]


def test_a_resumed_session_continues_the_line_and_a_fresh_one_starts_a_root(clock) -> None:
    store = open_store("memory://")
    one = _session(store, clock, restore=False, phases=("x",))
    two = _session(store, clock, phases=("y",))
    three = _session(store, clock, restore=False, phases=("z",))
    history = build_history(SessionManager(store=store, project="demo").store)
    assert history.nodes[two[0]].parent_id == one[0]
    assert history.nodes[three[0]].parent_id is None
    assert [r.id for r in history.roots] == [one[0], three[0]]
    assert history.latest_id == three[0]
    assert history.ancestors(two[0]) == [two[0], one[0]]


def test_the_tree_text_indents_branches_and_keeps_lines_flat(clock) -> None:
    store = open_store("memory://")
    main_line = _session(store, clock, restore=False, phases=("a1", "a2"))
    branch = _session(store, clock, checkpoint_id=main_line[0], phases=("b1",))
    history = build_history(SessionManager(store=store, project="demo").store)
    lines = list(history.lines())
    assert len(lines) == 3
    assert lines[0].startswith(main_line[0])
    assert lines[1].startswith(f"  * {main_line[1]}")  # the older child: an indented branch
    assert lines[2].startswith(branch[0]) and lines[2].endswith("<- latest")


def test_history_reads_each_checkpoint_at_most_once(clock) -> None:
    store = FaultyStore(open_store("memory://"), record=True)
    _session(store, clock, restore=False, phases=[f"p{i}" for i in range(20)])
    store.history.clear()
    build_history(SessionManager(store=store, project="demo").store)
    gets = [call.keys[0] for call in store.history if call.operation == "get"]
    checkpoint_reads = [k for k in gets if not k.endswith("/latest")]
    assert len(checkpoint_reads) == len(set(checkpoint_reads)) == 20


def test_a_pruned_parent_makes_its_child_a_root_marked_parent_missing(clock) -> None:
    store = open_store("memory://")
    ids = _session(store, clock, restore=False, phases=("a", "b"))
    m = SessionManager(store=store, project="demo")
    m.store.delete(m.read_checkpoint(ids[0]).key)
    history = build_history(m.store)
    assert [(r.id, r.parent_missing) for r in history.roots] == [(ids[1], True)]
    assert "(parent " in next(history.lines())


def test_lifecycle_history_prints_the_tree_as_text_and_json(tmp_path, clock) -> None:
    url = f"file://{tmp_path}"
    store = open_store(url)
    line = _session(store, clock, restore=False, phases=("a1", "a2"))
    _session(store, clock, checkpoint_id=line[0], phases=("b1",))
    done = _cli("history", "--store", url, "--project", "demo")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.count("\n") == 3 and "  * " in text
    done = _cli("history", "--store", url, "--project", "demo", "--format", "json")
    data = orjson.loads(done.stdout)
    assert [c["parent_id"] for c in data["checkpoints"]] == [None, line[0], line[0]]
    assert data["roots"] == [line[0]]
