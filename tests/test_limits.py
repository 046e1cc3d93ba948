"""The caps at every entry point (lifecycle.limits, docs/limits.md): text past its cap is
refused naming the field, its size and the limit; history past its count is trimmed
and counted; a checkpoint that would pass the hard limit is trimmed, never refused.
Through the library, the command line, the Claude Code hook and the MCP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifecycle import SessionManager, codec, limits
from lifecycle.errors import OverLimit
from lifecycle.records import LiveContext
from lifecycle.spec import SessionState
from lifecycle.stores.memory import MemoryStore
from lifecycle.testing import ForwardingStore, SimulatedClock


def manager(store=None, clock=None) -> SessionManager:
    return SessionManager(
        store=store or MemoryStore(), project="p", clock=clock or SimulatedClock()
    )


def started(**kwargs) -> SessionManager:
    m = manager(**kwargs)
    m.start_session(restore=False)
    return m


# -- refused: text a user typed, open work -------------------------------------------------


def test_a_task_description_over_its_cap_is_refused_naming_field_size_and_limit() -> None:
    m = started()
    before = m.work
    with pytest.raises(OverLimit) as err:
        m.add_task("T1", "x" * 60_000)
    assert str(err.value) == (
        "description of task 'T1' is 60,000 characters, over the limit of 2,000 characters"
    )
    assert (err.value.field, err.value.size, err.value.limit) == (
        "description of task 'T1'",
        60_000,
        limits.TASK_DESCRIPTION_CHARS,
    )
    assert m.work == before
    assert m.state is SessionState.ACTIVE


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda m: m.add_task("T" * 201), "task id"),
        (lambda m: m.complete_task("T1", "d" * 2_001), "description of task 'T1'"),
        (lambda m: m.record_decision("d" * 2_001), "decision"),
        (lambda m: m.record_decision("d", rationale="r" * 2_001), "decision rationale"),
        (lambda m: m.add_open_question("q" * 1_001), "open question"),
        (lambda m: m.add_blocker("b" * 1_001), "blocker"),
        (lambda m: m.record_file_change("f" * 1_001), "file path"),
        (lambda m: m.record_discovery(insight="i" * 1_001), "insight"),
        (lambda m: m.create_checkpoint(phase="p" * 501), "phase"),
        (lambda m: m.create_checkpoint(progress={"x": "y" * 4_000}), "progress"),
        (lambda m: m.update_context({"claude_session_id": "s" * 250_000}), "context"),
        (lambda m: m.end_session(phase="p" * 501), "phase"),
        (
            lambda m: m.capture_learning(
                type="pattern", key="k", content="c" * (limits.LEARNING_CONTENT_CHARS + 1)
            ),
            "learning content",
        ),
    ],
)
def test_each_text_field_past_its_cap_is_refused_and_changes_nothing(call, field) -> None:
    m = started()
    keys_before = m.store.list_keys("")
    state, work = m.state, m.work
    with pytest.raises(OverLimit) as err:
        call(m)
    assert err.value.field == field
    assert (m.state, m.work, m.store.list_keys("")) == (state, work, keys_before)


def test_the_open_task_past_the_count_is_refused_and_updating_a_known_one_is_not() -> None:
    m = started()
    for i in range(limits.OPEN_TASKS):
        m.add_task(f"T{i}")
    with pytest.raises(OverLimit, match=r"open tasks is 101 items, over the limit of 100 items"):
        m.add_task("one-more")
    m.add_task("T0", status="in_progress")  # an update is not a new open task
    assert len(m.work.active_tasks) == limits.OPEN_TASKS


def test_a_session_start_with_an_oversize_command_is_refused_before_anything_is_written() -> None:
    m = manager()
    with pytest.raises(OverLimit, match="command is 1,001 characters"):
        m.start_session(command="c" * 1_001)
    assert m.store.list_keys("") == []


# -- trimmed and counted: history kept for the record ---------------------------------------


def test_the_file_change_past_the_cap_is_counted_not_stored() -> None:
    m = started()
    for i in range(limits.FILES_MODIFIED + 2_480):
        m.record_file_change(f"src/f{i}.py")
    assert len(m.work.files_modified) == limits.FILES_MODIFIED
    assert m.work.omitted == {"files_modified": 2_480}
    assert "... and 2,480 more file changes" in m.report()


def test_completed_tasks_and_decisions_past_their_counts_keep_the_newest() -> None:
    m = started()
    for i in range(limits.COMPLETED_TASKS + 5):
        m.complete_task(f"T{i}")
    for i in range(limits.DECISIONS + 3):
        m.record_decision(f"d{i}")
    w = m.work
    assert w.completed_tasks[0].id == "T5"
    assert w.decisions[0].decision == "d3"
    assert w.omitted == {"completed_tasks": 5, "decisions": 3}


def test_error_text_from_a_tool_is_clipped_saying_how_much_was_cut() -> None:
    m = started()
    m.error_recovered("E" * 5_000, ["retry"] * 30)
    (err,) = m.work.errors
    assert len(err.error) == limits.ERROR_CHARS
    assert err.error.endswith("... (3,000 more characters)")
    assert len(err.recovery_steps) == limits.RECOVERY_STEPS


# -- the hard limit: trimmed with a warning, never stuck -------------------------------------


def test_a_checkpoint_over_the_hard_limit_is_trimmed_with_a_warning_and_the_session_goes_on() -> (
    None
):
    m = started()
    for i in range(limits.DECISIONS):
        m.record_decision(f"{i} " + "d" * 1_990, rationale="r" * 2_000)
    result = m.create_checkpoint()
    assert result.written
    stored = m.store.get(m.last_checkpoint.key)
    assert len(stored.value) <= limits.CHECKPOINT_MAX_BYTES
    assert m.state is SessionState.CHECKPOINTED  # what was written is what the session holds
    assert not m.has_unsaved_work
    assert m.work.omitted["decisions"] > 0
    assert any("trimmed: state.decisions" in w for w in m.warnings)
    m.record_decision("after the trim")
    assert m.end_session().checkpoint.written


# -- resumed sessions carry their open work and a window of the previous one ---------------


def test_a_resumed_session_carries_open_work_and_only_the_previous_sessions_own_history() -> None:
    store, clock = MemoryStore(), SimulatedClock()
    for n in range(3):
        m = manager(store, clock)
        m.start_session()
        m.complete_task(f"done-{n}", f"finished {n}")
        m.record_decision(f"decision {n}")
        m.record_file_change(f"f{n}.py")
        if n == 0:
            m.add_task("open", "still to do")
            m.add_open_question("why?")
        clock.advance(3600)
        m.end_session()
        clock.advance(3600)
    m = manager(store, clock)
    m.start_session()
    w = m.work
    assert [t.id for t in w.active_tasks] == ["open"]
    assert w.open_questions == ("why?",)
    assert [t.id for t in w.completed_tasks] == ["done-2"]
    assert [d.decision for d in w.decisions] == ["decision 2"]
    assert w.files_modified == ()
    assert m.state is SessionState.RESUMED
    assert not m.has_unsaved_work
    report = m.report()
    assert "done-2: finished 2" in report  # the report still shows the previous session
    # and older history comes from where it lives: the decisions log
    earlier = report.split("Earlier decisions (project_state/decisions_log):\n")[1]
    assert earlier.splitlines()[:2] == ["    - decision 0", "    - decision 1"]


def test_a_session_resumed_in_another_process_is_still_resumed_and_reads_no_listing() -> None:
    class Counting(ForwardingStore):
        listed: list[str] = []

        def list_keys(self, prefix="", *, reverse=False, limit=None):
            self.listed.append(prefix)
            return super().list_keys(prefix, reverse=reverse, limit=limit)

    inner, clock = MemoryStore(), SimulatedClock()
    first = manager(inner, clock)
    first.start_session()
    first.complete_task("T1")
    first.end_session()
    second = manager(inner, clock)
    second.start_session()
    second.save_context()
    store = Counting(inner)
    again = manager(store, clock)
    assert again.attach()
    assert again.state is SessionState.RESUMED and not again.has_unsaved_work
    again.add_task("T2")
    again.save_context()
    assert store.listed == []


# -- the front ends: never wedged ------------------------------------------------------------


def test_the_cli_refuses_an_oversize_phase_in_one_line_and_the_session_still_ends(
    tmp_path: Path,
) -> None:
    from procs import run

    assert run(["session", "start"], cwd=tmp_path).returncode == 0
    done = run(["checkpoint", "save", "--phase", "p" * 60_000], cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "lifecycle: error: phase is 60,000 characters, over the limit of 500 characters"
    ]
    assert run(["checkpoint", "save", "--phase", "ok"], cwd=tmp_path).returncode == 0
    assert run(["session", "end"], cwd=tmp_path).returncode == 0
    assert run(["session", "start", "--new"], cwd=tmp_path).returncode == 0


def test_the_hook_with_oversize_inputs_warns_and_the_session_still_checkpoints_and_ends(
    tmp_path: Path,
) -> None:
    from procs import run, run_json

    def hook(name: str, session: str = "claude-1", **fields) -> dict | None:
        payload = {
            "session_id": session,
            "transcript_path": "/t.jsonl",
            "cwd": str(tmp_path),
            "hook_event_name": name,
            **fields,
        }
        done = run(["hook", "claude"], cwd=tmp_path, stdin=json.dumps(payload))
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    hook("SessionStart", source="startup")
    for i in range(4):
        answer = hook("TaskCreated", task_id=f"t{i}", task_subject="s" * 60_000)
        assert answer is not None
        assert "over the limit of 2,000 characters" in answer["systemMessage"]
    answer = hook("SessionStart", session="c" * 250_000, source="startup")
    assert answer is not None and "over the limit" in answer["systemMessage"]
    assert hook("PreCompact", trigger="manual") is None
    assert run(["checkpoint", "save", "--phase", "after"], cwd=tmp_path).returncode == 0
    status = run_json(["status"], cwd=tmp_path)
    assert status["open_tasks"] == []
    assert status["restored_from"] is not None  # the old session was ended, a new one began
    assert run(["session", "end"], cwd=tmp_path).returncode == 0
    assert run(["session", "start", "--new"], cwd=tmp_path).returncode == 0


def test_the_mcp_server_refuses_an_oversize_task_and_the_session_still_saves(
    tmp_path: Path,
) -> None:
    pytest.importorskip("mcp")
    from test_mcp_server import error, ok, with_server

    store = f"file://{tmp_path / '.lifecycle'}"

    async def body(s) -> None:
        await ok(s, "session_load", {"command": "impl"})
        for i in range(2):
            text = await error(s, "add_task", {"task_id": f"T{i}", "description": "d" * 150_000})
            # the published schema states the library's cap: refused before the call
            assert "at most 2000 characters" in text
        await ok(s, "add_task", {"task_id": "T9", "description": "fits"})
        saved = await ok(s, "session_save", {})
        assert saved is not None
        await ok(s, "session_end", {})
        await ok(s, "session_load", {"new": True})

    with_server(store, body)


def test_a_live_record_written_after_the_oversize_inputs_decodes_within_its_cap() -> None:
    m = started()
    for i in range(limits.FILES_MODIFIED + 10):
        m.record_file_change(f"src/{i:05d}/" + "n" * 200 + ".py")
    m.save_context()
    raw = m.store.get("session/context").value
    assert len(raw) <= limits.LIVE_CONTEXT_BYTES
    assert codec.decode(LiveContext, raw).work.omitted == {"files_modified": 10}


def test_open_tasks_too_big_to_checkpoint_keep_their_ids_and_lose_long_descriptions() -> None:
    m = started()
    for i in range(limits.OPEN_TASKS):
        m.add_task(f"T{i:03d}", "d" * limits.TASK_DESCRIPTION_CHARS)
    assert m.create_checkpoint().written
    tasks = m.work.active_tasks
    assert [t.id for t in tasks] == [f"T{i:03d}" for i in range(limits.OPEN_TASKS)]
    assert all(len(t.description) <= 100 for t in tasks)
    assert any("state.active_tasks (descriptions)" in w for w in m.warnings)
    assert m.state is SessionState.CHECKPOINTED


def test_a_live_record_over_its_cap_is_trimmed_when_saved_and_the_session_goes_on() -> None:
    store = MemoryStore()
    m = started(store=store)
    for i in range(limits.DECISIONS):
        m.record_decision(f"{i} " + "d" * 1_990, rationale="r" * 2_000, impact="i" * 2_000)
    for i in range(limits.FILES_MODIFIED):
        m.record_file_change(f"{i:04d}/" + "p" * 990)
    m.save_context()  # about 1.1 MB of work, held twice: over the cap
    raw = m.store.get("session/context").value
    assert len(raw) <= limits.LIVE_CONTEXT_BYTES
    assert any("live state was over its limit; trimmed" in w for w in m.warnings)
    again = manager(store)
    assert again.attach()
    assert again.create_checkpoint().written
    assert again.end_session().session_id == m.session_id
