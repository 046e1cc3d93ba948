"""A search request, checked once for every backend, and what a search returns.

A query is words, never a query language: each whitespace-separated chunk is one
term that must occur (FTS5 gets it as a quoted phrase, PostgreSQL through
``plainto_tsquery``), so ``NEAR(a b)``, ``title:x``, ``a OR b``, ``"`` or ``*`` are
searched for as text and can never change what the query means.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

import attrs

from lifecycle.errors import InvalidQuery
from lifecycle.search.documents import KINDS, format_timestamp

MAX_QUERY_CHARS = 1_000
MAX_TERMS = 32
MAX_LIMIT = 1_000
DEFAULT_LIMIT = 20
#: Marks around the matched words in a snippet.
MARK_START, MARK_END = "[", "]"

_WORD = re.compile(r"[^\W_]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def clean_snippet(text: str) -> str:
    """A snippet on one line: the fields' line breaks and runs of spaces as one space."""
    return _SPACE.sub(" ", text).strip()


@attrs.frozen
class Query:
    """A checked request: terms, kinds, since, limit."""

    text: str
    terms: tuple[str, ...]
    kinds: tuple[str, ...] = ()
    since: str = ""  # an index timestamp (documents.format_timestamp), "" for no bound
    limit: int = DEFAULT_LIMIT

    def fts5(self) -> str:
        """The FTS5 MATCH expression: every term a quoted phrase, all required."""
        return " ".join('"' + term.replace('"', '""') + '"' for term in self.terms)

    def plain(self) -> str:
        """The terms as plain text (PostgreSQL ``plainto_tsquery``)."""
        return " ".join(self.terms)


@attrs.frozen
class SearchHit:
    """One thing found: the key of the record that holds it, its kind, when, a snippet."""

    key: str
    kind: str
    timestamp: datetime | None
    snippet: str
    score: float
    #: The task id or decision id for ``task`` and ``decision`` hits; else the key.
    ident: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
            "snippet": self.snippet,
            "score": round(self.score, 6),
            "ident": self.ident or self.key,
        }


def make_query(
    text: object,
    *,
    kinds: Iterable[str] | str | None = None,
    since: datetime | date | str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Query:
    """Check a request; raise :class:`InvalidQuery` naming what is wrong."""
    if not isinstance(text, str):
        raise InvalidQuery(f"a search query is text, not {type(text).__name__}")
    if "\x00" in text:
        raise InvalidQuery("the search query contains a NUL character; remove it")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQuery(
            f"the search query is {len(text)} characters, over the {MAX_QUERY_CHARS}-character "
            "limit; search for a few distinctive words"
        )
    terms = tuple(dict.fromkeys(t for t in text.split() if _WORD.search(t)))
    if not terms:
        raise InvalidQuery(f"the search query {text!r} has no words to search for")
    if len(terms) > MAX_TERMS:
        raise InvalidQuery(
            f"the search query has {len(terms)} words, over the limit of {MAX_TERMS}"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery(f"the limit must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return Query(text, terms, _kinds(kinds), _since(since), limit)


def _kinds(kinds: Iterable[str] | str | None) -> tuple[str, ...]:
    if kinds is None:
        return ()
    wanted = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    for kind in wanted:
        if kind not in KINDS:
            raise InvalidQuery(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    return tuple(dict.fromkeys(wanted))


def _since(since: datetime | date | str | None) -> str:
    if since is None or since == "":
        return ""
    if isinstance(since, str):
        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidQuery(
                f"--since {since!r} is not a date; write YYYY-MM-DD or an ISO 8601 time"
            ) from None
    elif isinstance(since, datetime):
        moment = since
    elif isinstance(since, date):
        moment = datetime(since.year, since.month, since.day)
    else:
        raise InvalidQuery(f"since must be a date or a datetime, not {type(since).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(moment)


def parse_timestamp(text: str) -> datetime | None:
    """An index timestamp back to a datetime (None for "")."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
