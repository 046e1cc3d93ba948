"""``lifecycle hook install|uninstall``: our entries in Claude Code's settings.json.

Install merges one hook group per event into ``hooks`` of ``.claude/settings.json``
(project scope) or ``~/.claude/settings.json`` (user scope), keeping every other
setting and every other hook. Our entries are recognised by their command
string (it contains ``lifecycle hook claude``), so installing twice gives the
same file, and uninstall removes exactly ours. The file is written atomically
(temp file, fsync, rename) and only when it changes.

Every event runs synchronously: measured against the real CLI, an async hook
still running when ``claude -p`` exits is cancelled (its record is lost) and
SessionEnd is skipped while one runs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

#: Every command containing this is ours.
MARKER = "lifecycle hook claude"
TIMEOUT_SECONDS = 10

#: (event, matcher or None for every occurrence, run asynchronously). None runs
#: asynchronously: Claude Code cancels async hooks still running when ``claude -p``
#: exits (the last tool call's record is lost) and skips SessionEnd while one runs.
EVENTS: tuple[tuple[str, str | None, bool], ...] = (
    ("SessionStart", None, False),
    ("UserPromptSubmit", None, False),
    ("PreToolUse", "Bash|Edit|Write|MultiEdit|NotebookEdit", False),
    ("PostToolUse", None, False),
    ("PostToolUseFailure", None, False),
    ("TaskCreated", None, False),
    ("TaskCompleted", None, False),
    ("PreCompact", None, False),
    ("Stop", None, False),
    ("SessionEnd", None, False),
)


def default_command() -> str:
    """An absolute command, so that the hook runs without the venv on PATH (Claude Code
    started from another shell): the ``lifecycle`` script found on PATH, resolved, or
    this interpreter's ``python -m lifecycle hook claude``."""
    found = shutil.which("lifecycle")
    if found:
        return f"{shlex.quote(os.path.abspath(found))} hook claude"
    return f"{shlex.quote(sys.executable)} -m {MARKER}"


def settings_path(scope: str, project_dir: str | os.PathLike[str] = ".") -> Path:
    if scope == "user":
        return Path.home() / ".claude" / "settings.json"
    return Path(project_dir).resolve() / ".claude" / "settings.json"


def is_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and MARKER in str(entry.get("command", ""))


def read(path: Path) -> dict[str, Any]:
    from lifecycle.errors import InvalidSettings

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InvalidSettings(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidSettings(
            f"{path} is not valid JSON ({exc}); fix it first, nothing was changed"
        ) from None
    if not isinstance(data, dict):
        raise InvalidSettings(f"{path} holds a JSON {type(data).__name__}, not an object")
    if not isinstance(data.get("hooks", {}), dict):
        raise InvalidSettings(f'{path}: "hooks" is not an object; fix it first')
    return data


def without_ours(settings: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``settings`` with our hook entries removed (and groups or events they leave
    empty), and how many were removed. Everything else is kept as it was, in order."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return dict(settings), 0  # a copy: the caller may change it
    removed = 0
    kept_hooks: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            kept_hooks[event] = groups
            continue
        kept_groups = []
        for group in groups:
            entries = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(entries, list):
                kept_groups.append(group)
                continue
            mine = [e for e in entries if is_ours(e)]
            removed += len(mine)
            if not mine:
                kept_groups.append(group)
            elif len(mine) < len(entries):
                kept_groups.append({**group, "hooks": [e for e in entries if not is_ours(e)]})
        if kept_groups or not groups:
            kept_hooks[event] = kept_groups
    out = dict(settings)
    if kept_hooks or not removed:
        out["hooks"] = kept_hooks
    else:
        del out["hooks"]
    return out, removed


def with_ours(settings: dict[str, Any], command: str) -> dict[str, Any]:
    """``settings`` with exactly one group of ours per event in :data:`EVENTS`."""
    out, _ = without_ours(settings)
    hooks = dict(out.get("hooks") or {})
    for event, matcher, run_async in EVENTS:
        entry: dict[str, Any] = {"type": "command", "command": command, "timeout": TIMEOUT_SECONDS}
        if run_async:
            entry["async"] = True
        group: dict[str, Any] = {"hooks": [entry]}
        if matcher is not None:
            group = {"matcher": matcher, **group}
        hooks[event] = [*(hooks.get(event) or []), group]
    out["hooks"] = hooks
    return out


def layout(text: str) -> tuple[int | str, bool]:
    """The indent an existing file uses (2 unless it says otherwise) and whether it ends
    with a newline: install writes the file back the way it was written."""
    import re

    found = re.search(r"^([ \t]+)\S", text, re.MULTILINE)
    indent: int | str = 2
    if found:
        ws = found.group(1)
        indent = ws if "\t" in ws else len(ws)
    return indent, (text.endswith("\n") or not text)


def render(data: dict[str, Any], like: str = "") -> bytes:
    indent, newline = layout(like)
    body = json.dumps(data, indent=indent, ensure_ascii=False)
    return (body + ("\n" if newline else "")).encode("utf-8")


def target(path: Path) -> Path:
    """The file really written: a symlinked settings.json (dotfiles) keeps its link."""
    return path.resolve() if path.is_symlink() else path


def backup_path(path: Path) -> Path:
    """Where install keeps the bytes the file had before (for uninstall)."""
    real = target(path)
    return real.with_name(f".{real.name}.before-lifecycle")


def write_atomic(path: Path, data: dict[str, Any] | bytes, like: str = "") -> None:
    """Write ``data`` (JSON laid out like ``like``, or bytes): temp file in the same
    folder, fsync, rename, folder fsync. An existing file keeps its permissions, a
    symlink its target."""
    path = target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    tmp = path.with_name(f".{path.name}.lifecycle.tmp")
    body = data if isinstance(data, bytes) else render(data, like)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, body)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


#: What the backup holds when install created the file.
CREATED = b"lifecycle: this settings file did not exist before `lifecycle hook install`\n"


def install(path: Path, command: str) -> bool:
    """Merge our hooks into the settings at ``path``; True if the file changed. The
    bytes it had before are kept beside it (once), for uninstall."""
    before = read(path)
    after = with_ours(before, command)
    exists = path.exists()
    if after == before and exists:
        return False
    old = target(path).read_bytes() if exists else b""
    backup = backup_path(path)
    if not backup.exists() and not without_ours(before)[1]:
        write_atomic(backup, old if exists else CREATED)
    write_atomic(path, after, old.decode("utf-8", errors="replace"))
    return True


def uninstall(path: Path) -> int:
    """Remove our hooks from the settings at ``path``; how many entries were removed.
    When nothing else changed since install, the file gets back the very bytes it had
    (or is removed, if install created it)."""
    if not path.exists() and not path.is_symlink():
        return 0
    before = read(path)
    after, removed = without_ours(before)
    backup = backup_path(path)
    if not removed:
        return 0
    original = backup.read_bytes() if backup.exists() else None
    if original == CREATED and after == {}:
        target(path).unlink()
    elif original is not None and original != CREATED and _same(original, after):
        write_atomic(path, original)
    else:
        write_atomic(path, after, target(path).read_text(encoding="utf-8"))
    if original is not None:
        backup.unlink()
    return removed


def _same(raw: bytes, data: dict[str, Any]) -> bool:
    try:
        return bool(json.loads(raw or b"{}") == data)
    except ValueError:
        return False
