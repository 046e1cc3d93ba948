"""LangGraph on lifecycle: a checkpointer on lifecycle's stores, and a session around a
graph's run (the ``[langgraph]`` extra).

- :class:`LifecycleSaver`: a LangGraph ``BaseCheckpointSaver`` on any lifecycle store.
- :class:`GraphSession`: a LangGraph run as one lifecycle session.
"""

from __future__ import annotations

from lifecycle.integrations.langgraph.saver import LifecycleSaver, PruneRefused
from lifecycle.integrations.langgraph.serde import (
    NoPickleSerializer,
    UnsafePayload,
    UnsupportedValue,
)
from lifecycle.integrations.langgraph.session import GraphSession, RunResult, tool_operation

__all__ = [
    "GraphSession",
    "LifecycleSaver",
    "NoPickleSerializer",
    "PruneRefused",
    "RunResult",
    "UnsafePayload",
    "UnsupportedValue",
    "tool_operation",
]
