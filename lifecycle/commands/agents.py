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
            "--user",
            dest="scope",
            action="store_const",
            const="user",
            help="the same as --scope user: ~/.claude/settings.json",
        )
        p.add_argument(
            "--project-dir", default=".", help="the project folder (default: the current one)"
        )
        if name == "install":
            p.add_argument(
                "--command",
                default=None,
                help="the hook command (default: the absolute path of the lifecycle found on "
                "PATH, else this Python's '-m lifecycle hook claude': it runs without the venv)",
            )
        p.set_defaults(handler=cmd_hook_install if name == "install" else cmd_hook_uninstall)

    status = actions.add_parser("status", help="which of lifecycle's hooks are installed, and run")
    status.add_argument(
        "--format", choices=("text", "json", "yaml"), default="text", help="output format"
    )
    status.add_argument("--project-dir", default=".", help="the project folder")
    status.set_defaults(handler=cmd_hook_status)

    resident = actions.add_parser(
        "resident",
        help="the project's resident hook process: whether one runs, or --stop it",
    )
    resident.add_argument(
        "--format", choices=("text", "json", "yaml"), default="text", help="output format"
    )
    resident.add_argument("--project-dir", default=".", help="the project folder")
    resident.add_argument("--stop", action="store_true", help="ask it to exit")
    resident.set_defaults(handler=cmd_hook_resident)

    context = sub.add_parser(
        "context", help="what the next Claude Code session start would tell Claude"
    )
    add_common(context)
    context.set_defaults(handler=cmd_context)

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
            "At the next Claude Code session start in this project, Claude is told what the",
            "last session did and what is open (`lifecycle context` shows it now), and you",
            "see a line like:",
            "  lifecycle: session session-... restored from cp-...",
            "Check it with: lifecycle hook status",
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


def cmd_hook_resident(args: argparse.Namespace) -> int:
    import os

    from lifecycle.integrations import resident

    root = os.path.abspath(args.project_dir)
    env = dict(os.environ)
    found = (resident.stop if args.stop else resident.status)(root, env)
    data: dict[str, Any] = {"project_dir": root, "running": found is not None}
    if not resident.enabled(env):
        data["disabled_by"] = f"${resident.ENV_VAR}"
    if found is None:
        text = f"no resident hook process for {root}"
        if "disabled_by" in data:
            text += f" (hooks start none: ${resident.ENV_VAR}={env.get(resident.ENV_VAR)})"
    else:
        data.update(found, stopping=bool(args.stop))
        text = (
            f"resident hook process {found['pid']} for {root}: {found['events']} events "
            f"answered, idle {found['idle_seconds']:.0f} s "
            f"(exits after {found['exits_after_idle_seconds']:.0f} s idle)"
        )
        if args.stop:
            text += "; asked to exit"
    emit(args, data, text)
    return 0


def cmd_hook_status(args: argparse.Namespace) -> int:
    import json
    import os
    import subprocess

    from lifecycle.integrations import claude_settings as cs

    rows: list[dict[str, Any]] = []
    for scope in ("project", "user"):
        path = cs.settings_path(scope, args.project_dir)
        settings = cs.read(path)
        hooks = settings.get("hooks") or {}
        for event in (e for e, _, _ in cs.EVENTS):
            for group in hooks.get(event) or []:
                for entry in (group.get("hooks") or []) if isinstance(group, dict) else []:
                    if cs.is_ours(entry):
                        rows.append(
                            {
                                "scope": scope,
                                "settings": str(path),
                                "event": event,
                                "command": str(entry["command"]),
                                "async": bool(entry.get("async")),
                            }
                        )
    runs: dict[str, bool] = {}
    for command in {r["command"] for r in rows}:
        try:
            done = subprocess.run(  # Claude Code runs a hook command with sh -c too
                ["/bin/sh", "-c", command],
                input=json.dumps({"hook_event_name": "lifecycle-status-probe"}),
                capture_output=True,
                text=True,
                timeout=30,
                env={k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"},
                check=False,
            )
            runs[command] = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            runs[command] = False
    missing = sorted({e for e, _, _ in cs.EVENTS} - {r["event"] for r in rows})
    data = {"installed": rows, "missing_events": missing, "commands_run": runs}
    lines = []
    for command, ok in runs.items():
        scopes = sorted({r["scope"] for r in rows if r["command"] == command})
        events = [r["event"] for r in rows if r["command"] == command]
        lines.append(f"{', '.join(scopes)} settings: {len(events)} events -> {command}")
        lines.append("  the command runs" if ok else "  the command does NOT run (exit != 0)")
    if not rows:
        lines.append("lifecycle's hooks are not installed (lifecycle hook install)")
    elif missing:
        lines.append(f"  not installed for: {', '.join(missing)} (lifecycle hook install)")
    emit(args, data, "\n".join(lines))
    return 0


def cmd_context(args: argparse.Namespace) -> int:
    from lifecycle.integrations.claude_code import preview

    text = preview(store=args.store, project=args.project)
    tokens = (len(text) + 3) // 4  # ~4 characters per token for English text
    data = {"context": text, "characters": len(text), "tokens_estimate": tokens}
    emit(args, data, f"{text}\n\n({len(text):,} characters, about {tokens:,} tokens)")
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from lifecycle.integrations.mcp_stdio import serve

    serve(args.store, project_name(args))
    return 0
