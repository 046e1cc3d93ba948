"""A private virtual environment holding serena-agent, for the Serena store's tests.

serena-agent pins its dependencies (``mcp``, ``attrs``, ``cattrs``...) to versions
that clash with ours, so it never goes into the project's environment. Instead
:func:`serena_executable` creates a virtual environment once, under
``$LIFECYCLE_SERENA_VENV`` or ``<repo>/.cache/serena-venv``, installs
:data:`SERENA_REQUIREMENT` there with pip, and returns the path of its ``serena``
executable; later calls reuse it. Concurrent callers wait on a lock file.

To build it ahead of the tests (in CI, for example)::

    python tests/serena_env.py        # prints the path of bin/serena
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import quote

if TYPE_CHECKING:
    from lifecycle.stores.serena import SerenaStore

#: Pinned: the store reads Serena's answers (error texts, the list format) of this version.
SERENA_REQUIREMENT = "serena-agent==2.1.0"
ENV_VAR = "LIFECYCLE_SERENA_VENV"
INSTALL_TIMEOUT = 900.0
CHECK_TIMEOUT = 120.0
_MARKER = ".lifecycle-serena-installed"

REPO = Path(__file__).resolve().parent.parent


class SerenaNotAvailable(RuntimeError):
    """serena-agent could not be installed or does not run here; the message says why."""


def venv_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or REPO / ".cache" / "serena-venv").expanduser().resolve()


def _run(args: list[str], timeout: float, what: str) -> None:
    try:
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SerenaNotAvailable(f"{what} did not finish within {timeout:.0f} s") from None
    except OSError as exc:
        raise SerenaNotAvailable(f"{what} could not run: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SerenaNotAvailable(f"{what} failed (exit {done.returncode}):\n{tail}")


def serena_executable() -> Path:
    """The ``serena`` executable of the private venv, installing it first if needed."""
    root = venv_dir()
    exe = root / "bin" / "serena"
    marker = root / _MARKER
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        lock = open(root.parent / f".{root.name}.lock", "w")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise SerenaNotAvailable(f"cannot create the venv folder {root}: {exc}") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if exe.exists() and marker.exists() and marker.read_text() == SERENA_REQUIREMENT:
                return exe
            shutil.rmtree(root, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(root)], CHECK_TIMEOUT, "python -m venv")
            _run(
                [
                    str(root / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    SERENA_REQUIREMENT,
                ],
                INSTALL_TIMEOUT,
                f"pip install {SERENA_REQUIREMENT}",
            )
            _run([str(exe), "--version"], CHECK_TIMEOUT, "serena --version")
            marker.write_text(SERENA_REQUIREMENT)
            return exe
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def unavailable(reason: str) -> NoReturn:
    """Stop the calling test: a failure when ``CI`` is set, a skip otherwise."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"serena-agent is required in CI: {reason}", pytrace=False)
    pytest.skip(f"serena-agent is not available: {reason}")


def require_serena() -> str:
    """The ``serena`` executable for a test, or :func:`unavailable` with the reason."""
    try:
        return str(serena_executable())
    except SerenaNotAvailable as exc:
        unavailable(str(exc))


def open_test_store(project: Path, command: str | None = None, **params: object) -> SerenaStore:
    """A ``serena+stdio://`` store on ``project`` (a directory), its server started.

    ``params`` become URL parameters (``timeout=5``...). A server that does not start
    is :func:`unavailable`. The caller closes the store.
    """
    from lifecycle.errors import StoreUnavailable
    from lifecycle.stores import open_store
    from lifecycle.stores.serena import SerenaStore

    query = {"command": command or require_serena(), **params}
    url = f"serena+stdio://{quote(str(project))}?" + "&".join(
        f"{k}={quote(str(v), safe='/')}" for k, v in query.items()
    )
    try:
        store = open_store(url)
    except StoreUnavailable as exc:
        unavailable(f"the Serena server does not start: {exc}")
    assert isinstance(store, SerenaStore)
    return store


if __name__ == "__main__":
    started = time.monotonic()
    try:
        path = serena_executable()
    except SerenaNotAvailable as exc:
        print(f"serena-agent is not available: {exc}", file=sys.stderr)
        sys.exit(1)
    print(path)
    print(f"ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
