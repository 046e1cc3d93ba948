"""The Claude Code hook's fast path: an event that only records is journaled, not run.

``lifecycle hook claude`` (no options) first comes here (:func:`main`, from
:func:`lifecycle.cli.main`, before the parser is built). These events only record:
PostToolUse of Edit, Write, MultiEdit, NotebookEdit, Bash and the tools that are only
activity (Read, Grep, ...), UserPromptSubmit, and a PreToolUse that is certainly not
risky. For one of them, on a file store whose session the engine has prepared (the
``due`` record of :mod:`lifecycle.integrations.claude_journal`), the event is reduced
to the fields its handler reads, redacted (:func:`lifecycle.redact.redact_json`, the
codec's own redaction), appended durably to the session's journal, and the hook
answers nothing, as its handler would. The engine folds the journal through the same
handlers (:mod:`lifecycle.integrations.claude_record`) at the next step that opens
the session.

Everything else runs the whole hook (:func:`lifecycle.integrations.claude_code.handle`),
with stdin given back: any other event; a store that is not a file store (SQLite,
PostgreSQL, Serena, fallback); a store or session the engine has not prepared; a time
trigger that may be due (``due`` has passed); a PostToolUse while a failure awaits its
recovery; a PreToolUse the prefilter cannot clear; input that is not a well-formed event
(the whole hook says what is wrong with it); and any error here.

The prefilter (:func:`maybe_risky_command`, :func:`maybe_risky_path`) answers "certainly
not risky" or "ask the full checker": every default risk pattern
(:mod:`lifecycle.triggers.risk`) needs one of its words, so text with none of them cannot
match; text that is not ASCII is always asked about (case-insensitive matching folds
some non-ASCII letters into ASCII ones). ``tests/test_claude_fast.py`` checks it against
every pattern.

No attrs class, cattrs converter, transitions machine or risk pattern is built here:
``tests/test_startup.py`` lists the modules a fast-path hook imports.
"""

from __future__ import annotations

import json
import os
import sys
import time

TYPE_CHECKING = False  # typing itself is not imported on the fast path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

#: Tools whose PostToolUse is only activity for the time trigger (a tick): not a file
#: change, a task or a todo list. Anything else runs the whole hook.
ACTIVITY_TOOLS = frozenset(
    {"Read", "Grep", "Glob", "LS", "WebFetch", "WebSearch", "NotebookRead", "BashOutput"}
)

#: Words one of which every default command pattern needs, lowercase (the comment says
#: which patterns): a command holding none cannot match any of them.
COMMAND_WORDS = (
    "unlink", "shred", "xargs",  # rm (with the bounded words below)
    "-delete",  # find -delete
    "rmdir", "erase", "remove-item",  # windows-delete (rd and del below)
    "reset", "clean", "checkout", "switch", "restore", "stash", "branch", "push",
    "rebase", "filter-",  # the git patterns
    "drop", "truncate", "delete", "update", "flush",  # SQL, Redis, truncate
    "of=",  # dd
    "mkfs", "mke2fs", "wipefs",
    "prune", "volume", "compose",  # docker-prune
    "uninstall",  # helm (its delete above)
    "destroy", "apply", "pulumi", "deploy",  # infra-destroy, infra-apply
    "alembic", "migrate", "prisma", "db:", "flyway", "liquibase", "knex", "sequelize",
    "typeorm", "diesel", "sqlx", "goose", "dbmate", "atlas",  # migrations
    "chmod", "chown", "chgrp", "curl", "wget",  # permissions, pipe-to-shell
    "-exec", "jscodeshift", "codemod",  # mass-edit (sed below)
)  # fmt: skip
#: Short words the patterns need at the start of a word (``(?<![\\w.-])``): rm, rd, del, sed.
_BOUNDED = r"(?<![\w.-])(?:rm|rd|del|sed)"
#: Pieces one of which every default path glob needs, lowercase, no ``/``.
PATH_WORDS = (
    "auth", "jwt", "saml", "oidc", "password", "security", "crypt",
    ".pem", ".key", ".p12", ".pfx", ".jks", "id_rsa", "id_ed25519", "id_ecdsa", ".ssh",
    ".env", "secret", "credential", ".npmrc", ".pypirc", ".netrc", ".htpasswd", ".tfvars",
    "iam", "rbac", "permission", "polic", "acl", ".rego", "sudoers", "codeowners",
    ".github", ".gitlab-ci", ".circleci", "jenkinsfile", "azure-pipelines", ".travis.yml",
    "bitbucket-pipelines", ".buildkite", ".drone.yml",
    "migrat", "alembic", "schema.", ".prisma", ".proto", ".thrift", ".avsc", "openapi",
    "swagger",
    "pyproject.toml", "setup.py", "setup.cfg", "requirements", "pipfile", "package.json",
    "cargo.toml", "go.mod", "gemfile", "pom.xml", ".gradle", "cmakelists.txt", ".csproj",
    "composer.json",
    "dockerfile", "docker-compose", "compose.", ".tf", "k8s", "kubernetes", "helm",
    "chart.yaml", "__init__.py",
)  # fmt: skip

_bounded: Any = None
_tried = False
#: The characters ``urllib.parse.quote`` never escapes in a path.
_UNQUOTED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-~/"


def maybe_risky_command(command: str) -> bool:
    """False only when no default command pattern can match ``command``."""
    lowered = command.lower()
    if not lowered.isascii():
        return True
    if any(word in lowered for word in COMMAND_WORDS):
        return True
    global _bounded
    if _bounded is None:
        import re

        _bounded = re.compile(_BOUNDED)
    return _bounded.search(lowered) is not None


def maybe_risky_path(path: str) -> bool:
    """False only when no default path pattern can match ``path``."""
    lowered = path.lower()
    return not lowered.isascii() or any(word in lowered for word in PATH_WORDS)


def essentials(event: Mapping[str, Any], root: str) -> dict[str, Any] | None:
    """The fields of ``event`` its handler reads, when it is an event that only records
    and needs nothing the session holds; None otherwise."""
    from lifecycle.integrations.claude_record import FILE_TOOLS

    name = event.get("hook_event_name")
    out: dict[str, Any] = {"hook_event_name": name}
    for field in ("session_id", "transcript_path", "cwd"):
        if isinstance(event.get(field), str):
            out[field] = event[field]
    tool, tool_input = event.get("tool_name"), event.get("tool_input")
    if name == "UserPromptSubmit":
        if "prompt" in event:
            out["prompt"] = event["prompt"]
        return out
    if name not in ("PostToolUse", "PreToolUse") or not isinstance(tool, str):
        return None
    out["tool_name"] = tool
    if not isinstance(tool_input, dict):
        return out if name == "PreToolUse" else None  # PreToolUse: nothing to ask about
    if tool in FILE_TOOLS:
        path = tool_input.get(FILE_TOOLS[tool])
        kept: dict[str, Any] = {FILE_TOOLS[tool]: path}
        if tool == "MultiEdit" and isinstance(tool_input.get("edits"), list):
            kept["edits"] = [None] * len(tool_input["edits"])  # only their number is read
        out["tool_input"] = kept
        if name == "PreToolUse" and isinstance(path, str) and path:
            from lifecycle.integrations.claude_record import _relative

            if maybe_risky_path(_relative(path, root, event.get("cwd"))):
                return None
        response = event.get("tool_response")
        if name == "PostToolUse" and tool == "Write" and isinstance(response, dict):
            out["tool_response"] = {"type": response.get("type")}
        return out
    if tool == "Bash":
        command = tool_input.get("command")
        out["tool_input"] = {"command": command}
        if name == "PreToolUse" and isinstance(command, str) and maybe_risky_command(command):
            return None
        return out
    if name == "PreToolUse":
        return out  # PreToolUse of any other tool: its handler does nothing with it
    if tool in ACTIVITY_TOOLS:
        # what a recovery after a failure of the same tool would describe it by
        described = ("command", "file_path", "notebook_path", "pattern", "url", "path")
        out["tool_input"] = {k: v for k, v in tool_input.items() if k in described}
        return out
    return None


#: ``lifecycle.keys.NAME``, a project name (a test checks they are the same).
PROJECT_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
#: A folder name that ``lifecycle.keys.slug`` leaves as it is (a test checks that too).
_SLUG_FIXED = r"[A-Za-z0-9](?:[A-Za-z0-9._]|-(?!-)){0,99}"


def _name(project: str) -> bool:
    import re

    return re.fullmatch(PROJECT_NAME, project, re.ASCII) is not None


def _own_slug(folder: str) -> str | None:
    """``folder`` when it is already the project name ``slug`` makes of it, else None."""
    import re

    fixed = re.fullmatch(_SLUG_FIXED, folder, re.ASCII) and folder[-1] not in "-._"
    return folder if fixed else None


def journal_folder(event: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str] | None:
    """``(journal folder, project root)`` when the event's store is a file store the fast
    path can name without the store's code, else None."""
    from lifecycle.integrations.claude_journal import folder
    from lifecycle.integrations.claude_record import _route, project_dir, project_name

    root = project_dir(event, env)
    url = env.get("LIFECYCLE_STORE")
    if url:
        # only the plain spelling file:///abs/dir (no escapes, ~, query or credentials)
        where = url[len("file://") :]
        if not url.startswith("file:///") or any(c in where for c in "%?#@~\\") or "\x00" in url:
            return None
    else:
        where = os.path.join(os.path.abspath(root), ".lifecycle")
        url = "file://" + where  # as store_url spells it: quote() leaves these unchanged
        if where.strip(_UNQUOTED):
            from urllib.parse import quote

            url = "file://" + quote(where, errors="surrogateescape")
    base = env.get("LIFECYCLE_PROJECT") or _own_slug(os.path.basename(root))
    if base is None:
        base = project_name(root)  # a folder name that slug() changes: its own code
    project = _route(url, base, event) or base
    if not _name(project):
        return None  # not a valid project name: the whole hook says so
    if os.path.islink(where) or not os.path.isdir(where):
        return None  # the store refuses a linked folder; a missing one is made by the engine
    return folder(where, project), root


def record(raw: bytes, env: Mapping[str, str], now: float) -> bool:
    """Journal the event in ``raw`` if it only records; False: the whole hook must run."""
    from lifecycle.integrations.claude_record import MAX_EVENT_BYTES

    if len(raw) > MAX_EVENT_BYTES:
        return False
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):  # the whole hook names what is wrong with it
        return False
    if not isinstance(event, dict) or not isinstance(event.get("hook_event_name"), str):
        return False
    if event["hook_event_name"] not in ("PostToolUse", "PreToolUse", "UserPromptSubmit"):
        return False
    found = journal_folder(event, env)
    if found is None:
        return False
    where, root = found
    from lifecycle.integrations.claude_journal import append, read_due

    due = read_due(where)
    if due is None or now >= due[0]:
        return False  # no open session the engine prepared, or the time trigger may fire
    if event["hook_event_name"] == "PostToolUse" and due[1]:
        return False  # a failure awaits its recovery: the error trigger may checkpoint
    kept = essentials(event, root)
    if kept is None:
        return False
    if kept["hook_event_name"] == "PreToolUse" and "tool_input" not in kept:
        return True  # nothing to ask about: the hook does nothing with it
    from lifecycle.redact import redact_json

    body = json.dumps({"v": 1, "at": now, "root": root, "event": kept}, ensure_ascii=False)
    return append(where, redact_json(body.encode("utf-8", "surrogatepass")))


def main() -> int | None:
    """Run ``lifecycle hook claude`` here if the event only records, or have the project's
    resident process (:mod:`lifecycle.integrations.resident`) run it: the exit code when
    answered (what to print is printed); None when the whole hook must run in this
    process (stdin is given back, and the resident process is started afterwards)."""
    global _tried
    if _tried:
        return None  # declined once in this process (``python -m`` asks, then the CLI)
    _tried = True
    from lifecycle.integrations.claude_record import MAX_EVENT_BYTES

    try:
        raw = sys.stdin.buffer.read(MAX_EVENT_BYTES + 1)
    except (AttributeError, OSError, ValueError):  # no binary stdin: the CLI reads it
        return None
    try:
        answered = record(raw, os.environ, time.time())
    except Exception:  # anything unexpected: the whole hook decides, and says why
        answered = False
    if answered:
        return 0
    from lifecycle.integrations import resident

    if resident.enabled(os.environ) and len(raw) <= MAX_EVENT_BYTES:
        try:
            reply = resident.ask(raw, os.environ)
        except Exception:  # the hook runs the event itself
            reply = None
        if reply is not None:
            code, out, err = reply
            sys.stdout.buffer.write(out)
            sys.stdout.flush()
            sys.stderr.buffer.write(err)
            sys.stderr.flush()
            return code
        import atexit

        atexit.register(_start_resident)
    import io

    sys.stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", errors="replace")
    return None


def _start_resident() -> None:
    """After the hook answered by itself: start the project's resident process."""
    from lifecycle.integrations import resident

    try:
        sys.stdout.flush()
        resident.start(os.environ)
    except Exception:  # best effort: the next hook runs the event itself again
        return
