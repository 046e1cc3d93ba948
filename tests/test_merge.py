"""lifecycle.merge: list fields unioned by id, scalar divergences reported."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from hypothesis import given
from hypothesis import strategies as st

from lifecycle.merge import FIELD_RULES, merge_state, merge_work
from lifecycle.records import Decision, Discoveries, ErrorContext, FileChange, Task, WorkState

AT = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)

ids = st.sampled_from([f"T{i}" for i in range(6)])
tasks = st.lists(st.builds(Task, id=ids, description=st.sampled_from(["", "x"])), max_size=5)
decisions = st.lists(
    st.builds(Decision, timestamp=st.just(AT), decision=st.sampled_from(["a", "b", "c"])),
    max_size=3,
)
files = st.lists(
    st.builds(
        FileChange,
        path=st.sampled_from(["a.py", "b.py"]),
        operations=st.lists(st.sampled_from(["edit", "create"]), max_size=2, unique=True),
    ),
    max_size=3,
)
questions = st.lists(st.sampled_from(["q1", "q2", "q3"]), max_size=3, unique=True)


@st.composite
def work_states(draw: st.DrawFn) -> WorkState:
    active = {t.id: t for t in draw(tasks)}
    completed = {t.id: t for t in draw(tasks) if t.id not in active}
    return WorkState(
        active_tasks=tuple(active.values()),
        completed_tasks=tuple(completed.values()),
        open_questions=tuple(draw(questions)),
        files_modified=tuple({f.path: f for f in draw(files)}.values()),
        decisions=tuple({d.id: d for d in draw(decisions)}.values()),
    )


@given(work_states(), work_states())
def test_every_item_of_either_side_survives_a_merge_exactly_once(
    ours: WorkState, theirs: WorkState
) -> None:
    merged, _ = merge_work(ours, theirs)
    done = {t.id for t in (*ours.completed_tasks, *theirs.completed_tasks)}
    assert [t.id for t in merged.completed_tasks] == list(
        dict.fromkeys(t.id for t in (*ours.completed_tasks, *theirs.completed_tasks))
    )
    assert {t.id for t in merged.active_tasks} == {
        t.id for t in (*ours.active_tasks, *theirs.active_tasks) if t.id not in done
    }
    assert len({t.id for t in merged.active_tasks}) == len(merged.active_tasks)
    assert {d.id for d in merged.decisions} == {d.id for d in (*ours.decisions, *theirs.decisions)}
    assert set(merged.open_questions) == set(ours.open_questions) | set(theirs.open_questions)
    assert {f.path for f in merged.files_modified} == {
        f.path for f in (*ours.files_modified, *theirs.files_modified)
    }


@given(work_states())
def test_merging_a_state_with_itself_changes_nothing_and_reports_nothing(w: WorkState) -> None:
    assert merge_work(w, w) == (w, ())


def test_a_task_both_sides_hold_differently_keeps_ours_and_is_reported() -> None:
    ours = WorkState(active_tasks=(Task("T1", "ours"),))
    theirs = WorkState(active_tasks=(Task("T1", "theirs"),))
    merged, found = merge_work(ours, theirs)
    assert merged.active_tasks == (Task("T1", "ours"),)
    assert [(d.field, d.ours.description, d.theirs.description) for d in found] == [  # type: ignore[attr-defined]
        ("active_tasks[T1]", "ours", "theirs")
    ]


def test_a_task_completed_on_the_other_side_is_no_longer_active() -> None:
    ours = WorkState(active_tasks=(Task("T1"),))
    theirs = WorkState(completed_tasks=(Task("T1", status="completed"),))
    merged, _ = merge_work(ours, theirs)
    assert (merged.active_tasks, [t.id for t in merged.completed_tasks]) == ((), ["T1"])


def test_scalar_divergences_are_reported_and_ours_are_kept() -> None:
    merged = merge_state(
        "Phase 2",
        {"done": 2},
        {"task": "T2", "only_ours": 1},
        WorkState(),
        their_phase="Phase 1",
        their_progress={"done": 1, "total": 10},
        their_context={"task": "T1"},
        their_work=WorkState(),
    )
    assert (merged.phase, merged.progress, merged.context) == (
        "Phase 2",
        {"done": 2, "total": 10},
        {"task": "T2", "only_ours": 1},
    )
    assert [d.describe() for d in merged.divergences] == [
        "phase: kept 'Phase 2', other writer had 'Phase 1'",
        "progress.done: kept 2, other writer had 1",
        "context.task: kept 'T2', other writer had 'T1'",
    ]


# -- fields come from the record class: a new WorkState field is merged --------------------


@attrs.frozen
class Reviewer:
    id: str
    verdict: str = ""


@attrs.frozen
class Budget:
    spent_on: tuple[str, ...] = ()
    owner: str | None = None


@attrs.frozen
class WorkStateWithMore(WorkState):
    """WorkState with one new field of each kind of type (as if added to records.py)."""

    notes: tuple[str, ...] = ()
    reviewers: tuple[Reviewer, ...] = ()
    budget: Budget = Budget()
    limits: dict[str, int] = attrs.field(factory=dict)
    owner: str | None = None


def test_fields_added_to_the_work_state_are_merged_by_the_rule_of_their_type() -> None:
    ours = WorkStateWithMore(
        active_tasks=(Task("T1"),),
        notes=("n1", "n2"),
        reviewers=(Reviewer("r1", "ok"), Reviewer("r2", "ok")),
        budget=Budget(("ci",), owner="ann"),
        limits={"files": 5, "minutes": 30},
        owner="ann",
    )
    theirs = WorkStateWithMore(
        active_tasks=(Task("T2"),),
        notes=("n2", "n3"),
        reviewers=(Reviewer("r2", "changes"), Reviewer("r3", "ok")),
        budget=Budget(("ci", "gpu"), owner="bob"),
        limits={"files": 7, "tokens": 100},
        owner="bob",
    )
    merged, found = merge_work(ours, theirs)
    assert type(merged) is WorkStateWithMore
    assert [t.id for t in merged.active_tasks] == ["T1", "T2"]
    assert merged.notes == ("n1", "n2", "n3")  # ordered union
    assert merged.reviewers == (Reviewer("r1", "ok"), Reviewer("r2", "ok"), Reviewer("r3", "ok"))
    assert merged.budget == Budget(("ci", "gpu"), owner="ann")  # field by field
    assert merged.limits == {"files": 5, "minutes": 30, "tokens": 100}  # key by key
    assert merged.owner == "ann"  # ours
    assert [(d.field, d.ours, d.theirs) for d in found] == [
        ("reviewers[r2]", Reviewer("r2", "ok"), Reviewer("r2", "changes")),
        ("budget.owner", "ann", "bob"),
        ("limits.files", 5, 7),
        ("owner", "ann", "bob"),
    ]


def test_a_new_field_the_other_side_left_unset_is_kept_and_not_reported() -> None:
    ours = WorkStateWithMore(owner="ann")
    merged, found = merge_work(ours, WorkStateWithMore())
    assert (merged.owner, found) == ("ann", ())


def test_every_work_state_field_survives_a_merge_with_the_other_sides_items() -> None:
    full = WorkState(
        active_tasks=(Task("T1"),),
        completed_tasks=(Task("T2", status="completed"),),
        open_questions=("q",),
        blockers=("b",),
        files_modified=(FileChange("a.py", ("edit",)),),
        decisions=(Decision(AT, "d"),),
        discoveries=Discoveries(("p",), ("i",)),
        recent_changes=("edit a.py",),
        errors=(ErrorContext("boom"),),
        omitted={"files_modified": 3},
    )
    default = WorkState()
    assert all(getattr(full, f.name) != getattr(default, f.name) for f in attrs.fields(WorkState))
    assert merge_work(default, full) == (full, ())
    assert merge_work(full, default) == (full, ())


def test_the_named_field_rules_name_work_state_fields() -> None:
    assert set(FIELD_RULES) <= {f.name for f in attrs.fields(WorkState)}


def test_a_file_both_sides_changed_unions_operations_and_keeps_our_count() -> None:
    ours = WorkState(files_modified=(FileChange("a.py", ("edit",), 3),))
    theirs = WorkState(files_modified=(FileChange("a.py", ("create", "edit"), 5),))
    merged, found = merge_work(ours, theirs)
    assert merged.files_modified == (FileChange("a.py", ("edit", "create"), 3),)
    assert [d.describe() for d in found] == [
        "files_modified[a.py].changes: kept 3, other writer had 5"
    ]
