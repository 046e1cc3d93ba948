"""The command line's start-up stays light: every Claude Code hook is a new process."""

from __future__ import annotations

import json
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
