"""Start-up and round trips of ``lifecycle mcp`` over stdio, as a client sees them.

    PYTHONPATH=$PWD python bench/mcp_startup.py [runs]

A bare JSON-RPC client on the server's pipes (no client library in the way) measures:

- **first tools/list**: from spawning the process to the answer of the first
  ``tools/list`` (after ``initialize`` and ``notifications/initialized``), median of
  ``runs`` fresh processes (default 10), on a file store in a temporary folder;
- **round trips** in one running server: ``ping`` (the transport floor),
  ``tools/call session_status`` and ``tools/call session_save``, medians of 50.

Beside them: the floor of a bare Python process, one that only imports the ``mcp``
SDK's stdio transport (what a server that loads the SDK first waits for), and the peer
``@modelcontextprotocol/server-memory`` (node, from ``tests/mcp_clients/node_modules``
when installed there).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "tests" / "mcp_clients" / "node_modules" / "@modelcontextprotocol" / "server-memory"


class Client:
    """JSON-RPC over a child's stdin/stdout, one line per message."""

    def __init__(self, argv: list[str], cwd: str, env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"server closed the pipe waiting for {method}")
            answer = json.loads(line)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise SystemExit(f"{method}: {answer['error']}")
                return dict(answer["result"])

    def open(self) -> None:
        self.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def first_list(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    client = Client(argv, cwd, env)
    try:
        client.open()
        client.request("tools/list")
        return time.perf_counter() - client.started
    finally:
        client.close()


def round_trips(client: Client, method: str, params: dict[str, Any] | None, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        answer = client.request(method, params)
        times.append(time.perf_counter() - start)
        if answer.get("isError"):
            raise SystemExit(f"{method} {params}: {answer}")
    return statistics.median(times)


def process(argv: list[str], cwd: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, timeout=60, capture_output=True)
    return time.perf_counter() - start


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "CLAUDE_"))}
    env["PYTHONPATH"] = str(ROOT)
    with tempfile.TemporaryDirectory() as folder:
        server = [
            sys.executable,
            "-m",
            "lifecycle",
            "mcp",
            "--store",
            f"file://{folder}/.lifecycle",
        ]
        floor = [sys.executable, "-c", "import mcp.server.stdio"]
        bare = [sys.executable, "-c", "pass"]
        first_list(server, folder, env)  # compile and cache what the first run would
        lists = [first_list(server, folder, env) for _ in range(runs)]
        floors = [process(floor, folder, env) for _ in range(runs)]
        bares = [process(bare, folder, env) for _ in range(runs)]
        peer = None
        if PEER.is_dir():
            peer_argv = ["node", str(PEER / "dist" / "index.js")]
            peer_env = {**env, "MEMORY_FILE_PATH": f"{folder}/memory.jsonl"}
            peer = statistics.median(first_list(peer_argv, folder, peer_env) for _ in range(runs))

        client = Client(server, folder, env)
        try:
            client.open()
            call = "tools/call"
            client.request(call, {"name": "session_load", "arguments": {"command": "bench"}})
            ping = round_trips(client, "ping", None, 50)
            status = round_trips(client, call, {"name": "session_status", "arguments": {}}, 50)
            save = round_trips(
                client, call, {"name": "session_save", "arguments": {"phase": "bench"}}, 50
            )
        finally:
            client.close()

    spread = f"(min {ms(min(lists)).strip()}, max {ms(max(lists)).strip()})"
    print(f"first tools/list, {runs} fresh processes")
    print(f"  lifecycle mcp                      {ms(statistics.median(lists))}  {spread}")
    print(f"  floor: python -c pass                {ms(statistics.median(bares))}")
    print(f"  python -c 'import mcp.server.stdio'  {ms(statistics.median(floors))}")
    if peer is not None:
        print(f"  peer: @modelcontextprotocol/server-memory {ms(peer)}")
    print("round trips in one server, median of 50")
    print(f"  ping (transport floor)             {ms(ping)}")
    print(f"  tools/call session_status          {ms(status)}")
    print(f"  tools/call session_save            {ms(save)}")


if __name__ == "__main__":
    main()
