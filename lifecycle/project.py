"""Which project a folder belongs to: its git top level, and the name that goes with it.

Without ``--project`` or ``$LIFECYCLE_PROJECT``, the command line, the MCP server and
the Claude Code hook all name the project after the folder at the git top level of
the current (or the event's) folder, or that folder itself outside git: two
repositories sharing one ``LIFECYCLE_STORE`` are two projects, not one "default".
No ``git`` is run (every hook is a new process): the top level is the nearest folder
holding a ``.git`` folder or file.
"""

from __future__ import annotations

import os


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
