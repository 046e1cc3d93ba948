"""Disk full at every level: a 2 MiB tmpfs filled to N free pages, then a save and an end.

    sudo python -m tests.diskfull_run --levels 40 [--store sqlite]   (mounting needs root)

For each level N (0 .. levels-1 free 4 KiB pages): a fresh tmpfs holds a file store
with an open session and one acknowledged checkpoint; a filler file takes all but N
pages; then ``checkpoint save`` and ``session end`` run. Afterwards (filler removed):

- the acknowledged checkpoint (or a newer one) must still be readable;
- an end that exited 0 must have closed the session; one that did not close it must
  have exited non-zero (a failed end reported as success is a *silent failure*);
- no command may exit 70 or hang (each has a timeout).

Prints one line per level and the totals; exits 1 on any silent failure, unreadable
checkpoint or exit 70.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60
PAGE = 4096


def run(args: list[str], cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args, "--store", url],
        cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        timeout=TIMEOUT, check=False,
    )  # fmt: skip


def fill(folder: Path, free_pages: int) -> Path:
    """A file that takes every page of ``folder``'s file system but ``free_pages``."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * PAGE)
    except OSError:
        pass
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - free_pages * PAGE))
    return filler


def level(mount: Path, cwd: Path, free_pages: int, kind: str = "file") -> dict[str, object]:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True,
                   timeout=TIMEOUT)  # fmt: skip
    try:
        url = f"file://{mount}/lc" if kind == "file" else f"sqlite:///{mount}/lc.db"
        assert run(["session", "start"], cwd, url).returncode == 0
        first = run(["checkpoint", "save", "--phase", "acked", "--format", "json"], cwd, url)
        acked = json.loads(first.stdout)["checkpoint_id"]
        filler = fill(mount, free_pages)
        save = run(["checkpoint", "save", "--phase", "late"], cwd, url)
        end = run(["session", "end"], cwd, url)
        full_status = run(["status"], cwd, url)  # reading needs no free page
        filler.unlink()
        status = run(["status", "--format", "json"], cwd, url)
        data = json.loads(status.stdout)
        still_open = bool(data.get("session_id"))
        from lifecycle import SessionManager, open_store
        from lifecycle.errors import LifecycleError

        store = open_store(url)
        try:  # the newest valid checkpoint: the acknowledged one, or a newer one
            cp = SessionManager(store=store, project=cwd.name).read_checkpoint()
            readable = cp.phase in ("acked", "late")
        except LifecycleError:
            readable = False
        finally:
            store.close()
        return {
            "free_pages": free_pages,
            "save": save.returncode,
            "end": end.returncode,
            "exit_70": 70 in (save.returncode, end.returncode, status.returncode),
            "status_on_full_disk": full_status.returncode,
            "silent_failure": end.returncode == 0 and still_open,
            "checkpoint_readable": readable,
            "acked": acked,
        }
    finally:
        subprocess.run(["umount", str(mount)], check=False, timeout=TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.diskfull_run", description=__doc__)
    parser.add_argument("--levels", type=int, default=40)
    parser.add_argument("--store", choices=("file", "sqlite"), default="file")
    args = parser.parse_args(argv)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="lifecycle-full-") as tmp:
        mount, cwd = Path(tmp) / "mnt", Path(tmp) / "cwd"
        mount.mkdir()
        cwd.mkdir()
        rows = [level(mount, cwd, n, args.store) for n in range(args.levels)]
    for row in rows:
        print(
            f"free pages {row['free_pages']}: save exit {row['save']}, end exit {row['end']}, "
            f"status on the full disk exit {row['status_on_full_disk']}, "
            f"checkpoint readable {row['checkpoint_readable']}, "
            f"silent failure {row['silent_failure']}"
        )
        bad += bool(row["exit_70"] or row["silent_failure"] or not row["checkpoint_readable"])
        bad += row["status_on_full_disk"] != 0
    ended = sum(1 for r in rows if r["end"] == 0)
    print(
        f"levels {len(rows)}: ends that succeeded {ended}, failed ends exiting non-zero "
        f"{len(rows) - ended}, silent failures {sum(bool(r['silent_failure']) for r in rows)}, "
        f"unreadable checkpoints {sum(not r['checkpoint_readable'] for r in rows)}, "
        f"exit 70 {sum(bool(r['exit_70']) for r in rows)}, "
        f"status failing on the full disk {sum(r['status_on_full_disk'] != 0 for r in rows)}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
