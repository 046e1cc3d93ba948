"""What every ``lifecycle`` subcommand shares: the parser class, the project, the output.

Standard library only at the top: building the parser is on every hook's path.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

__all__ = ["Parser", "emit", "one_line", "printable", "project_name"]

#: C0 and C1 control characters but newline and tab: a terminal acts on them.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if c not in (9, 10)}


def printable(text: str) -> str:
    """``text`` with terminal control characters shown as ``\\xNN`` (a phase or a task
    may hold an escape sequence that would retitle or clear the user's terminal)."""
    return text.translate(_CONTROL)


def one_line(text: str) -> str:
    """``text`` on one line: each run of line breaks and the indentation after it (a
    server's multi-line message) becomes one space; control characters are escaped."""
    return printable(" ".join(part.strip() for part in text.splitlines() if part.strip()))


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors as one line on stderr and exit status 2.

    Every command and subcommand takes ``-v``/``--verbose``, before or after
    its name: the log on stderr (see :func:`main`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=argparse.SUPPRESS,
            help="log to stderr: -v info, -vv debug (default: warnings, or $LIFECYCLE_LOG)",
        )

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def project_name(args: argparse.Namespace) -> str:
    """``--project``, ``$LIFECYCLE_PROJECT``, else the name of the folder at the git top
    level of the current folder (:mod:`lifecycle.project`)."""
    if args.project or os.environ.get("LIFECYCLE_PROJECT"):
        return str(args.project or os.environ.get("LIFECYCLE_PROJECT"))
    from lifecycle.project import default_name

    name = default_name()
    if not getattr(args, "_checked_default", False):
        args._checked_default = True
        _warn_if_left_under_default(getattr(args, "store", None), name)
    return name


def _warn_if_left_under_default(url: str | None, project: str) -> None:
    """Warn (with the fix) when a local store keeps its records under ``default``, the
    name every project had before it was named after its folder. Only a file or SQLite
    store that exists is looked into (opening it is cheap and creates nothing); any
    failure is the command's own to report."""
    import logging

    from lifecycle.project import left_under_default, moved_hint
    from lifecycle.stores import default_url, open_store

    url = url or default_url()
    scheme = url.partition("://")[0].lower()
    try:
        if scheme == "file":
            from lifecycle.stores.file import root_of_url

            if not root_of_url(url).is_dir():
                return
        elif scheme == "sqlite":
            from lifecycle.stores.sqlite import parse_sqlite_url

            if not os.path.isfile(parse_sqlite_url(url)):
                return
        else:
            return
        quiet = logging.getLogger("lifecycle.stores")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # what opening it warns of, the command's open says
        try:
            store = open_store(url)
        finally:
            quiet.setLevel(level)
        try:
            found = left_under_default(store, project)
        finally:
            store.close()
    except Exception:  # a probe: the command opens the store itself and says what is wrong
        return
    if found:
        from lifecycle.logs import get_logger

        get_logger("lifecycle.project").warning(
            "project.records_under_default", fix=moved_hint(project)
        )


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """Print ``data`` as JSON or YAML, or ``text`` for humans."""
    fmt = getattr(args, "format", "text")
    if fmt == "json":
        import orjson

        sys.stdout.write(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
        )
    elif fmt == "yaml":
        try:
            import yaml
        except ModuleNotFoundError:
            from lifecycle.errors import LifecycleError

            raise LifecycleError(
                "--format yaml needs PyYAML: pip install 'lifecycle[yaml]'"
            ) from None
        import orjson

        plain = orjson.loads(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))
        sys.stdout.write(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(printable(text.rstrip("\n")) + "\n")


# -- demo -------------------------------------------------------------------------------
