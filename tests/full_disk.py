"""A store on a file system that is really full: a 2 MiB tmpfs filled to N free pages.

    python tests/full_disk.py --store sqlite --free-pages 4 -- status -- checkpoint save

Mounting needs root. :func:`on_full_disk` runs this script in a mount namespace of its
own (``unshare --mount`` as root, ``unshare --user --map-root-user --mount`` as anyone
where user namespaces are allowed), so the tmpfs vanishes with the process and nothing
is left mounted. Inside, the script:

1. mounts the tmpfs, and in a project folder beside it (on the ordinary disk) runs
   ``session start`` and ``checkpoint save --phase acked`` on a store in the tmpfs;
2. fills the tmpfs until only ``--free-pages`` 4 KiB pages are left;
3. runs each command given (``--`` before each; ``python CODE`` runs ``python -c CODE
   URL``), recording its exit status, output,
   and whether the store's files changed (their bytes, SQLite's ``-shm`` index aside);
4. removes the filler and runs ``status --format json`` and ``checkpoint save`` again.

It prints one JSON object: ``acked`` (the checkpoint id), ``runs`` (per command:
``args``, ``code``, ``stdout``, ``stderr``, ``changed``), ``after`` (the status once
there is room again, parsed) and ``save_after`` (that save's exit status).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import procs
from diskfull_run import fill as _fill

HERE = Path(__file__).resolve()


def _namespace() -> list[str]:
    """The unshare command line that gives this process a mount namespace of its own."""
    unshare = shutil.which("unshare")
    if unshare is None:
        raise RuntimeError("tests/full_disk.py needs util-linux's unshare to mount a tmpfs")
    if os.geteuid() == 0:
        return [unshare, "--mount"]
    return [unshare, "--user", "--map-root-user", "--mount"]


def on_full_disk(store: str, free_pages: int, commands: list[list[str]]) -> dict[str, Any]:
    """Run the scenario (the module docstring) in a namespace of its own; what it saw."""
    words = [w for command in commands for w in ("--", *command)]
    done = subprocess.run(
        [*_namespace(), sys.executable, str(HERE), "--store", store,
         "--free-pages", str(free_pages), *words],
        capture_output=True, text=True, timeout=300, check=False, env=procs.environment(),
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the full-disk scenario failed ({done.returncode}): {done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _contents(folder: Path) -> dict[str, str]:
    """Each file's digest, but the filler's and SQLite's shared-memory index's."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != "filler" and not path.name.endswith("-shm")
    }


def _scenario(store: str, free_pages: int, commands: list[list[str]]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lifecycle-full-disk-") as tmp:
        mount, project = Path(tmp) / "mnt", Path(tmp) / "proj"
        mount.mkdir()
        project.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                       check=True, timeout=60)  # fmt: skip
        try:
            return _on(mount, project, store, free_pages, commands)
        finally:
            subprocess.run(["umount", str(mount)], check=False, timeout=60)


def _on(
    mount: Path, project: Path, store: str, free_pages: int, commands: list[list[str]]
) -> dict[str, Any]:
    url = f"sqlite:///{mount}/lc.db" if store == "sqlite" else f"file://{mount}/lc"

    def cli(args: list[str]) -> subprocess.CompletedProcess[str]:
        return procs.run([*args, "--store", url], cwd=project)

    started = cli(["session", "start"])
    if started.returncode != 0:
        raise RuntimeError(f"session start failed: {started.stderr}")
    acked = json.loads(cli(["checkpoint", "save", "--phase", "acked", "--format", "json"])
                       .stdout)["checkpoint_id"]  # fmt: skip
    filler = _fill(mount, free_pages)
    runs = []
    for args in commands:
        args = [acked if word == "ACKED" else word for word in args]
        before = _contents(mount)
        if args[0] == "python":  # a library check: python -c CODE URL
            done = subprocess.run(
                [sys.executable, "-c", args[1], url], cwd=project, capture_output=True,
                text=True, timeout=60, check=False, env=procs.environment(),
            )  # fmt: skip
        else:
            done = cli(args)
        runs.append({
            "args": args, "code": done.returncode, "stdout": done.stdout,
            "stderr": done.stderr, "changed": _contents(mount) != before,
        })  # fmt: skip
    filler.unlink()
    after = cli(["status", "--format", "json"])
    save_after = cli(["checkpoint", "save", "--phase", "after"])
    return {
        "acked": acked,
        "runs": runs,
        "after": json.loads(after.stdout) if after.returncode == 0 else after.stderr,
        "save_after": save_after.returncode,
    }


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    split = words.index("--") if "--" in words else len(words)
    parser = argparse.ArgumentParser(prog="tests/full_disk.py", description=__doc__)
    parser.add_argument("--store", choices=("file", "sqlite"), default="sqlite")
    parser.add_argument("--free-pages", type=int, default=0)
    args = parser.parse_args(words[:split])
    commands: list[list[str]] = []
    for word in words[split:]:
        if word == "--":
            commands.append([])
        else:
            commands[-1].append(word)
    print(json.dumps(_scenario(args.store, args.free_pages, commands)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
