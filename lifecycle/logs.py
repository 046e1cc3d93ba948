"""Logging: silent unless the application asks, structlog events on standard logging.

The library follows the standard library's convention for libraries: every
line goes to the :mod:`logging` logger named after its module
(``lifecycle.session``, ``lifecycle.stores.file``, ...), and the ``lifecycle``
logger above them carries a :class:`logging.NullHandler`. An application that
configures no logging sees nothing, warnings included; one that does sees the
lines as it sees any other library's::

    logging.basicConfig(level=logging.INFO)                  # everything, on stderr
    logging.getLogger("lifecycle").setLevel(logging.DEBUG)   # more of lifecycle's

A line is a structlog event (``log.info("transition", trigger="load", ...)``).
When it passes the logger's level, structlog processes it, bound to that
standard logger: with the application's structlog configuration when there is
one (so ``structlog.stdlib.ProcessorFormatter`` and ``capture_logs`` see the
event with its fields), else into one ``event key=value ...`` message whose
record also carries the fields as ``record.lifecycle``. The library never
configures structlog.

``import structlog`` costs 100-300 ms here (it imports asyncio, and rich when
installed), and every Claude Code hook is a new process, so structlog is
imported only when a line passes the level: a line below it costs one
``Logger.isEnabledFor`` call.

The command line is an application: :func:`configure` (called by
``lifecycle.cli.main``) sends warnings and above, or what ``-v`` /
``$LIFECYCLE_LOG`` ask for, to stderr, one line each, so that stdout carries
only the command's output (JSON for hooks and MCP).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

from lifecycle.errors import InvalidSettings

#: The logger every lifecycle logger is below.
ROOT = "lifecycle"
#: The environment variable the command line reads its level from.
ENV_VAR = "LIFECYCLE_LOG"
#: Level names for :data:`ENV_VAR` and :func:`configure`; ``off`` shows nothing.
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "off": logging.CRITICAL + 10,
}
#: ``-v`` gives info, ``-vv`` (or more) debug.
_VERBOSE = (logging.WARNING, logging.INFO, logging.DEBUG)

logging.getLogger(ROOT).addHandler(logging.NullHandler())

#: configure()'s structlog settings, applied when structlog is first imported.
_pending: dict[str, Any] | None = None


def parse_level(name: str) -> int:
    """The level named ``name`` (case-insensitive), or :class:`InvalidSettings`."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise InvalidSettings(
            f"{name!r} is not a log level; use one of: {', '.join(LEVELS)}"
        ) from None


def configure(
    level: str | None = None,
    stream: TextIO | None = None,
    *,
    verbose: int = 0,
    cache: bool = True,
    hold: bool = False,
) -> None:
    """Show lifecycle's lines at ``level`` and above on ``stream`` (default: stderr).

    For the command line and scripts that want its output. ``level`` defaults to
    ``$LIFECYCLE_LOG`` (or the older ``$LIFECYCLE_LOG_LEVEL``), else ``warning``;
    ``verbose`` (the count of ``-v``) can only show more: 1 is info, 2 debug. A
    name that is not a level raises :class:`InvalidSettings` and changes nothing.
    Calling it again replaces the earlier handler. ``cache=False`` keeps structlog
    from caching loggers, for tests that use ``structlog.testing.capture_logs``.
    ``hold=True`` keeps the lines until :func:`release` says whether to show them (the
    command line shows a failed command's one error line, not the warnings before it).
    """
    global _pending
    if level is None:
        variable = os.environ.get(ENV_VAR) or os.environ.get("LIFECYCLE_LOG_LEVEL")
        number = parse_level(variable) if variable else logging.WARNING
    else:
        number = parse_level(level)
    if verbose > 0:
        number = min(number, _VERBOSE[min(verbose, len(_VERBOSE) - 1)])
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if isinstance(h, _LineHandler)]:
        logger.removeHandler(old)
    logger.addHandler(_LineHandler(stream, hold=hold))
    logger.setLevel(number)
    _pending = {"cache": cache}
    if "structlog" in sys.modules:
        _apply()


class _LineHandler(logging.Handler):
    """One line per record on ``stream``, or on whatever ``sys.stderr`` is when it writes.

    A record's message is put on one line (a database error may span several). With
    ``hold``, lines wait in memory until :func:`release`.
    """

    def __init__(self, stream: TextIO | None, *, hold: bool = False) -> None:
        super().__init__()
        self._stream = stream
        self.held: list[str] | None = [] if hold else None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = " ".join(record.getMessage().split("\n"))
            if self.held is not None:
                self.held.append(line)
                return
            self._write([line])
        except Exception:  # pragma: no cover - logging must not break the command
            self.handleError(record)

    def _write(self, lines: list[str]) -> None:
        stream = self._stream or sys.stderr
        for line in lines:
            stream.write(line + "\n")
        stream.flush()


def release(show: bool) -> int:
    """Write (``show``) or drop the lines a ``hold=True`` configuration kept; stop holding.
    Returns how many were dropped."""
    dropped = 0
    for handler in logging.getLogger(ROOT).handlers:
        if isinstance(handler, _LineHandler) and handler.held is not None:
            held, handler.held = handler.held, None
            if show:
                handler._write(held)
            else:
                dropped += len(held)
    return dropped


def _apply() -> None:
    """Configure structlog as :func:`configure` asked, once structlog is imported."""
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
        # Tests turn caching off so that structlog.testing.capture_logs() works.
        cache_logger_on_first_use=settings["cache"],
    )


def _plain_record(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[str], dict[str, Any]]:
    """The last processor without an application configuration: message and fields."""
    fields = dict(event_dict)
    event = str(event_dict.pop("event", ""))
    parts = [event] + [f"{key}={value!r}" for key, value in sorted(event_dict.items())]
    return (" ".join(parts),), {"extra": {"lifecycle": fields}}


class Logger:
    """A standard logger that hands the lines which pass its level to structlog."""

    __slots__ = ("_configured", "_plain", "_std")

    def __init__(self, name: str) -> None:
        self._std = logging.getLogger(name)
        self._configured: Any = None  # structlog with the global configuration
        self._plain: Any = None  # structlog with _plain_record

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        """Hand a line that passed the level to structlog (imported now if not yet)."""
        import structlog

        _apply()
        if structlog.is_configured():
            if self._configured is None:
                self._configured = structlog.wrap_logger(self._std)
            bound = self._configured
        else:
            if self._plain is None:
                self._plain = structlog.wrap_logger(
                    self._std,
                    processors=[structlog.processors.format_exc_info, _plain_record],
                )
            bound = self._plain
        getattr(bound, method)(event, **fields)

    def enabled(self, level: int = logging.INFO) -> bool:
        """Whether a line at ``level`` would be logged (skip building a costly one)."""
        return self._std.isEnabledFor(level)

    def debug(self, event: str, **fields: Any) -> None:
        if self._std.isEnabledFor(logging.DEBUG):
            self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        if self._std.isEnabledFor(logging.INFO):
            self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        if self._std.isEnabledFor(logging.WARNING):
            self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        if self._std.isEnabledFor(logging.ERROR):
            self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        if self._std.isEnabledFor(logging.CRITICAL):
            self._emit("critical", event, fields)


def get_logger(name: str) -> Logger:
    """The logger for module ``name`` (pass ``__name__``): below :data:`ROOT`."""
    return Logger(name)
