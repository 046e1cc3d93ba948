"""``lifecycle search QUERY``: full-text search over the project's records."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

KINDS = ("learning", "decision", "task", "summary", "checkpoint", "session", "memory", "prompt")


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    search = sub.add_parser(
        "search",
        help="ranked full-text search over learnings, decisions, tasks, summaries, "
        "sessions, checkpoints and prompts",
    )
    add_common(search)
    search.add_argument(
        "query",
        nargs="?",
        default=None,
        help="words that must all occur (nothing in it is query syntax)",
    )
    search.add_argument(
        "--type",
        action="append",
        choices=KINDS,
        default=None,
        dest="kinds",
        help="only this kind (repeat for several)",
    )
    search.add_argument(
        "--since", default=None, metavar="DATE", help="only from DATE on (YYYY-MM-DD or ISO 8601)"
    )
    search.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N hits (default 20)"
    )
    search.add_argument(
        "--rebuild",
        action="store_true",
        help="rebuild the store's search index from its records (then search, if QUERY)",
    )
    search.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    import sys
    import time

    from lifecycle.commands.base import emit, project_name
    from lifecycle.errors import InvalidQuery
    from lifecycle.search import rebuild, search
    from lifecycle.stores import open_store

    if args.query is None and not args.rebuild:
        raise InvalidQuery("lifecycle search needs a QUERY (or --rebuild)")
    store = open_store(args.store)
    try:
        if args.rebuild:
            started = time.perf_counter()
            count = rebuild(store)
            took = time.perf_counter() - started
            if count is None:
                sys.stderr.write(f"lifecycle: {store.url} keeps no search index\n")
            else:
                sys.stderr.write(
                    f"lifecycle: search index rebuilt: {count} documents in {took:.2f} s\n"
                )
            if args.query is None:
                return 0
        hits = search(
            store,
            project_name(args),
            args.query,
            kinds=args.kinds,
            since=args.since,
            limit=args.limit,
        )
    finally:
        store.close()
    lines = []
    for hit in hits:
        when = "" if hit.timestamp is None else hit.timestamp.strftime("%Y-%m-%d %H:%M")
        lines.append(f"{hit.kind:<10} {when:<16} {hit.key}")
        lines.append(f"    {hit.snippet}")
    if not lines:
        lines = [f"no match for {args.query!r}"]
    data: Any = [hit.as_dict() for hit in hits]
    emit(args, data, "\n".join(lines))
    return 0
