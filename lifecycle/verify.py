"""An exhaustive model check of the transition table against the lifecycle rules.

:func:`model_check` explores every event sequence up to a depth from the
initial state, under every outcome of the guards that decide each event, on an
abstract model of a session (:class:`Model`): the machine state plus the few
facts the lifecycle rules talk about (unsaved work, a durable checkpoint,
checkpoints written, restored). Every event is tried in every state, legal or
not: an event with no row must be rejected and change nothing.

The search is breadth first with the abstract states of each depth merged
(each carries how many sequences reach it and the first one that did), so a
broken rule is reported with a shortest sequence that breaks it, and the
number of sequences explored is counted exactly without walking them one by
one (at depth 8 there are about 10^10).

Guards are free: each evaluator may answer either way at any time, so the
table must keep the rules whatever the trigger evaluators say.

Rule 5 (an illegal event changes nothing) holds by construction at this level:
a step that fires no row leaves the abstract state as it was. What the table
can get wrong there is a *legal* event for which some guard outcome fires no
row, or two: that is the ``determinism`` rule. Rule 6 likewise follows from a
row having one effect; the check guards the model itself. Whether the machine
really leaves the store untouched, and ids are unique and ordered, is for the
implementation's property tests.

The abstract model's effects (what each named effect does to the facts):

========================  =====================================================
``restore``               restored, a durable checkpoint, nothing unsaved
``start_fresh``           a new session: nothing durable, nothing unsaved
``record_work``           unsaved work
``write_checkpoint``      one more checkpoint written, durable, nothing unsaved
``finalize``              finalized (final checkpoint and summary)
none (or internal row)    nothing
========================  =====================================================
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator, Mapping, Sequence

import attrs

from lifecycle.spec import TABLE, Effect, Event, Guard, Row, SessionState, Spec

DEFAULT_DEPTH = 8

#: The rules checked, by id, in report order (design.md's lifecycle rules 1-8, at table level).
RULES: dict[str, str] = {
    "1": "COMPLETED is terminal: no row fires from a final state",
    "2": "RESUMED is entered only from INITIALIZING, by restore when restore_available, "
    "and holds exactly the restored state",
    "3": "every entry into CHECKPOINTED (from another state, or because a checkpoint is due "
    "or work is unsaved) writes a checkpoint; write_checkpoint always ends in CHECKPOINTED; "
    "CHECKPOINTED never holds unsaved work",
    "4": "COMPLETED is reachable from every reachable state",
    "5": "an event with no row from the state is rejected and changes nothing",
    "6": "each write_checkpoint row writes exactly one checkpoint, and no other row writes one",
    "7": "task_completed and before_operation consult checkpoint_due and, when it is due, "
    "write the checkpoint before the state changes",
    "8": "tick consults checkpoint_due and, when it is due, writes a checkpoint",
    "active": "ACTIVE is entered only by rows that record work or start a fresh session",
    "determinism": "a legal event fires exactly one row under each outcome of its guards",
}

_DUE = Guard.CHECKPOINT_DUE
_FORCING_GUARDS = frozenset({Guard.CHECKPOINT_DUE, Guard.HAS_UNSAVED})
_RISK_EVENTS = frozenset({Event.TASK_COMPLETED, Event.BEFORE_OPERATION})


@attrs.frozen
class Model:
    """The abstract session: the machine state and what the rules need to know about it."""

    state: SessionState
    unsaved: bool = False  # the session has work its durable checkpoint lacks
    durable: bool = False  # a checkpoint of this session's state exists
    writes: int = 0  # checkpoints written by write_checkpoint rows
    restored: bool = False  # the state came from a checkpoint
    finalized: bool = False

    def apply(self, row: Row) -> Model:
        """The model after ``row`` fires: the effect first, then the state change."""
        model = self
        effect = row.effect
        if effect is Effect.RESTORE:
            model = attrs.evolve(model, unsaved=False, durable=True, restored=True)
        elif effect is Effect.START_FRESH:
            model = attrs.evolve(model, unsaved=False, durable=False, restored=False)
        elif effect is Effect.RECORD_WORK:
            model = attrs.evolve(model, unsaved=True)
        elif effect is Effect.WRITE_CHECKPOINT:
            model = attrs.evolve(model, unsaved=False, durable=True, writes=model.writes + 1)
        elif effect is Effect.FINALIZE:
            model = attrs.evolve(model, finalized=True)
        return attrs.evolve(model, state=row.target)


@attrs.frozen
class Step:
    """One event of a sequence, with the guard outcome it was tried under and what fired."""

    event: Event
    outcome: tuple[tuple[Guard, bool], ...]
    row: int | None  # index into Spec.rows; None: rejected
    source: SessionState
    target: SessionState
    label: str = ""  # the fired row's label

    def __str__(self) -> str:
        guards = ", ".join(f"{g}={v}" for g, v in self.outcome)
        head = f"{self.event} [{guards}]" if guards else str(self.event)
        if self.row is None:
            return f"{head}: rejected in {self.source}"
        return f"{head}: row {self.row} ({self.label}) {self.source} -> {self.target}"


@attrs.frozen
class Violation:
    """A rule broken, with a shortest sequence from the initial state that breaks it."""

    rule: str
    detail: str
    path: tuple[Step, ...]

    @property
    def text(self) -> str:
        return RULES[self.rule]

    @property
    def events(self) -> tuple[str, ...]:
        """The sequence in short form: ``event[guard=value,...]`` per step."""
        return tuple(
            step.event.value + "".join(f"[{g}={v}]" for g, v in step.outcome) for step in self.path
        )


@attrs.frozen
class VerifyReport:
    """What :func:`model_check` explored and what it found."""

    depth: int
    machine_states: int
    rows: int
    abstract_states: int  # distinct abstract states reached (all depths)
    expansions: int  # (abstract state, event, guard outcome) triples computed
    sequences: int  # event sequences x guard outcomes of length 1..depth (counted)
    full_sequences: int  # those of length exactly depth
    seconds: float
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def format(self) -> str:
        broken = {v.rule: v for v in self.violations}
        lines = [
            "lifecycle verify: model check of the transition table (lifecycle/spec.py)",
            f"  table:      {self.machine_states} states, {self.rows} rows (transitions)",
            f"  depth:      {self.depth} events from the initial state, every event in every "
            "state, every outcome of the deciding guards",
            f"  explored:   {self.abstract_states:,} distinct abstract states, "
            f"{self.expansions:,} (state, event, guard outcome) steps computed",
            f"  sequences:  {self.sequences:,} event sequences with guard outcomes of length "
            f"1..{self.depth} ({self.full_sequences:,} of length {self.depth}); counted "
            "through merged abstract states, not walked one by one",
            f"  time:       {self.seconds:.3f} s",
            "  rules:",
        ]
        for rule, text in RULES.items():
            violation = broken.get(rule)
            lines.append(f"    {'FAIL' if violation else 'ok  '} {rule:<11} {text}")
            if violation is not None:
                lines.append(f"         broken: {violation.detail}")
                lines.append(f"         shortest sequence ({len(violation.path)} events):")
                lines += [f"           {n}. {step}" for n, step in enumerate(violation.path, 1)]
        if self.ok:
            lines.append(f"  result: OK, all {len(RULES)} rules hold")
        else:
            lines.append(f"  result: FAILED, {len(self.violations)} of {len(RULES)} rules broken")
        return "\n".join(lines)


def _outcomes(guards: Sequence[Guard]) -> Iterator[dict[Guard, bool]]:
    for values in itertools.product((True, False), repeat=len(guards)):
        yield dict(zip(guards, values, strict=True))


def _can_finish(spec: Spec) -> frozenset[SessionState]:
    """The states from which some sequence of rows reaches a final state."""
    done = set(spec.final)
    changed = True
    while changed:
        changed = False
        for row in spec.rows:
            if row.target in done and row.source not in done:
                done.add(row.source)
                changed = True
    return frozenset(done)


def _check_step(
    spec: Spec,
    model: Model,
    event: Event,
    outcome: Mapping[Guard, bool],
    row: Row,
    after: Model,
) -> Iterator[tuple[str, str]]:
    """The rules that this fired row breaks, as (rule, detail)."""
    where = f"{row.label!r} from {row.source}"
    if row.source in spec.final:
        yield "1", f"row {where} leaves final state {row.source}"
    entering = row.target is not row.source
    restores = (
        row.source is spec.initial
        and (Guard.RESTORE_AVAILABLE, True) in row.when
        and row.effect is Effect.RESTORE
    )
    if row.target is SessionState.RESUMED and entering and not restores:
        yield "2", f"row {where} enters RESUMED"
    if after.state is SessionState.RESUMED and (after.unsaved or not after.restored):
        yield "2", f"after row {where} the session is RESUMED but not as restored"
    forced = any(value and guard in _FORCING_GUARDS for guard, value in row.when)
    checkpoints = row.target is SessionState.CHECKPOINTED and (entering or forced)
    if checkpoints and row.effect is not Effect.WRITE_CHECKPOINT:
        yield "3", f"row {where} enters CHECKPOINTED without write_checkpoint"
    if row.effect is Effect.WRITE_CHECKPOINT and row.target is not SessionState.CHECKPOINTED:
        yield "3", f"row {where} writes a checkpoint but ends in {row.target}"
    if after.state is SessionState.CHECKPOINTED and after.unsaved:
        yield "3", f"after row {where} the session is CHECKPOINTED with unsaved work"
    wrote = after.writes - model.writes
    if wrote != (1 if row.effect is Effect.WRITE_CHECKPOINT else 0):
        yield "6", f"row {where} wrote {wrote} checkpoints"
    if event in _RISK_EVENTS or event is Event.TICK:
        rule = "8" if event is Event.TICK else "7"
        if _DUE not in outcome:
            yield rule, f"{event} in {row.source} does not consult {_DUE}"
        elif outcome[_DUE] and row.effect is not Effect.WRITE_CHECKPOINT:
            yield rule, f"row {where} fires with {_DUE}=True but does not write_checkpoint"
    enters_active = row.target is SessionState.ACTIVE and row.dest is not None
    if enters_active and row.effect not in (Effect.RECORD_WORK, Effect.START_FRESH):
        yield "active", f"row {where} enters ACTIVE with effect {row.effect}"


def model_check(spec: Spec = TABLE, depth: int = DEFAULT_DEPTH) -> VerifyReport:
    """Explore every event sequence of up to ``depth`` events under every guard outcome."""
    if depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth}")
    started = time.perf_counter()
    can_finish = _can_finish(spec)
    index = {id(row): number for number, row in enumerate(spec.rows)}
    found: dict[str, Violation] = {}

    def report(rule: str, detail: str, path: tuple[Step, ...]) -> None:
        if rule not in found:  # BFS: the first one found is a shortest one
            found[rule] = Violation(rule, detail, path)

    start = Model(spec.initial)
    # abstract state -> (number of sequences reaching it, the first sequence that did)
    frontier: dict[Model, tuple[int, tuple[Step, ...]]] = {start: (1, ())}
    seen: set[Model] = {start}
    expansions = sequences = full = 0
    for level in range(depth + 1):
        for model, (_, path) in frontier.items():
            if model.state not in can_finish:
                report("4", f"no final state is reachable from {model.state}", path)
        if level == depth:
            full = sum(count for count, _ in frontier.values())
            break
        nxt: dict[Model, tuple[int, tuple[Step, ...]]] = {}
        for model, (count, path) in frontier.items():
            legal = spec.legal_events(model.state)
            for event in Event:
                rows = spec.rows_for(event, model.state)
                for outcome in _outcomes(spec.guards_for(event, model.state)):
                    expansions += 1
                    sequences += count
                    shown = tuple(outcome.items())
                    firing = [row for row in rows if row.matches(outcome)]
                    if not firing:
                        step = Step(event, shown, None, model.state, model.state)
                        after = model  # rejected: nothing changes
                        if event in legal:
                            report(
                                "determinism",
                                f"{event} is legal in {model.state} but no row fires",
                                (*path, step),
                            )
                    else:
                        row = firing[0]
                        after = model.apply(row)
                        step = Step(event, shown, index[id(row)], row.source, row.target, row.label)
                        if len(firing) > 1:
                            labels = "; ".join(r.label for r in firing)
                            report("determinism", f"rows overlap: {labels}", (*path, step))
                        for rule, detail in _check_step(spec, model, event, outcome, row, after):
                            report(rule, detail, (*path, step))
                    if event not in legal and after != model:  # pragma: no cover - by design
                        report("5", f"rejected {event} changed the session", (*path, step))
                    total, first = nxt.get(after, (0, (*path, step)))
                    nxt[after] = (total + count, first)
        frontier = nxt
        seen.update(frontier)
    ordered = tuple(found[rule] for rule in RULES if rule in found)
    return VerifyReport(
        depth=depth,
        machine_states=len(spec.states),
        rows=len(spec.rows),
        abstract_states=len(seen),
        expansions=expansions,
        sequences=sequences,
        full_sequences=full,
        seconds=time.perf_counter() - started,
        violations=ordered,
    )


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"depth must be a whole number, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"depth must be 0 or more, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lifecycle.verify",
        description="Model-check the transition table against the lifecycle rules.",
    )
    parser.add_argument(
        "--depth", type=_depth, default=DEFAULT_DEPTH, help=f"default: {DEFAULT_DEPTH}"
    )
    args = parser.parse_args(argv)
    result = model_check(TABLE, args.depth)
    sys.stdout.write(result.format() + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
