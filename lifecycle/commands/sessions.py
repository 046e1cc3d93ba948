"""``lifecycle session start|end``, ``checkpoint save``, ``learn``, ``status``, ``report``.

These are the hook scripts of SuperSpec's session manager as commands, with their
flags as written::

    lifecycle session start --command impl --change-id CHANGE_ID
    lifecycle session end --command impl --success --phase "Phase 1"
    lifecycle checkpoint save --phase "Phase 1" --progress '{"completed": 5}'

Every command is its own process, and successive commands continue ONE
session: each one after ``session start`` continues the open session from
``session/context`` and saves it back when it is done (see
:mod:`lifecycle.integrations.live`).

``session start`` when a session is already open continues it (the output says
``"continued": true``) and changes nothing: running the start hook twice is
harmless. ``--new`` ends the open session first (its unsaved work goes into a
final checkpoint, so nothing is lost; it is recorded as not successful, since
nobody said it succeeded) and starts another, restoring from that final
checkpoint unless ``--no-restore``. ``--checkpoint ID`` (the form of a
checkpoint's ``recovery_info.restore_command``) always starts a new session from
that checkpoint, ending an open one the same way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from lifecycle.commands.base import emit, one_line, project_name


def register(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add this module's subcommands to ``sub``."""
    session = sub.add_parser("session", help="start or end a work session")
    actions = session.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    start = actions.add_parser(
        "start", help="load: continue the open session, or start one (restoring the latest)"
    )
    add_common(start)
    start.add_argument("--command", default="", help="the command this session runs (e.g. impl)")
    start.add_argument("--change-id", default=None, help="the change being worked on")
    start.add_argument(
        "--checkpoint", default=None, metavar="ID", help="start a new session from this checkpoint"
    )
    start.add_argument(
        "--no-restore", action="store_true", help="start fresh instead of restoring the latest"
    )
    start.add_argument(
        "--new", action="store_true", help="end the open session (if any) and start a new one"
    )
    start.set_defaults(handler=cmd_session_start)

    end = actions.add_parser("end", help="complete the open session: final checkpoint, summary")
    add_common(end)
    end.add_argument("--command", default="", help="the command that ran (e.g. impl)")
    outcome = end.add_mutually_exclusive_group()
    outcome.add_argument(
        "--success", dest="success", action="store_true", default=True, help="(the default)"
    )
    outcome.add_argument("--failure", dest="success", action="store_false")
    end.add_argument("--phase", default=None, help="the phase reached")
    end.set_defaults(handler=cmd_session_end)

    checkpoint = sub.add_parser("checkpoint", help="save a checkpoint of the open session")
    cp_actions = checkpoint.add_subparsers(dest="action", metavar="ACTION")
    cp_actions.required = True
    save = cp_actions.add_parser("save", help="manual checkpoint (a no-op when nothing changed)")
    add_common(save)
    save.add_argument("--phase", default=None, help='the current phase, e.g. "Phase 1"')
    save.add_argument(
        "--progress",
        default=None,
        metavar="JSON",
        help="""a JSON object merged into the progress, e.g. '{"completed": 5}'""",
    )
    save.add_argument(
        "--context",
        default=None,
        metavar="JSON",
        help="""a JSON object merged into the context, e.g. '{"current_task": "T006"}'""",
    )
    save.set_defaults(handler=cmd_checkpoint_save)

    learn = sub.add_parser("learn", help="capture a learning (pattern, solution, ...)")
    add_common(learn)
    learn.add_argument(
        "--type", required=True, choices=("pattern", "solution", "anti-pattern", "insight")
    )
    learn.add_argument("--key", required=True, help="learning/{type}s/{name}, or just a name")
    learn.add_argument("--content", required=True, help="what was learned ('-': read stdin)")
    learn.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    learn.set_defaults(handler=cmd_learn)

    status = sub.add_parser("status", help="where the open session stands")
    add_common(status)
    status.set_defaults(handler=cmd_status)

    report = sub.add_parser("report", help="the Session Report (what a resumed session is told)")
    add_common(report)
    report.add_argument(
        "--html",
        default=None,
        metavar="FILE",
        help="write the project's report as one self-contained HTML page (lifecycle.html_report)",
    )
    report.set_defaults(handler=cmd_report)


# -- helpers ----------------------------------------------------------------------------


def _no_session(project: str, what: str) -> Exception:
    from lifecycle.errors import NoSession

    return NoSession(
        f"no open session to {what} in project {project!r}; start one with: lifecycle session start"
    )


#: How deep a ``--progress`` / ``--context`` object may nest (orjson stores 254 levels).
MAX_JSON_DEPTH = 64


class _Refused(ValueError):
    """A JSON text that parses but that JSON cannot hold exactly."""


def _strict_pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in items:
        if key in found:
            raise _Refused(f"duplicate key {key!r}")
        found[key] = value
    return found


def _finite(text: str) -> float:
    import math

    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"{text} is beyond the range of a JSON number")
    return value


def _int64(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**64:
        raise _Refused(f"{text[:30]} does not fit in 64 bits")
    return value


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            todo.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            todo.extend((v, level + 1) for v in item)
    return deepest


def json_object(text: str | None, flag: str, example: str) -> dict[str, Any] | None:
    """``text`` parsed as a JSON object, or InvalidRecord naming the flag.

    Strict: NaN, Infinity, numbers out of range, duplicate keys and nesting deeper
    than :data:`MAX_JSON_DEPTH` are refused, not stored as something else.
    """
    if text is None:
        return None
    import json

    from lifecycle.errors import InvalidRecord

    shown = text if len(text) <= 80 else text[:77] + "..."
    try:
        value = json.loads(
            text,
            object_pairs_hook=_strict_pairs,
            parse_constant=_constant,
            parse_float=_finite,
            parse_int=_int64,
        )
    except RecursionError:
        value = None
        problem = f"nested deeper than {MAX_JSON_DEPTH} levels"
    except ValueError as exc:  # JSONDecodeError and _Refused
        value = None
        problem = f"not valid JSON ({exc})"
    else:
        problem = ""
        if _depth(value) > MAX_JSON_DEPTH:
            problem = f"nested deeper than {MAX_JSON_DEPTH} levels"
    if problem:
        raise InvalidRecord(f"{flag} is {problem}: {shown!r}; write an object like '{example}'")
    if not isinstance(value, dict):
        raise InvalidRecord(
            f"{flag} must be a JSON object, not {type(value).__name__}: {shown!r}; "
            f"write an object like '{example}'"
        )
    return value


def _merge(old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any] | None:
    """``new`` over ``old``; a key set to null is removed."""
    if new is None:
        return None
    merged = {**old, **new}
    return {k: v for k, v in merged.items() if v is not None}


# -- session start / end ----------------------------------------------------------------


def cmd_session_start(args: argparse.Namespace) -> int:
    from lifecycle.integrations import outputs
    from lifecycle.integrations.live import end_open_session, live_session

    project = project_name(args)
    with live_session(args.store, project) as live:
        m = live.manager
        ended: str | None = None
        if live.attached and not (args.new or args.checkpoint):
            data = outputs.continued(m)
            text = (
                f"Continuing the open session {data['session_id']} "
                "(use --new to end it and start another)\n" + m.report()
            )
            emit(args, data, text)
            return 0
        if args.checkpoint:
            m.read_checkpoint(args.checkpoint)  # CheckpointNotFound before anything changes
        if live.attached:
            ended = end_open_session(live, success=False, command=args.command).session_id
            m = live.restart()
        result = m.start_session(
            command=args.command,
            restore=not args.no_restore,
            change_id=args.change_id,
            checkpoint_id=args.checkpoint,
        )
        data = outputs.start(result, ended_session_id=ended)
        head = f"Ended the open session {ended}.\n" if ended else ""
        emit(args, data, head + m.report())
    return 0


def cmd_session_end(args: argparse.Namespace) -> int:
    from lifecycle.integrations import outputs
    from lifecycle.integrations.live import end_open_session, live_session

    project = project_name(args)
    with live_session(args.store, project) as live:
        if not live.attached:
            raise _no_session(project, "end")
        result = end_open_session(
            live, success=args.success, phase=args.phase, command=args.command
        )
    data = outputs.end(result)
    s = result.summary
    final = data["final_checkpoint"]
    saved = final is not None and final["written"]
    text = "\n".join(
        [
            f"Session {result.session_id} ended ({'success' if s.success else 'failure'}).",
            f"  Phase: {s.phase or 'not set'}",
            f"  Tasks completed: {len(s.tasks_completed)}, open: {len(s.open_tasks)}",
            f"  Checkpoints: {s.checkpoints}"
            + (f"; final checkpoint {final['checkpoint_id']}" if saved else ""),
        ]
    )
    emit(args, data, text)
    return 0 if final is None or saved else _store_failed(final)


def _store_failed(cp: dict[str, Any]) -> int:
    error = one_line(f"checkpoint not written: {cp.get('error')}")
    sys.stderr.write(f"lifecycle: error: {error}\n")
    return 5


# -- checkpoint save --------------------------------------------------------------------


def cmd_checkpoint_save(args: argparse.Namespace) -> int:
    from lifecycle.integrations import outputs
    from lifecycle.integrations.live import live_session

    progress = json_object(args.progress, "--progress", '{"completed": 5}')
    context = json_object(args.context, "--context", '{"current_task": "T006"}')
    project = project_name(args)
    with live_session(args.store, project) as live:
        m = live.manager
        if not live.attached:
            raise _no_session(project, "checkpoint")
        result = m.create_checkpoint(
            phase=args.phase,
            progress=_merge(m.progress, progress),
            context=_merge(m.context, context),
        )
    data = outputs.checkpoint(result)
    if result.written:
        text = f"Checkpoint {result.checkpoint_id} saved at {data['timestamp']} ({result.key})"
    elif result.error:
        if args.format != "text":  # the data for a program; a person reads the one error line
            emit(args, data, "")
        return _store_failed(data)
    else:
        text = f"Nothing changed since checkpoint {result.checkpoint_id}; no new checkpoint"
    emit(args, data, text)
    return 0


# -- learn ------------------------------------------------------------------------------


def cmd_learn(args: argparse.Namespace) -> int:
    from lifecycle.integrations import outputs
    from lifecycle.integrations.live import live_session

    content = sys.stdin.read() if args.content == "-" else args.content
    with live_session(args.store, project_name(args)) as live:
        result = live.manager.capture_learning(
            type=args.type, key=args.key, content=content, tags=args.tag
        )
    data = outputs.learning(result)
    if not result.success:
        if args.format != "text":
            emit(args, data, "")
        error = one_line(f"learning {result.learning_key} not written: {result.error}")
        sys.stderr.write(f"lifecycle: error: {error}\n")
        return 5
    emit(args, data, f"Learning captured: {result.learning_key}")
    return 0


# -- status / report --------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from lifecycle.integrations import outputs
    from lifecycle.integrations.live import live_session

    with live_session(args.store, project_name(args), save=False) as live:
        m = live.manager
        data = outputs.status(m) if live.attached else outputs.closed_status(m)
    emit(args, data, outputs.status_text(data))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.html is not None:
        from lifecycle.commands.html import write_html_report

        return write_html_report(args)
    from lifecycle.integrations import outputs
    from lifecycle.integrations.live import live_session

    with live_session(args.store, project_name(args), save=False) as live:
        m = live.manager
        if live.attached:
            text = m.report()
            session_id = m.session_id
        else:
            text = outputs.status_text(outputs.closed_status(m))
            session_id = None
    emit(args, {"session_id": session_id, "report": text}, text)
    return 0
