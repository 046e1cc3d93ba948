"""``lifecycle coverage``: which rows of the transition table a recorded run fired."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

DEFAULT_FILE = ".lifecycle-coverage.json"


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``lifecycle coverage``."""
    parser = sub.add_parser(
        "coverage",
        help="report the transition-table rows a run fired (recorded with LIFECYCLE_COVERAGE)",
    )
    parser.add_argument(
        "file", nargs="?", default=DEFAULT_FILE, help=f"coverage file (default: {DEFAULT_FILE})"
    )
    parser.add_argument(
        "--diagram",
        metavar="PATH",
        default=None,
        help="write a Mermaid diagram with the rows never fired dashed red ('-': stdout)",
    )
    parser.add_argument("--format", choices=("text", "json", "yaml"), default="text")
    parser.set_defaults(handler=cmd_coverage)


def cmd_coverage(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from lifecycle import coverage
    from lifecycle.commands.base import emit
    from lifecycle.errors import LifecycleError
    from lifecycle.spec import TABLE

    path = Path(args.file)
    if not path.exists():
        raise LifecycleError(
            f"no coverage file {path}: record one with pytest -p lifecycle.pytest_coverage "
            f"--lifecycle-coverage={path}, or run with LIFECYCLE_COVERAGE={path}"
        )
    rows = coverage.load(path)
    missing = coverage.never_fired(rows)
    data = {
        "rows": len(TABLE.rows),
        "exercised": len(TABLE.rows) - len(missing),
        "never_exercised": [
            {"row": i, "source": str(r.source), "dest": str(r.target), "label": r.label}
            for i in missing
            for r in (TABLE.rows[i],)
        ],
    }
    if args.diagram:
        from lifecycle.diagrams import coverage_diagram

        text = coverage_diagram(rows)
        if args.diagram == "-":
            sys.stdout.write(text)
            return 0
        Path(args.diagram).write_text(text, encoding="utf-8")
    emit(args, data, coverage.report(rows))
    return 0
