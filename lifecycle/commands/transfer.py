"""``lifecycle export``, ``lifecycle import`` and ``lifecycle migrate``: records between stores."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import IO, Any


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    export = sub.add_parser(
        "export", help="write a project (default: every project) as JSON Lines (export-format.md)"
    )
    add_common(export)
    export.add_argument("--output", "-o", default=None, metavar="FILE", help="default: stdout")
    export.set_defaults(handler=cmd_export)

    imp = sub.add_parser("import", help="read an export into the store (checked first)")
    add_common(imp)
    imp.add_argument("file", metavar="FILE", help="an export file, or - for stdin")
    imp.add_argument(
        "--force", action="store_true", help="overwrite records even when the store's are newer"
    )
    imp.set_defaults(handler=cmd_import)

    mig = sub.add_parser(
        "migrate", help="copy a whole store (every project) into another; resumable, verified"
    )
    add_common(mig)
    mig.add_argument("--from", dest="source", required=True, metavar="URL")
    mig.add_argument("--to", dest="target", required=True, metavar="URL")
    mig.add_argument(
        "--force", action="store_true", help="overwrite records even when the target's are newer"
    )
    mig.add_argument(
        "--progress", action="store_true", help="a progress bar even when not on a terminal"
    )
    mig.set_defaults(handler=cmd_migrate)


def cmd_export(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from lifecycle.errors import LifecycleError
    from lifecycle.stores import open_store
    from lifecycle.transfer import export_store

    project = args.project or os.environ.get("LIFECYCLE_PROJECT") or None
    store = open_store(args.store)
    try:
        if args.output is None or args.output == "-":
            count = export_store(store, sys.stdout.buffer, project)
            sys.stdout.buffer.flush()
        else:
            # A temp file beside the target, renamed into place: never a half-written export.
            target = os.path.abspath(args.output)
            try:
                fd, temp = tempfile.mkstemp(
                    dir=os.path.dirname(target), prefix=".export-", suffix=".tmp"
                )
            except OSError as exc:
                raise LifecycleError(f"cannot write {args.output!r}: {exc.strerror}") from None
            try:
                with os.fdopen(fd, "wb") as out:
                    count = export_store(store, out, project)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, target)
            except BaseException:
                os.unlink(temp)
                raise
    finally:
        store.close()
    if args.output not in (None, "-"):
        what = f"project {project!r}" if project else "every project"
        sys.stderr.write(f"lifecycle: exported {count} records of {what} to {args.output}\n")
    return 0


def _spooled(path: str) -> IO[bytes]:
    """The export to read twice: the file itself, or stdin copied to a temp file."""
    import shutil
    import tempfile

    from lifecycle.errors import LifecycleError

    if path == "-":
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - returned; closed by the caller
        shutil.copyfileobj(sys.stdin.buffer, spool)
        spool.seek(0)
        return spool
    try:
        return open(path, "rb")  # closed by the caller
    except OSError as exc:
        raise LifecycleError(f"cannot read {path!r}: {exc.strerror}") from None


def cmd_import(args: argparse.Namespace) -> int:
    from lifecycle.commands.base import emit
    from lifecycle.stores import open_store
    from lifecycle.transfer import import_file
    from lifecycle.transfer.format import verify

    source = _spooled(args.file)
    try:
        checked = verify(source)  # a bad file is refused before the store is even opened
        source.seek(0)
        store = open_store(args.store)
        try:
            result = import_file(
                store, source, project=args.project, force=args.force, checked=checked
            )
        finally:
            store.close()
    finally:
        source.close()
    text = (
        f"imported {result.total} records: {result.written} written, {result.unchanged} "
        f"unchanged, {len(result.kept)} kept (the store's are newer; --force overwrites)"
    )
    emit(args, result.as_dict(), text)
    return 0


class Bar:
    """Progress on stderr: a bar redrawn in place on a terminal, a plain line per tenth
    otherwise."""

    def __init__(self, label: str, *, tty: bool) -> None:
        self.label = label
        self.tty = tty
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        total = max(total, 1)
        if self.tty:
            width = 30
            filled = width * done // total
            sys.stderr.write(
                f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
            )
            if done >= total:
                sys.stderr.write("\n")
        else:
            tenth = 10 * done // total
            if tenth == self.shown:
                return
            self.shown = tenth
            sys.stderr.write(f"{self.label}: {done}/{total} keys ({100 * done // total}%)\n")
        sys.stderr.flush()


def cmd_migrate(args: argparse.Namespace) -> int:
    from lifecycle.commands.base import emit
    from lifecycle.stores import open_store
    from lifecycle.transfer import migrate

    tty = sys.stderr.isatty()
    source = open_store(args.source)
    try:
        target = open_store(args.target)
        try:
            result = migrate(
                source, target, force=args.force, progress=Bar("migrate", tty=tty or args.progress)
            )
        finally:
            target.close()
    finally:
        source.close()
    c = result.copy
    text = (
        f"migrated {c.total} keys from {source.url} to {target.url}: {c.written} written, "
        f"{c.unchanged} already there, {len(c.kept)} kept (newer in the target); "
        f"verified {result.verified} ({result.source_checksum})"
    )
    emit(args, result.as_dict(), text)
    return 0
