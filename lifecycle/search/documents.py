"""What a stored record contributes to the search index: pure, no I/O.

:func:`documents` turns one stored value (the raw JSON bytes a store holds under a
project's key) into the documents it is found by. It reads the JSON as plain data,
never through the codec's schema, so a record of any schema version (or a damaged one)
gives what it can and never fails a write.

A document is identified by ``(kind, ident)`` within its project, not by the record
that holds it: a task or a decision is carried from checkpoint to checkpoint, and the
index keeps one document for it (owned by the last record written that holds it), so a
search finds the task once, not once per checkpoint.

Which keys are indexed (everything else gives no document)::

    learning/...                  learning   key, type, content, tags
    memories/...                  memory     key, text
    checkpoints/{...}             checkpoint phase, type, trigger, label, operation
                                  task       id, description, status (each task)
                                  decision   decision, rationale, impact (each one)
                                  prompt     each of the user's prompts its context keeps
                                             (as stored: redacted)
    session/{ts}, session/history/{ts}
                                  session    command, change id, phase
                                  task, decision (the session's work)
    session/last, summaries/...   summary    phase, tasks, questions, blockers, insights
    project_state/decisions_log   decision   (each entry)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import orjson

from lifecycle import keys

KINDS: tuple[str, ...] = (
    "learning",
    "decision",
    "task",
    "summary",
    "checkpoint",
    "session",
    "memory",
    "prompt",
)
#: The context key under which a front end keeps the user's last prompts (the Claude Code
#: hook's ``PROMPTS``): a checkpoint holds them, so a search finds what was asked.
PROMPTS = "prompts"

#: Text kept per document field; a bigger record is still found by its beginning.
MAX_FIELD_CHARS = 16_384

_CHECKPOINT = re.compile(r"checkpoints/(?!latest$)[A-Za-z0-9._-]+")
_SESSION = re.compile(r"session/(?:history/)?\d{8}T\d{6}\.\d{6}Z")
_SUMMARY = re.compile(
    re.escape(keys.LAST)
    + r"|"
    + re.escape(keys.SUMMARIES_PREFIX)
    + r"(?:daily|weekly|insights)/[A-Za-z0-9._-]+"
)
#: Where decisions live: the log of the newest, and one segment per day (every decision).
_DECISIONS = re.compile(
    re.escape(keys.DECISIONS_LOG)
    + r"|"
    + re.escape(keys.DECISIONS_DAY_PREFIX)
    + r"\d{4}-\d{2}-\d{2}"
)


@attrs.frozen
class Document:
    """One searchable thing: its identity, when it happened, and its text."""

    kind: str
    ident: str
    #: ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (sorts as text), or "" when the record has none.
    timestamp: str
    title: str
    body: str
    #: Changes when the text does: an unchanged document is not re-indexed.
    digest: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        raw = f"{self.title}\x00{self.body}".encode()
        object.__setattr__(self, "digest", hashlib.blake2b(raw, digest_size=12).hexdigest())


def is_indexed(key: str) -> bool:
    """Whether a project key (``learning/...``, not ``{project}/learning/...``) can
    give documents; the write hooks skip decoding every other value."""
    head = key.split("/", 1)[0]
    if head in ("learning", "memories"):
        return True
    if head == "checkpoints":
        return _CHECKPOINT.fullmatch(key) is not None
    if head in ("session", "summaries"):
        return _SESSION.fullmatch(key) is not None or _SUMMARY.fullmatch(key) is not None
    return _DECISIONS.fullmatch(key) is not None


def split_key(full_key: str) -> tuple[str, str] | None:
    """``(project, key)`` of a store key ``{project}/{key}``; None without a project."""
    project, sep, key = full_key.partition("/")
    return (project, key) if sep and key else None


def documents(key: str, value: bytes) -> list[Document]:
    """The documents the value stored at project key ``key`` is found by."""
    if not is_indexed(key):
        return []
    head = key.split("/", 1)[0]
    if head == "memories":
        text = value.decode("utf-8", "replace")
        return [Document("memory", key, "", key, _cap(text))]
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(data, dict):
        return []
    try:
        if head == "learning":
            return _learning(key, data)
        if head == "checkpoints":
            return _checkpoint(key, data)
        if _DECISIONS.fullmatch(key):
            return [_decision(d) for d in _dicts(data.get("entries"))]
        if _SESSION.fullmatch(key):
            return _session(key, data)
        return _summary(key, data)
    except (TypeError, ValueError, AttributeError):  # a damaged record: no documents
        return []


# -- per record -----------------------------------------------------------------------------


def _learning(key: str, data: dict[str, Any]) -> list[Document]:
    tags = " ".join(_strs(data.get("tags")))
    body = _join(_str(data.get("content")), tags and f"tags: {tags}")
    title = _join(key, _str(data.get("type")), sep=" ")
    return [Document("learning", key, _ts(data.get("timestamp")), title, body)]


def _checkpoint(key: str, data: dict[str, Any]) -> list[Document]:
    ts = _ts(data.get("timestamp"))
    body = _join(
        *(
            f"{name}: {_str(data.get(name))}"
            for name in ("type", "trigger", "label", "operation")
            if _str(data.get(name))
        )
    )
    found = [Document("checkpoint", key, ts, _str(data.get("phase")) or key, body)]
    context = data.get("context")
    if isinstance(context, dict):
        session = _str(data.get("session_id"))
        found.extend(_prompt(session, text, ts) for text in _strs(context.get(PROMPTS)))
    state = data.get("state")
    if isinstance(state, dict):
        for task in (*_dicts(state.get("active_tasks")), *_dicts(state.get("completed_tasks"))):
            found.append(_task(task, ts))
        found.extend(_decision(d) for d in _dicts(state.get("decisions")))
    return _unique(found)


def _session(key: str, data: dict[str, Any]) -> list[Document]:
    ts = _ts(data.get("start_time"))
    title = _join(_str(data.get("command")), _str(data.get("change_id")), sep=" ") or key
    found = [Document("session", key, ts, title, _str(data.get("phase")))]
    work = data.get("work")
    if isinstance(work, dict):
        found.extend(_task(t, ts) for t in _dicts(work.get("tasks_completed")))
        found.extend(_decision(d) for d in _dicts(work.get("decisions_made")))
    return _unique(found)


def _summary(key: str, data: dict[str, Any]) -> list[Document]:
    ts = _ts(data.get("end_time") or data.get("date") or data.get("start_time"))
    parts = [
        _str(data.get("phase")),
        _labelled("completed", data.get("tasks_completed")),
        _labelled("open", data.get("open_tasks")),
        _labelled("questions", data.get("open_questions")),
        _labelled("blockers", data.get("blockers")),
        _labelled("phases", data.get("phases")),
    ]
    for digest in _dicts(data.get("sessions")):  # a daily summary's sessions
        parts += [_str(digest.get("phase")), _labelled("completed", digest.get("tasks_completed"))]
    entries = _dicts(data.get("entries"))  # an insight summary's entries
    parts += [_str(e.get("text")) for e in entries]
    if entries and not ts:
        ts = _ts(entries[-1].get("timestamp"))
    for d in _dicts(data.get("decisions")):
        parts.append(_str(d.get("decision")))
    title = _str(data.get("topic")) or key
    return [Document("summary", key, ts, title, _join(*parts))]


#: Tasks and decisions seen before, by their fields: a checkpoint carries its session's
#: tasks and decisions again, and building their documents is most of its indexing cost.
_SEEN: dict[tuple[object, ...], Document] = {}
_SEEN_MAX = 50_000


def _remember(key: tuple[object, ...], make: Callable[[], Document]) -> Document:
    try:
        doc = _SEEN.get(key)
    except TypeError:  # a field that is not a string (a damaged record): no caching
        return make()
    if doc is None:
        if len(_SEEN) >= _SEEN_MAX:
            _SEEN.clear()
        doc = _SEEN[key] = make()
    return doc


def _task(task: dict[str, Any], ts: str) -> Document:
    """A task's document; its time is when it completed or started, else when the first
    record holding it was written (a task without times keeps the first one seen)."""
    get = task.get
    key = (
        "task",
        get("id"),
        get("description"),
        get("status"),
        get("completed_at"),
        get("started_at"),
    )

    def make() -> Document:
        ident, desc, status = _str(get("id")), _str(get("description")), _str(get("status"))
        when = _ts(get("completed_at")) or _ts(get("started_at")) or ts
        return Document("task", ident, when, ident, _join(desc, status and f"({status})"))

    return _remember(key, make)


def _decision(d: dict[str, Any]) -> Document:
    get = d.get
    key = (
        "decision",
        get("timestamp"),
        get("decision"),
        get("rationale"),
        get("impact"),
        get("id"),
    )

    def make() -> Document:
        stamp, decision = get("timestamp"), _str(get("decision"))
        ident = _str(get("id")) or _decision_id(stamp, decision)
        body = _join(_str(get("rationale")), _str(get("impact")))
        return Document("decision", ident, _ts(stamp), decision, body)

    return _remember(key, make)


def _prompt(session: str, text: str, ts: str) -> Document:
    """A prompt's document: one per session and text (each checkpoint of the session
    carries its last prompts again); its time is the first checkpoint's that held it."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
    return Document("prompt", f"{session}/{digest}", ts, _cap(text), "")


def _decision_id(timestamp: object, decision: str) -> str:
    """The id :class:`lifecycle.records.Decision` gives itself (same inputs, same hash)."""
    moment = _moment(timestamp)
    stamp = moment.isoformat() if moment is not None else str(timestamp)
    raw = f"{stamp}\x00{decision}".encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


# -- plain-data helpers ---------------------------------------------------------------------


def _unique(found: list[Document]) -> list[Document]:
    """One document per ``(kind, ident)``: the last one wins (a task completed later in
    the list supersedes its active copy)."""
    seen: dict[tuple[str, str], Document] = {}
    for doc in found:
        if doc.ident:
            seen[(doc.kind, doc.ident)] = doc
    return list(seen.values())


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: object) -> str:
    return _cap(value) if isinstance(value, str) else ""


def _strs(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _labelled(label: str, value: object) -> str:
    items = _strs(value)
    return f"{label}: {'; '.join(items)}" if items else ""


def _join(*parts: str, sep: str = "\n") -> str:
    return _cap(sep.join(p for p in parts if p))


def _cap(text: str) -> str:
    # No NUL: PostgreSQL text cannot hold one, and no word contains one.
    return text[:MAX_FIELD_CHARS].replace("\x00", " ")


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


_ISO_UTC = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{6}))?\+00:00", re.ASCII)


def _ts(value: object) -> str:
    if isinstance(value, str):  # what the codec writes: UTC isoformat, no parsing needed
        quick = _ISO_UTC.fullmatch(value)
        if quick is not None:
            return f"{quick[1]}.{quick[2] or '000000'}Z"
    moment = _moment(value)
    if moment is None and isinstance(value, str) and len(value) == 10:
        moment = _moment(value + "T00:00:00+00:00")  # a daily summary's date
    return format_timestamp(moment) if moment is not None else ""


def format_timestamp(moment: datetime) -> str:
    """The index's timestamp form: UTC, fixed width, sorts as text."""
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond:06d}Z"
    )
