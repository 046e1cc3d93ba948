"""The package's errors: one base, and a subclass for each thing that can go wrong.

Each error names what was wrong, the value that was wrong, and what would be right,
so that a front end can print ``str(err)`` as its one-line message.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The most characters of any input an error message quotes.
QUOTE_LIMIT = 200


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters of the input.

    A key or name of a megabyte is quoted by its start and its length, so an error
    never carries the whole bad input (and never twice)."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:limit]!r}... ({len(text):,} characters)"


class LifecycleError(Exception):
    """Base of every error this package raises on purpose."""

    #: The command line's exit status for this kind of error.
    exit_code: int = 1


class IllegalTransition(LifecycleError):
    """An event that the transition table does not allow from the current state."""

    exit_code = 3

    def __init__(self, state: str, event: str, legal_events: Iterable[str]) -> None:
        self.state = state
        self.event = event
        self.legal_events = tuple(sorted(legal_events))
        legal = ", ".join(self.legal_events) or "none (the state is final)"
        super().__init__(f"event {event!r} is not allowed in state {state}; legal events: {legal}")


class InvalidKey(LifecycleError, ValueError):
    """A memory key outside the key grammar. Never reaches storage."""

    exit_code = 2

    def __init__(self, key: str, reason: str, suggestion: str | None = None) -> None:
        self.key = key
        self.reason = reason
        self.suggestion = suggestion
        hint = f"; did you mean {quoted(suggestion)}?" if suggestion else ""
        super().__init__(f"invalid key {quoted(key)}: {reason}{hint}")


class InvalidRecord(LifecycleError, ValueError):
    """A record that does not fit its schema (bad field, bad type, bad value)."""

    exit_code = 2


class InvalidSettings(LifecycleError, ValueError):
    """A setting outside its allowed range (a trigger's interval, a risk pattern, ...)."""

    exit_code = 2


class SchemaVersionError(InvalidRecord):
    """A stored record whose schema version this code cannot read."""

    def __init__(self, kind: str, found: object, known: int) -> None:
        self.kind = kind
        self.found = found
        self.known = known
        super().__init__(
            f"{kind} record has schema_version {found!r}, but this version of lifecycle reads "
            f"versions 1 to {known}; upgrade lifecycle to read it"
        )


class CorruptRecord(LifecycleError):
    """Stored bytes that fail their checksum or cannot be decoded."""

    exit_code = 4

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"record {quoted(key)} is corrupt: {reason}")


class StaleRecord(CorruptRecord):
    """A value the store left unflushed (``Put(lazy=True)``) before the machine last
    restarted: intact, but maybe older than the last value written, so it is not
    trusted. Its reader rebuilds it, as it does a torn copy."""


class StoreError(LifecycleError):
    """A store operation that failed (I/O error, server gone, permission denied)."""

    exit_code = 5


class StoreUnavailable(StoreError):
    """The store cannot be reached at all."""


class StoreReadOnly(StoreError):
    """A store opened read-only (its file system is full or read-only): reads work, and
    every write is refused before it starts, so nothing is half written."""


class VersionConflict(StoreError):
    """A compare-and-swap whose expected version did not match the stored one."""

    exit_code = 6

    def __init__(self, key: str, expected: int | None, found: int | None) -> None:
        self.key = key
        self.expected = expected
        self.found = found
        exp = "absent" if expected == 0 else f"version {expected}"
        got = "absent" if not found else f"version {found}"
        super().__init__(f"key {key!r}: expected {exp}, found {got}")


def _shaped_secrets(rest: str) -> set[str]:
    """In the text after a ``://``: each text from its first ``:`` to an ``@`` before the
    next ``/``."""
    colon = rest.find(":")
    if colon < 0:
        return set()
    end = rest.find("/", colon)
    segment = rest[colon + 1 : end if end >= 0 else len(rest)]
    return {segment[:i] for i, c in enumerate(segment) if c == "@" and i}


def url_secrets(url: str) -> tuple[str, ...]:
    """The password-shaped parts of ``scheme://user:SECRET@host...``, longest first.

    Found by shape, not by a URL parser, so that a malformed URL (a ``#`` or ``?``
    in the user name, a typo in the scheme) still has its password hidden: every
    text from the first ``:`` after a ``://`` to an ``@`` before the next ``/``. A URL
    carried inside another, percent-encoded (a fallback store's ``primary=``), is
    decoded and searched too, and each secret is returned in every form it may be
    written in: as found, decoded, and percent-encoded once or twice.
    """
    from urllib.parse import quote, unquote

    found: set[str] = set()
    text = url
    for _ in range(3):
        start = text.find("://")
        while start >= 0:
            found |= _shaped_secrets(text[start + 3 :])
            start = text.find("://", start + 3)
        decoded = unquote(text)
        if decoded == text:
            break
        text = decoded
    forms: set[str] = set()
    for secret in found:
        for form in (secret, unquote(secret)):
            for _ in range(3):
                forms.add(form)
                form = quote(form, safe="")
    return tuple(sorted((f for f in forms if f), key=len, reverse=True))


def hide_secrets(text: str, url: str | None) -> str:
    """``text`` with every form of ``url``'s password (:func:`url_secrets`) as ``***``."""
    if url:
        for secret in url_secrets(url):
            text = text.replace(secret, "***")
    return text


class InvalidStoreURL(LifecycleError, ValueError):
    """A store URL with an unknown scheme or a malformed location.

    A password in the URL is shown as ``***``, in the URL and in the reason."""

    exit_code = 2

    def __init__(self, url: str, reason: str) -> None:
        url, reason = hide_secrets(url, url), hide_secrets(reason, url)
        self.url = url
        super().__init__(
            f"cannot open store {url!r}: {reason}; use file://DIR, sqlite:///FILE, "
            "postgresql://..., serena+stdio://..., or memory://"
        )


class CheckpointTooLarge(InvalidRecord):
    """A checkpoint over the hard size limit; names its largest fields."""

    def __init__(self, size: int, limit: int, largest: Iterable[tuple[str, int]]) -> None:
        self.size = size
        self.limit = limit
        self.largest = tuple(largest)
        fields = ", ".join(f"{name} ({n} bytes)" for name, n in self.largest)
        super().__init__(
            f"checkpoint is {size} bytes, over the {limit}-byte limit; largest fields: {fields}"
        )


class OverLimit(InvalidRecord):
    """A value past one of the documented caps (:mod:`lifecycle.limits`): names the
    field, its size and the limit."""

    def __init__(self, field: str, size: int, limit: int, unit: str = "characters") -> None:
        self.field = field
        self.size = size
        self.limit = limit
        self.unit = unit
        super().__init__(f"{field} is {size:,} {unit}, over the limit of {limit:,} {unit}")


class NoSession(LifecycleError):
    """An operation that needs a started session, called before start_session."""

    exit_code = 3


class CheckpointNotFound(LifecycleError):
    """A checkpoint id that names no stored checkpoint."""

    exit_code = 4

    def __init__(self, checkpoint_id: str) -> None:
        self.checkpoint_id = checkpoint_id
        super().__init__(f"no valid checkpoint with id {checkpoint_id!r}")


class UnknownDiagramFormat(LifecycleError, ValueError):
    """A diagram format that :mod:`lifecycle.diagrams` cannot draw."""

    exit_code = 2

    def __init__(self, fmt: str, known: Iterable[str], *, kind: str = "format") -> None:
        self.fmt = fmt
        self.known = tuple(known)
        super().__init__(f"unknown diagram {kind} {fmt!r}; use one of: {', '.join(self.known)}")


class DiagramToolMissing(LifecycleError):
    """A diagram format that needs Graphviz, asked for where Graphviz is not installed."""

    exit_code = 2


class MalformedDiagram(LifecycleError):
    """A drawn SVG that is not well-formed XML (browsers would refuse to show it)."""


class InvalidQuery(LifecycleError, ValueError):
    """A search query that cannot be run (empty, too long, a NUL character, a bad filter)."""

    exit_code = 2


class InvalidExport(LifecycleError, ValueError):
    """An export file that cannot be imported: cut short, a bad checksum, a line that is
    not a record, or a format version newer than this lifecycle reads. Nothing is written."""

    exit_code = 2


class MigrationMismatch(LifecycleError):
    """After a migration, the target does not hold what the source does."""
