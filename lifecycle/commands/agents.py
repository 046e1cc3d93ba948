"""``lifecycle hook claude|install|uninstall`` and ``lifecycle mcp``: agent integrations.

``hook claude`` is run by Claude Code for every hook event: it always exits 0,
even for arguments it does not know (exit 2 would block Claude Code's tool
call), and says what went wrong in a ``systemMessage`` instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lifecycle.commands.base import Parser, emit, project_name


class _FailOpenParser(Parser):
    """The ``hook claude`` parser: arguments it cannot parse are kept, not fatal."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace = namespace if namespace is not None else argparse.Namespace()
        namespace.bad_args = []
        try:
            ns, extra = super().parse_known_args(args, namespace)
        except _ArgError as exc:
            namespace.bad_args = [str(exc)]
            namespace.handler = cmd_hook_claude
            return namespace, []
        ns.bad_args = [f"unrecognized arguments: {' '.join(extra)}"] if extra else []
        return ns, []

    def error(self, message: str) -> Any:
        raise _ArgError(message)


class _ArgError(Exception):
    pass


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    hook = sub.add_parser("hook", help="Claude Code hooks: run one, install, uninstall")
    actions = hook.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    actions._parser_class = _FailOpenParser  # only for `hook claude`
    claude = actions.add_parser(
        "claude", help="handle one Claude Code hook event (JSON on stdin); always exits 0"
    )
    actions._parser_class = Parser
    claude.add_argument("--store", default=None, help="store URL (default: see docs/cli.md)")
    claude.add_argument("--project", default=None, help="project name")
    claude.set_defaults(handler=cmd_hook_claude)

    for name, text in (
        ("install", "merge lifecycle's hooks into Claude Code's settings.json"),
        ("uninstall", "remove lifecycle's hooks from Claude Code's settings.json"),
    ):
        p = actions.add_parser(name, help=text)
        p.add_argument(
            "--format", choices=("text", "json", "yaml"), default="text", help="output format"
        )
        p.add_argument(
            "--scope",
            choices=("project", "user"),
            default="project",
            help="project: ./.claude/settings.json (default); user: ~/.claude/settings.json",
        )
        p.add_argument(
            "--project-dir", default=".", help="the project folder (default: the current one)"
        )
        if name == "install":
            p.add_argument(
                "--command",
                default=None,
                help="the hook command (default: 'lifecycle hook claude' if lifecycle is on "
                "PATH, else this Python's '-m lifecycle hook claude')",
            )
        p.set_defaults(handler=cmd_hook_install if name == "install" else cmd_hook_uninstall)

    mcp = sub.add_parser("mcp", help="run the MCP server over stdio")
    mcp.add_argument("--store", default=None, help="store URL (default: $LIFECYCLE_STORE or file)")
    mcp.add_argument("--project", default=None, help="project name")
    mcp.set_defaults(handler=cmd_mcp)


def cmd_hook_claude(args: argparse.Namespace) -> int:
    import json

    from lifecycle.integrations.claude_code import MAX_EVENT_BYTES, handle

    raw = sys.stdin.buffer.read(MAX_EVENT_BYTES + 1)  # bounded: more is refused by handle
    if args.bad_args:
        answer: dict[str, Any] | None = {
            "systemMessage": f"lifecycle: hook claude ignored the event: {args.bad_args[0]}"
        }
    else:
        answer = handle(
            raw, store=getattr(args, "store", None), project=getattr(args, "project", None)
        )
    if answer is not None:
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    return 0


def cmd_hook_install(args: argparse.Namespace) -> int:
    from lifecycle.integrations import claude_settings as cs

    path = cs.settings_path(args.scope, args.project_dir)
    command = args.command or cs.default_command()
    if cs.MARKER not in command:
        from lifecycle.errors import InvalidSettings

        raise InvalidSettings(
            f"--command must run {cs.MARKER!r} (that is how lifecycle finds its own hooks), "
            f"got {command!r}"
        )
    changed = cs.install(path, command)
    events = [event for event, _, _ in cs.EVENTS]
    data = {"settings": str(path), "command": command, "events": events, "changed": changed}
    text = "\n".join(
        [
            f"{'Installed' if changed else 'Already installed:'} lifecycle's Claude Code hooks "
            f"in {path}",
            f"  command: {command}",
            f"  events: {', '.join(events)}",
            "  Every other setting and hook in that file is kept.",
            "At the next Claude Code session start in this project, Claude is told where the",
            "last session stopped (the Session Report), and you see a line like:",
            "  lifecycle: session restored from cp-... (phase: ...; progress: ...)",
            "Undo with: lifecycle hook uninstall"
            + (" --scope user" if args.scope == "user" else ""),
        ]
    )
    emit(args, data, text)
    return 0


def cmd_hook_uninstall(args: argparse.Namespace) -> int:
    from lifecycle.integrations import claude_settings as cs

    path = cs.settings_path(args.scope, args.project_dir)
    removed = cs.uninstall(path)
    data = {"settings": str(path), "removed": removed}
    text = (
        f"Removed {removed} lifecycle hook entries from {path}; everything else is kept."
        if removed
        else f"No lifecycle hooks in {path}; nothing changed."
    )
    emit(args, data, text)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from lifecycle.integrations.mcp_stdio import serve

    serve(args.store, project_name(args))
    return 0
