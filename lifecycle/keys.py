"""The memory-key grammar, the fixed keys, key builders, and suggestions.

The hierarchy joins SuperClaude's Session Lifecycle Pattern (``session/{ts}``,
``checkpoints/{ts}``, ``summaries/``, ``project_state/``) and SuperSpec's session
manager (``session/context``, ``session/checkpoint``, ``session/last``,
``learning/``).

Valid keys::

    session/current | session/context | session/checkpoint | session/last
    session/{ts} | session/history/{ts}
    checkpoints/latest | checkpoints/{ts} | checkpoints/auto-{ts}
    checkpoints/task-{task-id}-{ts} | checkpoints/risk-{operation}-{ts}
    checkpoints/recovery-{ts}
    learning/{patterns|solutions|anti-patterns|insights}/{name}
    summaries/daily/{YYYY-MM-DD} | summaries/weekly/{YYYY-Www} | summaries/insights/{topic}
    project_state/{context_enhanced|patterns_discovered|decisions_log}
    project_state/decisions/{YYYY-MM-DD} every decision of a day (the log keeps the newest)
    journal/{session-id}/{seq}
    memories/{name}[/{name}...]          free-form notes (Serena-style memory names)
    langgraph/{thread}/{ns}/{checkpoint}[/{task}]
                                         LangGraph checkpoints and their pending writes
                                         (lifecycle.integrations.langgraph encodes each part)

``{ts}`` is :func:`format_ts`: ``20250131T143000.000000Z``; it sorts as text in
time order and holds no ``:``, so it is a safe file name on every OS. A bad key
raises :class:`InvalidKey` with the nearest valid key as a suggestion.
"""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, date, datetime
from enum import StrEnum

from lifecycle.errors import InvalidKey, quoted

TS = r"\d{8}T\d{6}\.\d{6}Z"
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
#: A part of a LangGraph key: any text, escaped by lifecycle.integrations.langgraph
#: (``_`` starts an escape, so it may start the segment too).
LANGGRAPH_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}"
_TS_FORMAT = "%Y%m%dT%H%M%S.%fZ"
_TS = re.compile(TS, re.ASCII)

LEARNING_FOLDERS = ("patterns", "solutions", "anti-patterns", "insights")
PROJECT_STATE = ("context_enhanced", "patterns_discovered", "decisions_log")
SESSION_FIXED = ("current", "context", "checkpoint", "last", "lease")
SUMMARY_FOLDERS = ("daily", "weekly", "insights")
NAMESPACES = (
    "session",
    "checkpoints",
    "learning",
    "summaries",
    "project_state",
    "journal",
    "memories",
    "langgraph",
)


class CheckpointKind(StrEnum):
    """Which rule asked for a checkpoint; it names the checkpoint's key.

    Carried from the trigger (``CheckpointCall.kind``) to :func:`checkpoint_key`, so
    nothing has to read the kind back out of a key. A ``StrEnum``: each member equals
    its old string (``CheckpointKind.AUTO == "auto"``).
    """

    MANUAL = "manual"  # checkpoints/{ts}: create_checkpoint(), the session's final one
    AUTO = "auto"  # checkpoints/auto-{ts}: the time trigger
    TASK = "task"  # checkpoints/task-{task-id}-{ts}: the task trigger
    RISK = "risk"  # checkpoints/risk-{operation}-{ts}: the risk trigger
    RECOVERY = "recovery"  # checkpoints/recovery-{ts}: the error trigger


CHECKPOINT_KINDS: tuple[str, ...] = tuple(kind.value for kind in CheckpointKind)

# -- fixed keys and namespace prefixes (the one place they are spelled) -----------------

#: Pointer to the newest checkpoint.
LATEST = "checkpoints/latest"
#: Pointer to the session record of the open (or last) session.
CURRENT = "session/current"
#: The open session's complete live state (``LiveContext``).
CONTEXT = "session/context"
#: Which process continues the open session now (:mod:`lifecycle.session.lease`).
LEASE = "session/lease"
#: What the next session is told about the last one (``SessionSummary``).
LAST = "session/last"
#: Reserved by the grammar (SuperSpec's session manager names it); nothing writes it.
SESSION_CHECKPOINT = "session/checkpoint"
#: Project state consolidated at COMPLETED.
DECISIONS_LOG = "project_state/decisions_log"
PATTERNS_DISCOVERED = "project_state/patterns_discovered"
CONTEXT_ENHANCED = "project_state/context_enhanced"

#: Namespace prefixes, for ``list_keys`` and ``startswith``.
SESSION_PREFIX = "session/"
SESSION_HISTORY_PREFIX = "session/history/"
CHECKPOINTS_PREFIX = "checkpoints/"
LEARNING_PREFIX = "learning/"
SUMMARIES_PREFIX = "summaries/"
PROJECT_STATE_PREFIX = "project_state/"
DECISIONS_DAY_PREFIX = "project_state/decisions/"
JOURNAL_PREFIX = "journal/"
MEMORIES_PREFIX = "memories/"
LANGGRAPH_PREFIX = "langgraph/"

# re.ASCII: ``\d`` must not match other scripts' digits (they are not file-name safe).
_GRAMMAR: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.ASCII)
    for p in (
        rf"session/(?:{'|'.join(SESSION_FIXED)})",
        rf"session/(?:history/)?{TS}",
        re.escape(LATEST),
        rf"checkpoints/(?:auto-|recovery-)?{TS}",
        rf"checkpoints/(?:task|risk)-{NAME}-{TS}",
        rf"learning/(?:{'|'.join(LEARNING_FOLDERS)})/{NAME}",
        r"summaries/daily/\d{4}-\d{2}-\d{2}",
        r"summaries/weekly/\d{4}-W\d{2}",
        rf"summaries/insights/{NAME}",
        rf"project_state/(?:{'|'.join(PROJECT_STATE)})",
        r"project_state/decisions/\d{4}-\d{2}-\d{2}",
        rf"journal/{NAME}/\d{{12}}",
        rf"memories/{NAME}(?:/{NAME}){{0,7}}",
        rf"langgraph/{LANGGRAPH_SEGMENT}/{LANGGRAPH_SEGMENT}/{LANGGRAPH_SEGMENT}"
        rf"(?:/{LANGGRAPH_SEGMENT})?",
    )
)
#: The whole grammar as one pattern: a key fully matches an alternative exactly when
#: it fully matches one of :data:`_GRAMMAR` (one regex call instead of up to 14).
_ANY_KEY = re.compile("|".join(f"(?:{p.pattern})" for p in _GRAMMAR), re.ASCII)
_CHECKPOINT = re.compile(
    rf"checkpoints/(?:(auto|recovery)-|(task|risk)-({NAME})-)?({TS})", re.ASCII
)
_PROJECT = re.compile(NAME, re.ASCII)


#: The last UTC moment formatted and its text: a checkpoint's id and key name one moment.
_last_ts: tuple[datetime | None, str] = (None, "")


def format_ts(moment: datetime) -> str:
    """A timestamp for keys and ids: sortable as text, safe as a file name."""
    global _last_ts
    last = _last_ts  # one tuple, read and replaced whole: safe across threads
    if last[0] is moment:
        return last[1]
    m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # By hand: strftime's %Y does not zero-pad years before 1000 on every platform. One
    # %-format of a tuple: half the time of an f-string of seven format specs.
    text = "%04d%02d%02dT%02d%02d%02d.%06dZ" % (  # noqa: UP031
        m.year, m.month, m.day, m.hour, m.minute, m.second, m.microsecond,
    )  # fmt: skip
    if moment.tzinfo is UTC:  # (a naive moment's text follows the local zone: not kept)
        _last_ts = (moment, text)
    return text


def parse_ts(text: str) -> datetime:
    if _TS.fullmatch(text):
        # fromisoformat (3.11+ reads this basic form) is ~20x faster than strptime, which
        # made listing 100,000 checkpoints take seconds. Same result, same range checks.
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text).astimezone(UTC)
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def is_valid(key: str) -> bool:
    return isinstance(key, str) and _ANY_KEY.fullmatch(key) is not None


#: The last key :func:`validate` allowed: a new checkpoint's key is built (and checked)
#: by :func:`checkpoint_key`, then checked again on its way to the store.
_last_valid: list[str] = [""]


def validate(key: str) -> str:
    """Return ``key`` if the grammar allows it, else raise InvalidKey with a suggestion."""
    if type(key) is str and key == _last_valid[0] and key:
        return key
    if is_valid(key):
        if type(key) is str:
            _last_valid[0] = key
        return key
    if not isinstance(key, str):
        raise InvalidKey(repr(key), "a key must be a string")
    raise InvalidKey(key, _reason(key), suggest(key))


def validate_project(project: str) -> str:
    if isinstance(project, str) and _PROJECT.fullmatch(project):
        return project
    raise InvalidKey(
        str(project),
        "a project name must be 1-100 of A-Z a-z 0-9 . _ - starting with a letter or digit",
        slug(str(project)) or None,
    )


def _reason(key: str) -> str:
    head = key.split("/", 1)[0]
    if ".." in key.split("/") or key.startswith("/") or "\\" in key:
        return "a key cannot name a path outside the store"
    if head not in NAMESPACES:
        return f"unknown namespace {quoted(head)} (known: {', '.join(NAMESPACES)})"
    return f"not a valid {head} key"


def slug(text: str) -> str:
    """``Some Name!`` -> ``some-name``: the nearest valid name segment."""
    out = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip())
    out = re.sub(r"-{2,}", "-", out).strip("-._")
    return out[:100]


def _closest(word: str, options: tuple[str, ...]) -> str | None:
    forms = {opt: opt for opt in options}
    forms.update({opt.rstrip("s"): opt for opt in options})  # singulars: pattern -> patterns
    forms.update({opt.replace("_", "-"): opt for opt in options})
    low = word.lower().replace(" ", "_")
    if low in forms:
        return forms[low]
    import difflib  # only on the error path: a bad key

    hit = difflib.get_close_matches(low, list(forms), n=1, cutoff=0.6)
    return forms[hit[0]] if hit else None


def suggest(key: str) -> str | None:
    """The nearest valid key to ``key``, or None when nothing is close."""
    parts = [p for p in re.split(r"[/\\]+", key.strip()) if p not in ("", ".", "..")]
    if not parts:
        return None
    ns = _closest(parts[0], (*NAMESPACES, "learnings"))
    if ns == "learnings":
        ns = "learning"
    rest = parts[1:]
    candidate: str | None = None
    if ns == "learning" and rest:
        folder = _closest(rest[0], LEARNING_FOLDERS)
        name = slug("-".join(rest[1:])) if len(rest) > 1 else ""
        if folder and name:
            candidate = f"learning/{folder}/{name}"
    elif ns == "project_state" and rest:
        item = _closest(rest[0], PROJECT_STATE)
        candidate = f"project_state/{item}" if item else None
    elif ns == "session" and rest:
        item = _closest(rest[0], SESSION_FIXED)
        candidate = f"session/{item}" if item else None
    elif ns == "checkpoints" and rest:
        candidate = LATEST if _closest(rest[0], ("latest",)) else None
    elif ns == "summaries" and len(rest) > 1:
        folder = _closest(rest[0], SUMMARY_FOLDERS)
        candidate = f"summaries/{folder}/{slug(rest[1])}" if folder else None
    elif ns == "memories" and rest:
        candidate = "memories/" + "/".join(filter(None, (slug(p) for p in rest)))
    elif ns is None and len(parts) == 1:
        candidate = f"memories/{slug(parts[0])}" if slug(parts[0]) else None
    return candidate if candidate and is_valid(candidate) else None


# -- builders ---------------------------------------------------------------------------


def session_key(started: datetime) -> str:
    return f"{SESSION_PREFIX}{format_ts(started)}"


def session_history_key(started: datetime) -> str:
    return f"{SESSION_HISTORY_PREFIX}{format_ts(started)}"


def checkpoint_kind(kind: CheckpointKind | str) -> CheckpointKind:
    """``kind`` as a :class:`CheckpointKind`; its old string name is accepted too."""
    if type(kind) is CheckpointKind:
        return kind
    try:
        return CheckpointKind(kind)
    except ValueError:
        known = ", ".join(CHECKPOINT_KINDS)
        raise InvalidKey(str(kind), f"unknown checkpoint kind (known: {known})") from None


def checkpoint_key(
    kind: CheckpointKind | str,
    moment: datetime,
    *,
    task_id: str | None = None,
    operation: str | None = None,
) -> str:
    """The key for a checkpoint of ``kind`` (a :class:`CheckpointKind`, or its name)."""
    kind = checkpoint_kind(kind)
    ts = format_ts(moment)
    if kind is CheckpointKind.MANUAL:
        key = f"checkpoints/{ts}"
    elif kind is CheckpointKind.TASK:
        key = f"checkpoints/task-{_named(task_id) or 'task'}-{ts}"
    elif kind is CheckpointKind.RISK:
        key = f"checkpoints/risk-{_named(operation) or 'operation'}-{ts}"
    else:  # AUTO, RECOVERY
        key = f"checkpoints/{kind.value}-{ts}"
    return validate(key)


def _named(text: str | None) -> str:
    """The name part of a checkpoint key: the slug of ``text`` with its secrets redacted
    (a key is a file name and a row key, stored as it is: never a secret in it)."""
    if not text:
        return ""
    from lifecycle.redact import redact

    return slug(redact(text))


def parse_checkpoint_key(key: str) -> tuple[CheckpointKind, datetime, str | None] | None:
    """``(kind, moment, task id or operation)`` for a checkpoint key, else None.

    For listing and reading stored checkpoints; a checkpoint being written carries its
    kind from the trigger (``CheckpointCall.kind``)."""
    m = _CHECKPOINT.fullmatch(key)
    if m is None:
        return None
    simple, named, name, ts = m.groups()
    try:
        moment = parse_ts(ts)
    except ValueError:  # the grammar's shape with an impossible date: not a checkpoint
        return None
    return (CheckpointKind(simple or named or "manual"), moment, name)


def learning_key(folder_or_type: str, name: str) -> str:
    """``learning/{folder}/{name}``; accepts a type (``solution``) or a folder (``solutions``)."""
    folder = _closest(folder_or_type, LEARNING_FOLDERS)
    if folder is None or _closest(folder, LEARNING_FOLDERS) != folder:
        raise InvalidKey(f"learning/{folder_or_type}/{name}", "unknown learning type")
    return validate(f"learning/{folder}/{slug(name)}")


def daily_summary_key(day: date) -> str:
    return f"summaries/daily/{day.isoformat()}"


def weekly_summary_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"summaries/weekly/{year:04d}-W{week:02d}"


def decisions_day_key(day: date) -> str:
    """``project_state/decisions/{YYYY-MM-DD}``: the day's segment of the decisions log."""
    return f"{DECISIONS_DAY_PREFIX}{day.isoformat()}"


def insight_summary_key(topic: str) -> str:
    return validate(f"summaries/insights/{slug(topic)}")


def journal_key(session_id: str, seq: int) -> str:
    return validate(f"{journal_prefix(session_id)}{seq:012d}")


def journal_prefix(session_id: str) -> str:
    """``journal/{session-id}/``: the prefix of one session's journal entries."""
    return f"{JOURNAL_PREFIX}{slug(session_id)}/"
