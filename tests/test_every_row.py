"""Every row of the transition table fires through the public API, each in its own case.

One scenario per row: the smallest sequence of SessionManager calls that reaches the
row's source state and makes its guards true, then the event itself. The test reads
the row that fired from the coverage recorder and checks the state it left. A row no
scenario reaches fails ``test_every_row_has_a_scenario``: a row the public API cannot
fire has no place in the table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lifecycle import SessionManager, coverage, open_store
from lifecycle.spec import TABLE, Event, Guard, Row, SessionState
from lifecycle.testing import WRITES, FaultyStore, SimulatedClock
from lifecycle.triggers import ErrorSettings, default_evaluators

S = SessionState
G = Guard


class Scenario:
    """A project store, a clock, and managers on them."""

    def __init__(self) -> None:
        self.store = FaultyStore(open_store("memory://"))
        self.clock = SimulatedClock()

    def manager(self, **kwargs: Any) -> SessionManager:
        return SessionManager(store=self.store, project="rows", clock=self.clock, **kwargs)

    @contextlib.contextmanager
    def write_fails(self) -> Iterator[None]:
        """Every write that touches a checkpoint fails (the session's own record and
        pointer still go through)."""
        fault = self.store.fail(WRITES, prefix="rows/checkpoints/")
        try:
            yield
        finally:
            self.store.clear(fault)

    def later(self, minutes: float = 1) -> None:
        self.clock.advance(minutes * 60)

    # -- reaching a state --------------------------------------------------------------

    def active(self, **kwargs: Any) -> SessionManager:
        m = self.manager(**kwargs)
        m.start_session(restore=False)
        return m

    def checkpointed(self, **kwargs: Any) -> SessionManager:
        m = self.active(**kwargs)
        self.later()
        m.create_checkpoint(phase="P")
        return m

    def resumed(self, **kwargs: Any) -> SessionManager:
        self.checkpointed().end_session()
        self.later()
        m = self.manager(**kwargs)
        assert not m.start_session(restore=True).is_fresh_session
        return m

    def reach(self, state: SessionState, **kwargs: Any) -> SessionManager:
        if state is S.INITIALIZING:
            return self.manager(**kwargs)
        if state is S.ACTIVE:
            m = self.active(**kwargs)
            m.add_blocker("b")
            return m
        return self.checkpointed(**kwargs) if state is S.CHECKPOINTED else self.resumed(**kwargs)

    def time_due(self, m: SessionManager) -> None:
        """Thirty minutes of ticks (the first only starts the count after a restore): the
        time trigger is due at the next event."""
        m.tick()
        for _ in range(6):
            self.later(5)
            m.tick()
        self.later(1)


#: Evaluators with the error trigger off: an error recovery with nothing due.
def _no_error_trigger() -> dict[str, Any]:
    return {"evaluators": default_evaluators(error=ErrorSettings(enabled=False))}


Recipe = Callable[[Scenario, Row], tuple[SessionManager, Callable[[], Any]]]


def _event(m: SessionManager, event: Event, due: bool, sc: Scenario) -> Callable[[], Any]:
    """The call that fires ``event`` on ``m`` (``due``: a trigger calls for a checkpoint)."""
    if event is Event.TICK:
        return m.tick
    if event is Event.BEFORE_OPERATION:
        return lambda: m.before_operation("rm -rf build/" if due else "git status")
    if event is Event.TASK_COMPLETED:
        return lambda: m.complete_task("T1", priority="high" if due else "low")
    if event is Event.ERROR_RECOVERED:
        return lambda: m.error_recovered("timeout", ["retried"])
    if event is Event.RECORD:
        return lambda: m.record_decision("use SQLite")
    raise AssertionError(event)


def recipe(sc: Scenario, row: Row) -> tuple[SessionManager, Callable[[], Any]]:
    """Set up ``row``'s source and guards; return the manager and the call that fires it."""
    when = dict(row.when)
    failing = when.get(G.WRITE_FAILED, False)
    due = when.get(G.CHECKPOINT_DUE, False) or when.get(G.RISK_DUE, False)
    event, source = row.event, row.source
    kwargs = _no_error_trigger() if event is Event.ERROR_RECOVERED and not due else {}
    if event is Event.LOAD:
        if when[G.RESTORE_AVAILABLE]:
            sc.checkpointed().end_session()
        m = sc.manager()
        call: Callable[[], Any] = lambda: m.start_session(restore=True)  # noqa: E731
    elif event is Event.COMPLETE:
        m = sc.reach(source)
        if when.get(G.HAS_UNSAVED) is False and source is S.ACTIVE:
            m = sc.checkpointed()
            with sc.write_fails():
                m.create_checkpoint(phase="Q")  # ACTIVE: the new phase is unsaved
            call = lambda: m.end_session(phase="P")  # noqa: E731 - back to the saved phase
        elif when.get(G.HAS_UNSAVED) and source is not S.ACTIVE:
            call = lambda: m.end_session(phase="a new phase")  # noqa: E731
        else:
            call = m.end_session
    elif event is Event.SAVE:
        m = sc.reach(source)
        if when[G.HAS_UNSAVED]:
            call = lambda: m.create_checkpoint(phase="Q")  # noqa: E731
        elif source is S.ACTIVE:
            m = sc.resumed() if when[G.SAVED_IS_RESTORED] else sc.checkpointed()
            m.update_context({"k": 1})
            call = lambda: m.create_checkpoint(context={})  # noqa: E731
        else:
            call = m.create_checkpoint
    elif event is Event.RECORD and when[G.HAS_UNSAVED] is False:
        if source is S.ACTIVE:
            m = sc.resumed() if when[G.SAVED_IS_RESTORED] else sc.checkpointed()
            m.add_blocker("x")
            call = lambda: m.clear_blocker("x")  # noqa: E731 - undoes the only change
        else:
            m = sc.reach(source)
            call = lambda: m.clear_blocker("never added")  # noqa: E731
    else:
        m = sc.reach(source, **kwargs)
        if due and event in (Event.RECORD, Event.TICK):
            sc.time_due(m)
        call = _event(m, event, due, sc)
    if failing:
        inner = call

        def call() -> Any:
            with sc.write_fails():
                return inner()

    return m, call


ROWS = list(enumerate(TABLE.rows))


@pytest.mark.parametrize(("index", "row"), ROWS, ids=[f"{i}-{r.source}-{r.label}" for i, r in ROWS])
def test_the_row_fires_from_the_public_api(
    index: int, row: Row, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = Scenario()
    m, call = recipe(sc, row)
    assert m.state is row.source
    sc.later()
    fired: list[int] = []
    record = coverage.record  # the run's own recorder keeps counting (N of N rows)

    def recording(row: int) -> None:
        fired.append(row)
        record(row)

    monkeypatch.setattr(coverage, "record", recording)
    call()
    assert fired == [index], [TABLE.rows[i].label for i in fired]
    assert m.state is row.target
    # The states mean what they say after the row, too.
    assert (m.state is S.ACTIVE) is (m.state is not S.COMPLETED and m.has_unsaved_work)


def test_every_row_has_a_scenario() -> None:
    assert len(ROWS) == len(TABLE.rows)
    assert {row.source for _, row in ROWS} == set(TABLE.states) - TABLE.final
