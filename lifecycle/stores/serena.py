"""``serena+stdio://``: keys and values kept as memories of a Serena MCP server.

This store launches a Serena server (``serena start-mcp-server``) as a child
process and talks to it over stdio with the ``mcp`` SDK, using only Serena's
memory tools: ``write_memory``, ``read_memory``, ``list_memories`` and
``delete_memory``. Serena keeps each memory as a markdown file under the
project's ``.serena/memories/``, so the values live in the project, beside the
memories the user's agent writes through its own Serena server.

URL::

    serena+stdio:///abs/path/to/project?command=serena&timeout=10
    serena+stdio://relative/project       (relative to the working directory)
    serena+stdio://                       (the working directory)

The location names the Serena *project* directory (it must exist). Query
parameters, all optional:

``command``
    the Serena executable, a name on ``PATH`` or a path (default ``serena``).
    Install ``serena-agent`` into its own virtual environment (its pins clash
    with ours) and name its ``bin/serena`` here.
``home``
    ``SERENA_HOME`` for the server: its config, logs and global memories
    (default ``PROJECT/.lifecycle/serena-home``), so the store never writes
    into the user's ``~/.serena``. If that folder has no ``serena_config.yml``
    the store writes one with the web dashboard off and no answer-length cap.
``timeout``
    seconds to wait for each tool call (default 10); past it the call raises
    :class:`StoreUnavailable`.
``startup_timeout``
    seconds to wait for the server to start and answer ``initialize``
    (default 60).
``log_level``
    Serena's log level (default ``CRITICAL``: Serena logs a traceback for every
    read of a missing memory). Its stderr goes to ``HOME/server-stderr.log``.

The server is started as ``COMMAND start-mcp-server --transport stdio
--agent-interface tools --project DIR --enable-web-dashboard false
--open-web-dashboard false --enable-gui-log-window false --log-level LEVEL``
with ``SERENA_HOME=HOME`` and ``SERENA_USAGE_REPORTING=false`` (Serena would
otherwise report usage over the network at start). Without ``--agent-interface
tools`` a new Serena config exposes a REPL tool instead of the memory tools.
If the project's ``.serena/project.yml`` lists language servers, Serena starts
them when the project is activated and the first call waits behind that; a
project created by this store has none.

Names. A storage key is the memory name, one to one (``a/b`` is the file
``.serena/memories/a/b.md``), except where Serena would read the name
differently: a first segment ``global`` (Serena's cross-project memories, kept
in ``SERENA_HOME``) becomes ``~global``, and a last segment ending in ``.md``
(Serena strips that suffix) gets a trailing ``~``. Keys cannot hold ``~``, so
the mapping is reversible. Memories whose names are not storage keys, and
Serena's global memories, are left out of listings. On a case-insensitive file
system keys that differ only in case name the same file.

Values. Serena memories are text, and Serena has no versions, so each memory
holds one JSON object, the envelope::

    {"lifecycle":1,"key":"a/b","version":3,"sha256":"<hex of the value>",
     "text":"<the value, when it is UTF-8>"}     or  "base64":"<the value>"

A value that is valid UTF-8 is kept as text, so an agent reading the memory
through Serena sees it; anything else is base64. Reads check the format, the
key (a memory renamed or copied to another name is not taken for this one)
and the checksum, and raise :class:`CorruptRecord` on a mismatch, also for a
memory that something other than this store wrote at a name we read.

Atomicity, honestly. Serena has no transactions and no compare-and-swap. A
put reads the memory, checks the expected version and writes the next one; a
batch reads every key it touches, checks every expected version, then writes
one op at a time, and if a write fails it puts back what it had read (best
effort: a server that died cannot be written to). All of that runs under one
lock per store, so it is exact for the users of one store object. Against
other clients of the same memories (another process, the user's agent) it is
best effort: a write that lands between our read and our write is lost. That
is what the fallback store and the file store are for. Serena writes each
file atomically (temp file and rename) but does not fsync it.

Serena's task queue polls every 0.1 s when idle, so each tool call costs about
0.1 s: a get is one call, a put or a delete two (read, then write). Batches and
scans read their keys concurrently.

Threads. The ``mcp`` client is asyncio; the Store protocol is synchronous. The
store runs the client session on a private event loop in a background thread,
started on open and stopped by :meth:`SerenaStore.close`, and waits for each
call with a timeout. A call that times out or finds the server gone raises
:class:`StoreUnavailable` and drops the connection; the next call starts a
new server.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import REQUEST_TIMEOUT, CallToolResult, TextContent

from lifecycle.errors import (
    CorruptRecord,
    InvalidKey,
    InvalidStoreURL,
    StoreError,
    StoreUnavailable,
)
from lifecycle.logs import get_logger
from lifecycle.stores.base import (
    Entry,
    Op,
    Put,
    check_ops,
    check_prefix,
    check_storage_key,
    check_version,
    plan_batch,
    split_url,
)

log = get_logger(__name__)

SCHEME = "serena+stdio"
ENVELOPE_FORMAT = 1
DEFAULT_COMMAND = "serena"
DEFAULT_TIMEOUT = 10.0
DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_LOG_LEVEL = "CRITICAL"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: How many memories a scan or batch reads in one round of concurrent calls.
READ_CHUNK = 32
#: Extra seconds to wait past ``timeout`` for the SDK to report its own timeout.
_GRACE = 2.0
#: Seconds to wait for a server to shut down (the SDK's own escalation takes up to ~6 s).
_STOP_TIMEOUT = 15.0
_GLOBAL_TOPIC = "global"
_ESCAPE = "~"

#: Written to a new SERENA_HOME; Serena fills in the rest and keeps these.
_SERENA_CONFIG = """\
# Written by lifecycle's serena+stdio store for its own Serena server.
projects: []
web_dashboard: false
web_dashboard_open_on_launch: false
gui_log_window: false
# list_memories answers with every name; Serena's default cap (150000 chars) would cut it.
default_max_tool_answer_chars: 2000000000
"""


# -- names ---------------------------------------------------------------------------------


def _escape_global(path: str) -> str:
    first = path.partition("/")[0]
    return _ESCAPE + path if first == _GLOBAL_TOPIC else path


def memory_name(key: str) -> str:
    """The Serena memory name for a storage key (one to one, escaped where Serena differs)."""
    name = _escape_global(key)
    return name + _ESCAPE if name.endswith(".md") else name


def key_of(name: str) -> str | None:
    """The storage key a memory name stands for, or None if it is not one of ours."""
    if name == _GLOBAL_TOPIC or name.startswith(_GLOBAL_TOPIC + "/"):
        return None  # Serena's global memories, shared across projects
    key = name
    if key.startswith(_ESCAPE + _GLOBAL_TOPIC) and key[len(_ESCAPE + _GLOBAL_TOPIC) :][:1] in (
        "",
        "/",
    ):
        key = key[len(_ESCAPE) :]
    if key.endswith(".md" + _ESCAPE):
        key = key[: -len(_ESCAPE)]
    try:
        check_storage_key(key)
    except InvalidKey:
        return None
    return key if memory_name(key) == name else None


def _list_topic(prefix: str) -> str:
    """The Serena topic (folder) that holds every key starting with ``prefix``."""
    return _escape_global(prefix.rpartition("/")[0])


# -- envelope ------------------------------------------------------------------------------


def encode_envelope(key: str, value: bytes, version: int) -> str:
    doc: dict[str, Any] = {
        "lifecycle": ENVELOPE_FORMAT,
        "key": key,
        "version": version,
        "sha256": hashlib.sha256(value).hexdigest(),
    }
    try:
        doc["text"] = value.decode("utf-8")
    except UnicodeDecodeError:
        doc["base64"] = base64.b64encode(value).decode("ascii")
    return orjson.dumps(doc).decode("utf-8")


def decode_envelope(key: str, content: str) -> Entry:
    """Check and unpack a memory's text; CorruptRecord if it is not this key's record."""
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or "lifecycle" not in doc:
        raise CorruptRecord(
            key,
            f"memory {memory_name(key)!r} is not a lifecycle record (written by something else?)",
        )
    if doc["lifecycle"] != ENVELOPE_FORMAT:
        raise CorruptRecord(
            key, f"envelope format {doc['lifecycle']!r}; this version reads {ENVELOPE_FORMAT}"
        )
    if doc.get("key") != key:
        raise CorruptRecord(key, f"the memory holds the record of key {doc.get('key')!r}")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CorruptRecord(key, f"version {version!r} is not a positive integer")
    text, b64 = doc.get("text"), doc.get("base64")
    try:
        if isinstance(text, str) and b64 is None:
            value = text.encode("utf-8")
        elif isinstance(b64, str) and text is None:
            value = base64.b64decode(b64, validate=True)
        else:
            raise ValueError("the envelope needs exactly one of 'text' and 'base64'")
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are ValueErrors
        raise CorruptRecord(key, f"cannot decode the value: {exc}") from None
    if hashlib.sha256(value).hexdigest() != doc.get("sha256"):
        raise CorruptRecord(key, "checksum mismatch")
    return Entry(key, value, version)


# -- the connection ------------------------------------------------------------------------


class _Link:
    """One Serena server and the MCP session to it, on a private event loop thread."""

    def __init__(self, params: StdioServerParameters, errlog: Path) -> None:
        self._params = params
        self._errlog = errlog
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="serena-mcp", daemon=True)
        self._stop = asyncio.Event()
        self._session: ClientSession | None = None
        self._main: concurrent.futures.Future[None] | None = None
        self.broken = False

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        # stdio_client and ClientSession hold anyio cancel scopes, which must be
        # entered and left by one task: this one, which lives until stop().
        try:
            with self._errlog.open("a", encoding="utf-8") as errlog:
                async with (
                    stdio_client(self._params, errlog=errlog) as (read, write),
                    ClientSession(read, write) as session,
                ):
                    await session.initialize()
                    self._session = session
                    ready.set_result(None)
                    await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            log.warning("serena.session_ended", error=repr(exc))
        finally:
            self._session = None
            self.broken = True

    def start(self, timeout: float) -> None:
        self._thread.start()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._serve(ready), self._loop)
        try:
            ready.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            self.stop(cancel=True)
            raise StoreUnavailable(
                f"Serena server {self._params.command!r} did not start within {timeout} s"
                f"{self._stderr_tail()}; raise startup_timeout= in the URL if it is just slow"
            ) from None
        except Exception as exc:
            self.stop()
            raise StoreUnavailable(
                f"cannot start Serena server {self._params.command!r}: "
                f"{_describe(exc)}{self._stderr_tail()}"
            ) from None

    def _stderr_tail(self, lines: int = 5) -> str:
        try:
            tail = self._errlog.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return ("; its stderr ends: " + " | ".join(tail)) if tail else ""

    def call_many(
        self, calls: Sequence[tuple[str, dict[str, Any]]], timeout: float
    ) -> list[CallToolResult]:
        """Send the calls at once and wait for all answers; StoreUnavailable past ``timeout``."""
        session = self._session
        if session is None or self.broken:
            self.broken = True
            raise StoreUnavailable("the Serena server is not connected")

        async def run() -> list[CallToolResult]:
            return list(
                await asyncio.gather(
                    *(session.call_tool(t, a, read_timeout_seconds=timeout) for t, a in calls)
                )
            )

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(timeout=timeout + _GRACE)
        except (concurrent.futures.TimeoutError, MCPError) as exc:
            future.cancel()
            self.broken = True
            if isinstance(exc, MCPError) and exc.code != REQUEST_TIMEOUT:
                raise StoreUnavailable(f"Serena server connection failed: {exc}") from None
            names = ", ".join(sorted({t for t, _ in calls}))
            raise StoreUnavailable(f"Serena did not answer {names} within {timeout} s") from None

    def stop(self, *, cancel: bool = False) -> None:
        """Shut the server down; ``cancel`` also abandons a start still under way."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            if cancel and self._main is not None:
                self._main.cancel()
            if self._main is not None:
                try:
                    self._main.result(timeout=_STOP_TIMEOUT)
                except concurrent.futures.TimeoutError:
                    self._main.cancel()
                    log.warning("serena.stop_timeout", command=self._params.command)
                except (Exception, concurrent.futures.CancelledError) as exc:
                    log.debug("serena.stopped", error=_describe(exc))  # _serve reported it
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_STOP_TIMEOUT)
        self.broken = True


def _describe(exc: BaseException) -> str:
    """One line for an exception, unwrapping the exception groups anyio raises."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _text(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


# -- the store -----------------------------------------------------------------------------


class SerenaStore:
    """Storage keys as Serena memories, versioned through an envelope in each memory."""

    #: Compare-and-swap is atomic within this client only: Serena has no transactions,
    #: so two clients (processes) can interleave a read-check-write. Use the fallback
    #: store or a database where several writers share one project.
    cross_process_atomic = False
    #: Every call is a round trip through Serena's task queue (about 100 ms).
    slow = True

    def __init__(
        self,
        project: str | os.PathLike[str],
        *,
        command: str = DEFAULT_COMMAND,
        home: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        log_level: str = DEFAULT_LOG_LEVEL,
        url: str | None = None,
    ) -> None:
        self.project = Path(project).expanduser().resolve()
        self.url = url or f"{SCHEME}://{self.project}"
        if not self.project.is_dir():
            raise InvalidStoreURL(
                self.url, f"the Serena project directory {str(self.project)!r} does not exist"
            )
        self.home = (
            Path(home).expanduser().resolve()
            if home is not None
            else self.project / ".lifecycle" / "serena-home"
        )
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        if log_level.upper() not in LOG_LEVELS:
            raise InvalidStoreURL(self.url, f"log_level {log_level!r} is not one of {LOG_LEVELS}")
        self.log_level = log_level.upper()
        found = shutil.which(command)
        if found is None:
            raise StoreUnavailable(
                f"cannot start Serena: command {command!r} is not an executable on PATH; "
                "install serena-agent in its own virtual environment "
                "(python -m venv V && V/bin/pip install serena-agent) "
                "and pass ?command=V/bin/serena"
            )
        self.command = found
        self._lock = threading.RLock()
        self._link: _Link | None = None
        self._closed = False
        with self._lock:
            self._connect()

    # -- connection management --

    def _prepare_home(self) -> None:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        config = self.home / "serena_config.yml"
        if not config.exists():
            config.write_text(_SERENA_CONFIG, encoding="utf-8")
            config.chmod(0o600)

    def _connect(self) -> _Link:
        if self._closed:
            raise StoreError(f"store {self.url!r} is closed")
        if self._link is not None and not self._link.broken:
            return self._link
        if self._link is not None:
            self._link.stop()
            self._link = None
        try:
            self._prepare_home()
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot prepare SERENA_HOME {str(self.home)!r}: {exc}"
            ) from None
        params = StdioServerParameters(
            command=self.command,
            args=[
                "start-mcp-server",
                "--transport",
                "stdio",
                "--agent-interface",
                "tools",
                "--project",
                str(self.project),
                "--enable-web-dashboard",
                "false",
                "--open-web-dashboard",
                "false",
                "--enable-gui-log-window",
                "false",
                "--log-level",
                self.log_level,
            ],
            env={"SERENA_HOME": str(self.home), "SERENA_USAGE_REPORTING": "false"},
            cwd=str(self.project),
        )
        link = _Link(params, self.home / "server-stderr.log")
        link.start(self.startup_timeout)
        log.info("serena.started", command=self.command, project=str(self.project))
        self._link = link
        return link

    def _call_many(self, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[CallToolResult]:
        link = self._connect()
        try:
            return link.call_many(calls, self.timeout)
        except StoreUnavailable as exc:
            log.warning("serena.call_failed", url=self.url, error=str(exc))
            link.stop()
            self._link = None
            raise

    def _call(self, tool: str, args: dict[str, Any]) -> str:
        result = self._call_many([(tool, args)])[0]
        if result.is_error:
            raise StoreError(f"Serena {tool} failed: {_text(result)}")
        return _text(result)

    # -- raw memory access --

    def _read_raw(self, keys: Sequence[str]) -> list[str | None]:
        """Each key's memory text, or None where there is no such memory."""
        found: list[str | None] = []
        for start in range(0, len(keys), READ_CHUNK):
            chunk = keys[start : start + READ_CHUNK]
            results = self._call_many(
                [("read_memory", {"memory_name": memory_name(k)}) for k in chunk]
            )
            for key, result in zip(chunk, results, strict=True):
                text = _text(result)
                if not result.is_error:
                    found.append(text)
                elif "FileNotFoundError" in text:
                    found.append(None)
                else:
                    raise StoreError(f"Serena read_memory {memory_name(key)!r} failed: {text}")
        return found

    def _write_raw(self, key: str, content: str) -> None:
        self._call(
            "write_memory",
            {"memory_name": memory_name(key), "content": content, "max_chars": len(content)},
        )

    def _delete_raw(self, key: str) -> None:
        self._call("delete_memory", {"memory_name": memory_name(key)})

    @staticmethod
    def _version_of(key: str, raw: str | None, expected: int | None) -> int:
        """The stored version (0 if absent). A corrupt record counts as absent for a blind write."""
        if raw is None:
            return 0
        try:
            return decode_envelope(key, raw).version
        except CorruptRecord:
            if expected is not None:
                raise
            return 0

    # -- the Store protocol --

    def get(self, key: str) -> Entry | None:
        check_storage_key(key)
        with self._lock:
            raw = self._read_raw([key])[0]
        return None if raw is None else decode_envelope(key, raw)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        check_storage_key(key)
        value = bytes(value)
        with self._lock:
            found = self._version_of(key, self._read_raw([key])[0], expected_version)
            check_version(key, expected_version, found)
            self._write_raw(key, encode_envelope(key, value, found + 1))
            return found + 1

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        check_storage_key(key)
        with self._lock:
            raw = self._read_raw([key])[0]
            check_version(key, expected_version, self._version_of(key, raw, expected_version))
            if raw is None:
                return False
            self._delete_raw(key)
            return True

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        check_prefix(prefix)
        with self._lock:
            text = self._call("list_memories", {"topic": _list_topic(prefix)})
        if text.startswith("The answer is too long"):
            raise StoreError(
                f"Serena cut its list of memories short ({text}); set "
                f"default_max_tool_answer_chars higher in {self.home / 'serena_config.yml'}"
            )
        try:
            listing = orjson.loads(text) if text.strip() else {}
            names = [*listing.get("memories", []), *listing.get("read_only_memories", [])]
            found = {k for k in map(key_of, names) if k is not None and k.startswith(prefix)}
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            raise StoreError(
                f"Serena list_memories answered something unexpected: {text[:200]!r}"
            ) from None
        keys = sorted(found, reverse=reverse)
        return keys if limit is None else keys[:limit]

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        keys = self.list_keys(prefix, reverse=reverse, limit=limit)
        for start in range(0, len(keys), READ_CHUNK):
            chunk = keys[start : start + READ_CHUNK]
            with self._lock:
                raws = self._read_raw(chunk)
            for key, raw in zip(chunk, raws, strict=True):
                if raw is not None:  # deleted since the listing
                    yield decode_envelope(key, raw)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        check_ops(ops)
        with self._lock:
            keys = list(dict.fromkeys(op.key for op in ops))
            before = dict(zip(keys, self._read_raw(keys), strict=True))
            # Every compare-and-swap is checked before anything is written.
            plan = plan_batch(
                ops, lambda key, expected: self._version_of(key, before[key], expected)
            )
            versions: list[int] = []
            try:
                for op, found, version in plan:
                    if isinstance(op, Put):
                        self._write_raw(op.key, encode_envelope(op.key, bytes(op.value), version))
                    elif found > 0 or before[op.key] is not None:  # a corrupt one counts as 0
                        self._delete_raw(op.key)
                    versions.append(version)
            except StoreError as exc:
                # The failed op may have landed too (a timeout says nothing): undo it as well.
                touched = plan[: len(versions) + 1]
                self._undo({planned.op.key: before[planned.op.key] for planned in touched}, exc)
                raise
            return versions

    def _undo(self, before: dict[str, str | None], cause: StoreError) -> None:
        """Best effort: put back whatever a failed batch changed (a dead server defeats it)."""
        failed: dict[str, str] = {}
        try:
            now = dict(zip(before, self._read_raw(list(before)), strict=True))
        except StoreError as exc:
            failed = dict.fromkeys(before, str(exc))
            now = {}
        for key, raw in now.items():
            old = before[key]
            if raw == old:
                continue  # never changed, or the failed op did not land
            try:
                if old is None:
                    self._delete_raw(key)
                else:
                    self._write_raw(key, old)
            except StoreError as exc:
                failed[key] = str(exc)
        if failed:
            log.error("serena.batch_partial", url=self.url, cause=str(cause), not_undone=failed)
        else:
            log.warning("serena.batch_undone", url=self.url, keys=sorted(before), cause=str(cause))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._link is not None:
                self._link.stop()
                self._link = None


# -- URL -----------------------------------------------------------------------------------

_PARAMS = ("command", "home", "timeout", "startup_timeout", "log_level")


def _seconds(url: str, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InvalidStoreURL(url, f"{name}={text!r} must be a positive number of seconds")
    return value


def parse_serena_url(url: str) -> dict[str, Any]:
    """The keyword arguments of :class:`SerenaStore` that a ``serena+stdio://`` URL names."""
    parts = split_url(url)
    if parts.scheme.lower() != SCHEME:
        raise InvalidStoreURL(url, f"the Serena store takes {SCHEME}:// URLs")
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in _PARAMS:
            raise InvalidStoreURL(url, f"unknown parameter {name!r}; known: {', '.join(_PARAMS)}")
        if name in query:
            raise InvalidStoreURL(url, f"parameter {name!r} is given twice")
        if not value:
            raise InvalidStoreURL(url, f"parameter {name!r} is empty")
        query[name] = value
    kwargs: dict[str, Any] = {"project": unquote(parts.netloc + parts.path) or ".", "url": url}
    if "command" in query:
        kwargs["command"] = query["command"]
    if "home" in query:
        kwargs["home"] = query["home"]
    for name in ("timeout", "startup_timeout"):
        if name in query:
            kwargs[name] = _seconds(url, name, query[name])
    if "log_level" in query:
        kwargs["log_level"] = query["log_level"]
    return kwargs


def open_serena_store(url: str) -> SerenaStore:
    """Open ``serena+stdio://PROJECT_DIR?command=...``: starts the server (see module docs)."""
    return SerenaStore(**parse_serena_url(url))
