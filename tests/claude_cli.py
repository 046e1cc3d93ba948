"""Drive the real Claude Code CLI (pinned in tests/claude_code/) against the fake
Messages API, in a throwaway git project with ``lifecycle hook install``.

``.ci/run`` installs the CLI with ``npm ci``; :func:`claude_binary` finds it there
(or ``$LIFECYCLE_CLAUDE_BIN``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from fake_anthropic import FakeAnthropic
from procs import ROOT

HARNESS = Path(__file__).resolve().parent / "claude_code"
#: Each ``claude -p`` gets this long; a run that hangs fails the test instead.
RUN_TIMEOUT = 120
#: What Claude Code's debug log says when it rejects (or ignores part of) a hook's output.
REJECTED = re.compile(
    r"Hook JSON output validation failed"
    r"|Hook JSON output had unrecognized keys"
    r"|async hook JSON output must be an object"
    r"|hook output names a different hook event"
    r"|hook output has an unknown"
    r"|Hooks: error parsing response as JSON"
    r"|hook output could not be appended"
)


def claude_binary() -> Path | None:
    override = os.environ.get("LIFECYCLE_CLAUDE_BIN")
    if override:
        return Path(override)
    path = HARNESS / "node_modules" / ".bin" / "claude"
    return path if path.exists() else None


def installed_version() -> str:
    lock = json.loads((HARNESS / "package-lock.json").read_text())
    return str(lock["packages"]["node_modules/@anthropic-ai/claude-code"]["version"])


class Project:
    """A git project with lifecycle's hooks installed and an isolated HOME."""

    def __init__(self, root: Path, fake: FakeAnthropic, binary: Path) -> None:
        self.root = root
        self.dir = root / "proj"
        self.home = root / "home"
        self.fake = fake
        self.binary = binary
        self.runs: list[subprocess.CompletedProcess[str]] = []
        self.dir.mkdir()
        self.home.mkdir()
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.dir)], check=True, timeout=30)
        (self.dir / "README.md").write_text("# demo\n")
        subprocess.run([*git, "add", "."], cwd=self.dir, check=True, timeout=30)
        subprocess.run([*git, "commit", "-qm", "init"], cwd=self.dir, check=True, timeout=30)

    def env(self) -> dict[str, str]:
        # PATH without the venv: the installed hook command must work without it.
        path = os.pathsep.join(
            p
            for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
            if p and not p.startswith(str(Path(sys.executable).parent))
        )
        env = {
            "PATH": path,
            "HOME": str(self.home),
            "ANTHROPIC_BASE_URL": self.fake.url,
            "ANTHROPIC_API_KEY": "dummy",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            # the task tools (TaskCreate/TaskUpdate) and no deferred tool search
            "CLAUDE_CODE_ENABLE_TODO_TOOLS": "1",
            "ENABLE_TOOL_SEARCH": "false",
            "PYTHONPATH": ROOT,
            "LANG": "C.UTF-8",
        }
        if os.getuid() == 0:
            env["IS_SANDBOX"] = "1"
        return env

    def lifecycle(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lifecycle", *args],
            cwd=self.dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def install(self) -> None:
        done = self.lifecycle("hook", "install")
        assert done.returncode == 0, done.stderr

    @property
    def debug_log(self) -> Path:
        return self.root / "claude-debug.log"

    def claude(self, prompt: str, *flags: str) -> subprocess.CompletedProcess[str]:
        """``claude -p PROMPT FLAGS``; fails the test if Claude Code fails."""
        cmd = [
            str(self.binary),
            "-p",
            prompt,
            *flags,
            "--output-format",
            "json",
            "--debug-file",
            str(self.debug_log),
        ]
        if os.getuid() == 0:
            cmd.append("--dangerously-skip-permissions")
        else:
            cmd += ["--permission-mode", "bypassPermissions"]
        done = subprocess.run(
            cmd,
            cwd=self.dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        self.runs.append(done)
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
        return done

    def session_id(self, done: subprocess.CompletedProcess[str]) -> str:
        return str(json.loads(done.stdout)["session_id"])

    def rejected_hook_output(self) -> list[str]:
        if not self.debug_log.exists():
            return []
        return [
            line
            for line in self.debug_log.read_text(errors="replace").splitlines()
            if REJECTED.search(line)
        ]

    def hook_lines(self) -> list[str]:
        if not self.debug_log.exists():
            return []
        return [
            line
            for line in self.debug_log.read_text(errors="replace").splitlines()
            if "hook" in line.lower()
        ]


def text_of(value: Any) -> str:
    """Every string inside a request body (messages and system), joined."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return "\n".join(out)


def first_request(fake: FakeAnthropic, prompt: str) -> dict[str, Any]:
    """The first agent request whose latest prompt contains ``prompt``."""
    from fake_anthropic import latest_prompt

    for body in fake.conversation():
        if prompt in latest_prompt(body)[0]:
            return body
    raise AssertionError(f"no request for the prompt {prompt!r}")
