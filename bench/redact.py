"""What redaction adds to storing a record: ``redact_json`` on a 12 KB checkpoint-like
JSON document against ``orjson.dumps`` of it (the floor), warm (the strings seen before,
as for successive checkpoints of one session) and cold (every string new, as in a
hook's first write).

    .venv/bin/python bench/redact.py
"""

from __future__ import annotations

import json
import timeit

import orjson

from lifecycle import redact


def document(files: int) -> dict[str, object]:
    return {
        "state": {
            "files_modified": [
                {"path": f"src/mod{i}/file_{i}.py", "operations": ["edit"]} for i in range(files)
            ],
            "tasks": [
                {"id": f"T{i}", "description": "Write the parser for the task list and the key"}
                for i in range(40)
            ],
        }
    }


def main() -> None:
    obj = document(151)
    raw = json.dumps(obj).encode()
    redact.redact_json(json.dumps(document(150)).encode())  # the checkpoint before
    n = 2000

    def cold() -> None:
        redact._clean.clear()
        redact.redact_json(raw)

    rows = [
        ("orjson.dumps (floor)", timeit.timeit(lambda: orjson.dumps(obj), number=n) / n),
        ("redact_json, warm", timeit.timeit(lambda: redact.redact_json(raw), number=n) / n),
        ("redact_json, cold", timeit.timeit(cold, number=n // 10) / (n // 10)),
    ]
    print(f"document: {len(raw):,} bytes")
    for name, seconds in rows:
        print(f"{name:24} {seconds * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
