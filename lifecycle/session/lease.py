"""The session lease: the store itself decides which process continues the open session.

Continuing a session is read ``session/context``, act, write it back; two processes
doing that at once would each write back what they read, and the second would drop
the first one's work. So a step first takes the project's lease, a record at
``session/lease`` written with the store's own compare-and-swap (every store has
one: :func:`lifecycle.stores.base.check_version`): created when absent (expected
version 0), or taken over when it has expired or its holder is a process of this
machine that is gone (expected version: the one read). Whoever wins the swap holds
it; the others wait and try again. Because the record lives where the session lives,
processes on two machines, under two spellings of one store's URL, an MCP server and
the hooks all exclude each other: nothing local (a temp folder, an environment
variable) decides.

A holder that dies keeps the lease until it expires (``ttl``, 15 s), or, on the same
machine, until the next process sees its pid is gone (at once). A holder that
overruns its lease (paused past the expiry) is caught by the fence: the live record
is written back with compare-and-swap against the version it read
(:meth:`SessionManager.save_context`), so its write fails loudly instead of
overwriting the next holder's.

The record is JSON, ``{"kind": "session_lease", "owner", "host", "pid", "expires"}``;
``expires`` is wall-clock seconds, so machines sharing a store need clocks within a
few seconds of each other (NTP does that).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from lifecycle import keys
from lifecycle.errors import CorruptRecord, StoreError, StoreUnavailable, VersionConflict
from lifecycle.logs import get_logger
from lifecycle.stores import Delete, ProjectStore, Put

log = get_logger(__name__)

LEASE = keys.LEASE
#: How long a lease holds without its holder: longer than any one step takes.
DEFAULT_TTL = 15.0
#: First and longest wait between two tries, in seconds (doubling, with jitter).
_FIRST_WAIT, _LONGEST_WAIT = 0.002, 0.05


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


#: This machine, as the lease names it: host name and boot (a pid means nothing after
#: a reboot, or on another machine).
HOST = f"{os.uname().nodename}/{_boot_id()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or not a pid we can ask about): alive
    return True


def _takeable(body: bytes, now: float) -> tuple[bool, str]:
    """Whether a stored lease may be taken over, and who holds it (for the error)."""
    try:
        data: Any = orjson.loads(body)
        holder = f"{data['host']} pid {data['pid']}"
        expires, host, pid = float(data["expires"]), str(data["host"]), int(data["pid"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return True, "an unreadable lease"
    if now >= expires:
        return True, holder
    if host == HOST and pid != os.getpid() and not _alive(pid):
        return True, holder
    return False, holder


class Lease:
    """One process's hold on a project's session (see the module docstring)."""

    def __init__(
        self,
        store: ProjectStore,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.owner = os.urandom(16).hex()
        self.version: int | None = None  # the lease record's version while held

    def _body(self) -> bytes:
        return orjson.dumps(
            {
                "kind": "session_lease",
                "owner": self.owner,
                "host": HOST,
                "pid": os.getpid(),
                "expires": self.clock() + self.ttl,
            }
        )

    def try_acquire(self) -> str | None:
        """Take the lease if it is free; None when held now, else who holds it."""
        expected: int | None
        try:
            entry = self.store.get(LEASE)
            expected = 0 if entry is None else entry.version
        except CorruptRecord:  # a torn lease is free: taken with a blind write
            entry, expected = None, None
        if entry is not None:
            free, holder = _takeable(entry.value, self.clock())
            if not free:
                return holder
            log.info("lease.taken_over", holder=holder, project=self.store.project)
        try:
            # Nothing need be flushed: a torn lease fails its checksum, and is free; a
            # reboot ends every holder, and the lease names the boot it was taken in.
            (self.version,) = self.store.batch(
                [Put(LEASE, self._body(), expected, sync=False, volatile=True)]
            )
        except VersionConflict:
            return "a process that took it first"
        return None

    def acquire(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the lease; StoreUnavailable if still held."""
        deadline = time.monotonic() + timeout
        wait = _FIRST_WAIT
        while True:
            holder = self.try_acquire()
            if holder is None:
                return
            if time.monotonic() >= deadline:
                raise StoreUnavailable(
                    f"another lifecycle process ({holder}) has held the session of project "
                    f"{self.store.project!r} for {timeout:g} s; try again"
                )
            jitter = 0.5 + int.from_bytes(os.urandom(1), "big") / 255  # 0.5 to 1.5
            time.sleep(wait * jitter)
            wait = min(wait * 2, _LONGEST_WAIT)

    def release(self) -> None:
        """Give the lease back (compare-and-swap: never someone else's)."""
        version, self.version = self.version, None
        if version is None:
            return
        try:
            self.store.batch([Delete(LEASE, version, volatile=True)])
        except VersionConflict:
            log.warning("lease.lost", project=self.store.project, owner=self.owner)
        except StoreError as exc:  # it expires on its own
            log.warning("lease.release_failed", project=self.store.project, error=str(exc))


@contextlib.contextmanager
def held(store: ProjectStore, timeout: float, *, ttl: float = DEFAULT_TTL) -> Iterator[Lease]:
    """Hold the project's session lease for the block."""
    lease = Lease(store, ttl=ttl)
    lease.acquire(timeout)
    try:
        yield lease
    finally:
        lease.release()
