"""A writer process for the crash harness: creates checkpoints until it is killed.

Run as ``python tests/crash_writer.py URL PROJECT``. It opens the store, starts a
session restoring the latest checkpoint (so every run continues the previous,
killed one), prints ``ready <restored id or ->``, then loops: record a little work,
``create_checkpoint``, and print ``ack <checkpoint id> <key>`` (flushed) after
``create_checkpoint`` returns with the checkpoint written. A line is printed only
after the write is acknowledged, so every ``ack`` line names a checkpoint the
store promised to keep. A checkpoint that was not written (a store fault) prints
``nack <error>``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    url, project = argv[1], argv[2]
    limit = int(argv[3]) if len(argv) > 3 else 0  # 0: until killed
    from lifecycle import SessionManager, open_store
    from lifecycle.logs import configure

    configure()  # warnings on stderr; stdout carries only the ack lines
    store = open_store(url)
    manager = SessionManager(store=store, project=project)
    start = manager.start_session(command="crash-writer", restore=True)
    out = sys.stdout
    out.write(f"ready {start.checkpoint_id or '-'}\n")
    out.flush()
    n = int(manager.progress.get("n", 0)) if isinstance(manager.progress.get("n"), int) else 0
    pid = os.getpid()
    written = 0
    while not limit or written < limit:
        n += 1
        manager.add_task(f"T{n % 5}", f"task {n} of writer {pid}", status="in_progress")
        manager.record_file_change(f"src/file_{n % 17}.py", ["edit"], changes=n)
        result = manager.create_checkpoint(
            phase=f"phase {n // 50}", progress={"n": n}, context={"writer": pid}
        )
        if result.written:
            out.write(f"ack {result.checkpoint_id} {result.key}\n")
            written += 1
        else:
            out.write(f"nack {result.error}\n")
        out.flush()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
