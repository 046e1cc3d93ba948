"""Run ``lifecycle`` as users and Claude Code do: a separate process, with a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
TIMEOUT = 60
#: Variables that would make a run depend on the developer's environment.
_CLEARED = (
    "LIFECYCLE_STORE",
    "LIFECYCLE_PROJECT",
    "CLAUDE_PROJECT_DIR",
    "LIFECYCLE_DEBUG",
    "LIFECYCLE_LOG",
    "LIFECYCLE_LOG_LEVEL",
)


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def run(
    args: list[str],
    *,
    cwd: Path | str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m lifecycle ARGS`` in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args],
        cwd=cwd,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=environment(env),
        check=False,
    )


def run_json(args: list[str], *, cwd: Path | str, **kwargs: Any) -> dict[str, Any]:
    """Run with ``--format json``; the parsed stdout (the command must succeed)."""
    done = run([*args, "--format", "json"], cwd=cwd, **kwargs)
    assert done.returncode == 0, (done.returncode, done.stderr)
    data: dict[str, Any] = json.loads(done.stdout)
    return data
