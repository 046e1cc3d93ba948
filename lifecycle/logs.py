"""Logging: every line goes through structlog, imported only when a line is emitted.

``import structlog`` costs 100-300 ms here (it imports asyncio, and rich when
installed), and every Claude Code hook is a new process. So the package logs
through :func:`get_logger`, a proxy that imports structlog on the first line
that passes the configured level. An application that never calls
:func:`configure` gets every line, through its own structlog configuration.

The command line calls :func:`configure`: warnings and errors on stderr, one
line each, so that stdout carries only the command's output.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}

#: The least level emitted; None until configure() (then structlog decides).
_threshold: int | None = None
#: configure()'s settings, applied when structlog is first imported.
_pending: dict[str, Any] | None = None


def configure(
    level: str | None = None, stream: TextIO | None = None, *, cache: bool = True
) -> None:
    """Send warnings (or ``level``, or ``$LIFECYCLE_LOG_LEVEL``) and above to stderr."""
    global _threshold, _pending
    name = (level or os.environ.get("LIFECYCLE_LOG_LEVEL") or "warning").lower()
    _threshold = _LEVELS.get(name, _LEVELS["warning"])
    _pending = {"stream": stream, "cache": cache}
    if "structlog" in sys.modules:
        _apply()


def _apply() -> None:
    global _pending
    if _pending is None:
        return
    import structlog

    settings, _pending = _pending, None
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_threshold or 0),
        logger_factory=structlog.PrintLoggerFactory(settings["stream"] or sys.stderr),
        # Tests turn caching off so that structlog.testing.capture_logs() works.
        cache_logger_on_first_use=settings["cache"],
    )


class Logger:
    """A structlog logger that is created (and structlog imported) on first use."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if _threshold is not None and _LEVELS[level] < _threshold:
            return
        if self._logger is None:
            import structlog

            _apply()
            self._logger = structlog.get_logger(self._name)
        getattr(self._logger, level)(event, **fields)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._emit("critical", event, fields)


def get_logger(name: str) -> Logger:
    return Logger(name)
