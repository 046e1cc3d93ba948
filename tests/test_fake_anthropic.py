"""The scripted Messages API the Claude Code tests drive: streams what the script says,
logs every request body, and stops by itself (bounded in requests and in time)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fake_anthropic import FakeAnthropic, wait_for


def post(url: str, body: dict[str, object]) -> str:
    req = urllib.request.Request(
        url + "/v1/messages", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def ask(prompt: str, *assistant_turns: str) -> dict[str, object]:
    messages: list[dict[str, object]] = [{"role": "user", "content": prompt}]
    for turn in assistant_turns:
        messages += [
            {"role": "assistant", "content": turn},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}],
            },
        ]
    return {"model": "m", "stream": True, "tools": [{"name": "Bash"}], "messages": messages}


def test_the_script_is_streamed_turn_by_turn_and_every_body_is_logged(tmp_path: Path) -> None:
    script = {"build": [[("Bash", {"command": "make"})], "Built."]}
    with FakeAnthropic(script, log_dir=tmp_path) as fake:
        first = post(fake.url, ask("please build"))
        second = post(fake.url, ask("please build", "tool call"))
    assert '"name": "Bash"' in first and '"partial_json": "{\\"command\\": \\"make\\"}"' in first
    assert '"stop_reason": "tool_use"' in first
    assert '"text": "Built."' in second and '"stop_reason": "end_turn"' in second
    logged = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert logged == fake.requests and len(logged) == 2


def test_it_stops_after_max_requests(tmp_path: Path) -> None:
    with FakeAnthropic({}, max_requests=2) as fake:
        post(fake.url, ask("a"))
        post(fake.url, ask("b"))
        assert wait_for(lambda: fake.stopped_because == "requests", 5)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            post(fake.url, ask("c"))


def test_it_stops_after_max_seconds() -> None:
    with FakeAnthropic({}, max_seconds=0.2) as fake:
        assert wait_for(lambda: fake.stopped_because == "time", 5)
