"""``lifecycle show CHECKPOINT_ID`` and ``lifecycle diff A [B]``: checkpoints, read by people."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    show = sub.add_parser(
        "show", help="one checkpoint: type, trigger, phase, progress, tasks, decisions, files, ..."
    )
    add_common(show)
    show.add_argument(
        "checkpoint", metavar="CHECKPOINT_ID", help="an id (cp-...), a key, or latest"
    )
    show.set_defaults(handler=cmd_show)

    diff = sub.add_parser("diff", help="what changed between two checkpoints")
    add_common(diff)
    diff.add_argument("a", metavar="A", help="a checkpoint id (cp-...), a key, or latest")
    diff.add_argument(
        "b",
        metavar="B",
        nargs="?",
        default="now",
        help="another, or now: the open session's state (default; the latest checkpoint "
        "when no session is open)",
    )
    diff.set_defaults(handler=cmd_diff)


def _project_store(args: argparse.Namespace) -> Any:
    from lifecycle.commands.base import project_name
    from lifecycle.stores import ProjectStore, open_store

    return ProjectStore(open_store(args.store), project_name(args))


def cmd_show(args: argparse.Namespace) -> int:
    from lifecycle.checkpoint_view import describe, read_checkpoint, show_text
    from lifecycle.commands.base import emit

    store = _project_store(args)
    try:
        cp = read_checkpoint(store, args.checkpoint)
    finally:
        store.close()
    emit(args, describe(cp), show_text(cp))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from lifecycle.checkpoint_view import diff, read_state
    from lifecycle.commands.base import emit

    store = _project_store(args)
    try:
        a, b = read_state(store, args.a), read_state(store, args.b)
    finally:
        store.close()
    change = diff(a, b)
    emit(args, change.as_dict(), change.text())
    return 0
