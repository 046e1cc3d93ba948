"""``lifecycle history`` (the checkpoint tree) and ``lifecycle prune`` (retention)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    history = sub.add_parser(
        "history", help="the checkpoint history as a tree (branches by parent id)"
    )
    add_common(history)
    history.set_defaults(handler=cmd_history)

    prune = sub.add_parser(
        "prune", help="archive sessions older than 30 days, prune those older than 90"
    )
    add_common(prune)
    prune.add_argument(
        "--dry-run", action="store_true", help="list what would change; change nothing"
    )
    prune.add_argument(
        "--archive-after",
        type=_days,
        default=30.0,
        metavar="DAYS",
        help="move sessions older than DAYS to session/history/ (default 30)",
    )
    prune.add_argument(
        "--prune-after",
        type=_days,
        default=90.0,
        metavar="DAYS",
        help="delete sessions and their checkpoints older than DAYS (default 90)",
    )
    prune.add_argument(
        "--summaries-after",
        type=_days,
        default=None,
        metavar="DAYS",
        help="also delete daily and weekly summaries and daily decision segments older "
        "than DAYS (default: they stay)",
    )
    prune.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal",
    )
    prune.set_defaults(handler=cmd_prune)


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: days must be a finite number >= 0")
    return value


def _project_store(args: argparse.Namespace) -> Any:
    from lifecycle.commands.base import project_name
    from lifecycle.stores import ProjectStore, open_store

    return ProjectStore(open_store(args.store), project_name(args))


def cmd_history(args: argparse.Namespace) -> int:
    from lifecycle.commands.base import emit
    from lifecycle.history import build_history

    store = _project_store(args)
    try:
        tree = build_history(store)
    finally:
        store.close()
    lines = list(tree.lines()) or [f"no checkpoints in project {store.project!r}"]
    emit(args, tree.as_dict(), "\n".join(lines))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from lifecycle.commands.base import emit
    from lifecycle.errors import InvalidSettings
    from lifecycle.retention import Policy, prune

    if args.prune_after < args.archive_after:
        raise InvalidSettings(
            f"--prune-after ({args.prune_after:g} days) must not be shorter than "
            f"--archive-after ({args.archive_after:g} days)"
        )
    show = args.progress or sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rprune: {done}/{total} keys")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    store = _project_store(args)
    try:
        result = prune(
            store,
            datetime.now(UTC),
            Policy.days(args.archive_after, args.prune_after, args.summaries_after),
            dry_run=args.dry_run,
            progress=progress if show else None,
            work_tree=os.getcwd(),  # the snapshot refs of pruned checkpoints go with them
        )
    finally:
        store.close()
    p = result.plan
    verb = "would" if args.dry_run else "did"
    lines = [
        f"{verb} archive {len(p.archive)} session(s) to session/history/",
        f"{verb} prune {len(p.prune_sessions)} session(s), "
        f"{len(p.prune_checkpoints)} checkpoint(s), {len(p.prune_journal)} journal entries "
        f"and {len(p.prune_summaries)} summaries",
        f"kept {len(p.kept_checkpoints)} old checkpoint(s): the latest, and the open "
        "session's saved and restored ones",
    ]
    if result.snapshot_refs:
        lines.append(
            f"{verb} delete {len(result.snapshot_refs)} snapshot ref(s) of pruned checkpoints"
        )
    if args.dry_run:
        lines += [f"  archive {k}" for k in p.archive]
        lines += [
            f"  prune {k}"
            for k in (*p.prune_sessions, *p.prune_checkpoints, *p.prune_journal, *p.prune_summaries)
        ]
    lines += [f"warning: {w}" for w in p.warnings]
    data = {
        "dry_run": bool(args.dry_run),
        **p.as_dict(),
        "snapshot_refs": list(result.snapshot_refs),
    }
    emit(args, data, "\n".join(lines))
    return 0
