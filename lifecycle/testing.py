"""A verification kit: hypothesis strategies and a stateful test of the lifecycle rules.

Three parts, all importable by users (``pip install 'lifecycle[testing]'``):

- **Strategies** for events (:func:`events`, :func:`activities`), records
  (:func:`tasks`, :func:`decisions`, :func:`work_states`, :func:`checkpoints`,
  :func:`learnings`, ...) and store faults (:func:`fault_schedules`). Records
  are built by :func:`records_of`: ``st.builds`` on the real attrs classes, each
  field drawn from a strategy its type gives (so a field added to a record is
  generated), with bounds that keep them valid and storable (aware UTC times,
  64-bit ints, finite floats, text without surrogates).
- **Store wrappers**: :class:`ForwardingStore` forwards every call of the Store
  protocol to the store it wraps (subclass it to watch or change some);
  :class:`FaultyStore` fails the calls its faults name (by operation, key prefix,
  seeded probability, call number, count, exception, before or after the inner call),
  can slow calls down and counts them; :class:`FlakyStore` is a FaultyStore driven by
  a :class:`FaultSchedule` (or a random rate). And :class:`SimulatedClock`.
- :class:`LifecycleRules`, a ``RuleBasedStateMachine`` that fires random
  events (legal or not) at a real :class:`~lifecycle.session.SessionManager`
  under store faults and checks the eight lifecycle rules (docs/testing.md) after
  every step.

Subclass :class:`LifecycleRules` to check your own setup::

    class MyRules(LifecycleRules):
        def make_store(self):              # your store; a new, empty one per example
            return open_store("sqlite:///" + path)

        def make_manager(self, store, clock):   # your triggers, hooks, settings
            return SessionManager(store=store, project=self.project, clock=clock,
                                  hooks=[MyHooks()])

        @invariant()
        def my_rule(self):                 # your own invariant, checked after every step
            assert ...

    TestMyRules = MyRules.TestCase

docs/testing.md has a complete example (run by the test suite).
"""

from __future__ import annotations

import enum
import functools
import itertools
import random
import string
import threading
import time
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lifecycle import codec, keys
from lifecycle.errors import IllegalTransition, InvalidSettings, StoreError, StoreUnavailable
from lifecycle.events import EVENTS, TABLE_EVENTS
from lifecycle.records import (
    Checkpoint,
    CheckpointType,
    Decision,
    ErrorContext,
    FileChange,
    JSONValue,
    Learning,
    LearningType,
    Pointer,
    Priority,
    Task,
    TaskStatus,
    WorkState,
)
from lifecycle.session import Clearance, Outcome, SessionManager
from lifecycle.spec import ACTIVE_TIME_EVENTS, TABLE, WORK_EVENTS, Event, SessionState
from lifecycle.stores import open_store
from lifecycle.stores.base import Delete, Entry, ForwardingStore, Op, Put, Store
from lifecycle.triggers import (
    Activity,
    Operation,
    RiskSettings,
    TaskSettings,
    TimeSettings,
    classify,
    default_evaluators,
)

T = TypeVar("T")

__all__ = [
    "OPERATIONS",
    "READS",
    "WRITES",
    "Call",
    "Fault",
    "FaultSchedule",
    "FaultyStore",
    "FlakyStore",
    "ForwardingStore",
    "LifecycleRules",
    "SimulatedClock",
    "Step",
    "activities",
    "checkpoints",
    "commands",
    "decisions",
    "error_contexts",
    "events",
    "fault_schedules",
    "file_changes",
    "json_dicts",
    "learnings",
    "operations",
    "paths",
    "records_of",
    "task_ids",
    "tasks",
    "texts",
    "timestamps",
    "work_events",
    "work_states",
]

# -- strategies: values ------------------------------------------------------------------

#: Times the records and clocks use: aware UTC, whole microseconds, years 2000 to 2099.
MIN_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2099, 12, 31, tzinfo=UTC)


def timestamps(
    min_value: datetime = MIN_TIME, max_value: datetime = MAX_TIME
) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes (what every clock and record in the package holds)."""
    return st.datetimes(
        min_value=min_value.replace(tzinfo=None),
        max_value=max_value.replace(tzinfo=None),
        timezones=st.just(UTC),
    )


def texts(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode text that JSON can store (no lone surrogates), any script, short."""
    return st.text(
        alphabet=st.characters(codec="utf-8"),  # utf-8: no lone surrogates
        min_size=min_size,
        max_size=max_size,
    )


def task_ids() -> st.SearchStrategy[str]:
    """Task ids as TodoWrite makes them: ``T001`` .. ``T007`` (few, so tasks repeat)."""
    return st.sampled_from([f"T{i:03d}" for i in range(1, 8)])


def priorities() -> st.SearchStrategy[str]:
    return st.sampled_from([p.value for p in Priority])


R = TypeVar("R")

_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # orjson's int range
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts(max_size=20)
)


def json_values(max_leaves: int = 10) -> st.SearchStrategy[JSONValue]:
    """JSON values: scalars, and nested lists and objects of them."""
    return st.recursive(
        _JSON_SCALARS,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(texts(max_size=10), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_dicts(max_leaves: int = 10) -> st.SearchStrategy[dict[str, JSONValue]]:
    """JSON objects (progress, context): nested lists and objects of JSON scalars."""
    return st.dictionaries(texts(max_size=15), json_values(max_leaves), max_size=5)


_NAME_CHARS = string.ascii_lowercase + string.digits + "-"


def _names(max_size: int = 30) -> st.SearchStrategy[str]:
    """A key-safe name segment (``[a-z0-9]`` first, then ``[a-z0-9-]``)."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(string.ascii_lowercase + string.digits),
        st.text(alphabet=_NAME_CHARS, max_size=max_size - 1),
    )


# -- strategies: records -----------------------------------------------------------------


def records_of(
    cls: type[R], *, max_items: int = 4, **fields: st.SearchStrategy[Any]
) -> st.SearchStrategy[R]:
    """Records of the attrs class ``cls``: ``st.builds`` with a strategy per init field,
    ``fields[name]`` where given, else the one the field's type gives:

    ``str`` text (at least as long as a ``min_len`` validator asks; non-empty inside
    a tuple), ``bool``, ``int`` (64-bit), ``float`` (finite), ``datetime``
    (:func:`timestamps`), an enum (its members), ``X | None``, ``tuple[X, ...]`` (up
    to ``max_items``), ``dict[str, X]``, JSON values (``Any``), and a nested record
    (the package's strategy for it, such as :func:`tasks`, else :func:`records_of`).
    ``schema_version`` keeps its default. A field of another type is a ``TypeError``
    naming it: pass a strategy for it.
    """
    hints = typing.get_type_hints(cls)
    record_fields = attrs.fields(typing.cast(Any, cls))
    known = {f.name for f in record_fields}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(unknown)}")
    kwargs: dict[str, st.SearchStrategy[Any]] = {}
    for field in record_fields:
        if not field.init or (field.name == "schema_version" and field.name not in fields):
            continue
        strategy = fields.get(field.name)
        if strategy is None:
            min_size = getattr(field.validator, "min_length", 0)
            where = f"{cls.__name__}.{field.name}"
            strategy = _for_type(hints[field.name], where, max_items, min_size)
        kwargs[field.alias or field.name] = strategy
    return st.builds(cls, **kwargs)


def _for_type(hint: Any, where: str, max_items: int, min_size: int = 0) -> st.SearchStrategy[Any]:
    """The strategy :func:`records_of` draws a field of type ``hint`` from."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return json_values()
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        inner = st.one_of(*(_for_type(a, where, max_items, min_size) for a in options))
        return st.none() | inner if len(options) < len(args) else inner
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _for_type(args[0], where, max_items, max(min_size, 1))
        return st.lists(item, max_size=max_items).map(tuple)
    if origin is dict and args and args[0] is str:
        if args[1] is Any:
            return json_dicts()
        value = _for_type(args[1], where, max_items)
        return st.dictionaries(texts(max_size=15), value, max_size=max_items)
    if isinstance(hint, type):
        if attrs.has(hint):
            strategy = _RECORD_STRATEGIES.get(hint)
            return strategy() if strategy is not None else records_of(hint, max_items=max_items)
        if issubclass(hint, enum.Enum):
            return st.sampled_from(hint)
        if hint is str:
            return texts(min_size=min_size, max_size=max(40, min_size))
        if hint is bool:
            return st.booleans()
        if hint is int:
            return st.integers(min_value=-(2**63), max_value=2**63 - 1)
        if hint is float:
            return st.floats(allow_nan=False, allow_infinity=False)
        if hint is datetime:
            return timestamps()
    raise TypeError(f"no strategy for {where} of type {hint!r}: pass one to records_of")


def tasks(ids: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[Task]:
    """Task records in any status and priority."""
    return records_of(
        Task,
        id=ids if ids is not None else task_ids(),
        progress=st.none() | st.integers(0, 100).map(lambda p: f"{p}%"),
        duration_minutes=st.none() | st.floats(0, 10_000, allow_nan=False),
    )


def paths() -> st.SearchStrategy[str]:
    """File paths, ordinary and sensitive (the risk trigger's default patterns match some)."""
    return st.sampled_from(
        [
            "README.md",
            "src/app/views.py",
            "tests/test_views.py",
            "docs/guide.md",
            "src/app/auth/login.py",
            ".github/workflows/ci.yml",
            "migrations/0002_users.sql",
            "pyproject.toml",
            ".env",
        ]
    )


def file_changes() -> st.SearchStrategy[FileChange]:
    return records_of(
        FileChange,
        path=paths(),
        operations=st.lists(st.sampled_from(["create", "edit", "delete", "rename"]), max_size=3),
        changes=st.none() | st.integers(0, 10_000),
    )


def decisions() -> st.SearchStrategy[Decision]:
    return records_of(Decision, impact=texts(max_size=20))


def error_contexts() -> st.SearchStrategy[ErrorContext]:
    return records_of(
        ErrorContext,
        error=texts(min_size=1, max_size=80),
        recovery_steps=st.lists(texts(min_size=1), max_size=3),
        operation=st.none() | commands(),
    )


#: The strategies records_of uses for these records wherever they appear in another.
_RECORD_STRATEGIES: dict[type, Callable[[], st.SearchStrategy[Any]]] = {
    Task: tasks,
    FileChange: file_changes,
    Decision: decisions,
    ErrorContext: error_contexts,
}


def work_states(max_items: int = 4) -> st.SearchStrategy[WorkState]:
    """A session's work state: what a checkpoint stores and a restore brings back."""
    return records_of(WorkState, max_items=max_items)


@st.composite
def checkpoints(draw: st.DrawFn, project: str = "demo") -> Checkpoint:
    """Checkpoints as the manager writes them: id, key and timestamp agree."""
    at = draw(timestamps())
    kind = draw(st.sampled_from(["manual", "auto", "task", "risk", "recovery"]))
    task = draw(task_ids()) if kind == "task" else None
    operation = draw(_names()) if kind == "risk" else None
    cp_type = {
        "manual": CheckpointType.MANUAL,
        "auto": CheckpointType.AUTOMATIC,
        "task": CheckpointType.AUTOMATIC,
        "risk": CheckpointType.RISK,
        "recovery": CheckpointType.RECOVERY,
    }[kind]
    earlier = timestamps(max_value=at).map(lambda t: f"cp-{keys.format_ts(t)}")
    return draw(
        records_of(
            Checkpoint,
            id=st.just(f"cp-{keys.format_ts(at)}"),
            timestamp=st.just(at),
            phase=texts(max_size=30),
            progress=json_dicts(),
            context=json_dicts(),
            session_id=st.just(f"session-{keys.format_ts(at)}"),
            project=st.just(project),
            type=st.just(cp_type),
            trigger=st.sampled_from(["user-requested", "30-minute-interval", "task-complete"]),
            key=st.just(keys.checkpoint_key(kind, at, task_id=task, operation=operation)),
            parent_id=st.none() | earlier,
            operation=st.just(operation),
            state=work_states(),
        )
    )


def learnings() -> st.SearchStrategy[Learning]:
    """Learnings with valid keys: ``learning/{type}s/{name}`` matches the type."""
    return st.tuples(st.sampled_from(LearningType), _names()).flatmap(
        lambda kind_name: records_of(
            Learning,
            type=st.just(kind_name[0]),
            key=st.just(kind_name[0].prefix + kind_name[1]),
            content=texts(min_size=1, max_size=200),
            tags=st.lists(_names(max_size=12), max_size=3),
        )
    )


# -- strategies: events ------------------------------------------------------------------


def events() -> st.SearchStrategy[Event]:
    """Any event of the table (legal or not in a given state)."""
    return st.sampled_from(Event)


def work_events() -> st.SearchStrategy[Event]:
    """The events that report work while a session runs (each may trigger a checkpoint)."""
    return st.sampled_from(WORK_EVENTS)


def commands() -> st.SearchStrategy[str]:
    """Shell commands, harmless and risky under the default risk settings."""
    return st.sampled_from(
        [
            "ls -la",
            "pytest -q",
            "git status",
            "make test",
            'echo "rm -rf /"',
            "rm -rf build",
            "git push --force",
            "rm notes.txt",
            "git reset --hard HEAD~3",
        ]
    )


def operations() -> st.SearchStrategy[Operation]:
    """Operations about to run: a command, the paths they touch, deletion, bulk size."""
    return st.builds(
        Operation,
        name=st.sampled_from(["", "edit", "refactor", "cleanup"]),
        command=st.none() | commands(),
        paths=st.lists(paths(), max_size=3),
        files_count=st.none() | st.integers(0, 80),
        deletes=st.sampled_from([False, False, False, True]),
        kind=st.none() | st.sampled_from(["architecture", "security", "docs"]),
    )


@st.composite
def activities(draw: st.DrawFn, event: Event | None = None) -> Activity:
    """What a trigger evaluator sees: an event with the task, operation or error it carries."""
    chosen = event if event is not None else draw(events())
    at = draw(timestamps())
    task = draw(tasks()) if chosen is Event.TASK_COMPLETED else None
    operation = draw(operations()) if chosen is Event.BEFORE_OPERATION else None
    error = draw(st.none() | error_contexts()) if chosen is Event.ERROR_RECOVERED else None
    return Activity(chosen, at, task=task, operation=operation, error=error)


# -- store faults ------------------------------------------------------------------------


@attrs.frozen
class FaultSchedule:
    """Which store calls fail: the n-th write (``put``, ``delete``, ``batch``, counted
    from 0) fails when n is in ``writes``; the n-th read (``get``, ``list_keys``) when
    n is in ``reads``. Shrinks to "no faults", so a failing example names the faults
    it needs."""

    writes: frozenset[int] = attrs.field(default=frozenset(), converter=frozenset)
    reads: frozenset[int] = attrs.field(default=frozenset(), converter=frozenset)

    def fails(self, kind: str, n: int) -> bool:
        return n in (self.reads if kind == "read" else self.writes)


def fault_schedules(
    rate: float = 0.1, horizon: int = 200, *, reads: bool = False
) -> st.SearchStrategy[FaultSchedule]:
    """Fault schedules over the first ``horizon`` writes (and reads, if ``reads``), with
    up to about ``rate`` of them failing."""
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be between 0 and 1, got {rate!r}")
    most = round(rate * horizon)
    calls = st.sets(st.integers(0, horizon - 1), max_size=most)
    return st.builds(FaultSchedule, writes=calls, reads=calls if reads else st.just(frozenset()))


# -- store wrappers ----------------------------------------------------------------------

#: The Store protocol's reading and writing operations, as FaultyStore names them.
READS: frozenset[str] = frozenset({"get", "list_keys", "scan"})
WRITES: frozenset[str] = frozenset({"put", "delete", "batch"})
OPERATIONS: frozenset[str] = READS | WRITES


def _operations(operations: str | Iterable[str]) -> frozenset[str]:
    chosen = frozenset({operations} if isinstance(operations, str) else operations)
    unknown = sorted(chosen - OPERATIONS)
    if unknown:
        raise InvalidSettings(
            f"unknown store operation {unknown[0]!r}; known: {', '.join(sorted(OPERATIONS))}"
        )
    return chosen


def _prefixes(prefix: str | Iterable[str]) -> tuple[str, ...]:
    return (prefix,) if isinstance(prefix, str) else tuple(prefix)


@attrs.frozen
class Call:
    """One call a :class:`FaultyStore` saw (kept in ``history`` when ``record=True``)."""

    operation: str
    #: The keys it names: a batch's keys in order, a listing's prefix.
    keys: tuple[str, ...]
    #: A write's operations (a put as one Put, a delete as one Delete); () for a read.
    ops: tuple[Op, ...] = ()
    #: The inner store answered (a write took effect), whatever was raised afterwards.
    answered: bool = False
    #: The fault injected into this call, if any.
    fault: BaseException | None = None


#: How a fault makes its exception (see :attr:`Fault.error`).
ErrorMaker = type[BaseException] | Callable[[Call], BaseException]


@attrs.frozen
class Fault:
    """One way a :class:`FaultyStore` fails; made by :meth:`FaultyStore.fail`.

    A call is hit when its operation is one of ``operations``, it names a key under one
    of ``prefixes`` (if any; a batch when any of its keys is, a listing when its prefix
    is), it is one of the ``at`` calls (if given), the fault has ``times`` left (if
    limited) and a draw of the store's seeded random falls under ``rate``.
    """

    operations: frozenset[str] = OPERATIONS
    prefixes: tuple[str, ...] = ()
    #: The chance that a matching call fails: 1 always (no draw), 0 never.
    rate: float = 1.0
    #: Only these calls: the n-th (from 0) call to one of ``operations`` in the store's life.
    at: frozenset[int] | None = None
    #: Fail this many times, then let calls through (None: no limit).
    times: int | None = None
    #: What to raise: an exception class, made with a message naming the call
    #: (``injected fault on get (store read #3)``), or a function of the :class:`Call`.
    error: ErrorMaker = StoreUnavailable
    #: Let the call reach the inner store first, then raise: an answer lost on the way back.
    after: bool = False

    @property
    def kind(self) -> str:
        """How the messages name the calls it counts: ``write``, ``read`` or ``call``."""
        if self.operations <= WRITES:
            return "write"
        return "read" if self.operations <= READS else "call"


class FaultyStore(ForwardingStore):
    """A :class:`ForwardingStore` that fails the calls its faults name, and counts calls.

    ``fail()`` adds a fault (by operation, key prefix, seeded probability, which calls,
    how many times, which exception, before or after the inner call); ``clear()``
    removes them. A fault raised before the inner call changes nothing, like a server
    that cannot be reached; one with ``after=True`` is a server that applied the call
    and died before answering. The first fault that hits a call raises.

    ``delay`` (seconds) slows the ``delay_on`` calls after the inner store answered
    (``jitter``: a random time up to ``delay``), so a call is still running with its
    effect already applied. Counters, all thread-safe: ``calls`` and ``failed`` by
    operation (every call, and the injected faults), ``in_flight`` (calls running
    now), and with ``record=True`` a ``history`` of every :class:`Call`.
    """

    def __init__(
        self,
        inner: Store,
        *,
        seed: int = 0,
        delay: float = 0.0,
        delay_on: str | Iterable[str] = OPERATIONS,
        jitter: bool = False,
        record: bool = False,
        url: str | None = None,
    ) -> None:
        super().__init__(inner, url=url)
        if delay < 0:
            raise InvalidSettings(f"delay must be at least 0 seconds, got {delay!r}")
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.delay = delay
        self.delay_on = _operations(delay_on)
        self.jitter = jitter
        self.record = record
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.in_flight = 0
        self.history: list[Call] = []
        self._faults: list[Fault] = []
        self._left: dict[int, int] = {}  # id of a fault with a limit -> failures left
        self._lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The faults in force, in the order they are tried."""
        return tuple(self._faults)

    def fail(
        self,
        operations: str | Iterable[str] = OPERATIONS,
        *,
        prefix: str | Iterable[str] = (),
        rate: float = 1.0,
        at: Iterable[int] | None = None,
        times: int | None = None,
        error: ErrorMaker = StoreUnavailable,
        after: bool = False,
    ) -> Fault:
        """Fail the calls named (see :class:`Fault`) from now on; return the fault.

        ``store.fail()`` fails everything, ``store.fail("batch", times=2)`` the next two
        batches, ``store.fail(WRITES, rate=0.2)`` a fifth of the writes at random,
        ``store.fail("get", prefix="demo/checkpoints/")`` the reads of checkpoints.
        """
        if not 0 <= rate <= 1:
            raise InvalidSettings(f"rate must be between 0 and 1, got {rate!r}")
        if times is not None and times < 0:
            raise InvalidSettings(f"times must be at least 0, got {times!r}")
        fault = Fault(
            operations=_operations(operations),
            prefixes=_prefixes(prefix),
            rate=rate,
            at=None if at is None else frozenset(at),
            times=times,
            error=error,
            after=after,
        )
        with self._lock:
            self._faults.append(fault)
            if times is not None:
                self._left[id(fault)] = times
        return fault

    def clear(self, fault: Fault | None = None) -> None:
        """Remove ``fault``, or every fault: calls go through again."""
        with self._lock:
            if fault is None:
                self._faults.clear()
                self._left.clear()
            else:
                self._faults = [f for f in self._faults if f is not fault]
                self._left.pop(id(fault), None)

    # -- calls ---------------------------------------------------------------------------

    def _hit(self, call: Call, after: bool) -> BaseException | None:
        """Under the lock: the fault (before or after the inner call) that hits ``call``."""
        operation = call.operation
        for fault in self._faults:
            if fault.after is not after or operation not in fault.operations:
                continue
            if fault.prefixes and not any(k.startswith(fault.prefixes) for k in call.keys):
                continue
            n = sum(self.calls[op] for op in fault.operations) - 1  # this call is counted
            if fault.at is not None and n not in fault.at:
                continue
            left = self._left.get(id(fault))
            if left == 0:
                continue
            if fault.rate < 1 and not (fault.rate and self.random.random() < fault.rate):
                continue  # a draw only for a rate strictly between 0 and 1
            if left is not None:
                self._left[id(fault)] = left - 1
            self.failed[operation] += 1
            made: BaseException
            if isinstance(fault.error, type):
                made = fault.error(f"injected fault on {operation} (store {fault.kind} #{n})")
            else:
                made = fault.error(call)
            return made
        return None

    def _call(self, call: Call, apply: Callable[[], T]) -> T:
        with self._lock:
            self.calls[call.operation] += 1
            self.in_flight += 1
            fault = self._hit(call, after=False)
        try:
            if fault is not None:
                raise fault
            result = apply()
            call = attrs.evolve(call, answered=True)
            with self._lock:
                pause = 0.0
                if self.delay and call.operation in self.delay_on:
                    pause = self.random.uniform(0, self.delay) if self.jitter else self.delay
                fault = self._hit(call, after=True)
            if pause:
                time.sleep(pause)
            if fault is not None:
                raise fault
            return result
        finally:
            with self._lock:
                self.in_flight -= 1
                if self.record:
                    self.history.append(attrs.evolve(call, fault=fault))

    def get(self, key: str) -> Entry | None:
        return self._call(Call("get", (key,)), lambda: self.inner.get(key))

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        return self._call(
            Call("put", (key,), (Put(key, value, expected_version),)),
            lambda: self.inner.put(key, value, expected_version=expected_version),
        )

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        return self._call(
            Call("delete", (key,), (Delete(key, expected_version),)),
            lambda: self.inner.delete(key, expected_version=expected_version),
        )

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        return self._call(
            Call("list_keys", (prefix,)),
            lambda: self.inner.list_keys(prefix, reverse=reverse, limit=limit),
        )

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        return self._call(
            Call("scan", (prefix,)),
            lambda: self.inner.scan(prefix, reverse=reverse, limit=limit),
        )

    def batch(self, ops: Sequence[Op]) -> list[int]:
        ops = tuple(ops)
        return self._call(
            Call("batch", tuple(op.key for op in ops), ops), lambda: self.inner.batch(ops)
        )


#: The calls a FaultSchedule counts: FlakyStore never fails a scan.
_SCHEDULED_READS = frozenset({"get", "list_keys"})


class FlakyStore(FaultyStore):
    """A :class:`FaultyStore` failing the calls a :class:`FaultSchedule` names, or, without
    one, a random ``rate`` of writes (and of reads with ``fail_reads``), with
    StoreUnavailable: what :class:`LifecycleRules` wraps its store in.

    A failed call changes nothing (the fault is raised before the inner call), like a
    server that is unreachable. Writes are ``put``, ``delete`` and ``batch``, reads
    ``get`` and ``list_keys`` (a scan never fails). ``schedule``, ``rate`` and
    ``fail_reads`` can be changed at any time; ``failures`` counts the faults injected.
    """

    def __init__(
        self,
        inner: Store,
        rate: float = 0.0,
        seed: int = 0,
        *,
        fail_reads: bool = False,
        schedule: FaultSchedule | None = None,
    ) -> None:
        super().__init__(inner, seed=seed)
        self._rate = rate
        self._fail_reads = fail_reads
        self._schedule = schedule
        self._configure()

    def _configure(self) -> None:
        self.clear()
        if self._schedule is not None:
            self.fail(WRITES, at=self._schedule.writes)
            self.fail(_SCHEDULED_READS, at=self._schedule.reads)
            return
        self.fail(WRITES, rate=self._rate)
        if self._fail_reads:
            self.fail(_SCHEDULED_READS, rate=self._rate)

    @property
    def schedule(self) -> FaultSchedule | None:
        return self._schedule

    @schedule.setter
    def schedule(self, schedule: FaultSchedule | None) -> None:
        self._schedule = schedule
        self._configure()

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, rate: float) -> None:
        self._rate = rate
        self._configure()

    @property
    def fail_reads(self) -> bool:
        return self._fail_reads

    @fail_reads.setter
    def fail_reads(self, fail_reads: bool) -> None:
        self._fail_reads = fail_reads
        self._configure()

    @property
    def failures(self) -> int:
        """How many faults were injected."""
        return self.failed.total()


class SimulatedClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _snapshot(store: Store) -> dict[str, tuple[bytes, int]]:
    return {e.key: (e.value, e.version) for e in store.scan("")}


# -- the stateful test -------------------------------------------------------------------


@attrs.frozen
class Step:
    """What the last rule did, for the invariants to judge."""

    event: Event
    legal: bool
    before: SessionState
    after: SessionState
    at: datetime  # the clock when the event fired
    result: Any = None  # what the manager returned; None when it raised
    written: Checkpoint | None = None  # the checkpoint this step wrote, if any
    new_checkpoint_keys: int = 0  # checkpoint records that appeared in the store
    faults: int = 0  # store faults injected during the step
    aborted: bool = False  # a StoreError aborted the event (the state must not move)
    operation: Operation | None = None
    priority: str | None = None


#: Time between two work events, in percent of the idle threshold (so it counts as work).
work_gaps = st.integers(0, 100)

Arguments = st.SearchStrategy[dict[str, Any]]
_few = st.sampled_from  # small alphabets, so that later events undo earlier ones


def _kwargs(**fields: st.SearchStrategy[Any]) -> Arguments:
    return st.fixed_dictionaries(fields)


#: The keyword arguments the stateful test draws for each event of the registry
#: (:data:`lifecycle.events.EVENTS`). A new event method with no entry here fails the
#: test (``LifecycleRules.any_event``): none can escape the lifecycle rules.
EVENT_ARGUMENTS: dict[str, Callable[[], Arguments]] = {
    "start_session": lambda: _kwargs(restore=st.booleans()),
    "create_checkpoint": lambda: _kwargs(
        phase=_few([None, "", "Phase 1"]),
        progress=_few([None, {}, {"done": 1}]),
        context=_few([None, {}, {"k": 1}]),
    ),
    "capture_learning": lambda: st.builds(lambda learning: {"learning": learning}, learnings()),
    "end_session": lambda: _kwargs(success=st.booleans(), phase=_few([None, "Phase 1"])),
    "add_task": lambda: _kwargs(
        task_id=_few(["T1", "T2"]),
        status=_few([TaskStatus.PENDING, TaskStatus.IN_PROGRESS]),
        priority=_few(list(Priority)),
    ),
    "complete_task": lambda: _kwargs(task_id=_few(["T1", "T2", "T3"]), priority=priorities()),
    "record_decision": lambda: _kwargs(decision=_few(["use SQLite", "split the module"])),
    "record_file_change": lambda: _kwargs(
        path=_few(["a.py", "b.py"]), operations=_few([("edit",), ("create",)])
    ),
    "record_discovery": lambda: _kwargs(
        pattern=_few([None, "retry on 503"]), insight=_few([None, "the cache is cold"])
    ),
    "add_open_question": lambda: _kwargs(question=_few(["q1", "q2"])),
    "resolve_question": lambda: _kwargs(question=_few(["q1", "q2"])),
    "add_blocker": lambda: _kwargs(blocker=_few(["b1", "b2"])),
    "clear_blocker": lambda: _kwargs(blocker=_few(["b1", "b2"])),
    "update_context": lambda: _kwargs(
        values=_few([{"k": 1}, {"k": None}, {"k": 2, "j": 0}, {"j": None}])
    ),
    "tick": lambda: _kwargs(),
    "before_operation": lambda: _kwargs(operation=operations()),
    "error_recovered": lambda: _kwargs(
        error=_few(["timeout", "exit 1"]), recovery_steps=_few([(), ("retried",)])
    ),
}


class LifecycleRules(RuleBasedStateMachine):
    """Random event sequences against a real manager, under store faults; the eight
    lifecycle rules (docs/testing.md) as invariants.

    Override :meth:`make_store` (your store), :meth:`make_manager` (your triggers,
    hooks and settings) and add ``@invariant()`` methods (your rules). To drop one of
    the kit's invariants, override it with a plain method (no decorator). Rules 7 and
    8 assume the manager uses the default evaluators with :attr:`risk_settings`,
    :attr:`task_settings` and :attr:`time_settings` (as :meth:`make_manager` does);
    with other triggers, set those attributes to match or set
    ``check_trigger_rules = False``.
    """

    project = "rules"
    #: Up to about this share of store writes fail (the rules must hold under faults).
    fault_rate = 0.1
    #: Settings of the default evaluators (rules 7 and 8 are checked against them).
    risk_settings = RiskSettings()
    task_settings = TaskSettings()
    time_settings = TimeSettings()
    #: Check rules 7 and 8 (they hold for the default evaluators).
    check_trigger_rules = True
    #: Seconds of slack when comparing active time (the manager keeps moments strictly
    #: increasing by nudging equal clock readings one microsecond apart).
    time_tolerance = 0.01

    def make_store(self) -> Store:
        """Your store: called once per example; return a new, empty one."""
        return open_store("memory://")

    def make_manager(self, store: Store, clock: Callable[[], datetime]) -> SessionManager:
        """Your manager: called with the (flaky) store and the simulated clock."""
        return SessionManager(
            store=store,
            project=self.project,
            clock=clock,
            evaluators=default_evaluators(
                risk=self.risk_settings, task=self.task_settings, time=self.time_settings
            ),
            time_settings=self.time_settings,
        )

    def faults(self) -> st.SearchStrategy[FaultSchedule]:
        """The store faults for one example (override for reads, bursts, ...)."""
        if not self.fault_rate:
            return st.just(FaultSchedule())
        return fault_schedules(rate=self.fault_rate)

    def is_risky(self, operation: Operation) -> bool:
        """Does the risk trigger call this operation high-risk? (rule 7)."""
        return bool(classify(operation, self.risk_settings))

    def __init__(self) -> None:
        super().__init__()
        self.clock = SimulatedClock()
        self.real = self.make_store()
        self.store = FlakyStore(self.real)
        self.manager = self.make_manager(self.store, self.clock)
        self.written_ids: list[str] = []
        self.written: list[Checkpoint] = []
        self.restore_candidate: Checkpoint | None = None
        self.step: Step | None = None
        # Rule 8's reference account of active time (see active_time_counts_only_work).
        self.model_active = 0.0
        self.model_last: datetime | None = None

    # -- setup: store faults, and sometimes history to restore ---------------------------

    @initialize(data=st.data())
    def inject_faults(self, data: st.DataObject) -> None:
        self.store.schedule = data.draw(self.faults(), label="faults")

    @initialize(history=st.integers(0, 2))
    def earlier_history(self, history: int) -> None:
        if not history:
            return
        earlier = self.make_manager(self.real, self.clock)
        earlier.start_session(restore=False)
        for i in range(history):
            earlier.create_checkpoint(phase=f"earlier-{i}", progress={"done": i})
            cp = earlier.read_checkpoint()
            self.written_ids.append(cp.id)
            self.written.append(cp)
        self.clock.advance(60)

    # -- events ----------------------------------------------------------------------------

    def _checkpoint_keys(self, snapshot: dict[str, tuple[bytes, int]]) -> set[str]:
        prefix = f"{self.project}/{keys.CHECKPOINTS_PREFIX}"
        latest = f"{self.project}/{keys.LATEST}"
        return {k for k in snapshot if k.startswith(prefix) and k != latest}

    def _fire(
        self,
        event: Event,
        call: Callable[[], Any],
        *,
        operation: Operation | None = None,
        priority: str | None = None,
    ) -> None:
        manager = self.manager
        before_state = manager.state
        legal = event in TABLE.legal_events(before_state)
        before_store = _snapshot(self.real)
        before_work = manager.work
        before_latest = manager.last_checkpoint
        before_faults = self.store.failures
        at = self.clock()
        if event is Event.LOAD and legal:
            try:
                self.restore_candidate = manager.read_checkpoint()
            except Exception:
                self.restore_candidate = None
        result = None
        aborted = False
        try:
            result = call()
        except IllegalTransition:
            # Rule 5: an illegal event changes nothing, in memory or in the store.
            assert not legal, f"{event} is legal in {before_state} but was refused"
            assert manager.state is before_state
            assert manager.work == before_work
            assert _snapshot(self.real) == before_store
        except StoreError:
            # A failed store write may abort an event (start, end); the state must then
            # be unchanged, and only an injected fault may cause it.
            assert self.store.failures > before_faults
            assert manager.state is before_state
            aborted = True
        else:
            assert legal, f"{event} is illegal in {before_state} but was accepted"
        written = None
        latest = manager.last_checkpoint
        if event is not Event.LOAD and latest is not None and latest is not before_latest:
            written = latest
            self.written_ids.append(latest.id)
            self.written.append(latest)
        after_store = _snapshot(self.real)
        self.step = Step(
            event=event,
            legal=legal,
            before=before_state,
            after=manager.state,
            at=at,
            result=result,
            written=written,
            new_checkpoint_keys=len(
                self._checkpoint_keys(after_store) - self._checkpoint_keys(before_store)
            ),
            faults=self.store.failures - before_faults,
            aborted=aborted,
            operation=operation,
            priority=priority,
        )
        self._account_time(self.step)

    def _account_time(self, step: Step) -> None:
        """Rule 8's reference: every legal event of ``spec.ACTIVE_TIME_EVENTS`` counts the
        gap since the last one as work when it is at most the idle threshold; a
        checkpoint zeroes it."""
        if not step.legal or step.event not in ACTIVE_TIME_EVENTS:
            return
        last = self.model_last
        if last is not None and last < step.at <= last + self.time_settings.idle_threshold:
            self.model_active += (step.at - last).total_seconds()
        if last is None or step.at > last:
            self.model_last = step.at
        if step.written is not None:
            self.model_active = 0.0

    def _work(self, percent: int) -> None:
        """Let ``percent`` of the idle threshold pass: time the agent spends working."""
        self.clock.advance(self.time_settings.idle_threshold.total_seconds() * percent / 100)

    @rule()
    def load(self) -> None:
        self._fire(Event.LOAD, lambda: self.manager.start_session(restore=True))

    @rule()
    def load_fresh(self) -> None:
        self._fire(Event.LOAD, lambda: self.manager.start_session(restore=False))

    @rule(percent=st.integers(101, 2000))
    def idle(self, percent: int) -> None:
        """The agent is away: more than the idle threshold passes with no event."""
        self._work(percent)

    @rule(task=task_ids(), priority=priorities(), gap=work_gaps)
    def complete_task(self, task: str, priority: str, gap: int) -> None:
        self._work(gap)
        self._fire(
            Event.TASK_COMPLETED,
            lambda: self.manager.complete_task(task, priority=priority),
            priority=priority,
        )

    @rule(text=texts(min_size=1), gap=work_gaps)
    def record_decision(self, text: str, gap: int) -> None:
        self._work(gap)
        self._fire(Event.RECORD, lambda: self.manager.record_decision(text))

    @rule(gap=work_gaps)
    def tick(self, gap: int) -> None:
        self._work(gap)
        self._fire(Event.TICK, self.manager.tick)

    @rule(operation=operations(), gap=work_gaps)
    def before_operation(self, operation: Operation, gap: int) -> None:
        self._work(gap)
        self._fire(
            Event.BEFORE_OPERATION,
            lambda: self.manager.before_operation(operation),
            operation=operation,
        )

    @rule(error=texts(min_size=1), gap=work_gaps)
    def error_recovered(self, error: str, gap: int) -> None:
        self._work(gap)
        self._fire(Event.ERROR_RECOVERED, lambda: self.manager.error_recovered(error, ["retried"]))

    @rule(phase=st.sampled_from(["", "Phase 1", "Phase 2"]), done=st.integers(0, 3))
    def save(self, phase: str, done: int) -> None:
        self._fire(
            Event.SAVE,
            lambda: self.manager.create_checkpoint(phase=phase, progress={"done": done}),
        )

    @rule(success=st.booleans())
    def complete(self, success: bool) -> None:
        self._fire(Event.COMPLETE, lambda: self.manager.end_session(success=success))

    @rule(data=st.data(), gap=work_gaps)
    def any_event(self, data: st.DataObject, gap: int) -> None:
        """Any event of the registry, with arguments from :data:`EVENT_ARGUMENTS`."""
        name = data.draw(st.sampled_from(sorted(EVENTS)), label="event")
        arguments = EVENT_ARGUMENTS.get(name)
        assert arguments is not None, (
            f"event {name!r} has no entry in lifecycle.testing.EVENT_ARGUMENTS: add the "
            "arguments the stateful test should draw for it"
        )
        kwargs = data.draw(arguments(), label=name)
        call = functools.partial(getattr(self.manager, name), **kwargs)
        self._work(gap)
        table_event = TABLE_EVENTS[name]
        if table_event is None:  # not a table event (a learning): the state stays
            before = self.manager.state
            call()
            assert self.manager.state is before
            return
        self._fire(
            table_event,
            call,
            operation=kwargs.get("operation"),
            priority=kwargs.get("priority"),
        )

    # -- rules 1 to 6 ------------------------------------------------------------------------

    @invariant()
    def completed_is_terminal(self) -> None:
        """Rule 1: once COMPLETED, always COMPLETED (no legal events remain)."""
        step = self.step
        if step is not None and step.before is SessionState.COMPLETED:
            assert step.after is SessionState.COMPLETED
        if self.manager.state is SessionState.COMPLETED:
            assert TABLE.legal_events(SessionState.COMPLETED) == frozenset()

    @invariant()
    def resumed_only_by_a_restore(self) -> None:
        """Rule 2: RESUMED is entered only from INITIALIZING, only when a valid checkpoint
        existed, and the restored state equals that checkpoint's."""
        step, m = self.step, self.manager
        if step is None or step.after is not SessionState.RESUMED:
            return
        if step.before is SessionState.RESUMED:
            return
        assert step.before is SessionState.INITIALIZING
        assert step.event is Event.LOAD
        assert self.restore_candidate is not None
        assert m.last_checkpoint is not None
        assert m.last_checkpoint.id == self.restore_candidate.id
        assert m.work == self.restore_candidate.state
        assert m.phase == self.restore_candidate.phase
        assert m.progress == self.restore_candidate.progress
        assert m.context == self.restore_candidate.context

    @invariant()
    def entering_checkpointed_writes_one_checkpoint_of_the_state(self) -> None:
        """Rule 3: each entry into CHECKPOINTED writes exactly one durable checkpoint, and
        reading it back gives the session's state at that moment."""
        step, m = self.step, self.manager
        if step is None or step.after is not SessionState.CHECKPOINTED:
            return
        if step.before is SessionState.CHECKPOINTED and step.written is None:
            return  # an internal no-op (nothing to save): not an entry
        assert step.written is not None, f"{step.event} entered CHECKPOINTED without a write"
        assert step.new_checkpoint_keys == 1
        stored = m.read_checkpoint()
        assert stored.id == step.written.id
        assert stored.state == m.work
        assert (stored.phase, stored.progress, stored.context) == (m.phase, m.progress, m.context)

    @invariant()
    def states_mean_what_they_say(self) -> None:
        """ACTIVE if and only if the session's state differs from its last durable
        checkpoint (read back from the store); CHECKPOINTED and RESUMED otherwise."""
        m = self.manager
        if m.state in (SessionState.INITIALIZING, SessionState.COMPLETED):
            return
        saved = m.last_checkpoint
        durable = None
        if saved is not None:
            entry = self.real.get(f"{self.project}/{saved.key}")
            durable = None if entry is None else codec.decode(Checkpoint, entry.value)
        differs = durable is None or (
            durable.state,
            durable.phase,
            durable.progress,
            durable.context,
        ) != (m.work, m.phase, m.progress, m.context)
        assert (m.state is SessionState.ACTIVE) is differs, (
            f"{m.state} but the state {'differs from' if differs else 'equals'} the last "
            "durable checkpoint"
        )
        assert m.has_unsaved_work is differs

    @invariant()
    def completed_is_reachable(self) -> None:
        """Rule 4: COMPLETED is reachable from every other state (complete is legal)."""
        if self.manager.state is not SessionState.COMPLETED:
            assert Event.COMPLETE in TABLE.legal_events(self.manager.state)

    @invariant()
    def ids_unique_ordered_and_latest_is_newest(self) -> None:
        """Rule 6: checkpoint ids are unique and sort by creation order; the latest
        pointer resolves to the newest written checkpoint."""
        ids = self.written_ids
        assert len(ids) == len(set(ids))
        assert ids == sorted(ids)
        entry = self.real.get(f"{self.project}/{keys.LATEST}")
        if ids:
            assert entry is not None
            pointer = codec.decode(Pointer, entry.value)
            assert pointer.id == ids[-1]
        else:
            assert entry is None

    # -- rules 7 and 8 -----------------------------------------------------------------------

    def _durable(self, checkpoint: Checkpoint) -> bool:
        return self.real.get(f"{self.project}/{checkpoint.key}") is not None

    @invariant()
    def high_priority_completion_checkpoints(self) -> None:
        """Rule 7: a high-priority task completion always checkpoints (only an injected
        store fault can stop it, and then the answer says so)."""
        step = self.step
        if not self.check_trigger_rules or step is None or step.event is not Event.TASK_COMPLETED:
            return
        if not step.legal or step.priority not in self.task_settings.force_priorities:
            return
        assert isinstance(step.result, Outcome)
        assert step.result.checkpoint is not None, "a high-priority completion did not checkpoint"
        if step.result.checkpointed:
            assert step.written is not None
            assert step.written.trigger == "task-complete"
            assert self._durable(step.written)
            assert step.after is SessionState.CHECKPOINTED
        else:
            assert step.faults > 0, "the checkpoint failed without a store fault"

    @invariant()
    def risky_operation_never_proceeds_without_a_checkpoint(self) -> None:
        """Rule 7: a risky operation gets a durable checkpoint before it may proceed; if it
        cannot be written the answer is ``proceed=False``. Others always proceed."""
        step = self.step
        if not self.check_trigger_rules or step is None:
            return
        if step.event is not Event.BEFORE_OPERATION or not step.legal:
            return
        assert isinstance(step.result, Clearance)
        assert step.operation is not None
        if not self.is_risky(step.operation):
            assert step.result.proceed
            return
        if step.result.proceed:
            assert step.written is not None, "a risky operation may proceed with no checkpoint"
            assert step.written.type is CheckpointType.RISK
            assert self._durable(step.written)
        else:
            assert step.written is None
            assert step.faults > 0, "a risky operation was refused without a store fault"

    @invariant()
    def active_time_counts_only_work(self) -> None:
        """Rule 8: active time is the sum of the gaps between events, each at most the
        idle threshold (longer gaps are idle), since the last checkpoint."""
        if not self.check_trigger_rules or self.manager.state is SessionState.COMPLETED:
            return
        assert abs(self.manager.active_seconds - self.model_active) <= self.time_tolerance, (
            f"active time {self.manager.active_seconds}s, expected {self.model_active}s"
        )

    @invariant()
    def automatic_checkpoints_an_interval_apart(self) -> None:
        """Rule 8: never two time-triggered checkpoints closer than the interval."""
        if not self.check_trigger_rules:
            return
        auto = [cp.timestamp for cp in self.written if _kind(cp.key) == "auto"]
        for earlier, later in itertools.pairwise(auto):
            assert later - earlier >= self.time_settings.interval, (
                f"automatic checkpoints at {earlier} and {later}"
            )

    @invariant()
    def no_interval_of_work_without_a_checkpoint(self) -> None:
        """Rule 8: while events arrive, unsaved work never has an interval of active time
        behind it (the time trigger fires first), unless a store fault stopped it."""
        step, m = self.step, self.manager
        if not self.check_trigger_rules or step is None or not step.legal or step.faults:
            return
        if step.event in WORK_EVENTS and m.has_unsaved_work:
            assert m.active_seconds < self.time_settings.interval.total_seconds(), (
                f"{m.active_seconds}s of active work and no checkpoint"
            )

    def teardown(self) -> None:
        self.real.close()


def _kind(key: str) -> str | None:
    """The checkpoint kind a key names (manual, auto, task, risk, recovery)."""
    parsed = keys.parse_checkpoint_key(key)
    return None if parsed is None else parsed[0]
