"""``lifecycle rewind``: restore the work tree's files from a checkpoint's snapshot."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    rewind = sub.add_parser(
        "rewind",
        help="restore the work tree's files from a checkpoint's git snapshot",
        description="Restore the files of CHECKPOINT_ID's snapshot of the work tree "
        "(taken at risk checkpoints). Never moves HEAD or touches the index; the state "
        "it replaces is kept, and `lifecycle rewind --undo` brings it back.",
    )
    add_common(rewind)
    rewind.add_argument(
        "checkpoint_id",
        nargs="?",
        metavar="CHECKPOINT_ID",
        help="the checkpoint whose snapshot to restore (`lifecycle history` marks them "
        "[snapshot]); before --paths",
    )
    rewind.add_argument(
        "--undo", action="store_true", help="restore the state the last rewind replaced"
    )
    rewind.add_argument(
        "--dry-run", action="store_true", help="print what would change; change nothing"
    )
    rewind.add_argument(
        "--paths",
        nargs="+",
        default=[],
        metavar="P",
        help="only these files or folders (relative to here, or to --work-tree)",
    )
    rewind.add_argument(
        "--delete-new",
        action="store_true",
        help="also delete the files created since the snapshot (kept by default)",
    )
    rewind.add_argument(
        "--work-tree", default=None, metavar="DIR", help="the git work tree (default: here)"
    )
    rewind.set_defaults(handler=cmd_rewind)


def cmd_rewind(args: argparse.Namespace) -> int:
    from lifecycle.commands.base import emit, project_name
    from lifecycle.rewind import RewindRefused, rewind

    if args.undo == (args.checkpoint_id is not None):
        raise RewindRefused("name a CHECKPOINT_ID or give --undo (one of the two)")
    project = project_name(args)
    from lifecycle.stores import ProjectStore, open_store

    # Opened for --undo too: the store's own files are left out of every snapshot.
    store = ProjectStore(open_store(args.store), project)
    try:
        result = rewind(
            store,
            project,
            args.checkpoint_id,
            undo=args.undo,
            paths=args.paths,
            delete_new=args.delete_new,
            dry_run=args.dry_run,
            work_tree=args.work_tree,
        )
    finally:
        store.close()
    emit(args, result.as_dict(), "\n".join(result.lines()))
    if not result.complete:
        sys.stderr.write(
            f"lifecycle: {len(result.blocked)} file(s) not restored: a file or folder created "
            "since the snapshot is in the way (--delete-new removes it)\n"
        )
        return 1
    return 0
