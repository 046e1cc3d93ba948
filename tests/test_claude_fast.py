"""The Claude Code hook's fast path: recording events journaled, folded by the engine.

Each rule of issue 16's design: the prefilter only clears what no risk pattern can
match; a session driven through the fast path ends with the same records as one driven
through the engine; the time trigger still fires; a risky operation is checkpointed
before the hook answers; a crash between append and fold, or inside the fold, loses
nothing and applies nothing twice; concurrent hooks lose nothing; nothing secret is
written; hostile input still gets the whole hook's clear answer; other stores take
the engine's path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle import codec, keys
from lifecycle.integrations import claude_fast, claude_journal
from lifecycle.integrations.claude_code import handle
from lifecycle.records import Checkpoint
from lifecycle.stores import ProjectStore
from lifecycle.stores.file import FileStore
from lifecycle.testing import FaultyStore
from lifecycle.triggers.base import Operation
from lifecycle.triggers.risk import DEFAULT_COMMAND_PATTERNS, DEFAULT_PATH_PATTERNS, classify
from tests.test_redact import SECRETS
from tests.test_triggers_risk import (
    COMMAND_MATCHES,
    PATH_MATCHES,
    SAFE_COMMANDS,
    SAFE_PATHS,
)

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "demo"

# -- the prefilter -----------------------------------------------------------------------


@pytest.mark.parametrize("pattern", DEFAULT_COMMAND_PATTERNS, ids=lambda p: p.slug)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_command_a_risk_pattern_matches_is_cleared_by_the_prefilter(
    pattern: Any, data: st.DataObject
) -> None:
    command = data.draw(st.from_regex(pattern._compiled))
    assert pattern.search(command) is not None
    assert claude_fast.maybe_risky_command(command)


@pytest.mark.parametrize(
    ("slug", "glob", "matcher"),
    [(p.slug, g, m) for p in DEFAULT_PATH_PATTERNS for g, m in p._matchers],
    ids=lambda x: x if isinstance(x, str) else "",
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_path_a_risk_glob_matches_is_cleared_by_the_prefilter(
    slug: str, glob: str, matcher: Any, data: st.DataObject
) -> None:
    path = data.draw(st.from_regex(matcher))
    assert claude_fast.maybe_risky_path(path)


@pytest.mark.parametrize(("command", "slug"), COMMAND_MATCHES)
def test_every_risky_example_command_is_asked_about(command: str, slug: str) -> None:
    assert claude_fast.maybe_risky_command(command)


@pytest.mark.parametrize(("path", "slug"), PATH_MATCHES)
def test_every_risky_example_path_is_asked_about(path: str, slug: str) -> None:
    assert claude_fast.maybe_risky_path(path)


_WORDS = st.sampled_from(
    [
        "rm", "-rf", "-r", "build/", "git", "push", "--force", "reset", "--hard", "echo",
        "printf", "grep", "'rm -rf x'", '"DROP TABLE t"', "|", "&&", ";", "||", "sh",
        "curl", "x", "$(rm a)", "`rm a`", "#", "\n", "sudo", "find", "-delete", "dd",
        "of=/dev/sda", "chmod", "777", "-R", "docker", "system", "prune", "kubectl",
        "delete", "terraform", "destroy", "xargs", "sed", "-i", "truncate", "table",
        "FLUSHALL", "mkfs.ext4", "bash", "-c", "python", "ls", "cat", "A=1", "\u017f", "\u0130",
    ]
)  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(st.lists(_WORDS, min_size=1, max_size=10).map(" ".join))
def test_the_prefilter_clears_only_commands_the_full_checker_finds_safe(command: str) -> None:
    if classify(Operation(command=command)):
        assert claude_fast.maybe_risky_command(command)


@pytest.mark.parametrize(
    "command", ["ls -la src", "pytest -q tests", "git status", "git diff HEAD", "npm test"]
)
def test_everyday_commands_are_cleared_without_the_full_checker(command: str) -> None:
    assert not claude_fast.maybe_risky_command(command)


@pytest.mark.parametrize("path", ["src/app.py", "README.md", "tests/test_parser.py"])
def test_everyday_paths_are_cleared_without_the_full_checker(path: str) -> None:
    assert not claude_fast.maybe_risky_path(path)


def test_text_that_is_not_ascii_always_goes_to_the_full_checker() -> None:
    # case-insensitive matching folds the long s (U+017F) into "s": FLUSHALL to it
    command = "redis-cli flu\u017fhall"
    assert classify(Operation(command=command))
    assert claude_fast.maybe_risky_command(command)
    assert claude_fast.maybe_risky_path("src/é.py")


def test_the_safe_examples_of_the_risk_tests_stay_safe_for_the_full_checker() -> None:
    # what the prefilter asks about, the full checker decides: these are its safe ones
    for command in SAFE_COMMANDS:
        assert classify(Operation(command=command)) == []
    for path in SAFE_PATHS:
        assert classify(Operation(paths=(path,))) == []


def test_the_fast_paths_project_name_rule_is_the_keys_one() -> None:
    assert claude_fast.PROJECT_NAME == keys.NAME


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcAZ09._- -~é", min_size=1, max_size=20))
def test_a_folder_name_kept_as_it_is_is_its_own_slug(folder: str) -> None:
    kept = claude_fast._own_slug(folder)
    if kept is not None:
        assert keys.slug(folder) == folder


# -- driving a session through the hook ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Driver:
    """One project folder, its file store, and two ways to run a hook event: always the
    engine (``handle``), or the fast path first (what ``lifecycle hook claude`` does)."""

    def __init__(self, folder: Path, fast: bool) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True)
        self.fast = fast
        self.clock = Clock()
        self.env = {"CLAUDE_PROJECT_DIR": str(folder), "LIFECYCLE_PROJECT": PROJECT}
        self.journaled = 0

    def event(self, name: str, **fields: Any) -> bytes:
        common = {"session_id": "s1", "transcript_path": "/dev/null", "cwd": str(self.folder)}
        return json.dumps({**common, "hook_event_name": name, **fields}).encode()

    def send(self, name: str, minutes: float = 1.0, **fields: Any) -> Any:
        self.clock.now += timedelta(minutes=minutes)
        raw = self.event(name, **fields)
        if self.fast and claude_fast.record(raw, self.env, self.clock.now.timestamp()):
            self.journaled += 1
            return None
        return handle(raw, env=self.env, clock=self.clock)

    def edit(self, path: str, minutes: float = 1.0) -> Any:
        return self.send(
            "PostToolUse",
            minutes,
            tool_name="Edit",
            tool_input={"file_path": str(self.folder / path), "old_string": "a"},
        )

    @property
    def where(self) -> str:
        return claude_journal.folder(str(self.folder / ".lifecycle"), PROJECT)

    def store(self) -> ProjectStore:
        return ProjectStore(FileStore(self.folder / ".lifecycle"), PROJECT)

    def records(self) -> dict[str, bytes]:
        """Every stored record but the lease, by key."""
        ps = self.store()
        try:
            return {e.key: e.value for e in ps.scan("") if e.key != keys.LEASE}
        finally:
            ps.close()

    def checkpoints(self) -> list[Checkpoint]:
        ps = self.store()
        try:
            return [
                codec.decode(Checkpoint, e.value, key=e.key)
                for e in ps.scan("checkpoints/")
                if not e.key.endswith("/latest")
            ]
        finally:
            ps.close()

    def live(self) -> dict[str, Any]:
        ps = self.store()
        try:
            entry = ps.get("session/context")
            return {} if entry is None else json.loads(entry.value)
        finally:
            ps.close()


def _pair(tmp_path: Path) -> tuple[Driver, Driver]:
    """The same session twice, one through the engine only: folders of the same length
    (a record's size counts the paths it holds)."""
    return Driver(tmp_path / "e" / "proj", False), Driver(tmp_path / "f" / "proj", True)


def workday(d: Driver) -> None:
    """A session: prompts, edits, commands, a risky one, a failure and its recovery."""
    d.send("SessionStart", source="startup")
    d.send("UserPromptSubmit", prompt="make  the parser\naccept empty lines")
    d.send("PreToolUse", tool_name="Write", tool_input={"file_path": str(d.folder / "src/p.py")})
    d.send(
        "PostToolUse",
        tool_name="Write",
        tool_input={"file_path": str(d.folder / "src/p.py"), "content": "x"},
        tool_response={"type": "create"},
    )
    d.send("PreToolUse", tool_name="Bash", tool_input={"command": "pytest -q"})
    d.send("PostToolUse", tool_name="Bash", tool_input={"command": "pytest -q"})
    for i in range(3):
        d.edit(f"src/m{i}.py")
    d.send("PostToolUse", tool_name="Read", tool_input={"file_path": str(d.folder / "README")})
    d.send(
        "PostToolUse",
        tool_name="MultiEdit",
        tool_input={"file_path": str(d.folder / "src/q.py"), "edits": [{}, {}, {}]},
    )
    d.send("PreToolUse", tool_name="Bash", tool_input={"command": "rm -rf build/"})
    d.send("PostToolUse", tool_name="Bash", tool_input={"command": "rm -rf build/"})
    d.send("PreToolUse", tool_name="Edit", tool_input={"file_path": str(d.folder / ".env")})
    d.send("PostToolUse", tool_name="Edit", tool_input={"file_path": str(d.folder / ".env")})
    d.send(
        "PostToolUseFailure",
        tool_name="Bash",
        tool_input={"command": "make test"},
        error="exit 2",
    )
    d.send("PostToolUse", tool_name="Bash", tool_input={"command": "make test"})
    d.edit("src/m9.py")
    d.send("UserPromptSubmit", prompt="now the docs")
    d.send("Stop")
    d.edit("docs/guide.md")
    d.send("PreCompact", trigger="auto")
    d.edit("docs/api.md")
    d.send("SessionEnd", reason="other")


def test_a_session_driven_through_the_fast_path_ends_with_the_engines_records(
    tmp_path: Path,
) -> None:
    engine, fast = _pair(tmp_path)
    workday(engine)
    workday(fast)
    assert fast.journaled >= 12  # the recording events really took the fast path
    theirs, ours = engine.records(), fast.records()
    assert sorted(ours) == sorted(theirs)
    root_e, root_f = str(engine.folder), str(fast.folder)
    for key, value in theirs.items():
        assert ours[key].replace(root_f.encode(), b"ROOT") == value.replace(
            root_e.encode(), b"ROOT"
        ), key
    assert not os.path.exists(os.path.join(fast.where, claude_journal.JOURNAL))


def test_an_open_session_holds_the_same_work_and_context_either_way(tmp_path: Path) -> None:
    engine, fast = _pair(tmp_path)
    for d in (engine, fast):
        d.send("SessionStart", source="startup")
        d.send("UserPromptSubmit", prompt="one")
        d.edit("src/a.py")
        d.send("PostToolUse", tool_name="Bash", tool_input={"command": "rm old.txt"})
        d.send("UserPromptSubmit", prompt="two")
        d.send("Stop")  # the engine: folds the journal
    a, b = engine.live(), fast.live()
    for field in ("work", "context", "active_seconds", "state", "last_activity_at"):
        assert json.dumps(a[field]).replace(str(engine.folder), "R") == json.dumps(
            b[field]
        ).replace(str(fast.folder), "R"), field


def test_the_time_trigger_fires_when_every_event_takes_the_fast_path(tmp_path: Path) -> None:
    engine, fast = _pair(tmp_path)
    for d in (engine, fast):
        d.send("SessionStart", source="startup")
        for i in range(12):  # 4 minutes apart: 48 minutes of active work
            d.edit(f"src/f{i}.py", minutes=4)
    assert fast.journaled >= 10
    auto_e = [c for c in engine.checkpoints() if c.type.value == "automatic"]
    auto_f = [c for c in fast.checkpoints() if c.type.value == "automatic"]
    assert len(auto_e) == 1
    assert [(c.timestamp, c.trigger) for c in auto_f] == [(c.timestamp, c.trigger) for c in auto_e]


def test_the_due_record_says_when_the_time_trigger_may_fire(tmp_path: Path) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    start = d.clock.now.timestamp()
    # 30 minutes of active work after the start, at the earliest
    assert claude_journal.read_due(d.where) == (pytest.approx(start + 30 * 60, abs=0.01), False)
    d.edit("src/a.py", minutes=3)  # journaled: the due time stays
    d.send("Stop", minutes=10)  # the engine: 3 minutes counted, 10 idle
    expected = d.clock.now.timestamp() + 30 * 60 - 3 * 60
    assert claude_journal.read_due(d.where) == (pytest.approx(expected, abs=0.01), False)
    d.send("PostToolUseFailure", tool_name="Bash", tool_input={"command": "make"}, error="x")
    due = claude_journal.read_due(d.where)
    assert due is not None and due[1] is True  # a failure awaits its recovery


def test_past_the_due_time_the_hook_runs_the_engine(tmp_path: Path) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    due = claude_journal.read_due(d.where)
    assert due is not None
    raw = d.event("PostToolUse", tool_name="Edit", tool_input={"file_path": "x.py"})
    assert claude_fast.record(raw, d.env, due[0] - 1)
    assert not claude_fast.record(raw, d.env, due[0])


# -- risky operations --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "field", "value"),
    [
        ("Bash", "command", "rm -rf build/"),
        ("Bash", "command", "git push --force origin main"),
        ("Edit", "file_path", ".github/workflows/ci.yml"),
        ("Write", "file_path", "config/.env.local"),
    ],
)
def test_a_risky_pretooluse_never_takes_the_fast_path(
    tmp_path: Path, tool: str, field: str, value: str
) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    raw = d.event("PreToolUse", tool_name=tool, tool_input={field: value})
    assert not claude_fast.record(raw, d.env, d.clock.now.timestamp() + 1)


def _hook_process(folder: Path, event: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "CLAUDE_"))}
    env.update(CLAUDE_PROJECT_DIR=str(folder), LIFECYCLE_PROJECT=PROJECT, PYTHONPATH=str(ROOT))
    env["LIFECYCLE_RESIDENT"] = "0"  # the hook's own process (tests/test_resident.py: the other)
    env["GIT_CEILING_DIRECTORIES"] = str(folder.parent)
    common = {"session_id": "s1", "transcript_path": "/dev/null", "cwd": str(folder)}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", "hook", "claude"],
        input=json.dumps({**common, **event}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=env,
        check=True,
    )


def test_a_risky_operations_checkpoint_is_durable_when_the_hook_process_answers(
    tmp_path: Path,
) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    for i in range(3):
        _hook_process(
            d.folder,
            {
                "hook_event_name": "PostToolUse",
                "tool_name": "Edit",
                "tool_input": {"file_path": str(d.folder / f"src/{i}.py")},
            },
        )
    assert os.path.getsize(os.path.join(d.where, claude_journal.JOURNAL)) > 0
    done = _hook_process(
        d.folder,
        {
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "rm -rf build/"},
        },
    )
    assert done.stdout == ""
    risk = [c for c in d.checkpoints() if c.type.value == "risk"]
    assert len(risk) == 1
    assert sorted(f.path for f in risk[0].state.files_modified) == [
        "src/0.py",
        "src/1.py",
        "src/2.py",
    ]


# -- crashes -----------------------------------------------------------------------------


def _prompts(d: Driver) -> list[str]:
    return list(d.live()["context"].get("prompts", []))


def _one_prompt_journaled(tmp_path: Path) -> Driver:
    """A session with an edit and a prompt waiting in the journal."""
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    d.send("UserPromptSubmit", prompt="one")
    return d


def _batches(d: Driver) -> list[str]:
    """The batch files a fold took and has not deleted."""
    return [n for n in os.listdir(d.where) if n.startswith(claude_journal.FOLDING)]


def test_events_appended_before_a_crash_are_folded_by_the_next_process(tmp_path: Path) -> None:
    d = _one_prompt_journaled(tmp_path)
    d.send("UserPromptSubmit", prompt="two")
    assert d.journaled == 3  # acknowledged; the process that appended them is gone
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "status", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=d.folder,
        env={**os.environ, **d.env, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    assert json.loads(done.stdout)["context"]["prompts"] == ["one", "two"]
    d.send("Stop")
    assert _prompts(d) == ["one", "two"]


def test_a_batch_taken_by_a_fold_that_crashed_is_applied_by_the_next_one(tmp_path: Path) -> None:
    d = _one_prompt_journaled(tmp_path)
    claude_journal.take(d.where, 0)  # renamed to folding-1, then the process died
    d.send("UserPromptSubmit", prompt="two")
    d.send("Stop")
    assert _prompts(d) == ["one", "two"]
    assert _batches(d) == []


def test_a_batch_whose_fold_was_saved_before_a_crash_is_not_applied_twice(
    tmp_path: Path,
) -> None:
    d = _one_prompt_journaled(tmp_path)
    journal = Path(d.where) / claude_journal.JOURNAL
    kept = journal.read_bytes()
    d.send("Stop")  # folds batch 1 and saves session/context with folded_journal = 1
    assert d.live()["folded_journal"] == 1
    # the crash: session/context was written, the batch file not yet deleted
    (Path(d.where) / f"{claude_journal.FOLDING}{1:012d}").write_bytes(kept)
    d.send("Stop")
    assert _prompts(d) == ["one"]
    assert _batches(d) == []


def test_a_step_that_folds_in_its_own_save_writes_the_live_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _one_prompt_journaled(tmp_path)
    writes: list[str] = []
    real = FileStore.batch

    def counted(self: FileStore, ops: Any) -> list[int]:
        writes.extend(op.key for op in ops)
        return real(self, ops)

    monkeypatch.setattr(FileStore, "batch", counted)
    d.send("Stop")
    assert writes.count(f"{PROJECT}/{keys.CONTEXT}") == 1  # not one for the fold and one after
    assert d.live()["folded_journal"] == 1
    assert _prompts(d) == ["one"]
    assert _batches(d) == []


def test_a_step_that_dies_before_its_save_leaves_its_batch_to_be_applied_once(
    tmp_path: Path,
) -> None:
    d = _one_prompt_journaled(tmp_path)
    # a risky step folds the batch (in memory), writes its checkpoint, and is killed
    script = (
        "import os\n"
        "from lifecycle.integrations.live import live_session\n"
        f"with live_session({'file://' + str(d.folder / '.lifecycle')!r}, {PROJECT!r},"
        " defer_fold=True, snapshot='never') as live:\n"
        "    assert live.manager.context['prompts'] == ['one']\n"
        "    live.manager.before_operation('rm -rf build/')\n"
        "    os._exit(9)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=d.folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 9, done.stderr
    assert _batches(d)
    assert d.live()["folded_journal"] == 0  # its save never came
    d.send("Stop")
    assert _prompts(d) == ["one"]  # applied once, to the record before the crash
    assert sorted(f.path for f in d.checkpoints()[-1].state.files_modified) == ["src/a.py"]
    assert _batches(d) == []


def test_a_torn_line_is_skipped_and_the_lines_after_it_are_kept(tmp_path: Path) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    with open(os.path.join(d.where, claude_journal.JOURNAL), "ab") as f:
        f.write(b'\nJ1 deadbeef 300 {"v": 1, "at": 17')  # a writer killed mid-line
    d.send("UserPromptSubmit", prompt="after the tear")
    d.send("Stop")
    assert _prompts(d) == ["after the tear"]
    live = d.live()
    assert any("torn or damaged" in w for w in live["warnings"])


def test_a_fold_whose_save_fails_keeps_its_batch_for_the_next_step(tmp_path: Path) -> None:
    d = _one_prompt_journaled(tmp_path)
    faulty = FaultyStore(FileStore(d.folder / ".lifecycle"))
    faulty.fail(("put", "batch"), prefix=f"{PROJECT}/session/context", times=1)
    answer = handle(d.event("Stop"), store=faulty, env=d.env, clock=d.clock)
    assert answer is not None and "could not record" in answer["systemMessage"]
    assert faulty.failed["put"] + faulty.failed["batch"] == 1
    assert _batches(d)
    d.send("Stop")
    assert _prompts(d) == ["one"]
    assert _batches(d) == []


# -- concurrency -------------------------------------------------------------------------


def test_hooks_four_at_a_time_lose_nothing(tmp_path: Path) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/first.py")

    def one(i: int) -> str:
        event: dict[str, Any] = {
            "hook_event_name": "PostToolUse",
            "tool_name": "Edit",
            "tool_input": {"file_path": str(d.folder / f"src/c{i}.py")},
        }
        if i % 10 == 9:  # now and then an event that runs the engine (and folds)
            event = {"hook_event_name": "Stop"}
        return _hook_process(d.folder, event).stdout

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(40)))
    assert all(a == "" for a in answers)
    d.send("Stop")
    held = {f["path"] for f in d.live()["work"]["files_modified"]}
    assert {f"src/c{i}.py" for i in range(40) if i % 10 != 9} <= held


# -- secrets, hostile input, other stores --------------------------------------------------


def _all_bytes(folder: Path) -> bytes:
    out = b""
    for here, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(here, name), "rb") as f:
                out += f.read()
    return out


@pytest.mark.parametrize(("text", "secret"), SECRETS[::3])
def test_a_secret_in_a_journaled_event_is_never_written(
    tmp_path: Path, text: str, secret: str
) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    before = d.journaled
    d.send("UserPromptSubmit", prompt=f"please {text}")
    d.send("PostToolUse", tool_name="Bash", tool_input={"command": f"echo {text}"})
    assert d.journaled == before + 2
    assert secret.encode() not in _all_bytes(d.folder / ".lifecycle")
    d.send("Stop")
    assert secret.encode() not in _all_bytes(d.folder / ".lifecycle")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"hook_event_name": 3}',
        b"{" * 100_000,
        b'{"hook_event_name": "PostToolUse", "tool_name": "Edit", "cwd": "\xff\xfe"}',
    ],
)
def test_hostile_input_gets_the_whole_hooks_answer(tmp_path: Path, raw: bytes) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    assert not claude_fast.record(raw, d.env, d.clock.now.timestamp() + 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "CLAUDE_"))}
    env.update(d.env, PYTHONPATH=str(ROOT), LIFECYCLE_RESIDENT="0")
    done = subprocess.run(
        [sys.executable, "-m", "lifecycle", "hook", "claude"],
        input=raw,
        capture_output=True,
        timeout=120,
        cwd=d.folder,
        env=env,
        check=False,
    )
    assert done.returncode == 0
    assert b"Traceback" not in done.stderr
    if raw.strip()[:1] != b"{" or raw == b"{" * 100_000:
        assert json.loads(done.stdout)["systemMessage"].startswith("lifecycle: ignored")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{d}/x.db",
        "postgresql://lifecycle@127.0.0.1:1/none",
        "serena://{d}",
        "file://.lifecycle",
        "file:///{d}/with%20escape",
        "memory://",
    ],
)
def test_stores_the_fast_path_cannot_name_take_the_engines_path(tmp_path: Path, url: str) -> None:
    d = Driver(tmp_path / "p", True)
    d.send("SessionStart", source="startup")
    d.edit("src/a.py")
    env = {**d.env, "LIFECYCLE_STORE": url.format(d=d.folder)}
    raw = d.event("PostToolUse", tool_name="Edit", tool_input={"file_path": "a.py"})
    assert not claude_fast.record(raw, env, d.clock.now.timestamp() + 1)


def test_a_project_the_engine_has_not_prepared_takes_the_engines_path(tmp_path: Path) -> None:
    d = Driver(tmp_path / "p", True)
    raw = d.event("PostToolUse", tool_name="Edit", tool_input={"file_path": "a.py"})
    assert not claude_fast.record(raw, d.env, d.clock.now.timestamp())
    d.send("SessionStart", source="startup")
    d.send("SessionEnd", reason="other")  # no open session: no due record
    assert claude_journal.read_due(d.where) is None
    assert not claude_fast.record(raw, d.env, d.clock.now.timestamp())
