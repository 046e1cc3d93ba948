"""Records through the codec: round trips, schema versions, upcasters, bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifecycle import codec, records, redact
from lifecycle.errors import CorruptRecord, InvalidRecord, SchemaVersionError
from lifecycle.records import Checkpoint, Learning, LearningType, Task, WorkState
from lifecycle.testing import work_states

NOW = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)


def sample_checkpoint() -> Checkpoint:
    return Checkpoint(
        id="cp-20260125T120000.000000Z",
        timestamp=NOW,
        phase="Phase 1: Foundation",
        progress={"tasks_completed": 5, "tasks_total": 10},
        context={"current_task": "T006"},
        state=WorkState(
            active_tasks=(Task("TASK-008", status="in_progress", progress="50%"),),
            open_questions=("Should automatic checkpoints include full context?",),
        ),
    )


def test_a_checkpoint_round_trips_exactly() -> None:
    cp = sample_checkpoint()
    assert codec.decode(Checkpoint, codec.encode(cp)) == cp


def test_every_stored_record_carries_its_kind_and_schema_version() -> None:
    data = orjson.loads(codec.encode(sample_checkpoint()))
    assert (data["kind"], data["schema_version"]) == ("checkpoint", 3)  # v3: snapshot
    assert data["state"]["active_tasks"][0]["progress"] == "50%"
    assert data["recovery_info"]["restore_command"] == ""


def test_a_newer_schema_version_is_a_clear_error() -> None:
    data = orjson.loads(codec.encode(sample_checkpoint()))
    data["schema_version"] = 7
    with pytest.raises(SchemaVersionError, match="schema_version 7.*upgrade lifecycle"):
        codec.decode(Checkpoint, orjson.dumps(data))


def test_an_older_version_is_upcast_through_the_registry(monkeypatch) -> None:
    monkeypatch.setitem(codec.CURRENT, "learning", 2)

    @codec.upcaster("learning", 1)
    def rename_body(data: dict) -> dict:
        data["content"] = data.pop("body")
        return data

    try:
        old = {
            "kind": "learning",
            "schema_version": 1,
            "type": "insight",
            "key": "learning/insights/x",
            "body": "text",
            "timestamp": NOW.isoformat(),
        }
        learning = codec.decode(Learning, orjson.dumps(old))
        assert learning.content == "text"
        assert learning.type is LearningType.INSIGHT
    finally:
        codec.UPCASTERS.pop(("learning", 1))


def test_a_missing_upcaster_is_a_schema_error(monkeypatch) -> None:
    monkeypatch.setitem(codec.CURRENT, "learning", 3)
    old = {"kind": "learning", "schema_version": 1}
    with pytest.raises(SchemaVersionError):
        codec.decode(Learning, orjson.dumps(old))


def test_unknown_fields_are_refused() -> None:
    data = orjson.loads(codec.encode(sample_checkpoint()))
    data["phaze"] = "typo"
    with pytest.raises(InvalidRecord, match="phaze"):
        codec.decode(Checkpoint, orjson.dumps(data))


def test_a_record_of_another_kind_is_refused() -> None:
    with pytest.raises(InvalidRecord, match="is a 'checkpoint', not a 'learning'"):
        codec.decode(Learning, codec.encode(sample_checkpoint()))


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[1,2]", b'"text"'])
def test_garbage_bytes_are_corrupt_records(raw: bytes) -> None:
    with pytest.raises((CorruptRecord, InvalidRecord)):
        codec.decode(Checkpoint, raw, key="checkpoints/x")


def test_naive_datetimes_are_taken_as_local_time_and_stored_as_utc() -> None:
    naive = datetime(2026, 1, 25, 12, 0)
    cp = Checkpoint(id="cp-1", timestamp=naive)
    assert cp.timestamp.tzinfo is UTC
    assert cp.timestamp == naive.astimezone(UTC)


@given(
    phase=st.text(max_size=50),
    progress=st.dictionaries(
        st.text(max_size=10), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=10), max_size=5
    ),
    questions=st.lists(st.text(max_size=30), max_size=5),
)
def test_any_checkpoint_round_trips(phase: str, progress: dict, questions: list[str]) -> None:
    cp = Checkpoint(
        id="cp-x",
        timestamp=NOW,
        phase=phase,
        progress=progress,
        state=WorkState(open_questions=tuple(questions)),
    )
    assert codec.decode(Checkpoint, codec.encode(cp)) == cp


def test_every_record_kind_round_trips_with_defaults() -> None:
    samples = {
        "checkpoint": sample_checkpoint(),
        "pointer": records.Pointer("checkpoints/x", "cp-x", NOW),
        "session": records.SessionRecord(id="s", project="p", start_time=NOW),
        "learning": Learning(
            type="solution", key="learning/solutions/x", content="c", timestamp=NOW
        ),
        "summary": records.SessionSummary(
            session_id="s", project="p", start_time=NOW, end_time=NOW, success=True, phase=""
        ),
    }
    samples["context"] = records.LiveContext(
        session=samples["session"], state="ACTIVE", work=sample_checkpoint().state
    )
    samples["daily_summary"] = records.DailySummary(
        date="2026-01-25",
        project="p",
        sessions=(records.SessionDigest("s", NOW, NOW, 1.5, tasks_completed=("T1",)),),
        totals=records.PeriodTotals(sessions=1, minutes=1.5),
    )
    samples["weekly_summary"] = records.WeeklySummary(
        week="2026-W04", project="p", days={"2026-01-25": records.PeriodTotals(sessions=1)}
    )
    samples["insight_summary"] = records.InsightSummary(
        topic="general", project="p", entries=(records.InsightEntry("i", "s", NOW),), total=1
    )
    samples["decisions_log"] = records.DecisionsLog(
        project="p", entries=(records.LoggedDecision("d1", "s", NOW, "use x", "because"),)
    )
    samples["patterns_discovered"] = records.PatternsDiscovered(
        project="p", patterns=(records.PatternSeen("p1", NOW, NOW),)
    )
    samples["context_enhanced"] = records.ContextEnhanced(
        project="p", updated_at=NOW, progress={"done": 1}, open_tasks=("T2",)
    )
    samples["event"] = records.EventMessage(
        "complete_task", {"task_id": "T1", "priority": "high"}, idempotency_key="k-1"
    )
    samples["journal"] = records.JournalEntry(
        session_id="s",
        seq=1,
        at=NOW,
        message=samples["event"],
        state="CHECKPOINTED",
        result_type="Outcome",
        result={"state": "CHECKPOINTED", "transition": "task_completed"},
        checkpoint_id="cp-x",
    )
    assert set(samples) == set(records.RECORD_KINDS)
    for kind, record in samples.items():
        assert codec.decode(records.RECORD_KINDS[kind], codec.encode(record)) == record


def test_a_value_json_cannot_hold_is_an_invalid_record_not_a_type_error() -> None:
    cp = Checkpoint(id="cp-x", timestamp=NOW, progress={"n": 2**64})
    with pytest.raises(InvalidRecord, match="int within 64 bits"):
        codec.encode(cp)


def test_memoized_records_encode_to_the_same_bytes_and_callers_cannot_change_them() -> None:
    """The codec unstructures a task, decision or file record once and reuses the result
    in later checkpoints: the bytes are the same on the first encode and on every later
    one, and a caller editing to_dict's output (its dicts, a file's operations list)
    changes nothing."""
    done = Task(id="T1", description="ship", status="completed", completed_at=NOW)
    decision = records.Decision(timestamp=NOW, decision="use orjson", rationale="fast")
    work = WorkState(completed_tasks=(done,), decisions=(decision, decision))
    cp = Checkpoint(
        id="cp-1", timestamp=NOW, session_id="s", project="p", type="manual", state=work
    )
    plain = orjson.dumps(codec.to_dict(cp))
    assert codec.encode(cp) == plain  # first encode: fills the memo
    assert codec.encode(cp) == plain  # memo hits
    data = codec.to_dict(cp)
    data["state"]["completed_tasks"][0]["description"] = "tampered"
    data["state"]["decisions"][0]["decision"] = "tampered"
    assert codec.encode(cp) == plain
    files = records.revise(
        cp, state=records.revise(work, files_modified=(records.FileChange("a.py", ("edit",)),))
    )
    before = codec.encode(files)
    codec.to_dict(files)["state"]["files_modified"][0]["operations"].append("tampered")
    assert codec.encode(files) == before
    later = records.revise(done, description="shipped")  # a new record: not a memo hit
    again = records.revise(cp, state=records.revise(work, completed_tasks=(later,)))
    assert codec.decode(Checkpoint, codec.encode(again)).state.completed_tasks == (later,)


_SECRET_OR_NOT = st.sampled_from(
    [
        "ship it",
        "fix the tokenizer",
        "export GITHUB_TOKEN=ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "password=hunter2-prod",
        "curl https://deploy:s3cretpw@example.com/x",
        "privatekey=Zq81mN0pLw2",
        "{",
        ",",
        "",
    ]
)


@given(
    work_states(max_items=3),
    st.lists(_SECRET_OR_NOT, min_size=3, max_size=3),
    st.dictionaries(st.sampled_from(["api_key", "note", "k,{"]), _SECRET_OR_NOT, max_size=2),
)
def test_records_encoded_piece_by_piece_are_the_whole_json_redacted(
    work: WorkState, texts: list[str], context: dict[str, str]
) -> None:
    """dumps redacts each task, decision and file on its own (once: they are memoized)
    and the rest of the record with them in place as 0; the bytes are exactly the whole
    JSON redacted by the patterns, secret or not, first encode or later."""
    task = Task(id="T1", description=texts[0], progress=texts[1])
    decision = records.Decision(timestamp=NOW, decision=texts[2] or "d", rationale=texts[0])
    work = records.revise(
        work,
        completed_tasks=(*work.completed_tasks, task),
        decisions=(*work.decisions, decision),
    )
    cp = Checkpoint(id="cp-1", timestamp=NOW, phase=texts[1], context=context, state=work)
    whole = redact.redact(orjson.dumps(codec.to_dict(cp)).decode()).encode()
    assert codec.dumps(cp) == whole
    assert codec.dumps(cp) == whole  # every piece remembered


_JSON_LIKE = st.sampled_from(['{"id":"T1"}', '[{"id":', "[]", '"}', "{", "0", "", "plain"])


@given(work_states(max_items=3), st.lists(_JSON_LIKE, min_size=3, max_size=3))
def test_the_rest_cut_from_the_bytes_is_the_rest_encoded_from_the_tree(
    work: WorkState, texts: list[str]
) -> None:
    """What dumps checks besides the memoized records (each as 0) is cut from the JSON
    it wrote, not re-encoded from the tree: the same bytes, even when strings hold JSON
    that looks like a record, and an equal task twice."""
    task = Task(id="T1", description=texts[0], progress=texts[1])
    twin = Task(id="T1", description=texts[0], progress=texts[1])
    work = records.revise(work, completed_tasks=(task,), active_tasks=(*work.active_tasks, twin))
    cp = Checkpoint(id="cp-1", timestamp=NOW, phase=texts[2], context={"k": texts[2]}, state=work)
    encoding = codec._encoding
    encoding.active = encoding.pieces = True
    encoding.found = found = []
    try:
        tree = codec.to_dict(cp)
        raw = orjson.dumps(tree)
    finally:
        encoding.active = encoding.pieces = False
        encoding.found = []
    assert found, "the tasks were encoded as pieces"
    assert codec._cut(raw, found) == orjson.dumps(codec._without_fragments(tree))


def test_an_unchanged_work_state_is_encoded_once_and_its_omitted_counts_are_checked() -> None:
    """dumps keeps a work state's JSON by identity; its one mutable field (``omitted``)
    changed in place is seen: the bytes are always the whole JSON redacted."""
    work = WorkState(open_questions=("why?",), omitted={})
    cp = Checkpoint(id="cp-1", timestamp=NOW, state=work)
    first = codec.dumps(cp)
    assert codec.dumps(cp) == first
    work.omitted["files_modified"] = 3
    again = codec.dumps(cp)
    assert b'"omitted":{"files_modified":3}' in again
    assert again == redact.redact(orjson.dumps(codec.to_dict(cp)).decode()).encode()


@given(work_states(max_items=3), st.lists(_SECRET_OR_NOT, min_size=2, max_size=2))
def test_a_checkpoint_sized_before_it_is_written_is_the_one_patched_after(
    work: WorkState, texts: list[str]
) -> None:
    """dumps_sized counts the length before orjson writes the bytes once; they are the
    bytes dumps gives with the size patched in, and that size is their length."""
    cp = Checkpoint(id="cp-1", timestamp=NOW, phase=texts[0], context={"k": texts[1]}, state=work)
    raw = codec.dumps(cp)
    sized = codec.dumps_sized(cp, "context_snapshot")
    if sized is None:  # a secret outside the pieces: the caller patches dumps' bytes
        return
    body, size = sized
    at = raw.rfind(b'"size_bytes":0')
    assert body == raw[:at] + b'"size_bytes":%d' % size + raw[at + 14 :]
    assert len(body) == size


@given(
    st.text(max_size=40),
    st.sampled_from(["cp-1", "ghp_" + "a1" * 18, 'q"\\\u2028é']),
    st.datetimes(timezones=st.just(UTC)),
)
def test_a_pointer_put_together_by_hand_is_the_one_encode_writes(
    key: str, checkpoint_id: str, moment: datetime
) -> None:
    pointer = records.Pointer(key, checkpoint_id, moment)
    assert codec.encode_pointer(pointer) == codec.encode(pointer)
