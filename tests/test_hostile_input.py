"""Hostile input: only the package's typed errors, no traceback, no write outside the
store's root, no secret in a message.

Inputs and checks live in tests/hostile.py; ``python -m tests.fuzz_run`` runs the
same checks with many more examples and prints how many inputs it tried and how
many escaped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hostile
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.stores.file import FileStore
from lifecycle.stores.sqlite import SqliteStore

#: CLI runs are whole processes: fewer examples than the in-process checks.
CLI_EXAMPLES = 25
MCP_CALLS_PER_TOOL = 10


@given(hostile.raw_records())
def test_decoding_any_bytes_as_any_record_kind_raises_only_typed_errors(
    case: tuple[str, bytes],
) -> None:
    hostile.check_decode(*case)


def test_decoding_deeply_nested_json_is_a_typed_error() -> None:
    for kind in hostile.RECORD_KINDS:
        hostile.check_decode(kind, b"[" * 100_000 + b"]" * 100_000)
        hostile.check_decode(kind, b'{"a":' * 10_000 + b"1" + b"}" * 10_000)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(parent, root): a store root inside an otherwise watched parent folder."""
    parent = tmp_path_factory.mktemp("sandbox")
    (parent / "bystander.txt").write_text("must not change")
    yield parent, parent / "root"


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_any_key_is_refused_or_stored_inside_the_root(
    kind: str, sandbox: tuple[Path, Path]
) -> None:
    parent, root = sandbox
    store = FileStore(root / kind) if kind == "file" else SqliteStore(root / "s.db")
    before = hostile.snapshot(parent, skip=root)

    @given(hostile.keys_text)
    def run(key: str) -> None:
        hostile.check_key(key, store)

    try:
        run()
    finally:
        store.close()
    assert hostile.snapshot(parent, skip=root) == before


def test_any_store_url_opens_or_raises_a_typed_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work))
    before = hostile.snapshot(tmp_path, skip=work)

    @given(hostile.store_urls())
    def run(url: str) -> None:
        hostile.check_url(url)

    run()
    assert hostile.snapshot(tmp_path, skip=work) == before


@pytest.mark.timeout(600)
def test_random_command_lines_exit_with_documented_codes_and_no_traceback(
    tmp_path: Path,
) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    before = hostile.snapshot(tmp_path, skip=work)

    @settings(max_examples=CLI_EXAMPLES)
    @given(hostile.cli_args())
    def run(args: list[str]) -> None:
        hostile.check_cli(args, work)

    run()
    assert hostile.snapshot(tmp_path, skip=work) == before


def test_a_postgres_password_never_reaches_the_command_lines_error_message(
    tmp_path: Path,
) -> None:
    url = f"postgresql://u:{hostile.SECRET}@127.0.0.1:{hostile.CLOSED_PORT}/db"
    result = hostile.run_cli(["demo", "--store", url], tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 5, err
    assert "Traceback" not in err
    assert hostile.SECRET not in err


# -- front ends from another branch: run once they exist ---------------------------------


needs_hook = pytest.mark.skipif(
    "hook" not in hostile.agent_commands(),
    reason="`lifecycle hook` is not registered yet (lifecycle.commands.agents is empty)",
)
needs_mcp = pytest.mark.skipif(
    "mcp" not in hostile.agent_commands(),
    reason="`lifecycle mcp` is not registered yet (lifecycle.commands.agents is empty)",
)

HOOK_EVENTS = [
    "SessionStart", "PreCompact", "PreToolUse", "PostToolUse", "PostToolUseFailure",
    "TaskCompleted", "Stop", "SessionEnd", "UserPromptSubmit", "Notification", "",
]  # fmt: skip

hook_events = st.one_of(
    st.binary(max_size=300),
    st.integers(900, 200_000).map(lambda n: b'{"hook_event_name": "Stop", "x": ' + b"[" * n),
    hostile.json_values.map(orjson.dumps),
    st.fixed_dictionaries(
        {"hook_event_name": st.sampled_from(HOOK_EVENTS) | st.text(max_size=20)},
        optional={
            "session_id": hostile.json_values,
            "cwd": st.sampled_from([".", "sub", ""]) | hostile.json_values,
            "source": st.sampled_from(["startup", "resume", "clear", "compact"])
            | hostile.json_values,
            "tool_name": st.sampled_from(["Bash", "Write", "Edit", "TodoWrite"])
            | hostile.json_values,
            "tool_input": hostile.json_values,
            "tool_response": hostile.json_values,
            "transcript_path": st.sampled_from(["t.jsonl"]) | hostile.json_values,
        },
    ).map(orjson.dumps),
)


@needs_hook
@pytest.mark.timeout(600)
def test_random_hook_events_exit_with_documented_codes_and_no_traceback(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    before = hostile.snapshot(tmp_path, skip=work)

    @settings(max_examples=CLI_EXAMPLES)
    @given(hook_events)
    def run(stdin: bytes) -> None:
        hostile.check_cli(["hook", "claude"], work, stdin)

    run()
    assert hostile.snapshot(tmp_path, skip=work) == before


@needs_hook
@pytest.mark.parametrize(
    "stdin",
    [
        b'{"hook_event_name": "PostToolUse", "tool_input": "' + b"x" * 20_000_000 + b'"}',
        b"[" * 200_000,  # nesting deep enough to exhaust a recursive JSON parser
        b'{"hook_event_name": "PostToolUse", "tool_input": ' + b"[" * 200_000,
    ],
    ids=["20MB", "deep-array", "deep-field"],
)
def test_an_oversized_or_absurdly_nested_hook_event_is_ignored_with_a_message(
    tmp_path: Path, stdin: bytes
) -> None:
    hostile.check_cli(["hook", "claude"], tmp_path, stdin)
    result = hostile.run_cli(["hook", "claude"], tmp_path, stdin)
    assert result.returncode == 0  # a hook always exits 0 (lifecycle hook claude --help)
    assert orjson.loads(result.stdout)["systemMessage"].startswith(
        "lifecycle: ignored a hook event"
    )


@needs_mcp
@pytest.mark.timeout(600)
def test_random_mcp_tool_arguments_get_tool_errors_never_a_crashed_server(tmp_path: Path) -> None:
    import anyio

    work = tmp_path / "cwd"
    work.mkdir()
    before = hostile.snapshot(tmp_path, skip=work)
    tried, escapes = anyio.run(
        hostile.fuzz_mcp, f"file://{work / 'store'}", work, MCP_CALLS_PER_TOOL, 0
    )
    assert tried > 0
    assert escapes == []
    assert hostile.snapshot(tmp_path, skip=work) == before


def test_a_stored_checkpoint_key_with_an_impossible_date_does_not_break_restore(
    tmp_path: Path,
) -> None:
    from conftest import FakeClock

    from lifecycle import SessionManager

    store = FileStore(tmp_path / "store")
    m = SessionManager(store=store, project="p", clock=FakeClock())
    m.start_session(restore=False)
    written = m.create_checkpoint(progress={"n": 1})
    store.put("p/checkpoints/20261399T999999.000000Z", b"{}")  # grammar-shaped, not a date
    store.delete("p/checkpoints/latest")  # force the scan of checkpoint names
    start = SessionManager(store=store, project="p", clock=FakeClock()).start_session()
    assert start.checkpoint_id == written.checkpoint_id


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://a#b:{hostile.SECRET}@127.0.0.1:{hostile.CLOSED_PORT}/db",  # '#' in user
        f"postgres://a?b:{hostile.SECRET}@127.0.0.1:1/x@y@",  # '?' in user, '@' after
        f"postgresqll://u:{hostile.SECRET}@127.0.0.1/db",  # a typo in the scheme
        f"sqlite://u:{hostile.SECRET}@host/x.db",  # a host where SQLite has none
        f"postgres://u%d5:{hostile.SECRET}@127.0.0.1:0/",  # a %-escape that is not UTF-8
    ],
)
def test_a_malformed_url_never_shows_its_password(url: str) -> None:
    hostile.check_url(url)
    from lifecycle import open_store
    from lifecycle.errors import LifecycleError

    with pytest.raises(LifecycleError) as caught:
        open_store(url)
    assert hostile.SECRET not in str(caught.value)
    assert "***" in str(caught.value)


@given(hostile.json_flag_texts)
def test_progress_json_is_refused_or_held_exactly(text: str) -> None:
    hostile.check_json_flag(text)


@given(hostile.learning_names)
def test_learning_names_are_refused_or_kept_apart(names: list[str]) -> None:
    hostile.check_learning_names(names)


@pytest.fixture(scope="module")
def planted_sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("planted")
    template, outside = hostile.planted_sandbox(folder)
    return template, folder, outside


@settings(max_examples=25)
@given(hostile.planted_cases())
def test_a_store_with_a_hostile_file_planted_gives_typed_errors_in_bounded_time(
    planted_sandbox: tuple[Path, Path, Path], case: tuple[int, str, int]
) -> None:
    template, folder, outside = planted_sandbox
    hostile.check_planted(case, template, folder, outside)


@pytest.mark.parametrize("shape", hostile.SHAPES)
def test_every_planted_shape_on_the_live_record_gives_typed_errors(
    planted_sandbox: tuple[Path, Path, Path], shape: str
) -> None:
    template, folder, outside = planted_sandbox
    files = sorted(str(p.relative_to(template)) for p in template.rglob("*.rec"))
    which = files.index("p.d/session.d/context.rec")
    hostile.check_planted((which, shape, 12345), template, folder, outside)
