"""Checkpoint history as a tree: each checkpoint points at its parent by id.

A session that restores a checkpoint continues from it, so its first checkpoint's
parent is the restored one; a session that restores an older checkpoint starts a
branch, and nothing is overwritten. :func:`build_history` reads each checkpoint at
most once (names come from one listing; a checkpoint id ``cp-{ts}`` and its key
share the ``{ts}``, so an id resolves to a key without reading anything).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import attrs

from lifecycle import codec, keys
from lifecycle.errors import CorruptRecord, InvalidKey, InvalidRecord, StaleRecord, StoreError
from lifecycle.logs import get_logger
from lifecycle.records import Checkpoint, Pointer
from lifecycle.stores.base import ProjectStore

log = get_logger(__name__)

_ID = re.compile(rf"cp-({keys.TS})")


def checkpoint_ts(checkpoint_id: str) -> str | None:
    """The ``{ts}`` of a checkpoint id ``cp-{ts}``, or None when it is not one."""
    m = _ID.fullmatch(checkpoint_id) if isinstance(checkpoint_id, str) else None
    return None if m is None else m[1]


def checkpoint_keys_by_ts(store: ProjectStore) -> dict[str, str]:
    """``{ts: key}`` for every checkpoint key, from one name listing (no reads)."""
    found: dict[str, str] = {}
    for key in store.list_keys(keys.CHECKPOINTS_PREFIX):
        if keys.parse_checkpoint_key(key) is not None:
            found[key[-len("20250131T143000.000000Z") :]] = key
    return found


def newest_valid(store: ProjectStore) -> Checkpoint | None:
    """The newest checkpoint (by name) that reads and decodes: what a restore falls back
    to when ``checkpoints/latest`` is unreadable (torn, or left unflushed before the
    machine restarted) or names a missing one."""
    by_ts = checkpoint_keys_by_ts(store)
    for ts in sorted(by_ts, reverse=True):
        try:
            entry = store.get(by_ts[ts])
            if entry is not None:
                return codec.decode(Checkpoint, entry.value, key=by_ts[ts])
        except (CorruptRecord, InvalidRecord) as exc:
            log.warning("history.unreadable", key=by_ts[ts], error=str(exc))
    return None


def current_session(store: ProjectStore) -> tuple[str, str] | None:
    """``(key, id)`` of the session ``session/current`` names (None without a session).
    Without a readable pointer (torn, left unflushed before the machine restarted, or
    left out of an export for either reason): the newest session record by name, which
    is the one it named, since each session record is created with its pointer, in
    time order."""
    try:
        entry = store.get(keys.CURRENT)
        if entry is not None:
            pointer = codec.decode(Pointer, entry.value, key=keys.CURRENT)
            return pointer.key, pointer.id
    except (CorruptRecord, InvalidRecord) as exc:
        log.info("history.current_unreadable", error=str(exc))
    newest: str | None = None
    for key in store.list_keys(keys.SESSION_PREFIX):
        ts = key[len(keys.SESSION_PREFIX) :]
        if "/" in ts or (newest is not None and ts <= newest):
            continue
        try:
            keys.parse_ts(ts)
        except ValueError:
            continue  # session/current, session/context, ...
        newest = ts
    return None if newest is None else (keys.SESSION_PREFIX + newest, f"session-{newest}")


def checkpoint_key_for(store: ProjectStore, checkpoint_id: str) -> str | None:
    """The key of the checkpoint with ``checkpoint_id``, from names alone; None if none."""
    ts = checkpoint_ts(checkpoint_id)
    if ts is None:
        return None
    for key in store.list_keys(keys.CHECKPOINTS_PREFIX):
        if key.endswith(ts) and keys.parse_checkpoint_key(key) is not None:
            return key
    return None


@attrs.define
class Node:
    """One checkpoint in the tree."""

    id: str
    key: str
    timestamp: datetime
    session_id: str
    type: str
    trigger: str
    phase: str
    parent_id: str | None
    children: list[Node] = attrs.Factory(list)
    #: The parent id names a checkpoint that is not stored (pruned or unreadable).
    parent_missing: bool = False
    #: The commit of its snapshot of the work tree (``lifecycle rewind ID``), if any.
    snapshot: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "timestamp": self.timestamp.isoformat(),
            "session_id": self.session_id,
            "type": self.type,
            "trigger": self.trigger,
            "phase": self.phase,
            "parent_id": self.parent_id,
            "parent_missing": self.parent_missing,
            "snapshot": self.snapshot,
            "children": [c.id for c in self.children],
        }


@attrs.define
class History:
    nodes: dict[str, Node]
    roots: list[Node]
    latest_id: str | None
    unreadable: list[str]

    def ancestors(self, checkpoint_id: str) -> list[str]:
        """``checkpoint_id`` and its parent chain, newest first, as far as it is stored."""
        chain: list[str] = []
        node = self.nodes.get(checkpoint_id)
        while node is not None and node.id not in chain:
            chain.append(node.id)
            node = None if node.parent_id is None else self.nodes.get(node.parent_id)
        return chain

    def as_dict(self) -> dict[str, Any]:
        return {
            "latest": self.latest_id,
            "roots": [r.id for r in self.roots],
            "checkpoints": [n.as_dict() for n in sorted_nodes(self.nodes.values())],
            "unreadable": list(self.unreadable),
        }

    def lines(self) -> Iterator[str]:
        """The tree as indented text. A straight line of checkpoints stays at one depth;
        where a checkpoint has several children, the older ones are indented branches
        and the newest continues the line."""
        stack: list[tuple[Node, int, bool]] = [
            (r, 0, True) for r in reversed(sorted_nodes(self.roots))
        ]
        while stack:
            node, depth, first = stack.pop()
            mark = "* " if first and depth > 0 else ""
            note = ""
            if node.parent_missing:
                note = f"  (parent {node.parent_id} not stored)"
            if node.snapshot is not None:
                note += "  [snapshot]"
            if node.id == self.latest_id:
                note += "  <- latest"
            phase = f"  {node.phase!r}" if node.phase else ""
            yield (
                f"{'  ' * depth}{mark}{node.id}  {node.type}/{node.trigger}  "
                f"{node.session_id}{phase}{note}"
            )
            kids = sorted_nodes(node.children)
            if not kids:
                continue
            # Pushed in reverse: the branches print first, then the line continues.
            stack.append((kids[-1], depth, False))
            for kid in reversed(kids[:-1]):
                stack.append((kid, depth + 1, True))
        for key in self.unreadable:
            yield f"unreadable: {key}"


def sorted_nodes(nodes: Any) -> list[Node]:
    return sorted(nodes, key=lambda n: (n.timestamp, n.id))


def _node(cp: Checkpoint, key: str) -> Node:
    return Node(
        id=cp.id,
        key=key,
        timestamp=cp.timestamp,
        session_id=cp.session_id,
        type=cp.type.value,
        trigger=cp.trigger,
        phase=cp.phase,
        parent_id=cp.parent_id,
        snapshot=None if cp.snapshot is None else cp.snapshot.commit,
    )


def build_history(store: ProjectStore) -> History:
    """The project's checkpoint tree: one listing, then one read per checkpoint."""
    nodes: dict[str, Node] = {}
    unreadable: list[str] = []
    for key in store.list_keys(keys.CHECKPOINTS_PREFIX):
        if keys.parse_checkpoint_key(key) is None:
            continue
        try:
            entry = store.get(key)
            if entry is None:  # deleted between the listing and the read
                continue
            cp = codec.decode(Checkpoint, entry.value, key=key)
        except (CorruptRecord, InvalidRecord, InvalidKey, StoreError) as exc:
            log.warning("history.unreadable", key=key, error=str(exc))
            unreadable.append(key)
            continue
        nodes[cp.id] = _node(cp, key)
    roots: list[Node] = []
    for node in nodes.values():
        parent = None if node.parent_id is None else nodes.get(node.parent_id)
        if parent is None:
            node.parent_missing = node.parent_id is not None
            roots.append(node)
        else:
            parent.children.append(node)
    latest = latest_id(store)
    if (latest is None or latest not in nodes) and nodes:
        # No pointer to follow (unreadable, or naming a missing checkpoint): the one a
        # restore would take, the newest that reads.
        latest = max(nodes.values(), key=lambda node: node.timestamp).id
    return History(nodes, roots, latest, unreadable)


def latest_id(store: ProjectStore) -> str | None:
    """The id ``checkpoints/latest`` names, or None when it is absent or unreadable."""
    try:
        entry = store.get(keys.LATEST)
        if entry is None:
            return None
        return codec.decode(Pointer, entry.value, key=keys.LATEST).id
    except StaleRecord:
        log.info("history.latest_from_an_earlier_boot")
        return None
    except (CorruptRecord, InvalidRecord, StoreError) as exc:
        log.warning("history.latest_unreadable", error=str(exc))
        return None
