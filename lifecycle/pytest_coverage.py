"""A pytest plugin: which rows of the transition table a test run exercised.

Enable it with ``-p lifecycle.pytest_coverage`` and a path::

    pytest -p lifecycle.pytest_coverage --lifecycle-coverage=.lifecycle-coverage.json \\
           --lifecycle-coverage-diagram=.lifecycle-coverage.mmd

(``LIFECYCLE_COVERAGE=<path>`` in the environment works as the path too.) The file
is started afresh; the path is exported as ``LIFECYCLE_COVERAGE`` so that
subprocesses the tests start (CLI runs, hooks) add their rows to it. At the end
the plugin merges this process's rows in, prints ``N of 57 rows exercised`` with
the rows never exercised, and, if asked, writes the Mermaid coverage diagram
(:func:`lifecycle.diagrams.coverage_diagram`: never-fired rows dashed red).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lifecycle import coverage

_PATH = pytest.StashKey[Path]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lifecycle", "lifecycle transition coverage")
    group.addoption(
        "--lifecycle-coverage",
        metavar="PATH",
        default=None,
        help=f"record the transition-table rows fired into PATH (or set ${coverage.ENV_VAR})",
    )
    group.addoption(
        "--lifecycle-coverage-diagram",
        metavar="PATH",
        default=None,
        help="also write a Mermaid diagram of the rows never fired to PATH",
    )


def pytest_configure(config: pytest.Config) -> None:
    raw = config.getoption("lifecycle_coverage") or os.environ.get(coverage.ENV_VAR)
    if not raw:
        return
    path = Path(raw).resolve()
    path.unlink(missing_ok=True)  # one run, one count
    os.environ[coverage.ENV_VAR] = str(path)  # subprocesses record into the same file
    coverage.enable(path)
    config.stash[_PATH] = path


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    path = config.stash.get(_PATH, None)
    if path is None:
        return
    coverage.write(path, coverage.fired())
    rows = coverage.load(path)
    for line in coverage.report(rows).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"transition coverage written to {path}")
    diagram = config.getoption("lifecycle_coverage_diagram")
    if diagram:
        from lifecycle.diagrams import coverage_diagram

        target = Path(diagram)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(coverage_diagram(rows), encoding="utf-8")
        terminalreporter.write_line(f"coverage diagram written to {target}")
