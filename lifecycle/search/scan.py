"""Search without an index: read every record of the project and match in Python.

For stores that keep no index of their own (``memory://``, Serena, any other Store).
The same documents and the same rule as the indexes: every term must occur, as a
run of words, case and accents folded; a document's score counts its matches, those
in the title twice.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from lifecycle.search.documents import Document, documents
from lifecycle.search.query import (
    MARK_END,
    MARK_START,
    Query,
    SearchHit,
    clean_snippet,
    parse_timestamp,
)

_WORD = re.compile(r"[^\W_]+")
SNIPPET_WORDS = 16


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def _count(words: list[str], phrase: list[str]) -> int:
    n = len(phrase)
    return sum(1 for i in range(len(words) - n + 1) if words[i : i + n] == phrase)


def snippet(title: str, body: str, terms: tuple[str, ...]) -> str:
    """A few words around the first match, the matched words in marks: from the body,
    or from the title when only the title matches."""
    return _snippet(title, body, [p for p in (_words(t) for t in terms) if p])


def _snippet(title: str, body: str, phrases: list[list[str]]) -> str:
    wanted = {w for phrase in phrases for w in phrase}
    for text in (body, title):
        tokens = list(_WORD.finditer(text))
        hits = [i for i, m in enumerate(tokens) if _fold(m.group()) in wanted]
        if not hits:
            continue
        start = max(0, hits[0] - SNIPPET_WORDS // 4)
        end = min(len(tokens), start + SNIPPET_WORDS)
        out = []
        for m in tokens[start:end]:
            word = m.group()
            out.append(f"{MARK_START}{word}{MARK_END}" if _fold(word) in wanted else word)
        return ("…" if start else "") + " ".join(out) + ("…" if end < len(tokens) else "")
    return title


def search(store: Any, project: str, query: Query) -> list[SearchHit]:
    """``store`` is a :class:`~lifecycle.stores.base.Store`; reads ``{project}/``."""
    phrases = [_words(term) for term in query.terms]
    phrases = [p for p in phrases if p]
    if not phrases:
        return []
    best: dict[tuple[str, str], tuple[float, str, Document]] = {}
    cut = len(project) + 1
    for entry in store.scan(project + "/"):
        key = entry.key[cut:]
        for doc in documents(key, entry.value):
            if query.kinds and doc.kind not in query.kinds:
                continue
            if query.since and doc.timestamp < query.since:
                continue
            title, body = _words(doc.title), _words(doc.body)
            counts = [2 * _count(title, p) + _count(body, p) for p in phrases]
            if not all(counts):
                continue
            # Later records (key order: newer checkpoints) take a document over.
            best[(doc.kind, doc.ident)] = (float(sum(counts)), key, doc)
    ranked = sorted(best.values(), key=lambda item: (-item[0], _neg(item[2].timestamp)))
    return [
        SearchHit(
            key=key,
            kind=doc.kind,
            timestamp=parse_timestamp(doc.timestamp),
            snippet=clean_snippet(_snippet(doc.title, doc.body, phrases)),
            score=score,
            ident=doc.ident,
        )
        for score, key, doc in ranked[: query.limit]
    ]


def _neg(timestamp: str) -> tuple[int, ...]:
    """Newest first among equal scores."""
    return tuple(-ord(c) for c in timestamp)
