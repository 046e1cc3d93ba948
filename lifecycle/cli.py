"""The ``lifecycle`` command.

Start-up time is the user's wait (every Claude Code hook is a new process), so
this module imports only the standard library at the top; each command imports
what it needs when it runs.

Exit codes: 0 success; 1 a lifecycle error; 2 bad input (usage, key, record,
URL); 3 an event the current state does not allow, or no session; 4 a corrupt
or missing record; 5 the store failed; 6 a write conflict; 70 an internal
error (a bug: please report it); 130 interrupted. ``lifecycle hook claude`` always
exits 0 (exit 2 would block Claude Code): its problems are a ``systemMessage``.
See docs/cli.md.
"""

from __future__ import annotations

import os
import sys

# argparse, typing and the parser are imported when the parser is built: a Claude Code
# hook that only records never builds it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any, TypeAlias


def __getattr__(name: str) -> Any:
    """``Parser``, ``emit`` and ``one_line`` as before, from :mod:`lifecycle.commands.base`
    (imported on first use: it imports argparse)."""
    if name in ("Parser", "emit", "one_line"):
        from lifecycle.commands import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

Handler: TypeAlias = "Callable[[argparse.Namespace], int]"
COMMANDS: dict[str, Handler] = {}


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=None,
        help="store URL (default: $LIFECYCLE_STORE or file://.lifecycle)",
    )
    parser.add_argument(
        "--project",
        default=None,
        help="project name (default: $LIFECYCLE_PROJECT, else the git top level's folder name)",
    )
    parser.add_argument(
        "--format", choices=("text", "json", "yaml"), default="text", help="output format"
    )


def build_parser() -> argparse.ArgumentParser:
    from lifecycle.commands.base import Parser

    parser = Parser(
        prog="lifecycle",
        description="Run an AI coding agent's work sessions as an explicit state machine.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    demo = sub.add_parser("demo", help="two scripted sessions, the second resuming the first")
    _add_common(demo)
    demo.set_defaults(handler=cmd_demo)

    for register in _REGISTRARS:
        register(sub, _add_common)
    import importlib

    from lifecycle.commands import MODULES

    for name in MODULES:
        importlib.import_module(name).register(sub, _add_common)
    return parser


#: Functions that add more subcommands: ``register(subparsers, add_common)``.
_REGISTRARS: list[Callable[[Any, Callable[[argparse.ArgumentParser], None]], None]] = []


def _version() -> str:
    from lifecycle import __version__

    return f"lifecycle {__version__}"


def cmd_demo(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime, timedelta

    from lifecycle import Checkpoint, Learning, LearningType, SessionManager, open_store
    from lifecycle.stores import default_url

    url = args.store or default_url()
    project = args.project or "demo"
    # The demo writes to its store only: no work-tree snapshot in the git repository it
    # may be run in (LIFECYCLE_SNAPSHOT=risk shows one, kept under refs/lifecycle/).
    import os

    snapshot = os.environ.get("LIFECYCLE_SNAPSHOT") or "never"
    now = [datetime.now(UTC).replace(microsecond=0)]

    def clock() -> datetime:
        return now[0]

    def later(minutes: float) -> None:
        now[0] += timedelta(minutes=minutes)

    out: list[str] = []

    def say(line: str) -> None:
        out.append(line)

    store = open_store(url)
    try:
        say(f"store: {url}   project: {project}   (simulated clock)")
        say("")
        say("== session 1: fresh start ==")
        m = SessionManager(store=store, project=project, clock=clock, snapshot=snapshot)
        start = m.start_session(command="impl", restore=False, change_id="demo-change")
        say(f"start_session -> {start.session_id} fresh={start.is_fresh_session} [{m.state}]")
        for i, desc in enumerate(
            ["Design the checkpoint record", "Write the file store", "Wire the CLI"], 1
        ):
            m.add_task(f"T{i:03d}", desc, status="in_progress" if i == 1 else "pending")
        later(12)
        m.record_decision(
            "Store one file per key",
            rationale="atomic rename gives crash-safe writes",
            impact="architectural",
        )
        m.record_file_change("lifecycle/stores/file.py", ["create"], changes=120)
        out_1 = m.complete_task("T001", priority="high")
        say(f"complete_task T001 (high) -> {_cp_text(out_1.checkpoint)} [{m.state}]")
        later(9)
        clear = m.before_operation("rm -rf build/")
        say(
            f"before_operation 'rm -rf build/' -> proceed={clear.proceed}, "
            f"{_cp_text(clear.checkpoint)} [{m.state}]"
        )
        m.add_open_question("Should automatic checkpoints include full context?")
        for _ in range(8):  # steady activity, a tick every 4 minutes
            later(4)
            tick = m.tick()
            if tick.checkpoint:
                say(f"tick after 30 min of active work -> {_cp_text(tick.checkpoint)} [{m.state}]")
        cp = m.create_checkpoint(
            Checkpoint(
                id="cp-demo",
                timestamp=clock(),
                phase="Phase 1: Foundation",
                progress={"tasks_completed": 5, "tasks_total": 10},
                context={"current_task": "T002"},
            )
        )
        say(f"create_checkpoint -> {cp.checkpoint_id} at {cp.timestamp:%H:%M:%S} [{m.state}]")
        for name, kind, text in [
            ("atomic-rename", LearningType.PATTERN, "temp + fsync + rename + dir fsync"),
            ("jwt-expiry-fix", LearningType.SOLUTION, "Fixed by increasing token expiry to 7 days"),
            ("partial-writes", LearningType.ANTI_PATTERN, "never write a record in place"),
        ]:
            res = m.capture_learning(
                Learning(type=kind, key=f"{kind.prefix}{name}", content=text, timestamp=clock())
            )
            say(f"capture_learning -> success={res.success} {res.learning_key}")
        later(5)
        m.record_file_change("lifecycle/cli.py", ["edit"], changes=30)
        say(f"record_file_change -> [{m.state}]  (unsaved work)")
        say("")
        say(m.report())
        say("")
        say("-- crash: the process stops without end_session --")
        say("")
        later(60)
        say("== session 2: resume ==")
        m2 = SessionManager(store=store, project=project, clock=clock, snapshot=snapshot)
        start2 = m2.start_session(command="impl", restore=True)
        say(
            f"start_session -> {start2.session_id} fresh={start2.is_fresh_session} "
            f"restored_from={start2.checkpoint_id} [{m2.state}]"
        )
        say("")
        say(m2.report())
        say("")
        m2.complete_task("T002", priority="medium")
        end = m2.end_session(success=True, phase="Phase 1: Foundation")
        say(
            f"end_session -> final {_cp_text(end.checkpoint)}, "
            f"{end.summary.checkpoints} checkpoint(s) this session [{m2.state}]"
        )
    finally:
        store.close()
    from lifecycle.commands.base import emit

    emit(args, {"lines": out}, "\n".join(out))
    return 0


def _cp_text(result: Any) -> str:
    if result is None:
        return "no checkpoint"
    if not result.written:
        return f"checkpoint failed ({result.error})"
    return f"checkpoint {result.key}"


# -- diagram and verify -----------------------------------------------------------------


def _register_tools(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    diagram = sub.add_parser("diagram", help="the state diagram, generated from the table")
    diagram.add_argument("--format", choices=("mermaid", "dot", "svg", "png"), default="mermaid")
    diagram.add_argument("--output", "-o", default=None, help="write to a file, not stdout")
    diagram.add_argument(
        "--check", action="store_true", help="exit 1 if diagrams/ drifted from the table"
    )
    diagram.add_argument(
        "--view",
        choices=("detail", "overview"),
        default="detail",
        help="detail: every row's guards and effect (default); overview: event names "
        "per pair of states",
    )
    diagram.add_argument("-w", "--write", action="store_true", help="regenerate diagrams/")
    diagram.add_argument(
        "--dir", default="diagrams", help="the diagrams folder (default: diagrams)"
    )
    diagram.set_defaults(handler=cmd_diagram)

    verify = sub.add_parser(
        "verify", help="model-check the transition table against the lifecycle rules"
    )
    verify.add_argument("--depth", type=int, default=8, help="event sequence length (default 8)")
    verify.set_defaults(handler=cmd_verify)


def cmd_diagram(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lifecycle import diagrams

    if args.check:
        drifted = diagrams.check(Path(args.dir))
        for name in drifted:
            sys.stderr.write(
                f"lifecycle: {name} differs from the table; run lifecycle diagram --write\n"
            )
        return 1 if drifted else 0
    if args.write:
        for path in diagrams.write(Path(args.dir)):
            sys.stdout.write(f"wrote {path}\n")
        return 0
    out = diagrams.render(args.format, view=args.view)
    if args.output:
        Path(args.output).write_bytes(out if isinstance(out, bytes) else out.encode())
    elif isinstance(out, bytes):
        sys.stdout.buffer.write(out)
    else:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from lifecycle.errors import LifecycleError
    from lifecycle.verify import model_check

    if args.depth < 0 or args.depth > 64:
        raise LifecycleError(f"--depth must be between 0 and 64, not {args.depth}")
    report = model_check(depth=args.depth)
    sys.stdout.write(report.format().rstrip("\n") + "\n")
    return 0 if report.ok else 1


_REGISTRARS.append(_register_tools)


# -- entry point ------------------------------------------------------------------------


def _configure_logs(args: argparse.Namespace) -> None:
    """The log on stderr: warnings, or the level of ``-v`` (info), ``-vv`` (debug) or
    ``$LIFECYCLE_LOG`` (debug, info, warning, error, critical, off), whichever shows more.

    stdout carries only the command's output (JSON for ``hook claude`` and ``mcp``).
    A ``$LIFECYCLE_LOG`` that is not a level is a usage error (exit 2), except for
    ``hook claude``, which must exit 0: it says so on stderr and logs warnings.
    """
    from lifecycle.errors import InvalidSettings
    from lifecycle.logs import ENV_VAR, configure

    verbose = getattr(args, "verbose", 0)
    # Asked for (-v, $LIFECYCLE_LOG): lines as they come. Else warnings wait for the end:
    # shown after a command that worked, dropped when it fails (its error is one line).
    asked = verbose or os.environ.get(ENV_VAR) or os.environ.get("LIFECYCLE_LOG_LEVEL")
    hold = not asked and args.command != "mcp"  # a server runs for hours: never hold
    try:
        configure(verbose=verbose, hold=hold)
    except InvalidSettings as exc:
        if (args.command, getattr(args, "action", None)) != ("hook", "claude"):
            raise InvalidSettings(f"${ENV_VAR}: {exc}") from None
        sys.stderr.write(f"lifecycle: warning: ${ENV_VAR}: {exc}; logging warnings\n")
        configure("warning", verbose=verbose)


def hook_claude_args() -> argparse.Namespace:
    """What ``build_parser().parse_args(["hook", "claude"])`` gives (a test checks it)."""
    import argparse

    from lifecycle.commands.agents import cmd_hook_claude

    return argparse.Namespace(
        command="hook", action="claude", store=None, project=None, bad_args=[],
        handler=cmd_hook_claude,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["hook", "claude"]:
        # An event that only records is journaled without loading the engine.
        from lifecycle.integrations.claude_fast import main as fast_path

        answered = fast_path()
        if answered is not None:
            return answered
    if words[:1] == ["hook"] and "rich" not in sys.modules:
        # Every Claude Code hook is a new process. structlog imports rich (about
        # 100 ms) just to pretty-print tracebacks when it is installed; hooks never
        # show one, so keep it out of their start-up.
        sys.modules["rich"] = None  # type: ignore[assignment]
    # `hook claude` alone is what Claude Code runs for every event: its arguments are
    # known without building every command's parser.
    args = hook_claude_args() if words == ["hook", "claude"] else build_parser().parse_args(argv)
    handler: Handler = args.handler
    from lifecycle.logs import release

    try:
        _configure_logs(args)
        code = handler(args)
        release(show=code == 0)
        return code
    except KeyboardInterrupt:
        release(show=True)
        sys.stderr.write("lifecycle: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except MemoryError:  # a record too large for this machine: not a bug, one line
        release(show=False)
        sys.stderr.write("lifecycle: error: out of memory (a record too large to read?)\n")
        return 1
    except Exception as exc:
        from lifecycle.commands.base import one_line
        from lifecycle.errors import LifecycleError

        release(show=False)
        if isinstance(exc, LifecycleError):
            sys.stderr.write(f"lifecycle: error: {one_line(str(exc))}\n")
            return exc.exit_code
        if os.environ.get("LIFECYCLE_DEBUG"):
            raise
        sys.stderr.write(
            f"lifecycle: internal error: {type(exc).__name__}: {one_line(str(exc))} "
            "(set LIFECYCLE_DEBUG=1 for a traceback, and please report it)\n"
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
