"""The library is silent unless the application configures logging; the CLI logs on -v.

Every test runs a separate process: logging is per process, and the point is
what a process that imports lifecycle prints.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from procs import environment, run

from lifecycle.errors import InvalidSettings
from lifecycle.logs import configure, parse_level

#: A session from start to end through the public API, with a warning on the way:
#: a damaged record that a scan skips. argv[1] is the store folder; argv[2] is
#: Python run first (the application's logging setup, or nothing).
LIBRARY_RUN = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    exec(sys.argv[2])
    from lifecycle import SessionManager
    from lifecycle.stores.file import FileStore

    root = Path(sys.argv[1])
    store = FileStore(root)
    manager = SessionManager(store=store, project="p")
    manager.start_session(command="impl")
    manager.complete_task("T1", priority="high")
    manager.record_file_change("src/a.py")
    manager.create_checkpoint(phase="Phase 1")
    manager.end_session(success=True)
    for key in ("q/a", "q/b"):
        store.put(key, b"x")
    damaged = root / "q.d" / "b.rec"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"?")
    assert [e.key for e in store.scan("q/")] == ["q/a"]
    """
)


def _library(tmp_path: Path, setup: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LIBRARY_RUN, str(tmp_path / "store"), setup],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
    )


@pytest.mark.parametrize(
    "setup",
    ["", "import logging", "import logging, structlog"],
    ids=["nothing-imported", "logging-imported", "structlog-imported"],
)
def test_a_library_session_with_no_logging_configured_prints_nothing(
    tmp_path: Path, setup: str
) -> None:
    done = _library(tmp_path, setup)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_the_same_session_logs_once_the_application_configures_logging(tmp_path: Path) -> None:
    # The run above is silent because nothing asked, not because nothing is logged.
    done = _library(tmp_path, "import logging; logging.basicConfig(level=logging.INFO)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    # (The transitions package logs its own lines at INFO too.)
    lines = [line for line in done.stderr.splitlines() if re.match(r"\w+:lifecycle[.:]", line)]
    assert re.match(r"INFO:lifecycle(\.[\w.]+)?:transition ", lines[0]), lines
    assert "trigger='load'" in lines[0]
    assert any(
        line.startswith("WARNING:lifecycle.stores.file:store.corrupt_record_skipped ")
        and "key='q/b'" in line
        for line in lines
    ), lines


def test_a_warning_alone_is_shown_by_the_standard_default_level(tmp_path: Path) -> None:
    # basicConfig() with no level: WARNING, as for any library's warnings.
    done = _library(tmp_path, "import logging; logging.basicConfig()")
    assert done.returncode == 0, done.stderr
    assert [line.split(" ")[0] for line in done.stderr.splitlines()] == [
        "WARNING:lifecycle.stores.file:store.corrupt_record_skipped"
    ]


def test_records_carry_the_event_fields_for_structured_handlers(tmp_path: Path) -> None:
    setup = textwrap.dedent(
        """
        import logging, json
        class Fields(logging.Handler):
            def emit(self, record):
                if record.getMessage().startswith("transition ") and not hasattr(self, "seen"):
                    self.seen = True
                    print(json.dumps(record.lifecycle, sort_keys=True, default=str))
        logging.getLogger("lifecycle").addHandler(Fields())
        logging.getLogger("lifecycle").setLevel(logging.INFO)
        """
    )
    done = _library(tmp_path, setup)
    assert done.returncode == 0, done.stderr
    fields = json.loads(done.stdout)
    assert (fields["event"], fields["trigger"], fields["source"], fields["dest"]) == (
        "transition",
        "load",
        "INITIALIZING",
        "ACTIVE",
    )


# --- the command line ------------------------------------------------------------------


def _transitions(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "[info     ] transition " in line]


def test_the_cli_prints_no_log_line_without_verbose(tmp_path: Path) -> None:
    done = run(["demo"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["-v", "demo"], {}),
        (["demo", "--verbose"], {}),
        (["demo"], {"LIFECYCLE_LOG": "info"}),
        (["demo"], {"LIFECYCLE_LOG": "DEBUG"}),
    ],
    ids=["-v-before", "--verbose-after", "LIFECYCLE_LOG=info", "LIFECYCLE_LOG=DEBUG"],
)
def test_verbose_or_the_variable_prints_the_transition_log_on_stderr(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    (tmp_path / "quiet").mkdir()
    quiet = run(["demo"], cwd=tmp_path / "quiet")
    done = run(args, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = _transitions(done.stderr)
    assert "source=INITIALIZING trigger=load" in lines[0]
    assert any("trigger=complete" in line for line in lines), lines
    assert _transitions(done.stdout) == []
    # stdout is what it is without logging, but for the generated ids and times.
    assert len(done.stdout.splitlines()) == len(quiet.stdout.splitlines())


def test_the_flag_shows_info_even_when_the_variable_asks_for_less(tmp_path: Path) -> None:
    assert run(["session", "start", "--command", "impl"], cwd=tmp_path).returncode == 0
    done = run(["checkpoint", "save", "-v"], cwd=tmp_path, env={"LIFECYCLE_LOG": "error"})
    assert done.returncode == 0, done.stderr
    assert "source=ACTIVE trigger=save" in _transitions(done.stderr)[0]


def _damaged_checkpoint(folder: Path) -> None:
    """A session with its newest checkpoint damaged: ``status`` warns about it."""
    for args in (["session", "start", "--command", "impl"], ["checkpoint", "save"]):
        assert run(args, cwd=folder).returncode == 0
    assert run(["checkpoint", "save", "--phase", "P"], cwd=folder).returncode == 0
    newest = sorted((folder / ".lifecycle").glob("*.d/checkpoints.d/2*.rec"))[-1]
    newest.write_bytes(newest.read_bytes()[:-1] + b"?")


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({}, True),
        ({"LIFECYCLE_LOG": "warning"}, True),
        ({"LIFECYCLE_LOG": "error"}, False),
        ({"LIFECYCLE_LOG": "off"}, False),
    ],
    ids=["default", "warning", "error", "off"],
)
def test_the_cli_shows_warnings_by_default_and_the_variable_can_hide_them(
    tmp_path: Path, env: dict[str, str], warned: bool
) -> None:
    _damaged_checkpoint(tmp_path)
    done = run(["status"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert ("[warning  ] checkpoint.corrupt " in done.stderr) is warned, done.stderr
    assert "[warning" not in done.stdout


def test_a_bad_level_is_a_usage_error(tmp_path: Path) -> None:
    done = run(["demo"], cwd=tmp_path, env={"LIFECYCLE_LOG": "loud"})
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        "lifecycle: error: $LIFECYCLE_LOG: 'loud' is not a log level; "
        "use one of: debug, info, warning, error, critical, off\n"
    )


def _hook(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    event = {
        "session_id": "abc",
        "transcript_path": str(tmp_path / "t.jsonl"),
        "cwd": str(tmp_path),
        "hook_event_name": "SessionStart",
        "source": "startup",
    }
    return run(
        ["hook", "claude", *args],
        cwd=tmp_path,
        stdin=json.dumps(event),
        env={"CLAUDE_PROJECT_DIR": str(tmp_path), **env},
    )


@pytest.mark.parametrize(
    ("env", "args"),
    [({"LIFECYCLE_LOG": "debug"}, ()), ({}, ("-vv",))],
    ids=["LIFECYCLE_LOG=debug", "-vv"],
)
def test_hook_stdout_stays_one_json_answer_with_logging_on(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...]
) -> None:
    done = _hook(tmp_path, env, *args)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # the whole of stdout, nothing around it
    assert answer["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert done.stdout.count("\n") == 1
    assert "source=INITIALIZING trigger=load" in _transitions(done.stderr)[0]


def test_hook_with_a_bad_level_still_answers_and_exits_0(tmp_path: Path) -> None:
    done = _hook(tmp_path, {"LIFECYCLE_LOG": "loud"})
    assert done.returncode == 0
    assert json.loads(done.stdout)["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert done.stderr == (
        "lifecycle: warning: $LIFECYCLE_LOG: 'loud' is not a log level; "
        "use one of: debug, info, warning, error, critical, off; logging warnings\n"
    )


# --- configure() -----------------------------------------------------------------------


def test_parse_level_names_the_levels() -> None:
    assert [parse_level(n) for n in ("debug", " Info ", "WARNING", "off")] == [
        logging.DEBUG,
        logging.INFO,
        logging.WARNING,
        logging.CRITICAL + 10,
    ]
    with pytest.raises(InvalidSettings, match="'7' is not a log level"):
        parse_level("7")


def test_configure_with_a_bad_level_changes_nothing() -> None:
    logger = logging.getLogger("lifecycle")
    before = (logger.level, list(logger.handlers))
    with pytest.raises(InvalidSettings):
        configure("loud")
    assert (logger.level, list(logger.handlers)) == before


@pytest.mark.parametrize(
    ("variable", "verbose", "level"),
    [
        (None, 0, logging.WARNING),
        (None, 1, logging.INFO),
        (None, 2, logging.DEBUG),
        (None, 5, logging.DEBUG),
        ("debug", 0, logging.DEBUG),
        ("error", 0, logging.ERROR),
        ("error", 1, logging.INFO),
        ("debug", 1, logging.DEBUG),
        ("off", 0, logging.CRITICAL + 10),
    ],
)
def test_configure_takes_the_more_verbose_of_flag_and_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, verbose: int, level: int
) -> None:
    import structlog

    monkeypatch.delenv("LIFECYCLE_LOG_LEVEL", raising=False)
    if variable is None:
        monkeypatch.delenv("LIFECYCLE_LOG", raising=False)
    else:
        monkeypatch.setenv("LIFECYCLE_LOG", variable)
    try:
        configure(verbose=verbose, cache=False)
        assert logging.getLogger("lifecycle").level == level
    finally:
        structlog.reset_defaults()


def test_configure_again_replaces_its_handler(capsys: pytest.CaptureFixture[str]) -> None:
    import structlog

    from lifecycle.logs import get_logger

    try:
        configure("info", cache=False)
        configure("info", cache=False)
        get_logger("lifecycle.test").info("hello", n=1)
    finally:
        structlog.reset_defaults()
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.endswith("[info     ] hello                          n=1")
