"""Which project a folder belongs to: its git top level, and the name that goes with it.

Without ``--project`` or ``$LIFECYCLE_PROJECT``, the command line, the MCP server and
the Claude Code hook all name the project after the folder at the git top level of
the current (or the event's) folder, or that folder itself outside git: two
repositories sharing one ``LIFECYCLE_STORE`` are two projects, not one "default".
No ``git`` is run (every hook is a new process): the top level is the nearest folder
holding a ``.git`` folder or file.

Before that name, a project was ``default`` unless named: a store written then keeps
its records under ``default/``, and the folder's name finds none of them.
:func:`left_under_default` says when that is the case, and :func:`moved_hint` how to
reach them again (the command line warns with it).
"""

from __future__ import annotations

import os
from typing import Any

#: The name every project had before projects were named after their folder.
LEGACY_NAME = "default"


def git_root(start: str) -> str:
    """The git top level above ``start``, else ``start`` (both absolute)."""
    first = here = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return first
        here = parent


def default_name(start: str | None = None) -> str:
    """The project name for ``start`` (default: the current folder): its top level's
    folder name as a valid project name, ``default`` when nothing of it is valid."""
    from lifecycle.keys import slug

    root = git_root(start if start is not None else os.getcwd())
    return slug(os.path.basename(root)) or "default"


def left_under_default(store: Any, project: str) -> bool:
    """Whether the raw ``store`` holds records of project ``default`` and none of
    ``project`` (a store written before projects were named after their folder)."""
    if project == LEGACY_NAME:
        return False
    return not store.list_keys(project + "/", limit=1) and bool(
        store.list_keys(LEGACY_NAME + "/", limit=1)
    )


def moved_hint(project: str) -> str:
    """What to do when :func:`left_under_default`: keep the old name, or copy them."""
    return (
        f"this store has no records of project {project!r} (the name of this folder) but "
        f"has records of project {LEGACY_NAME!r}, the name lifecycle gave every project "
        f"before; to keep using them set LIFECYCLE_PROJECT={LEGACY_NAME} (or pass --project "
        f"{LEGACY_NAME}), or copy them to this name: lifecycle export --project "
        f"{LEGACY_NAME} --output old.jsonl && lifecycle import old.jsonl --project {project}"
    )
