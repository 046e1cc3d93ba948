"""Shared test setup: hypothesis profiles and common fixtures.

Profiles: ``ci`` (derandomized, bounded; the default) and ``long`` (many more
examples): ``HYPOTHESIS_PROFILE=long pytest``. The example counts are printed
at the end of the run.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# The suite runs inside this project's own git repository: a session snapshots the
# work tree (refs/lifecycle/...) only where a test asks for it (tests/test_snapshots.py).
os.environ["LIFECYCLE_SNAPSHOT"] = "never"
# Hooks run in their own process unless a test starts a resident one
# (tests/test_resident.py): a suite of thousands of tmp projects must not leave a
# server behind for each.
os.environ["LIFECYCLE_RESIDENT"] = "0"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(autouse=True)
def lifecycle_log_lines() -> Iterator[None]:
    """Every lifecycle line reaches structlog, so that ``capture_logs`` sees it.

    The library is silent unless the application configures logging (its
    loggers stop at WARNING, below a NullHandler); tests are the application
    here. Whatever a test configured (``lifecycle.logs.configure``) is undone.
    """
    logger = logging.getLogger("lifecycle")
    level, handlers = logger.level, list(logger.handlers)
    logger.setLevel(logging.DEBUG)
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_manager(clock: FakeClock, tmp_path) -> Iterator[Callable[..., object]]:
    from lifecycle import SessionManager, open_store

    made = []

    def make(url: str | None = None, **kwargs: object) -> SessionManager:
        store = open_store(url or "memory://")
        kwargs.setdefault("clock", clock)
        manager = SessionManager(store=store, project=str(kwargs.pop("project", "demo")), **kwargs)  # type: ignore[arg-type]
        made.append(manager)
        return manager

    yield make


_SESSION_STARTED = time.time()


@pytest.fixture
def flushes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every fsync and fdatasync the test's process makes from now on (by name)."""
    seen: list[str] = []
    for name in ("fsync", "fdatasync"):
        real = getattr(os, name)

        def counted(fd: int, _real=real, _name=name) -> None:  # type: ignore[no-untyped-def]
            seen.append(_name)
            _real(fd)

        monkeypatch.setattr(os, name, counted)
    return seen


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop every resident hook process this run started (a test that drives a client
    which builds its own environment, like the Claude Code CLI's, starts them)."""
    import contextlib
    import signal
    from pathlib import Path

    package = str(Path(__file__).resolve().parents[1]).encode()
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir() if Path("/proc/uptime").exists() else ():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            started = boot + int((entry / "stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
        except (OSError, ValueError, IndexError):
            continue
        ours = len(argv) >= 3 and b"resident_server" in argv[2] and argv[3:4] == [package]
        if ours and started >= _SESSION_STARTED - 1:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGTERM)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    current = settings()
    terminalreporter.write_line(
        f"hypothesis profile {os.environ.get('HYPOTHESIS_PROFILE', 'ci')!r}: "
        f"max_examples={current.max_examples}, derandomize={current.derandomize} "
        "(per-test counts above, from --hypothesis-show-statistics)"
    )
