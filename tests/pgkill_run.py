"""PostgreSQL killed mid-run: through the fallback store, nothing acknowledged is lost.

    python -m tests.pgkill_run --checkpoints 300

One process writes ``--checkpoints`` checkpoints to a session on a fallback store
whose primary is a throwaway PostgreSQL server (tests/pgserver.py). A third of the
way in the server is stopped with ``pg_ctl -m immediate`` (a crash: no shutdown
checkpoint); for the middle third every checkpoint is written by a fallback store
opened afresh while the server is down (as every CLI command and hook does); then
the server is started again and the first writer, never restarted, goes on. At the
end the queue must be empty and every acknowledged checkpoint readable, with its id,
from PostgreSQL directly. Prints the counts; exits 1 on any loss.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lifecycle.logs import configure

configure("off")

from pgserver import PostgresServer  # noqa: E402

from lifecycle import SessionManager, codec, open_store  # noqa: E402
from lifecycle.records import Checkpoint  # noqa: E402
from lifecycle.stores.fallback import fallback_url  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pgkill_run", description=__doc__)
    parser.add_argument("--checkpoints", type=int, default=300)
    args = parser.parse_args(argv)
    n = args.checkpoints
    server = PostgresServer()
    began = time.monotonic()
    try:
        primary = server.setup()
        with tempfile.TemporaryDirectory(prefix="lifecycle-pgkill-") as tmp:
            url = fallback_url(primary, str(Path(tmp) / "local"))
            store = open_store(url)
            m = SessionManager(store=store, project="p")
            m.start_session(restore=False)
            acked: dict[str, str] = {}
            opened_while_down = 0
            for i in range(n):
                if i == n // 3:
                    server._run("pg_ctl", "-D", str(server.datadir), "-m", "immediate", "stop")
                    server.running = False
                if n // 3 <= i < 2 * n // 3:  # a new process's store, opened while down
                    fresh = open_store(url)
                    other = SessionManager(store=fresh, project="p")
                    other.start_session(restore=False)
                    result = other.create_checkpoint(progress={"i": i})
                    fresh.close()
                    opened_while_down += 1
                else:
                    if i == 2 * n // 3:
                        server.start()
                    m.add_task(f"T{i}", "work")
                    result = m.create_checkpoint(progress={"i": i})
                if result.written and result.key and result.checkpoint_id:
                    acked[result.key] = result.checkpoint_id
            m.end_session()
            pending = store.pending()  # type: ignore[attr-defined]
            store.close()
        direct = open_store(primary)
        lost = 0
        for key, cp_id in acked.items():
            entry = direct.get(f"p/{key}")
            if entry is None or codec.decode(Checkpoint, entry.value).id != cp_id:
                lost += 1
        direct.close()
    finally:
        server.cleanup()
    print(
        f"checkpoints {n}: acknowledged {len(acked)}, written by stores opened while the "
        f"server was down {opened_while_down}, queue left {pending}, acknowledged lost {lost}, "
        f"restarts of the writer 0, seconds {time.monotonic() - began:.1f}"
    )
    return 1 if lost or pending else 0


if __name__ == "__main__":
    sys.exit(main())
