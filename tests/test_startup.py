"""The command line's start-up stays light: every Claude Code hook is a new process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("structlog", "asyncio", "rich", "lifecycle.triggers.risk", "mcp", "psycopg", "yaml")


def test_a_session_start_hook_imports_none_of_the_heavy_modules(tmp_path: Path) -> None:
    event = {
        "session_id": "abc",
        "transcript_path": str(tmp_path / "t.jsonl"),
        "cwd": str(tmp_path),
        "hook_event_name": "SessionStart",
        "source": "startup",
    }
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['lifecycle', 'hook', 'claude']\n"
        "try:\n"
        "    runpy.run_module('lifecycle', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('\\nLOADED', [m for m in {HEAVY!r} if sys.modules.get(m) is not None])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "CLAUDE_PROJECT_DIR": str(tmp_path)},
        check=True,
    )
    answer, _, loaded = done.stdout.rpartition("\nLOADED ")
    assert json.loads(answer)["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert loaded.strip() == "[]"


#: Every module a recording hook imports beyond ``python -c "import json"``, when it
#: takes the fast path (lifecycle.integrations.claude_fast). Adding one is a decision:
#: it costs every Edit, Write, Bash and prompt of every Claude Code session.
FAST_PATH_IMPORTS = frozenset(
    {
        "__future__",
        "_blake2",  # the route file's name (hashlib would load OpenSSL)
        "fcntl",  # flock on the journal
        "zlib",  # the journal lines' checksum
        "lifecycle",
        "lifecycle.integrations",
        "lifecycle.integrations.claude_fast",
        "lifecycle.integrations.claude_journal",
        "lifecycle.integrations.claude_record",
        "lifecycle.redact",
        "lifecycle.cli",  # the console script's module: os and sys only at its top
    }
)
#: What the fast path must never build: the engine, its records and the risk patterns.
ENGINE = (
    "transitions", "attr", "attrs", "cattrs", "orjson", "structlog", "logging",
    "argparse", "typing", "hashlib", "tempfile", "lifecycle.records", "lifecycle.codec",
    "lifecycle.session", "lifecycle.machine", "lifecycle.spec", "lifecycle.triggers.risk",
    "lifecycle.stores", "lifecycle.keys",
)  # fmt: skip


def _modules_after(code: str, cwd: Path, env: dict[str, str], stdin: str = "") -> set[str]:
    probe = f"{code}\nimport sys\nsys.stderr.write('\\nMODULES ' + ' '.join(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=True,
    )
    return set(done.stderr.rpartition("\nMODULES ")[2].split())


def test_a_recording_hook_on_the_fast_path_imports_only_its_listed_modules(
    tmp_path: Path,
) -> None:
    from lifecycle.integrations.claude_code import handle
    from lifecycle.integrations.claude_journal import JOURNAL, folder

    env = {"PATH": "/usr/bin:/bin", "CLAUDE_PROJECT_DIR": str(tmp_path)}
    env["LIFECYCLE_PROJECT"] = "demo"
    common = {"session_id": "abc", "transcript_path": "/dev/null", "cwd": str(tmp_path)}
    start = {**common, "hook_event_name": "SessionStart", "source": "startup"}
    assert handle(json.dumps(start), env=env) is not None  # the engine prepares the session
    edit = {
        **common,
        "hook_event_name": "PostToolUse",
        "tool_name": "Edit",
        "tool_input": {"file_path": str(tmp_path / "src" / "a.py")},
    }
    floor = _modules_after("import json", tmp_path, env)
    # the console script's code: lifecycle.cli.main (as `lifecycle hook claude` runs it)
    hook = (
        "import sys\nsys.argv = ['lifecycle', 'hook', 'claude']\n"
        "from lifecycle.cli import main\ncode = main()"
    )
    loaded = _modules_after(hook, tmp_path, env, json.dumps(edit))
    journal = os.path.join(folder(str(tmp_path / ".lifecycle"), "demo"), JOURNAL)
    assert os.path.getsize(journal) > 0  # it did take the fast path
    assert loaded - floor <= FAST_PATH_IMPORTS, sorted(loaded - floor - FAST_PATH_IMPORTS)
    assert [m for m in ENGINE if m in loaded] == []


def test_hook_claude_skips_building_the_parser_with_the_same_arguments() -> None:
    from lifecycle.cli import build_parser, hook_claude_args

    assert vars(hook_claude_args()) == vars(build_parser().parse_args(["hook", "claude"]))


#: What a hook the resident process answers imports beyond the fast path's modules.
RESIDENT_CLIENT_IMPORTS = frozenset({"lifecycle.integrations.resident", "_socket"})


def test_a_hook_the_resident_process_answers_imports_only_its_listed_modules(
    tmp_path: Path,
) -> None:
    import tempfile
    import time

    from lifecycle.integrations import resident

    runtime = tempfile.mkdtemp(prefix="lcr-", dir="/tmp")
    env = {"PATH": "/usr/bin:/bin", "CLAUDE_PROJECT_DIR": str(tmp_path), "XDG_RUNTIME_DIR": runtime}
    env.update(LIFECYCLE_PROJECT="demo", LIFECYCLE_SNAPSHOT="never")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    common = {"session_id": "abc", "transcript_path": "/dev/null", "cwd": str(tmp_path)}
    start = {**common, "hook_event_name": "SessionStart", "source": "startup"}
    hook = (
        "import sys\nsys.argv = ['lifecycle', 'hook', 'claude']\n"
        "from lifecycle.cli import main\ncode = main()"
    )
    try:
        _modules_after(hook, tmp_path, env, json.dumps(start))  # answers, then starts it
        end = time.monotonic() + 60
        while resident.status(str(tmp_path), env) is None and time.monotonic() < end:
            time.sleep(0.05)
        risky = {
            **common,
            "hook_event_name": "PreToolUse",
            "tool_name": "Bash",
            "tool_input": {"command": "rm -rf build/"},
        }
        floor = _modules_after("import json", tmp_path, env)
        loaded = _modules_after(hook, tmp_path, env, json.dumps(risky))
        found = resident.status(str(tmp_path), env)
        assert found is not None and found["events"] == 1  # it did answer the hook
        allowed = FAST_PATH_IMPORTS | RESIDENT_CLIENT_IMPORTS
        assert loaded - floor <= allowed, sorted(loaded - floor - allowed)
        assert [m for m in ENGINE if m in loaded] == []
    finally:
        resident.stop(str(tmp_path), env)
        import shutil

        shutil.rmtree(runtime, ignore_errors=True)
