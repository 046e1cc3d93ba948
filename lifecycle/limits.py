"""The caps on what a session holds: every default in one place (docs/limits.md).

A session's state must stay small however long it runs and however many sessions
came before it: every checkpoint is written whole, and every hook event rewrites
``session/context``. So each entry point (the library's event methods, and through
them the command line, the Claude Code hook and the MCP server) checks its input
against these caps before anything changes:

- text a user typed (a task description, a decision, a question, a phase, an id)
  is **refused** past its cap with :class:`~lifecycle.errors.OverLimit`, naming the
  field, its size and the limit; nothing changes;
- open work (open tasks, questions, blockers) is refused past its count: it is what
  the next session must see, so none of it is dropped silently;
- history kept for the record (completed tasks, decisions, files modified, errors,
  discoveries) is **trimmed** past its count, oldest first (files: the later ones),
  and the number left out is counted in ``WorkState.omitted`` ("... and 2,480 more
  files"); error text from tools is clipped with a note of the characters cut.

The caps keep a typical checkpoint far under :data:`CHECKPOINT_WARN_BYTES`; a
session that fills every list with text at its cap can still pass
:data:`CHECKPOINT_MAX_BYTES`, and then the checkpoint writer trims the largest
fields with a warning instead of refusing (a session is never stuck).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lifecycle.errors import OverLimit

# -- text (characters): refused past the cap ----------------------------------------------
TASK_ID_CHARS = 200
TASK_DESCRIPTION_CHARS = 2_000
#: A task's progress note ("50%", "3 of 8 files").
TASK_PROGRESS_CHARS = 200
PHASE_CHARS = 500
#: Each of a decision's text, rationale and impact.
DECISION_CHARS = 2_000
#: An open question or a blocker.
QUESTION_CHARS = 1_000
FILE_PATH_CHARS = 1_000
#: A pattern or an insight discovered.
DISCOVERY_CHARS = 1_000
#: A session's ``command`` and ``change_id``.
COMMAND_CHARS = 1_000

# -- text (characters): clipped past the cap (tools write it, not the user) ---------------
ERROR_CHARS = 2_000
RECOVERY_STEP_CHARS = 500
FILE_OPERATION_CHARS = 50

# -- lists of open work: refused past the count ----------------------------------------------
OPEN_TASKS = 100
OPEN_QUESTIONS = 50
BLOCKERS = 50

# -- lists of history: trimmed past the count, the rest counted in WorkState.omitted ------
#: The newest are kept.
COMPLETED_TASKS = 100
DECISIONS = 100
ERRORS = 20
PATTERNS = 50
INSIGHTS = 50
#: The first are kept; a change to a file not kept is counted.
FILES_MODIFIED = 500
#: Per error; the first are kept.
RECOVERY_STEPS = 20
#: Per file; the first are kept.
FILE_OPERATIONS = 10
#: One-line recent changes (the newest; older ones are not counted: they are a window).
RECENT_CHANGES = 10

# -- values (bytes of their JSON encoding): refused past the cap --------------------------
PROGRESS_BYTES = 4_000
CONTEXT_BYTES = 16_000

# -- learnings: refused past the cap ------------------------------------------------------
#: However a learning is captured: the library, ``lifecycle learn``, the MCP server's
#: ``capture_learning`` and ``write_memory("learning/...")``.
LEARNING_CONTENT_CHARS = 200_000
LEARNING_TAGS = 20
LEARNING_TAG_CHARS = 100

# -- memories (``memories/...``, the MCP server's): refused past the cap -----------------
#: A memory's text, as ``write_memory`` writes it or ``edit_memory`` leaves it.
MEMORY_TEXT_CHARS = 200_000

# -- what a resumed session carries of the previous one -----------------------------------
#: The restored checkpoint's session's own completed tasks and decisions, newest first.
CARRIED_COMPLETED_TASKS = 20
CARRIED_DECISIONS = 20

# -- checkpoints (bytes of the encoded record) ----------------------------------------------
#: "<50KB typical": a warning is logged past it.
CHECKPOINT_WARN_BYTES = 50_000
#: "<200KB maximum": past it the writer trims the largest fields (with a warning).
CHECKPOINT_MAX_BYTES = 200_000

#: ``session/context`` holds the work twice (the live state and the session record).
LIVE_CONTEXT_BYTES = 2 * CHECKPOINT_MAX_BYTES + 50_000

# -- accumulating project records ----------------------------------------------------------
#: ``project_state/decisions_log`` keeps the newest; every decision stays in its day's
#: segment ``project_state/decisions/{YYYY-MM-DD}`` (capped too).
DECISIONS_LOG_ENTRIES = 50
DECISIONS_PER_DAY = 1_000


def text(field: str, value: str, limit: int) -> str:
    """``value``, or OverLimit when it has more than ``limit`` characters."""
    if len(value) > limit:
        raise OverLimit(field, len(value), limit)
    return value


def optional_text(field: str, value: str | None, limit: int) -> str | None:
    return None if value is None else text(field, value, limit)


def clip(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, saying how many were cut."""
    if len(value) <= limit:
        return value
    note = f"... ({len(value) - limit:,} more characters)"
    return value[: max(0, limit - len(note))] + note


def room(field: str, count: int, limit: int) -> None:
    """OverLimit when a list of open work already holds ``limit`` items."""
    if count >= limit:
        raise OverLimit(field, count + 1, limit, "items")


def encoded(field: str, value: Mapping[str, Any], limit: int) -> Mapping[str, Any]:
    """``value``, or OverLimit when its JSON encoding is over ``limit`` bytes."""
    import orjson

    try:
        size = len(orjson.dumps(dict(value)))
    except TypeError:  # not JSON (orjson's error is one): the record's own check says so later
        return value
    if size > limit:
        raise OverLimit(field, size, limit, "bytes")
    return value


def omitted(counts: Mapping[str, int], field: str, n: int) -> dict[str, int]:
    """``counts`` with ``n`` more left out of ``field``."""
    out = dict(counts)
    if n > 0:
        out[field] = out.get(field, 0) + n
    return out
