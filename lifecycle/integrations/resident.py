"""The resident hook process: the engine stays loaded between Claude Code hooks.

Every Claude Code hook is a new process. An event that only records takes the fast path
(:mod:`lifecycle.integrations.claude_fast`); every other one (SessionStart, a risky
PreToolUse, Stop, PreCompact, SessionEnd, a due time trigger, ...) needs the session
engine, and loading it costs a process most of its time (imports, attrs classes,
cattrs converters, the risk patterns) while the work itself takes a few milliseconds.
So the first such hook of a project, after answering, starts one background process
(:mod:`lifecycle.integrations.resident_server`) that has the engine loaded; the next
ones hand it their event over a Unix socket and print what it answers.

What it promises (``tests/test_resident.py`` checks each):

* **The same answer.** The server runs the very command the hook would
  (``lifecycle.cli.main(["hook", "claude"])``) with the hook's stdin, environment and
  working folder, and hands back its stdout, stderr and exit code, which the hook
  writes and exits with. Nothing is kept between events but what the stores already
  validate (the decoded-checkpoint cache checks each record's bytes).
* **At most one per project.** It holds an exclusive ``flock`` on its lock file for its
  whole life; a second one started for the same project exits at once.
* **It exits when idle** (``$LIFECYCLE_RESIDENT_IDLE`` seconds without an event,
  default 1800), when its project folder is gone, when its socket is removed or
  replaced, when lifecycle's own files change (an upgrade or an edit: the event is
  answered by the hook itself), after :data:`MAX_EVENTS` events, and on SIGTERM.
* **A crash of it loses no event.** The hook counts an event as answered only when the
  whole answer has arrived; a server that dies or stalls before that (a broken
  connection, :data:`ANSWER_TIMEOUT`) leaves the hook to run the event itself. (An
  event the server had written just before dying is then applied twice, the journal's
  rule too: twice rather than lost.)
* **The hook works the same without it**: no server, a server starting up, one for
  another configuration, ``$LIFECYCLE_RESIDENT=0``, transition coverage being recorded
  (``$LIFECYCLE_COVERAGE``), or a system without Unix sockets:
  the hook runs the event in its own process, as it always did.

Files, in ``$XDG_RUNTIME_DIR/lifecycle-<uid>/`` (else ``/tmp/lifecycle-<uid>/``; the
folder is made 0700 and refused unless it is the user's own and closed to others):
``<name>.lock`` (the flock; holds the server's pid) and ``<name>.sock`` (the socket,
bound under a temporary name and renamed into place once the engine is warm), where
``<name>`` is derived from the project folder. A server serves one configuration: the
project folder, the interpreter, this package's folder and every ``LIFECYCLE_*``
variable (some are read once per process, e.g. extra redaction patterns). An event
from another configuration is answered "not mine" and the server exits, so that the
next hook starts one for the configuration in use.

The exchange, one event per connection: the hook sends ``Q1 <header length> <event
length>\\n``, a JSON header (``key``, ``cwd``, ``env``) and the event's bytes; the
server answers ``A1 <exit code> <stdout length> <stderr length>\\n`` and the bytes, or
``N1 <reason>\\n`` (the hook runs the event itself). This module is the hook's side and
imports only what the fast path already has, plus ``_socket``.
"""

from __future__ import annotations

import json
import os
import sys
import zlib

TYPE_CHECKING = False  # typing itself is not imported on the hook's path
if TYPE_CHECKING:
    from collections.abc import Mapping

#: ``0``, ``off``, ``no``, ``false`` or ``never``: never use or start a resident process.
ENV_VAR = "LIFECYCLE_RESIDENT"
#: Seconds without an event after which the server exits (default :data:`DEFAULT_IDLE`).
IDLE_VAR = "LIFECYCLE_RESIDENT_IDLE"
DEFAULT_IDLE = 1800.0
#: Events one server answers before it exits (the next hook starts a fresh one).
MAX_EVENTS = 5000
#: How long the hook waits to be connected, and for the whole answer.
CONNECT_TIMEOUT = 1.0
ANSWER_TIMEOUT = 30.0
#: The most a header may hold (the environment is most of it).
MAX_HEADER = 1 << 20
#: The most an answer may hold (the context is at most 10,000 characters).
MAX_ANSWER = 16 << 20
_OFF = ("0", "off", "no", "false", "never")


def enabled(env: Mapping[str, str]) -> bool:
    """Whether hooks may use (and start) a resident process. Not while transition
    coverage is recorded (``$LIFECYCLE_COVERAGE``): each hook process records its own, and
    the server's warm-up session must not count."""
    if env.get(ENV_VAR, "").strip().lower() in _OFF or env.get("LIFECYCLE_COVERAGE"):
        return False
    return sys.platform != "win32" and hasattr(os, "getuid")


def folder(env: Mapping[str, str]) -> str | None:
    """The user's runtime folder for resident processes (made if missing), or None when
    it is not safe to use: not a folder, a link, someone else's, or open to others."""
    import stat

    base = env.get("XDG_RUNTIME_DIR") or ""
    if not os.path.isabs(base) or len(base) > 60:  # a socket path holds at most 107 bytes
        base = "/tmp"  # noqa: S108 - the folder below is the user's own, 0700, checked
    where = os.path.join(base, f"lifecycle-{os.getuid()}")
    try:
        os.mkdir(where, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(where)
    except OSError:
        return None
    mine = st.st_uid == os.getuid() and not st.st_mode & 0o077
    return where if stat.S_ISDIR(st.st_mode) and mine else None


def name(root: str) -> str:
    """The file name (without suffix) of ``root``'s server: 64 bits of two checksums."""
    data = os.fsencode(root)
    return f"r-{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def _package() -> str:
    """The folder of the ``lifecycle`` package this module is part of."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def key(root: str, env: Mapping[str, str]) -> str:
    """What a server must have been started with to answer an event: the project folder,
    the interpreter, this package's folder and every ``LIFECYCLE_*`` variable."""
    package = _package()
    settings = sorted((k, v) for k, v in env.items() if k.startswith("LIFECYCLE_"))
    return json.dumps([root, sys.executable, package, settings])


def project_root(env: Mapping[str, str]) -> str | None:
    """The project folder Claude Code names (``$CLAUDE_PROJECT_DIR``), or None: without
    it, finding the folder takes git, and the hook runs the event itself."""
    root = env.get("CLAUDE_PROJECT_DIR")
    return os.path.abspath(root) if root else None


def _read_all(sock: object, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(1 << 16)  # type: ignore[attr-defined]
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def parse_answer(data: bytes) -> tuple[int, bytes, bytes] | None:
    """``(exit code, stdout, stderr)`` from a whole ``A1`` answer, else None."""
    head, sep, rest = data.partition(b"\n")
    parts = head.split(b" ")
    if not sep or len(parts) != 4 or parts[0] != b"A1":
        return None
    try:
        code, n_out, n_err = (int(p) for p in parts[1:])
    except ValueError:
        return None
    if n_out < 0 or n_err < 0 or len(rest) != n_out + n_err:
        return None  # cut short: the server did not finish
    return code, rest[:n_out], rest[n_out:]


def _exchange(where: str, root: str, request: bytes, limit: int) -> bytes | None:
    """Send ``request`` to ``root``'s server in ``where`` and read its whole answer (at
    most ``limit`` bytes); None when there is no server or the exchange broke off."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(os.path.join(where, name(root) + ".sock"))
        sock.settimeout(ANSWER_TIMEOUT)
        sock.sendall(request)
        sock.shutdown(_socket.SHUT_WR)
        return _read_all(sock, limit)
    except OSError:  # no server, a stale socket, a broken connection, a timeout
        return None
    finally:
        sock.close()


def ask(raw: bytes, env: Mapping[str, str]) -> tuple[int, bytes, bytes] | None:
    """The resident server's answer to the event ``raw`` (exit code, stdout, stderr), or
    None when there is no server to ask or it did not answer the whole of it."""
    if not enabled(env):
        return None
    root = project_root(env)
    where = folder(env) if root else None
    if root is None or where is None:
        return None
    try:
        cwd = os.getcwd()
        header = json.dumps({"key": key(root, env), "cwd": cwd, "env": dict(env)}).encode(
            "utf-8", "surrogateescape"
        )
    except (OSError, ValueError):
        return None
    request = b"Q1 %d %d\n" % (len(header), len(raw)) + header + raw
    data = _exchange(where, root, request, MAX_ANSWER)
    return None if data is None else parse_answer(data)


def _control(root: str, env: Mapping[str, str], request: bytes) -> dict[str, object] | None:
    where = folder(env)
    data = None if where is None else _exchange(where, root, request, MAX_HEADER)
    try:
        answer = json.loads(data or b"")
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def status(root: str, env: Mapping[str, str]) -> dict[str, object] | None:
    """``root``'s server's pid, project folder, events answered and idle time, or None
    when none answers (waits while it answers an event)."""
    return _control(root, env, b"S1\n")


def stop(root: str, env: Mapping[str, str]) -> dict[str, object] | None:
    """Ask ``root``'s server to exit once it has answered; its last status, or None."""
    return _control(root, env, b"X1\n")


def running(root: str, env: Mapping[str, str]) -> int | None:
    """The pid of ``root``'s server when one holds its lock, else None."""
    import fcntl

    where = folder(env)
    if where is None:
        return None
    try:
        fd = os.open(os.path.join(where, name(root) + ".lock"), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:  # held: a server runs (or is starting)
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        return None
    finally:
        os.close(fd)


def start(env: Mapping[str, str]) -> int | None:
    """Start the project's server in the background unless one runs; its pid, or None.

    Called by a hook after it answered by itself. The server is a new session
    (``setsid``) with its standard streams on ``/dev/null``, so that neither Claude Code
    nor anything waiting for the hook's output waits for it."""
    if not enabled(env):
        return None
    root = project_root(env)
    if root is None or not os.path.isdir(root) or running(root, env) is not None:
        return None
    package_parent = os.path.dirname(_package())
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from lifecycle.integrations.resident_server import main; sys.exit(main(sys.argv[2]))"
    )
    null = os.devnull
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
    ]
    try:
        return os.posix_spawn(
            sys.executable,
            [sys.executable, "-c", code, package_parent, root],
            dict(env),
            file_actions=actions,
            setsid=True,
        )
    except (OSError, AttributeError, TypeError):  # no posix_spawn with setsid here
        return None
