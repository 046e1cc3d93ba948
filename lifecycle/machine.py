"""The transitions machine, built once from :data:`lifecycle.spec.TABLE`.

One ``transitions.Machine`` (``auto_transitions=False``) serves every session in
the process: each session is a tiny :class:`Driver` model that the machine
never adopts with ``add_model`` (that binds a dozen partials per model, about
6 KB); events are fired through ``machine.events[name].trigger(driver)``.

Guards are the table's :class:`~lifecycle.spec.Guard` names: each condition
asks the driver's host (the session) to evaluate it, once per dispatch.
Effects run as ``before`` callbacks, so an effect that raises leaves the state
unchanged. An event the table does not allow raises :class:`IllegalTransition`
before anything is evaluated or written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from lifecycle import coverage
from lifecycle.errors import IllegalTransition, LifecycleError
from lifecycle.spec import TABLE, Effect, Event, Guard, Row, SessionState, Spec


class Host(Protocol):
    """What the machine needs from the object it drives (the session)."""

    def guard(self, guard: Guard, context: Any) -> bool: ...

    def effect(self, effect: Effect, row: Row, context: Any) -> None: ...


class Driver:
    """The model transitions sees: the state name and the host to call back."""

    __slots__ = ("_fired", "host", "state")

    def __init__(self, host: Host, state: SessionState = TABLE.initial) -> None:
        self.host = host
        self.state: str = state.value
        self._fired: Row | None = None


def _condition(guard: Guard) -> Callable[[Any], bool]:
    def check(event_data: Any) -> bool:
        driver: Driver = event_data.model
        return driver.host.guard(guard, event_data.kwargs["context"])

    check.__name__ = guard.value
    return check


def _before(row: Row, index: int) -> Callable[[Any], None]:
    def fire(event_data: Any) -> None:
        driver: Driver = event_data.model
        if row.effect is not None:
            driver.host.effect(row.effect, row, event_data.kwargs["context"])
        driver._fired = row
        coverage.record(index)  # one flag check unless LIFECYCLE_COVERAGE is set

    return fire


@functools.cache
def build(spec: Spec = TABLE) -> Any:
    """The shared ``transitions.Machine`` for ``spec`` (built on first use)."""
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
            conditions=[_condition(g) for g, want in row.when if want],
            unless=[_condition(g) for g, want in row.when if not want],
            before=[_before(row, index)],
        )
    return machine


def fire(driver: Driver, event: Event, context: Any, spec: Spec = TABLE) -> Row:
    """Fire ``event`` on ``driver``; return the row that fired.

    Raises IllegalTransition (and changes nothing) when the table has no row for
    ``event`` in the current state. Exceptions from guards or effects propagate
    with the state unchanged.
    """
    state = SessionState(driver.state)
    legal = spec.legal_events(state)
    if event not in legal:
        raise IllegalTransition(state.value, event.value, (e.value for e in legal))
    machine = build(spec)
    driver._fired = None
    machine.events[event.value].trigger(driver, context=context)
    row = driver._fired
    if row is None:  # validate() proves one row fires for every guard outcome
        raise LifecycleError(f"no row fired for {event} in {state}: the table is incomplete")
    return row
