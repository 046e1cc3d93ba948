"""structlog set-up for the command line: warnings and errors on stderr, one line each.

The library never configures logging itself (an embedding application owns
that); the CLI calls :func:`configure` so that stdout carries only its output.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO


def configure(
    level: str | None = None, stream: TextIO | None = None, *, cache: bool = True
) -> None:
    import structlog

    name = (level or os.environ.get("LIFECYCLE_LOG_LEVEL") or "warning").upper()
    threshold = logging.getLevelNamesMapping().get(name, logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=cache,  # tests turn it off so capture_logs() works
    )
