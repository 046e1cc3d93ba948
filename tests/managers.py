"""Both managers behind one sync-looking interface, for behavioural tests written once.

``BlockingAsyncManager`` drives an :class:`~lifecycle.aio.AsyncSessionManager` on a
private event loop: every awaited method is run to completion, properties are read
as they are. ``KINDS`` names the managers a shared test runs against.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from lifecycle.aio import AsyncSessionManager
from lifecycle.session import SessionManager

#: sync: SessionManager; async: AsyncSessionManager stepping inline (memory store);
#: async-thread: AsyncSessionManager with every step in a worker thread.
KINDS = ("sync", "async", "async-thread")


class BlockingAsyncManager:
    def __init__(self, *args: Any, offload: bool | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self.inner = AsyncSessionManager(*args, offload=offload, **kwargs)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if inspect.iscoroutinefunction(value):
            return self._blocking(value)
        return value

    def _blocking(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._loop.run_until_complete(method(*args, **kwargs))

        return call

    def close(self) -> None:
        self._loop.close()


def factory(kind: str) -> Callable[..., Any]:
    """``make(store, project, clock, **kwargs)`` for a manager of ``kind``."""
    if kind == "sync":
        return SessionManager
    if kind == "async":
        return BlockingAsyncManager
    if kind == "async-thread":
        return lambda *a, **k: BlockingAsyncManager(*a, offload=True, **k)
    raise ValueError(f"unknown manager kind {kind!r}; known: {', '.join(KINDS)}")
