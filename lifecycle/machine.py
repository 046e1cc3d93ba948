"""The transitions machine, built once from :data:`lifecycle.spec.TABLE`.

One ``transitions.Machine`` (``auto_transitions=False``) serves every session in
the process. Each event is fired on a tiny :class:`Driver` model (the state
name only) that the machine never adopts with ``add_model`` (that binds a dozen
partials per model, about 6 KB); events go through
``machine.events[name].trigger(driver, ...)``.

What the machine calls is the event's :class:`Decider`, never the session:
each row's one condition asks its :class:`~lifecycle.spec.Guard` names in order,
answered by ``decider.guard(guard)`` from facts gathered before dispatch, and the row
that fires is handed to ``decider.do(row)`` in a ``before`` callback (so an
effect that raises leaves the state unchanged). An effect that raises
:class:`EffectFailed` (a checkpoint write that failed after its retry) takes
the failure path the table declares: the event is dispatched again with the
``write_failed`` guard true, and that row fires instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from lifecycle import coverage
from lifecycle.errors import IllegalTransition, LifecycleError
from lifecycle.spec import TABLE, Event, Guard, Row, SessionState, Spec


class Decider(Protocol):
    """What the machine asks while one event is dispatched."""

    def guard(self, guard: Guard) -> bool: ...

    def do(self, row: Row) -> None: ...

    write_failed: bool
    failure: EffectFailed | None


class EffectFailed(LifecycleError):
    """An effect could not be done: the table's ``write_failed`` rows say what happens."""

    def __init__(self, cause: Exception) -> None:
        self.cause = cause
        super().__init__(str(cause))


#: Each state's name (``state.value`` is two calls of the enum's property).
STATE_NAMES: dict[SessionState, str] = {s: s.value for s in SessionState}


class Driver:
    """The model transitions sees: the state name, nothing else."""

    __slots__ = ("state",)

    def __init__(self, state: SessionState = TABLE.initial) -> None:
        # The plain name: transitions would take an Enum member by its name, not its value.
        self.state: str = STATE_NAMES[state]


def _condition(when: tuple[tuple[Guard, bool], ...]) -> Callable[[Any], bool]:
    """A row's guards as one transitions condition: each guard has its value, asked in the
    row's order (transitions pays a dispatch per condition; a row pays one)."""
    if len(when) == 1:
        ((guard, want),) = when

        def check(event_data: Any) -> bool:
            decider: Decider = event_data.kwargs["decider"]
            return decider.guard(guard) is want

    elif len(when) == 2:  # unrolled: most rows of the work events have two guards
        (first, want_first), (second, want_second) = when

        def check(event_data: Any) -> bool:
            ask = event_data.kwargs["decider"].guard
            return ask(first) is want_first and ask(second) is want_second

    else:

        def check(event_data: Any) -> bool:
            ask = event_data.kwargs["decider"].guard
            for guard, want in when:  # noqa: SIM110 - all() would add a generator per row
                if ask(guard) is not want:
                    return False
            return True

    check.__name__ = ", ".join(("" if want else "!") + guard.value for guard, want in when)
    return check


def _before(row: Row, index: int) -> Callable[[Any], None]:
    def fire(event_data: Any) -> None:
        decider: Decider = event_data.kwargs["decider"]
        decider.do(row)
        event_data.kwargs["fired"].append(row)
        coverage.record(index)  # one flag check unless LIFECYCLE_COVERAGE is set

    return fire


def _build(spec: Spec = TABLE) -> Any:
    """A new ``transitions.Machine`` for ``spec``: one transition per row, in order."""
    from transitions import Machine

    machine = Machine(
        model=None,
        states=[s.value for s in spec.states],
        initial=spec.initial.value,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
    for index, row in enumerate(spec.rows):
        machine.add_transition(
            trigger=row.event.value,
            source=row.source.value,
            # A row that returns to its own state is internal for transitions too: no
            # exit/enter callbacks are bound, so skipping them changes nothing but time.
            dest=None if row.dest is None or row.dest is row.source else row.dest.value,
            conditions=[_condition(row.when)] if row.when else [],
            before=[_before(row, index)],
        )
    return machine


#: The shared machine for a table, built on first use. (Cached by wrapping, not with a
#: decorator: mutmut does not mutate decorated functions, and ``_build`` is the machine.)
build = functools.cache(_build)
#: TABLE's machine once :func:`fire` built it (no hash of the spec on every event).
_table: list[Any] = []


def fire(
    state: SessionState, event: Event, decider: Decider, spec: Spec = TABLE
) -> tuple[Row, SessionState]:
    """Fire ``event`` from ``state``: the row that fired and the state after it.

    Raises IllegalTransition (and asks nothing) when the table has no row for
    ``event`` in ``state``. Other exceptions from guards or effects propagate.
    """
    if event not in spec.legal.get(state, ()):
        legal = spec.legal_events(state)
        raise IllegalTransition(state.value, event.value, (e.value for e in legal))
    machine = _table[0] if spec is TABLE and _table else build(spec)
    trigger = machine.events[event].trigger  # an Event is the str it is named by
    driver = Driver(state)
    if spec is TABLE and not _table:
        _table.append(machine)
    fired: list[Row] = []
    try:
        trigger(driver, decider=decider, fired=fired)
    except EffectFailed as failure:
        decider.write_failed = True  # the failure path is a row of the table too
        decider.failure = failure
        driver = Driver(state)
        trigger(driver, decider=decider, fired=fired)
    if not fired:  # validate() proves one row fires for every guard outcome
        raise LifecycleError(f"no row fired for {event} in {state}: the table is incomplete")
    return fired[-1], _STATES[driver.state]


#: Each state by its name, as transitions leaves it on the driver.
_STATES: dict[str, SessionState] = {s.value: s for s in SessionState}
