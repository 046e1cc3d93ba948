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

Guards are free where the session's facts do not decide them: each trigger
evaluator may answer either way at any time, a restore candidate may or may not
exist, a checkpoint write may fail. The rest follow from the model: whether work
is unsaved after an event that never changes work is what it was before; after
one that always changes work (``spec.ALWAYS_CHANGE``) it is; before the first
durable checkpoint it always is; ``saved_is_restored`` is a fact of the model.

Rule 5 (an illegal event changes nothing) holds by construction at this level:
a step that fires no row leaves the abstract state as it was. What the table
can get wrong there is a *legal* event for which some guard outcome fires no
row, or two: that is the ``determinism`` rule. Whether the machine really
leaves the store untouched, and ids are unique and ordered, is for the
implementation's property tests.

The abstract model's effects (what each named effect does to the facts):

=============================  ==================================================
``restore``                    restored: a durable checkpoint, nothing unsaved
``start_fresh``                a new session: nothing durable, so all unsaved
``record_work``                unsaved as the event leaves it
``write_checkpoint``           one more checkpoint written; nothing unsaved
``finalize``                   finalized (record and summary)
``checkpoint_and_finalize``    one more checkpoint written, then finalized
none (or internal row)         nothing
=============================  ==================================================
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator, Mapping, Sequence

import attrs

from lifecycle.spec import (
    ALWAYS_CHANGE,
    NEVER_CHANGE,
    TABLE,
    Effect,
    Event,
    Guard,
    Row,
    SessionState,
    Spec,
)

DEFAULT_DEPTH = 8

#: The rules checked, by id, in report order (the lifecycle rules 1-8, at table level).
RULES: dict[str, str] = {
    "1": "COMPLETED is terminal: no row fires from a final state",
    "2": "RESUMED is entered from INITIALIZING only by restore when restore_available, or "
    "from ACTIVE when a change undid the unsaved work since that restore; it holds exactly "
    "the restored state",
    "3": "a row that writes a checkpoint writes exactly one and ends in CHECKPOINTED (or "
    "COMPLETED); no other row writes one",
    "meaning": "ACTIVE if and only if work is unsaved; CHECKPOINTED and RESUMED hold nothing "
    "unsaved and have a durable checkpoint",
    "4": "COMPLETED is reachable from every reachable state",
    "5": "an event with no row from the state is rejected and changes nothing",
    "7": "a risky operation (risk_due) is checkpointed before it runs, unless the write failed",
    "8": "a due trigger with unsaved work writes a checkpoint, unless the write failed",
    "failure": "every row that writes declares its failure path (write_failed), and that "
    "path writes nothing and keeps unsaved work in ACTIVE (or completes)",
    "active": "ACTIVE is entered only by rows that record work or start a fresh session",
    "determinism": "a legal event fires exactly one row under each outcome of its guards",
}

_DUE = Guard.CHECKPOINT_DUE
_RISK = Guard.RISK_DUE
_UNSAVED = Guard.HAS_UNSAVED
_FAILED = Guard.WRITE_FAILED
#: Guards no fact of the model decides: the search tries both values.
_FREE = frozenset({Guard.RESTORE_AVAILABLE, _DUE, _RISK, _FAILED})


@attrs.frozen
class Model:
    """The abstract session: the machine state and what the rules need to know about it."""

    state: SessionState
    unsaved: bool = False  # the session has work its durable checkpoint lacks
    durable: bool = False  # a durable checkpoint of this session's state exists
    at_restore: bool = False  # the durable checkpoint is the one restored
    writes: int = 0  # checkpoints written
    restored: bool = False  # the state came from a checkpoint
    finalized: bool = False

    def unsaved_after(self, event: Event, outcome: Mapping[Guard, bool]) -> bool:
        """Whether work is unsaved once ``event``'s change is applied."""
        if _UNSAVED in outcome:
            return outcome[_UNSAVED]
        if event in NEVER_CHANGE:
            return self.unsaved
        return True  # ALWAYS_CHANGE, or an event whose rows do not ask

    def apply(self, row: Row, unsaved: bool) -> Model:
        """The model after ``row`` fires (``unsaved``: as the event's change leaves it)."""
        model = self
        effect = row.effect
        if effect is Effect.RESTORE:
            model = attrs.evolve(model, unsaved=False, durable=True, restored=True, at_restore=True)
        elif effect is Effect.START_FRESH:
            model = attrs.evolve(
                model, unsaved=True, durable=False, restored=False, at_restore=False
            )
        elif effect is Effect.RECORD_WORK:
            model = attrs.evolve(model, unsaved=unsaved)
        elif effect in (Effect.WRITE_CHECKPOINT, Effect.CHECKPOINT_AND_FINALIZE):
            model = attrs.evolve(
                model, unsaved=False, durable=True, at_restore=False, writes=model.writes + 1
            )
        if effect in (Effect.FINALIZE, Effect.CHECKPOINT_AND_FINALIZE):
            if effect is Effect.FINALIZE:
                model = attrs.evolve(model, unsaved=unsaved)
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


def _outcomes(model: Model, event: Event, guards: Sequence[Guard]) -> Iterator[dict[Guard, bool]]:
    """Every outcome of the deciding guards the model allows (see the module doc)."""
    free = [g for g in guards if g in _FREE or (g is _UNSAVED and _may_change(model, event))]
    for values in itertools.product((True, False), repeat=len(free)):
        outcome = dict(zip(free, values, strict=True))
        if outcome.get(_RISK) and outcome.get(_DUE) is False:
            continue  # a risk call is a call: risk_due implies checkpoint_due
        if _UNSAVED in guards and _UNSAVED not in outcome:
            outcome[_UNSAVED] = model.unsaved if event in NEVER_CHANGE else True
        if Guard.SAVED_IS_RESTORED in guards:
            outcome[Guard.SAVED_IS_RESTORED] = model.at_restore
        yield {g: outcome[g] for g in guards}


def _may_change(model: Model, event: Event) -> bool:
    """Whether unsaved work after ``event`` is open: its change may add, undo or do
    nothing, and there is a durable checkpoint to compare with."""
    return model.durable and event not in NEVER_CHANGE and event not in ALWAYS_CHANGE


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
    settles = row.source is SessionState.ACTIVE and not after.unsaved and model.at_restore
    if row.target is SessionState.RESUMED and entering and not (restores or settles):
        yield "2", f"row {where} enters RESUMED"
    if after.state is SessionState.RESUMED and not (
        after.restored and after.at_restore and not after.unsaved
    ):
        yield "2", f"after row {where} the session is RESUMED but not as restored"
    wrote = after.writes - model.writes
    if wrote != (1 if row.writes else 0):
        yield "3", f"row {where} wrote {wrote} checkpoints"
    if row.writes and row.target not in (SessionState.CHECKPOINTED, SessionState.COMPLETED):
        yield "3", f"row {where} writes a checkpoint but ends in {row.target}"
    if after.state is SessionState.ACTIVE and not after.unsaved:
        yield "meaning", f"after row {where} the session is ACTIVE with nothing unsaved"
    if after.state in (SessionState.CHECKPOINTED, SessionState.RESUMED) and (
        after.unsaved or not after.durable
    ):
        yield "meaning", f"after row {where} the session is {after.state} with unsaved work"
    failed = outcome.get(_FAILED, False)
    if outcome.get(_RISK) and not failed and not row.writes:
        yield "7", f"row {where} lets a risky operation run without a checkpoint"
    unsaved = model.unsaved_after(event, outcome)
    due = outcome.get(_DUE) and unsaved and not failed
    if due and not row.writes and row.target is not SessionState.COMPLETED:
        yield "8", f"row {where} fires with {_DUE}=True and unsaved work but writes nothing"
    if row.writes and (_FAILED, False) not in row.when:
        yield "failure", f"row {where} writes a checkpoint with no write_failed path"
    if failed:
        if row.writes:
            yield "failure", f"row {where} writes although the write failed"
        if after.unsaved and after.state not in (SessionState.ACTIVE, SessionState.COMPLETED):
            yield (
                "failure",
                f"after row {where} a failed write leaves unsaved work in {after.state}",
            )
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
                guards = spec.guards_for(event, model.state)
                for outcome in _outcomes(model, event, guards):
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
                        after = model.apply(row, model.unsaved_after(event, outcome))
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
