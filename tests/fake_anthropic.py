"""A scripted Anthropic Messages API on 127.0.0.1, for driving the real Claude Code CLI.

Claude Code talks to ``$ANTHROPIC_BASE_URL``: ``POST /v1/messages`` with
``"stream": true`` and expects server-sent events (``message_start``,
``content_block_start`` / ``_delta`` / ``_stop``, ``message_delta``,
``message_stop``). This server answers from a script: for each prompt (matched by a
substring of the conversation's latest user prompt), the list of assistant turns to
give, one per request, in order. A turn is text, or tool calls that Claude Code runs
for real (Write, Edit, Bash, TaskCreate, ...) before it sends the results back in
the next request. A request the script does not cover (a title, a compaction
summary, the end of a script) is answered with plain text.

Every request body is kept (``requests``) and, when given a folder, appended to
``requests.jsonl`` there. The server stops by itself after ``max_requests`` requests
or ``max_seconds`` seconds, whichever comes first, so a test that goes wrong cannot
leave it running.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: A tool call in a script: (tool name, input), or a callable that builds the input
#: from the request body (for a tool whose input depends on an earlier result).
ToolCall = tuple[str, dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]]
#: One assistant turn: its text, or its tool calls.
Turn = str | Sequence[ToolCall]

_ids = itertools.count(1)


def prompt_text(message: dict[str, Any]) -> str | None:
    """The text a user message carries when it is a prompt (not tool results)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(texts) if texts else None


def latest_prompt(body: dict[str, Any]) -> tuple[str, int]:
    """The conversation's latest user prompt and how many assistant turns followed it."""
    messages = body.get("messages") or []
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.get("role") == "user":
            text = prompt_text(m)
            if text is not None:
                after = sum(1 for later in messages[i + 1 :] if later.get("role") == "assistant")
                return text, after
    return "", 0


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last user message."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1].get("content"), list):
        return []
    return [
        b for b in messages[-1]["content"] if isinstance(b, dict) and b.get("type") == "tool_result"
    ]


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream(model: str, blocks: list[dict[str, Any]], stop_reason: str) -> Iterator[bytes]:
    """The server-sent events of one assistant message made of ``blocks``."""
    msg_id = f"msg_fake_{next(_ids):04d}"
    yield _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 10, "output_tokens": 1},
            },
        },
    )
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            yield _sse(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": block["text"]},
                },
            )
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield _sse(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            yield _sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {
                        "type": "input_json_delta",
                        "partial_json": json.dumps(block["input"]),
                    },
                },
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
    yield _sse(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    )
    yield _sse("message_stop", {"type": "message_stop"})


class FakeAnthropic:
    """The server; use as a context manager (``url`` is ``ANTHROPIC_BASE_URL``)."""

    def __init__(
        self,
        script: dict[str, Sequence[Turn]] | None = None,
        *,
        log_dir: Path | None = None,
        max_requests: int = 200,
        max_seconds: float = 600.0,
    ) -> None:
        self.script: dict[str, Sequence[Turn]] = dict(script or {})
        self.requests: list[dict[str, Any]] = []
        self.log_dir = log_dir
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.stopped_because: str | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._timer = threading.Timer(max_seconds, self._stop, args=("time",))
        self._timer.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAnthropic:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop("closed")

    def _stop(self, why: str) -> None:
        with self._lock:
            if self.stopped_because is not None:
                return
            self.stopped_because = why
        self._timer.cancel()
        # shutdown() waits for serve_forever; from a handler thread that would deadlock
        closer = threading.Thread(target=self._close, daemon=True)
        closer.start()
        if why == "closed":
            closer.join(10)

    def _close(self) -> None:
        """Stop serving and close the listening socket: later connections are refused."""
        self._server.shutdown()
        self._server.server_close()

    # -- what a request gets ------------------------------------------------------------

    def conversation(self) -> list[dict[str, Any]]:
        """The requests that carried tools: the agent's own turns (not titles or summaries)."""
        with self._lock:
            return [r for r in self.requests if r.get("tools")]

    def answer(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        prompt, turn = latest_prompt(body)
        if body.get("tools"):
            for needle, turns in self.script.items():
                if needle in prompt and turn < len(turns):
                    step = turns[turn]
                    if isinstance(step, str):
                        return [{"type": "text", "text": step}], "end_turn"
                    blocks = []
                    for name, tool_input in step:
                        value = tool_input(body) if callable(tool_input) else tool_input
                        blocks.append(
                            {
                                "type": "tool_use",
                                "id": f"toolu_fake_{next(_ids):04d}",
                                "name": name,
                                "input": value,
                            }
                        )
                    return blocks, "tool_use"
        if "summar" in prompt.lower():
            return [
                {"type": "text", "text": "<summary>The work so far, summarized.</summary>"}
            ], "end_turn"
        return [{"type": "text", "text": "Done."}], "end_turn"

    def _record(self, body: dict[str, Any]) -> int:
        with self._lock:
            self.requests.append(body)
            n = len(self.requests)
        if self.log_dir is not None:
            with (self.log_dir / "requests.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(body) + "\n")
        return n

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._json(
                    404,
                    {"type": "error", "error": {"type": "not_found_error", "message": self.path}},
                )

            do_HEAD = do_GET

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                path = self.path.split("?", 1)[0]
                if path.endswith("/count_tokens"):
                    self._json(200, {"input_tokens": 100})
                    return
                if not path.endswith("/v1/messages"):
                    self._json(
                        404,
                        {"type": "error", "error": {"type": "not_found_error", "message": path}},
                    )
                    return
                n = fake._record(body)
                if n >= fake.max_requests:
                    fake._stop("requests")
                blocks, stop_reason = fake.answer(body)
                model = str(body.get("model") or "claude-fake")
                if not body.get("stream"):
                    self._json(
                        200,
                        {
                            "id": f"msg_fake_{next(_ids):04d}",
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": blocks,
                            "stop_reason": stop_reason,
                            "stop_sequence": None,
                            "usage": {"input_tokens": 10, "output_tokens": 5},
                        },
                    )
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                for chunk in stream(model, blocks, stop_reason):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                self.close_connection = True

        return Handler


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
