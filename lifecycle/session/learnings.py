"""Learnings: checked keys, the write, and the retry queue for failed writes."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from lifecycle import codec, keys, limits
from lifecycle.errors import InvalidKey, StoreError
from lifecycle.logs import get_logger
from lifecycle.records import Learning
from lifecycle.session.results import LearningResult
from lifecycle.stores import ProjectStore

log = get_logger(__name__)


def checked(learning: Learning, session_id: str) -> Learning:
    """The learning under a valid key of its type's folder, or InvalidKey with a suggestion;
    OverLimit past the caps on its content and tags."""
    limits.text("learning content", learning.content, limits.LEARNING_CONTENT_CHARS)
    if len(learning.tags) > limits.LEARNING_TAGS:
        from lifecycle.errors import OverLimit

        raise OverLimit("learning tags", len(learning.tags), limits.LEARNING_TAGS, "items")
    for tag in learning.tags:
        limits.text("learning tag", tag, limits.LEARNING_TAG_CHARS)
    key = learning.key
    prefix = learning.type.prefix
    if "/" not in key:
        name = keys.slug(key)
        if name != key:  # never rewritten: two names must not become one key
            raise InvalidKey(
                key,
                "a learning name is 1-100 of A-Z a-z 0-9 . _ - and starts with a letter or digit",
                prefix + name if name else None,
            )
        key = prefix + key
    keys.validate(key)
    if not key.startswith(prefix):
        name = key.rsplit("/", 1)[-1]
        raise InvalidKey(
            key, f"a {learning.type.value} learning lives under {prefix}", prefix + name
        )
    return attrs.evolve(learning, key=key, session_id=learning.session_id or session_id)


class Learnings:
    """Writes learnings; a failed write is queued and retried before the next event."""

    def __init__(self, store: ProjectStore) -> None:
        self.store = store
        self.pending: list[Learning] = []

    def write(self, learning: Learning, written: Callable[[str], None]) -> None:
        """Write now (raising StoreError); ``written(key)`` is told when it is durable."""
        self.store.put(learning.key, codec.encode(learning))
        written(learning.key)

    def capture(self, learning: Learning, written: Callable[[str], None]) -> LearningResult:
        """Write a checked learning after the queued ones; queue it if the store fails."""
        self.retry(written)
        try:
            self.write(learning, written)
        except StoreError as exc:
            self.pending.append(learning)
            log.warning(
                "learning.queued", key=learning.key, error=str(exc), session_id=learning.session_id
            )
            return LearningResult(False, learning.key, queued=True, error=str(exc))
        return LearningResult(True, learning.key)

    def retry(self, written: Callable[[str], None]) -> None:
        while self.pending:
            learning = self.pending[0]
            try:
                self.write(learning, written)
            except StoreError:
                return
            self.pending.pop(0)
            log.info("learning.retried", key=learning.key)

    def count(self) -> int:
        return len(self.store.list_keys(keys.LEARNING_PREFIX))
