"""A real, throwaway PostgreSQL server for the tests.

``require_postgres_url()`` starts one server per test session (on first use) and
returns a URL to a fresh database on it; the session fixture ``postgres_url``
does the same and stops the server at the end. ``PostgresServer`` can also be
used directly for a private server (the restart test stops and starts one).

The server refuses to run as root, so when the tests run as uid 0 every server
command goes through ``runuser -u postgres --`` and the data directory belongs to
the ``postgres`` OS user. If no server can be started, PostgreSQL tests skip,
except when ``$CI`` is set: there they fail with the server's log, so a CI
machine without PostgreSQL cannot pass by skipping.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "PostgresServer",
    "PostgresServerError",
    "find_bindir",
    "postgres_url",
    "require_postgres_url",
    "unique_schema",
]

COMMAND_TIMEOUT = 60  # seconds, for every initdb / pg_ctl call
TEST_DATABASE = "lifecycle_test"


class PostgresServerError(RuntimeError):
    """The throwaway server could not be set up; the message carries its log."""


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.append(Path("/usr/local/bin"))
    # Debian: /usr/lib/postgresql/<major>/bin, newest first.
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    debian.sort(key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    candidates.extend(Path(p) for p in reversed(debian))
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, listening on 127.0.0.1."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise PostgresServerError(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH, in "
                "/usr/local/bin or /usr/lib/postgresql/*/bin; install the Debian package "
                "'postgresql' (it pulls in postgresql-<major>)"
            )
        self.bindir = found
        self.as_root = os.getuid() == 0
        self.tmpdir = Path(tempfile.mkdtemp(prefix="lifecycle-pg-", dir="/tmp"))
        self.datadir = self.tmpdir / "data"
        self.logfile = self.tmpdir / "server.log"
        self.port = _free_port()
        self.running = False
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                self.cleanup()
                raise PostgresServerError(
                    "running as root, but there is no 'postgres' OS user to run the server as "
                    "(the server refuses to run as root); install the Debian package "
                    "'postgresql' or run the tests as a normal user"
                ) from None
            os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmpdir, 0o700)

    # -- commands ---------------------------------------------------------------------------

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        try:
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                cwd=self.tmpdir,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresServerError(
                f"{' '.join(argv)} did not finish in {COMMAND_TIMEOUT} s\n{self.log()}"
            ) from exc
        if result.returncode != 0:
            raise PostgresServerError(
                f"{' '.join(argv)} exited {result.returncode}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}\nserver log:\n{self.log()}"
            )
        return result

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-8000:]
        except OSError:
            return "(no server log)"

    def initdb(self) -> None:
        base = ["initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "-N"]
        base += ["--encoding=UTF8"]
        # A linguistic default collation (ICU), so that the tests prove the store's
        # COLLATE "C" column, not the database default, decides the key order.
        try:
            self._run(*base, "--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US")
        except PostgresServerError:
            shutil.rmtree(self.datadir, ignore_errors=True)
            self._run(*base, "--locale=C.UTF-8")

    def start(self) -> None:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} "
            f"-c unix_socket_directories={self.tmpdir} -c fsync=on -c max_connections=50"
        )
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "30",
            "-o", options, "start",
        )  # fmt: skip
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "30", "stop")
            self.running = False

    def cleanup(self) -> None:
        with contextlib.suppress(PostgresServerError):
            self.stop()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -- databases --------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def setup(self) -> str:
        """initdb + start + create the test database; return its URL."""
        try:
            self.initdb()
            self.start()
            return self.create_database(TEST_DATABASE)
        except Exception:
            self.cleanup()
            raise


_shared: PostgresServer | None = None
_shared_url: str | None = None
_shared_error: str | None = None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required when CI is set, but: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server: {reason.splitlines()[0]}")


def require_postgres_url() -> str:
    """The shared server's test database URL; start the server on first use.

    Skips the calling test when no server can be started (fails it when $CI is set).
    """
    global _shared, _shared_url, _shared_error
    if _shared_url is None and _shared_error is None:
        try:
            server = PostgresServer()
            _shared_url = server.setup()
            _shared = server
            # Also stop it at exit when only factories (no session fixture) used it.
            atexit.register(stop_shared_server)
        except (PostgresServerError, OSError) as exc:
            _shared_error = str(exc)
        except Exception as exc:  # e.g. psycopg missing or CREATE DATABASE refused
            _shared_error = f"{type(exc).__name__}: {exc}"
    if _shared_url is None:
        _unavailable(_shared_error or "unknown error")
    assert _shared_url is not None
    return _shared_url


def stop_shared_server() -> None:
    global _shared, _shared_url
    if _shared is not None:
        _shared.cleanup()
    _shared = None
    _shared_url = None


def unique_schema() -> str:
    """A fresh schema name, so each test gets its own tables on the shared database."""
    return "t_" + uuid.uuid4().hex[:16]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a database on a throwaway PostgreSQL server, stopped after the session."""
    url = require_postgres_url()
    try:
        yield url
    finally:
        stop_shared_server()
