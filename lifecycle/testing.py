"""A verification kit: hypothesis strategies and a stateful test of the lifecycle rules.

Three parts, all importable by users (``pip install 'lifecycle[testing]'``):

- **Strategies** for events (:func:`events`, :func:`activities`), records
  (:func:`tasks`, :func:`decisions`, :func:`work_states`, :func:`checkpoints`,
  :func:`learnings`, ...) and store faults (:func:`fault_schedules`). Records
  are built by :func:`records_of`: ``st.builds`` on the real attrs classes, each
  field drawn from a strategy its type gives (so a field added to a record is
  generated), with bounds that keep them valid and storable (aware UTC times,
  64-bit ints, finite floats, text without surrogates).
- :class:`FlakyStore`, a store wrapper that fails the calls a
  :class:`FaultSchedule` (or a random rate) names, and :class:`SimulatedClock`.
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
import itertools
import random
import string
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from lifecycle import codec, keys
from lifecycle.errors import IllegalTransition, StoreError, StoreUnavailable
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
    WorkState,
)
from lifecycle.session import Clearance, Outcome, SessionManager
from lifecycle.spec import TABLE, WORK_EVENTS, Event, SessionState
from lifecycle.stores import open_store
from lifecycle.stores.base import Entry, Op, Store
from lifecycle.triggers import (
    Activity,
    Operation,
    RiskSettings,
    TaskSettings,
    TimeSettings,
    classify,
    default_evaluators,
)

__all__ = [
    "FaultSchedule",
    "FlakyStore",
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


class FlakyStore:
    """Wraps a store; the calls a :class:`FaultSchedule` names (or, without one, a random
    ``rate`` of writes) fail with StoreUnavailable.

    A failed call changes nothing (the fault is raised before the inner call), like
    a server that is unreachable. Reads fail only when ``fail_reads`` or the schedule
    names them.
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
        self.inner = inner
        self.url = inner.url
        self.rate = rate
        self.fail_reads = fail_reads
        self.schedule = schedule
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.failures = 0
        self.calls = {"read": 0, "write": 0}

    def _maybe_fail(self, kind: str, what: str) -> None:
        n = self.calls[kind]
        self.calls[kind] = n + 1
        if self.schedule is not None:
            failing = self.schedule.fails(kind, n)
        else:
            failing = (kind == "write" or self.fail_reads) and bool(self.rate)
            failing = failing and self.random.random() < self.rate
        if failing:
            self.failures += 1
            raise StoreUnavailable(f"injected fault on {what} (store {kind} #{n})")

    def get(self, key: str) -> Entry | None:
        self._maybe_fail("read", "get")
        return self.inner.get(key)

    def put(self, key: str, value: bytes, *, expected_version: int | None = None) -> int:
        self._maybe_fail("write", "put")
        return self.inner.put(key, value, expected_version=expected_version)

    def delete(self, key: str, *, expected_version: int | None = None) -> bool:
        self._maybe_fail("write", "delete")
        return self.inner.delete(key, expected_version=expected_version)

    def list_keys(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> list[str]:
        self._maybe_fail("read", "list_keys")
        return self.inner.list_keys(prefix, reverse=reverse, limit=limit)

    def scan(
        self, prefix: str = "", *, reverse: bool = False, limit: int | None = None
    ) -> Iterator[Entry]:
        return self.inner.scan(prefix, reverse=reverse, limit=limit)

    def batch(self, ops: Sequence[Op]) -> list[int]:
        self._maybe_fail("write", "batch")
        return self.inner.batch(ops)

    def close(self) -> None:
        self.inner.close()


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
        """Rule 8's reference: every legal event but load counts the gap since the last
        one as work when it is at most the idle threshold; a checkpoint zeroes it."""
        if not step.legal or step.event is Event.LOAD:
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
        """ACTIVE: unsaved work (or nothing durable yet); CHECKPOINTED and RESUMED: the
        durable checkpoint equals the session's state."""
        m = self.manager
        if m.state in (SessionState.CHECKPOINTED, SessionState.RESUMED):
            assert not m.has_unsaved_work
        if m.state is SessionState.ACTIVE:
            assert m.has_unsaved_work

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
