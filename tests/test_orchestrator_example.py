"""examples/orchestrator.py runs: concurrent agent sessions, a crash, a resume from the
journal, retries made harmless by idempotency keys, and a replay that matches."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "orchestrator.py"


def test_the_orchestrator_example_survives_a_crash_and_applies_nothing_twice(tmp_path) -> None:
    url = f"file://{tmp_path}/store"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--store", url, "--agents", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"orchestrator: 3 agents, 30 messages each, on {url}"
    assert "agent-2: crashed after 13 acknowledged messages (task cancelled mid-step)" in lines
    assert any(line.startswith("agent-2: resumed the same session: True; ") for line in lines), (
        lines
    )
    assert "agent-2: re-sent 3 acknowledged messages and the rest: 0 applied twice" in lines
    for agent in ("agent-1", "agent-2", "agent-3"):
        assert any(line.startswith(f"{agent}: COMPLETED tasks=6 decisions=6 ") for line in lines)
    assert "all sessions completed with every task once: True" in lines
    assert any(
        line.startswith("replay of agent-1's journal") and line.endswith("matches: True")
        for line in lines
    ), lines
