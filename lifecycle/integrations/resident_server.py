"""The resident hook process's server side (see :mod:`lifecycle.integrations.resident`).

Started by a hook (:func:`lifecycle.integrations.resident.start`) as ``python -c ...
main(ROOT)``: it takes the project's lock or exits, loads and warms the engine on a
scratch project, puts its socket in place, and answers one event per connection, one
at a time, until one of the reasons to exit in the module above holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

from lifecycle.integrations import resident

#: How long a connection may take to send its event (a stuck hook cannot hold the server).
REQUEST_TIMEOUT = 5.0
#: How often an idle server looks at its reasons to exit.
TICK = 1.0


def _signature() -> dict[str, int]:
    """When each of lifecycle's loaded modules' files last changed (an upgrade or an edit
    changes one): about 100 ``stat`` calls."""
    out: dict[str, int] = {}
    for module_name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (module_name == "lifecycle" or module_name.startswith("lifecycle.")) and path:
            try:
                out[path] = os.stat(path).st_mtime_ns
            except OSError:
                out[path] = -1
    return out


def _changed(signature: dict[str, int]) -> bool:
    for path, mtime in signature.items():
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return True
        except OSError:
            return True
    return False


@contextlib.contextmanager
def _as_hook(env: Mapping[str, str], cwd: str, stdin: bytes) -> Iterator[tuple[Any, Any]]:
    """The process as the hook's: its environment, folder and standard streams."""
    saved_env = dict(os.environ)
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors="replace")
    sys.stdout, sys.stderr = out, err
    try:
        yield out, err
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir("/")


def run_hook(env: Mapping[str, str], cwd: str, stdin: bytes) -> tuple[int, bytes, bytes]:
    """What ``lifecycle hook claude`` does with ``stdin`` in ``cwd`` under ``env``: its
    exit code, stdout and stderr (the fast path is skipped: the hook declined it)."""
    from lifecycle import cli
    from lifecycle.integrations import claude_fast

    with _as_hook(env, cwd, stdin) as (out, err):
        claude_fast._tried = True  # the hook asked the fast path already
        try:
            code = cli.main(["hook", "claude"])
        except SystemExit as exc:  # pragma: no cover - the command line returns its code
            code = exc.code if isinstance(exc.code, int) else 1
    encode = ("utf-8", "surrogateescape")
    return code, out.getvalue().encode(*encode), err.getvalue().encode(*encode)


def warm(env: Mapping[str, str]) -> None:
    """Load the engine and run a short session on a scratch project (file store, no
    snapshots), so that the first real event finds converters built and patterns
    compiled."""
    scratch = tempfile.mkdtemp(prefix="lifecycle-warm-")
    try:
        base = {k: v for k, v in env.items() if k != "LIFECYCLE_STORE"}
        base.update(CLAUDE_PROJECT_DIR=scratch, LIFECYCLE_SNAPSHOT="never")
        base.pop("LIFECYCLE_PROJECT", None)

        def event(name: str, **fields: Any) -> bytes:
            common = {"session_id": "warm", "transcript_path": os.devnull, "cwd": scratch}
            return json.dumps({**common, "hook_event_name": name, **fields}).encode()

        path = os.path.join(scratch, "src", "a.py")
        for raw in (
            event("SessionStart", source="startup"),
            event("UserPromptSubmit", prompt="warm up"),
            event("PostToolUse", tool_name="Write", tool_input={"file_path": path}),
            event("PreToolUse", tool_name="Bash", tool_input={"command": "rm -rf build/"}),
            event("Stop"),
            event("SessionEnd", reason="other"),
            event("SessionStart", source="resume"),
            event("SessionEnd", reason="other"),
        ):
            run_hook(base, scratch, raw)
        # and the module of the store in use (its driver too), which the scratch file
        # store did not load
        from lifecycle.stores import SCHEMES

        scheme = env.get("LIFECYCLE_STORE", "").partition("://")[0].lower()
        if scheme in SCHEMES:
            with contextlib.suppress(ImportError):
                __import__(SCHEMES[scheme].partition(":")[0])
    finally:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], bytes] | str:
    """The header and event of one connection, or why it is not a request (``S1`` and
    ``X1``, a status or stop request, come back as ``"S1"`` and ``"X1"``)."""
    from lifecycle.integrations.claude_record import MAX_EVENT_BYTES

    conn.settimeout(REQUEST_TIMEOUT)
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(256)
        if not chunk or len(data) > 64:
            return "no request line"
        data += chunk
    line, _, rest = data.partition(b"\n")
    if line in (b"S1", b"X1"):
        return line.decode()
    parts = line.split(b" ")
    if len(parts) != 3 or parts[0] != b"Q1" or not all(p.isdigit() for p in parts[1:]):
        return "not a request"
    n_head, n_raw = int(parts[1]), int(parts[2])
    if n_head > resident.MAX_HEADER or n_raw > MAX_EVENT_BYTES + 1:
        return "too large"
    want = n_head + n_raw
    chunks = [rest]
    got = len(rest)
    while got < want:
        chunk = conn.recv(min(1 << 20, want - got))
        if not chunk:
            return "cut short"
        chunks.append(chunk)
        got += len(chunk)
    body = b"".join(chunks)
    if len(body) != want:
        return "longer than it said"
    try:
        header = json.loads(body[:n_head])
    except ValueError:
        return "a header that is not JSON"
    if not (
        isinstance(header, dict)
        and isinstance(header.get("key"), str)
        and isinstance(header.get("cwd"), str)
        and isinstance(header.get("env"), dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in header["env"].items())
    ):
        return "a header without key, cwd and env"
    return header, body[n_head:]


class Server:
    """One project's resident process: its lock, its socket, its reasons to exit."""

    def __init__(self, root: str, env: Mapping[str, str]) -> None:
        self.root = root
        self.key = resident.key(root, env)
        self.idle = _idle(env)
        where = resident.folder(env)
        if where is None:
            raise OSError("no safe runtime folder")
        base = os.path.join(where, resident.name(root))
        self.path = base + ".sock"
        self.lock_path = base + ".lock"
        self.signature: dict[str, int] = {}
        self.events = 0
        self.last = time.monotonic()
        self.sock: socket.socket | None = None
        self.inode = -1
        self.stopping = False

    def lock(self) -> bool:
        """Take the project's lock for the process's life; False when another holds it."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._lock_fd = fd  # kept open: the lock lasts as long as the process
        return True

    def bind(self) -> None:
        """Listen on a temporary name, then rename it into place (atomically: a hook
        connects to a warm server or to none)."""
        tmp = f"{self.path}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(tmp)
        os.chmod(tmp, 0o600)
        sock.listen(64)
        os.replace(tmp, self.path)
        self.inode = os.stat(self.path).st_ino
        sock.settimeout(TICK)
        self.sock = sock

    def why_exit(self) -> str | None:
        """A reason to exit now, or None."""
        if self.stopping:
            return "asked to stop"
        if self.idle and time.monotonic() - self.last > self.idle:
            return "idle"
        if self.events >= resident.MAX_EVENTS:
            return "served its share of events"
        if not os.path.isdir(self.root):
            return "the project folder is gone"
        try:
            if os.stat(self.path).st_ino != self.inode:
                return "its socket was replaced"
        except OSError:
            return "its socket was removed"
        return None

    def serve(self) -> str:
        """Answer events until a reason to exit; the reason."""
        assert self.sock is not None
        while True:
            why = self.why_exit()
            if why is not None:
                return why
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except InterruptedError:  # pragma: no cover - retried by Python itself
                continue
            with conn:
                done = self.answer(conn)
            if done is not None:
                return done

    def answer(self, conn: socket.socket) -> str | None:
        """Answer one connection; a reason to exit after it, or None."""
        try:
            request = _read_request(conn)
        except OSError:
            return None  # the hook went away (and runs the event itself, if it can)
        if request in ("S1", "X1"):
            _send(conn, json.dumps(self.status()).encode() + b"\n")
            return "asked to stop" if request == "X1" else None
        if isinstance(request, str):
            _send(conn, b"N1 " + request.encode() + b"\n")
            return None
        header, raw = request
        if header["key"] != self.key:
            _send(conn, b"N1 another configuration\n")
            return "an event from another configuration"
        if _changed(self.signature):
            _send(conn, b"N1 lifecycle changed\n")
            return "lifecycle's files changed"
        self.events += 1
        code, out, err = run_hook(header["env"], header["cwd"], raw)
        self.last = time.monotonic()
        _send(conn, b"A1 %d %d %d\n" % (code, len(out), len(err)) + out + err)
        return None

    def status(self) -> dict[str, Any]:
        """What ``lifecycle.integrations.resident.status`` reports."""
        return {
            "pid": os.getpid(),
            "root": self.root,
            "events": self.events,
            "idle_seconds": round(time.monotonic() - self.last, 3),
            "exits_after_idle_seconds": self.idle,
        }

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:
                os.unlink(self.path)
        if self.sock is not None:
            self.sock.close()


def _send(conn: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the hook gave up: it runs the event itself
        conn.settimeout(REQUEST_TIMEOUT)
        conn.sendall(data)


def _idle(env: Mapping[str, str]) -> float:
    raw = env.get(resident.IDLE_VAR, "").strip()
    try:
        value = float(raw) if raw else resident.DEFAULT_IDLE
    except ValueError:
        return resident.DEFAULT_IDLE
    return value if value == value and value >= 0 else resident.DEFAULT_IDLE  # NaN: default


def main(root: str) -> int:
    """Serve ``root``'s hooks until a reason to exit (exit code 0 in every case)."""
    os.chdir("/")  # never keep the project's folder busy
    env = dict(os.environ)
    try:
        server = Server(root, env)
        if not server.lock():
            return 0  # one runs already
    except OSError:
        return 0
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "stopping", True))
    try:
        warm(env)
        server.signature = _signature()  # the modules the warm-up loaded
        server.bind()
        server.serve()
    except Exception:  # never a traceback on /dev/null: the hooks run events themselves
        return 0
    finally:
        server.close()
    return 0
