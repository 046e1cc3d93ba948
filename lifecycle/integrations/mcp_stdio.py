"""The stdio transport of ``lifecycle mcp``: every request answered, and answered early.

Two things the ``mcp`` SDK's own ``stdio_server`` does not do:

**A guard in front of the SDK's parser.** The SDK's transport parses each line
with its pydantic models and hands anything they refuse to its dispatcher, which
drops it (at debug level): a lone surrogate in a string (``"a\\ud800b"``, what
JavaScript makes when it slices an emoji), nesting deeper than the parser's limit,
``params`` that is not an object, no ``jsonrpc`` member or ``jsonrpc:"1.0"``. The
client then waits for its timeout. :func:`screen` looks at each line first and
answers what would be dropped: a JSON-RPC error with the request's id, or with id
``null`` when the line is not JSON (``-32700``) or has no usable id (``-32600``).
Lines that pass go on to the SDK unchanged.

**The first answers before the SDK is imported.** Importing ``mcp`` builds a few
hundred pydantic models, and the tool table its own (0.5-1 s together), longer
than a client should wait for its first ``tools/list``. So :func:`serve_stdio`
imports both in a thread while it answers ``initialize``, ``ping`` and
``tools/list`` itself, from :data:`PUBLISHED` (the table's capabilities,
instructions and tool list, generated from it and checked by a test). The first
other message hands over: the SDK is given the ``initialize`` (under an id of
ours, its answer checked against the one the client got and not sent again),
``notifications/initialized``, then everything else.

While serving, fd 0 reads the null device and fd 1 writes to stderr, as in the
SDK's transport, so a stray ``print`` cannot corrupt the wire.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, cast

import orjson

from lifecycle.errors import quoted
from lifecycle.logs import get_logger

log = get_logger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
#: Messages nested deeper than this are refused (the SDK's parser stops near 200).
MAX_DEPTH = 100
#: The id under which the SDK is given the client's ``initialize`` at the hand-over.
REPLAY_ID = "lifecycle-early-initialize"
_REPLAY_PREFIX = f'{{"jsonrpc":"2.0","id":"{REPLAY_ID}"'
#: The tool table's capabilities, instructions and tools/list, as
#: :func:`lifecycle.integrations.mcp_server.published` makes them.
PUBLISHED = Path(__file__).with_name("mcp_tools.json")


class Screened(NamedTuple):
    """What :func:`screen` made of a line: the message to pass on, or the reply to send
    instead (neither: nothing to do, e.g. a blank line or a response nobody can read).
    A NamedTuple, not attrs: this module is on the start-up path."""

    message: dict[str, Any] | None = None
    reply: bytes | None = None


def error_reply(request_id: object, code: int, message: str) -> bytes:
    """A JSON-RPC error line; an id that cannot be echoed as JSON becomes null."""
    body = {"code": code, "message": message}
    ident = request_id if _usable_id(request_id) else None
    try:
        return orjson.dumps({"jsonrpc": "2.0", "id": ident, "error": body})
    except TypeError:  # a lone surrogate in the id
        return orjson.dumps({"jsonrpc": "2.0", "id": None, "error": body})


def result_reply(request_id: object, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def _usable_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _depth(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in item)
    return deepest


def _lenient(text: str) -> object:
    """The JSON value of ``text`` as the standard library reads it (lone surrogates and
    deep nesting allowed), to find the id of a line orjson refuses; raises ValueError."""
    import json

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deep to read") from None


def screen(text: str) -> Screened:
    """Pass a well-formed JSON-RPC message on, or say how to answer it instead."""
    if not text.strip():
        return Screened()
    problem = None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        problem = f"not valid JSON text ({str(exc)[:120]})"
        try:
            message = _lenient(text)
        except ValueError:
            return Screened(reply=error_reply(None, PARSE_ERROR, f"parse error: {problem}"))
    if not isinstance(message, dict):
        reason = "a batch (JSON array)" if isinstance(message, list) else quoted(message, 40)
        return Screened(
            reply=error_reply(
                None, INVALID_REQUEST, f"invalid request: a message is a JSON object, not {reason}"
            )
        )
    has_id = "id" in message
    ident = message.get("id")
    if has_id and not _usable_id(ident):
        return Screened(
            reply=error_reply(
                None,
                INVALID_REQUEST,
                f"invalid request: id must be a string or an integer, not {quoted(ident, 40)}",
            )
        )
    is_request = "method" in message
    if not is_request:  # a response to one of our requests (we send none): nothing to answer
        if has_id and ("result" in message or "error" in message) and problem is None:
            return Screened(message)
        if has_id or problem is not None:
            log.debug("mcp.dropped", reason=problem or "a response to no request")
            return Screened()
        return Screened(
            reply=error_reply(None, INVALID_REQUEST, "invalid request: no 'method' member")
        )
    # A notification (no id) is not answered when it is well formed; a malformed one is,
    # with id null, as JSON-RPC says for a request whose id cannot be told.
    reply_id = ident if has_id else None

    def refuse(code: int, why: str) -> Screened:
        return Screened(reply=error_reply(reply_id, code, why))

    if problem is not None:
        return refuse(INVALID_REQUEST, f"invalid request: {problem}")
    if message.get("jsonrpc") != "2.0":
        got = quoted(message["jsonrpc"], 40) if "jsonrpc" in message else "no 'jsonrpc' member"
        return refuse(INVALID_REQUEST, f"invalid request: 'jsonrpc' must be \"2.0\", got {got}")
    if not isinstance(message["method"], str):
        return refuse(INVALID_REQUEST, "invalid request: 'method' must be a string")
    if "params" in message and not isinstance(message["params"], dict):
        kind = type(message["params"]).__name__.replace("list", "an array")
        return refuse(INVALID_PARAMS, f"invalid params: 'params' must be an object, not {kind}")
    if _depth(message) > MAX_DEPTH:
        return refuse(INVALID_PARAMS, f"invalid params: nested deeper than {MAX_DEPTH} levels")
    return Screened(message)


def screen_for_sdk(text: str, parse: Callable[[str], object]) -> Screened:
    """:func:`screen`, then the SDK's own parser (``parse``): a request that passes ours
    but not the SDK's is answered too (-32600, with its first complaint)."""
    screened = screen(text)
    if screened.message is None:
        return screened
    try:
        parse(text)
    except Exception as exc:  # a pydantic ValidationError, whatever the SDK's version
        message = screened.message
        if "method" not in message:
            return Screened()
        return Screened(
            reply=error_reply(
                message.get("id"), INVALID_REQUEST, f"invalid request: {_first_complaint(exc)}"
            )
        )
    return screened


def _first_complaint(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "message"
            return f"{where}: {first.get('msg', '')}"[:200]
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


# -- the wire ------------------------------------------------------------------------------


class Wire:
    """The process's stdin and stdout, claimed for the protocol (see the module)."""

    def __init__(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        self._restore: list[Callable[[], None]] = []
        self.input = stdin if stdin is not None else self._claim(0, os.O_RDONLY, "rb")
        self.output = stdout if stdout is not None else self._claim(1, os.O_WRONLY, "wb")
        self._lock = threading.Lock()

    def _claim(self, fd: int, mode: int, text: str) -> BinaryIO:
        stream = sys.stdin if fd == 0 else sys.stdout
        try:
            if stream is None or stream.fileno() != fd:
                raise OSError
            private = os.dup(fd)
            os.set_inheritable(private, False)
        except (OSError, ValueError, AttributeError):
            return cast(BinaryIO, (sys.stdin if fd == 0 else sys.stdout).buffer)
        diversion = os.open(os.devnull, mode) if fd == 0 else os.dup(2)
        os.dup2(diversion, fd)
        os.close(diversion)

        def restore() -> None:
            with contextlib.suppress(OSError):
                os.dup2(private, fd)

        self._restore.append(restore)
        return cast(BinaryIO, os.fdopen(private, text, closefd=False))

    def readline(self) -> bytes:
        return self.input.readline()

    def send(self, line: bytes) -> None:
        """Write one message line (whole lines only, whoever writes)."""
        with self._lock:
            self.output.write(line if line.endswith(b"\n") else line + b"\n")
            self.output.flush()

    def close(self) -> None:
        for restore in reversed(self._restore):
            restore()


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


# -- the early answers ---------------------------------------------------------------------


class EarlyAnswers:
    """``initialize``, ``ping`` and ``tools/list`` answered without the SDK.

    ``initialize_result(version)`` and ``tools_result()`` are the server's own answers
    (the SDK serves the same ones after the hand-over); ``versions`` the protocol
    versions the SDK's handshake accepts, newest last.
    """

    def __init__(
        self,
        initialize_result: Callable[[str], dict[str, Any]],
        tools_result: Callable[[], dict[str, Any]],
        versions: tuple[str, ...],
    ) -> None:
        self.initialize_result = initialize_result
        self.tools_result = tools_result
        self.versions = versions
        self.sent_initialize: dict[str, Any] | None = None

    def run(self, wire: Wire) -> list[str] | None:
        """Answer until a message needs the SDK; the lines to give it first (the replayed
        ``initialize`` among them), or None at end of input."""
        replay: list[str] = []
        while True:
            raw = wire.readline()
            if not raw:
                return None
            text = _decode(raw)
            screened = screen(text)
            if screened.reply is not None:
                wire.send(screened.reply)
            message = screened.message
            if message is None:
                continue
            answer = self.answer(message)
            if answer is None:
                replay.append(text)
                return replay
            reply, replayed = answer
            if reply is not None:
                wire.send(reply)
            if replayed is not None:
                replay.append(replayed)

    def answer(self, message: dict[str, Any]) -> tuple[bytes | None, str | None] | None:
        """(reply, line for the SDK) for a message answered early, None for one that is not."""
        method, ident, params = message["method"], message.get("id"), message.get("params")
        if "id" not in message:
            if method == "notifications/initialized" and self.sent_initialize is not None:
                return None, orjson.dumps(message).decode()
            return None
        if method == "ping":
            return result_reply(ident, {}), None
        if method == "tools/list" and self.sent_initialize is not None:
            return result_reply(ident, self.tools_result()), None
        version = (params or {}).get("protocolVersion")
        if method == "initialize" and self.sent_initialize is None and isinstance(version, str):
            negotiated = version if version in self.versions else self.versions[-1]
            result = self.initialize_result(negotiated)
            self.sent_initialize = result
            replayed = {**message, "id": REPLAY_ID}
            return result_reply(ident, result), orjson.dumps(replayed).decode()
        return None


def sdk_versions() -> tuple[str, ...]:
    """The handshake versions of the installed SDK, read from its ``mcp_types/version.py``
    alone (importing the package would build all of its models)."""
    import importlib.util

    spec = importlib.util.find_spec("mcp_types")
    if spec is None or not spec.submodule_search_locations:
        from lifecycle.errors import LifecycleError

        raise LifecycleError("lifecycle mcp needs the mcp package: pip install 'lifecycle[mcp]'")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "version.py")
    loaded = importlib.util.spec_from_file_location("_lifecycle_mcp_versions", path)
    try:
        assert loaded is not None
        assert loaded.loader is not None
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        return tuple(module.HANDSHAKE_PROTOCOL_VERSIONS)
    except (OSError, AssertionError, AttributeError):  # an SDK laid out otherwise: slower
        from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

        return tuple(HANDSHAKE_PROTOCOL_VERSIONS)


# -- the SDK's side ------------------------------------------------------------------------


class GuardedInput:
    """What the SDK's ``stdio_server`` reads: the replayed lines, then the wire, screened."""

    def __init__(self, wire: Wire, first: list[str], parse: Callable[[str], object]) -> None:
        self.wire = wire
        self.first = iter(first)
        self.parse = parse

    def __aiter__(self) -> GuardedInput:
        return self

    async def __anext__(self) -> str:
        import anyio.to_thread

        for text in self.first:
            return text
        while True:
            raw = await anyio.to_thread.run_sync(self.wire.readline, abandon_on_cancel=True)
            if not raw:
                raise StopAsyncIteration
            text = _decode(raw)
            screened = screen_for_sdk(text, self.parse)
            if screened.reply is not None:
                await anyio.to_thread.run_sync(self.wire.send, screened.reply)
            if screened.message is not None:
                return text


class GuardedOutput:
    """What the SDK's ``stdio_server`` writes to: the wire, minus its answer to the
    replayed ``initialize`` (checked against the early one)."""

    def __init__(self, wire: Wire, sent_initialize: dict[str, Any] | None) -> None:
        self.wire = wire
        self.sent_initialize = sent_initialize

    async def write(self, text: str) -> None:
        import anyio.to_thread

        if text.startswith(_REPLAY_PREFIX):
            self._check(text)
            return
        await anyio.to_thread.run_sync(self.wire.send, text.encode("utf-8"))

    async def flush(self) -> None:
        return None

    def _check(self, text: str) -> None:
        answer = orjson.loads(text)
        if answer.get("result") != self.sent_initialize:
            log.warning(
                "mcp.initialize_differs",
                early=self.sent_initialize,
                sdk=answer.get("result", answer.get("error")),
            )


def serve(store_url: str | None, project: str) -> None:
    """``lifecycle mcp``: open the store, then serve the tool table over stdio."""
    from lifecycle import __version__, keys
    from lifecycle.stores import open_store

    keys.validate_project(project)
    versions = sdk_versions()
    try:
        table = orjson.loads(PUBLISHED.read_bytes())
    except (OSError, orjson.JSONDecodeError):  # not installed with the package: build it
        from lifecycle.integrations.mcp_server import published

        table = published()
    tools = {"tools": table["tools"]}

    def initialize_result(version: str) -> dict[str, Any]:
        return {
            "protocolVersion": version,
            "capabilities": table["capabilities"],
            "serverInfo": {"name": "lifecycle", "version": __version__},
            "instructions": table["instructions"],
        }

    store = open_store(store_url)

    def load() -> tuple[Any, Callable[[str], object]]:
        from lifecycle.integrations import mcp_server

        if mcp_server.published() != table:
            log.warning("mcp.published_stale", file=str(PUBLISHED))
        return mcp_server.load(store, project)

    try:
        serve_stdio(load, EarlyAnswers(initialize_result, lambda: tools, versions))
    finally:
        store.close()


def serve_stdio(
    load: Callable[[], Any],
    early: EarlyAnswers,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> None:
    """Serve until the client closes stdin. ``load()`` imports the SDK and returns the
    ``(server, parse)`` pair: an ``mcp.server.lowlevel.Server`` and the SDK's parser of
    one line; it runs in a thread while the early answers are given."""
    loaded: dict[str, Any] = {}

    def background() -> None:
        try:
            loaded["value"] = load()
        except BaseException as exc:  # re-raised in the main thread
            loaded["error"] = exc

    thread = threading.Thread(target=background, name="lifecycle-mcp-import", daemon=True)
    thread.start()
    wire = Wire(stdin, stdout)
    try:
        first = early.run(wire)
        if first is None:
            return
        thread.join()
        if "error" in loaded:
            raise loaded["error"]
        server, parse = loaded["value"]
        import anyio
        from mcp.server.stdio import stdio_server

        async def main() -> None:
            source = GuardedInput(wire, first, parse)
            sink = GuardedOutput(wire, early.sent_initialize)
            async with stdio_server(stdin=source, stdout=sink) as (read, write):  # type: ignore[arg-type]
                await server.run(read, write, server.create_initialization_options())

        anyio.run(main)
    finally:
        wire.close()


__all__ = [
    "MAX_DEPTH",
    "PUBLISHED",
    "EarlyAnswers",
    "Screened",
    "Wire",
    "error_reply",
    "screen",
    "screen_for_sdk",
    "sdk_versions",
    "serve",
    "serve_stdio",
]


if __name__ == "__main__":  # python -m lifecycle.integrations.mcp_stdio: rewrite PUBLISHED
    from lifecycle.integrations.mcp_server import published

    PUBLISHED.write_bytes(orjson.dumps(published(), option=orjson.OPT_INDENT_2) + b"\n")
