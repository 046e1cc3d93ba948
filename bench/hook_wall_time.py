"""Wall time of ``lifecycle hook claude`` as whole processes (what Claude Code waits for).

    PYTHONPATH=$PWD python bench/hook_wall_time.py [runs]

Each SessionStart restores the previous session's checkpoint (the resume path) and
each SessionEnd completes the session the SessionStart before it opened, on the
default file store in a temporary project folder. Prints the median and spread of
``runs`` runs (default 20) of each, next to ``python -c "import transitions"``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)


def timed(args: list[str], stdin: str, cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        args, input=stdin, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or ("systemMessage" in done.stdout and "failed" in done.stdout):
        raise SystemExit(f"{args} failed: {done.returncode} {done.stdout} {done.stderr}")
    return elapsed


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "CLAUDE_"))}
    env["PYTHONPATH"] = ROOT
    hook = [sys.executable, "-m", "lifecycle", "hook", "claude"]
    with tempfile.TemporaryDirectory() as project:

        def event(name: str, **fields: str) -> str:
            common = {"session_id": "bench", "transcript_path": "/dev/null", "cwd": project}
            return json.dumps(
                {**common, "permission_mode": "default", "hook_event_name": name, **fields}
            )

        start, end, base = [], [], []
        # one session with some work, so that every start has a checkpoint to restore
        timed(hook, event("SessionStart", source="startup"), project, env)
        for i in range(5):
            write = {"file_path": f"{project}/src/m{i}.py", "content": "x"}
            timed(hook, event("PostToolUse", tool_name="Write", tool_input=write), project, env)  # type: ignore[arg-type]
        timed(hook, event("SessionEnd", reason="other"), project, env)
        for _ in range(runs):
            base.append(timed([sys.executable, "-c", "import transitions"], "", project, env))
            start.append(timed(hook, event("SessionStart", source="resume"), project, env))
            end.append(timed(hook, event("SessionEnd", reason="other"), project, env))

    def line(name: str, xs: list[float]) -> str:
        return (
            f"{name:<40} median {statistics.median(xs) * 1000:7.1f} ms   "
            f"min {min(xs) * 1000:7.1f}   max {max(xs) * 1000:7.1f}   (n={len(xs)})"
        )

    print(line('python -c "import transitions"', base))
    print(line("lifecycle hook claude  SessionStart", start))
    print(line("lifecycle hook claude  SessionEnd", end))
    ratio = statistics.median(start) / statistics.median(base)
    print(f"SessionStart / import transitions: {ratio:.2f}x")


if __name__ == "__main__":
    main()
