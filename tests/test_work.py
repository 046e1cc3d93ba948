"""The work-state transforms (``session/work.py``): each rule as a test."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lifecycle import limits
from lifecycle.records import FileChange, WorkState
from lifecycle.session import work

PATHS = st.sampled_from(["a.py", "b.py", "c/d.py", "e.md"])
CHANGES = st.tuples(
    st.integers(0, 1),  # which of two sessions records it
    PATHS,
    st.lists(st.sampled_from(["edit", "test", "create"]), min_size=1, max_size=2),
    st.none() | st.integers(0, 5),
)


def merged_by_scan(work_state: WorkState, path: str, ops: list[str], n: int | None) -> WorkState:
    """The rule, written plainly: the first record of ``path`` takes the new operations
    and adds the changes; a path not recorded yet is appended."""
    files = list(work_state.files_modified)
    for i, old in enumerate(files):
        if old.path == path:
            merged = old.operations + tuple(o for o in ops if o not in old.operations)
            total = old.changes if n is None else (old.changes or 0) + n
            files[i] = FileChange(path, merged[: limits.FILE_OPERATIONS], total)
            break
    else:
        files.append(FileChange(path, tuple(ops), n))
    return WorkState(files_modified=tuple(files))


@given(st.lists(CHANGES, max_size=30))
def test_a_file_change_merges_into_the_first_record_of_its_path_in_any_work_state(
    changes: list[tuple[int, str, list[str], int | None]],
) -> None:
    """Two sessions' work states interleaved (and one with a path recorded twice): a
    change finds its path in the work state it is applied to, whichever was last."""
    twice = (FileChange("a.py", ("edit",), 1), FileChange("a.py", ("test",), 2))
    states = [WorkState(), WorkState(files_modified=twice)]
    expected = list(states)
    for which, path, ops, n in changes:
        states[which] = work.change_file(path, tuple(ops), n)(states[which])
        expected[which] = merged_by_scan(expected[which], path, ops, n)
        assert states[which].files_modified == expected[which].files_modified


def test_a_change_that_adds_nothing_keeps_the_file_records_and_notes_the_change() -> None:
    before = work.change_file("a.py", ("edit",), None)(WorkState())
    after = work.change_file("a.py", ("edit",), None)(before)
    assert after.files_modified is before.files_modified
    assert after.recent_changes == ("edit a.py", "edit a.py")
