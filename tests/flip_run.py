"""Every single-bit flip of a real checkpoint, in the file store and in an SQLite row.

    python -m tests.flip_run

File store: every bit of the checkpoint's record file (header and value). SQLite:
every bit of the row's value, the 64 bytes before it (the cell header and the key)
and its version and checksum, in the database file, and when the row continues on an
overflow page, every bit of that page and of the rest of the row's own page. A
flip is *detected* when the
read refuses it (CorruptRecord, or the database will not open or read), *harmless*
when the read returns the exact checkpoint, and *restored as intact* when the read
returns different bytes as if they were the checkpoint: that count must be 0.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifecycle.logs import configure

configure("off")

from test_row_checksums import flip_sweep  # noqa: E402

from lifecycle import SessionManager  # noqa: E402
from lifecycle.errors import CorruptRecord  # noqa: E402
from lifecycle.stores.file import decode_record, encode_record  # noqa: E402


def checkpoint_bytes() -> bytes:
    m = SessionManager(
        store="memory://", project="p", clock=lambda: datetime(2026, 1, 25, tzinfo=UTC)
    )
    m.start_session(restore=False)
    for i in range(5):
        m.add_task(f"T{i}", f"task {i}", status="in_progress")
    m.record_decision("use the lease", rationale="the store decides")
    result = m.create_checkpoint(phase="Phase 2", progress={"completed": 5}, context={"k": "v"})
    entry = m.store.get(result.key or "")
    assert entry is not None
    return entry.value


def file_sweep(value: bytes) -> tuple[int, int, int]:
    data = encode_record(1, value)
    flips = detected = wrong = 0
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        flips += 1
        try:
            _, got = decode_record("k", bytes(flipped))
        except CorruptRecord:
            detected += 1
            continue
        wrong += got != value
    return flips, detected, wrong


def main() -> int:
    value = checkpoint_bytes()
    began = time.monotonic()
    flips, detected, wrong = file_sweep(value)
    print(
        f"file store: checkpoint of {len(value)} bytes, flips {flips}, detected {detected}, "
        f"restored as intact {wrong}, seconds {time.monotonic() - began:.1f}"
    )
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        sflips, swrong = flip_sweep(Path(tmp), window=64, value=value)
    print(
        f"sqlite: checkpoint row of {len(value)} bytes, flips {sflips}, "
        f"restored as intact {swrong}, seconds {time.monotonic() - began:.1f}"
    )
    return 1 if wrong or swrong else 0


if __name__ == "__main__":
    sys.exit(main())
