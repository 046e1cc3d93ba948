"""The README stays true: its commands and its diagram."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_opens_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block is not None
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("lifecycle demo")
    assert lines[1].endswith("python -m pytest")


def test_ci_runs_the_readme_test_command() -> None:
    text = (ROOT / "README.md").read_text()
    test_command = re.search(r"```bash\n.*?\n(.*?)\n```", text, re.S).group(1)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_embeds_the_generated_diagram() -> None:
    text = (ROOT / "README.md").read_text()
    embedded = re.search(
        r"<!-- diagram:begin.*?-->\n```mermaid\n(.*?)```\n<!-- diagram:end", text, re.S
    )
    assert embedded is not None
    assert embedded.group(1) == (ROOT / "diagrams" / "overview.mmd").read_text()
