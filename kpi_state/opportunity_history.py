"""An opportunity's events in event-time order: what counts, waits or is withdrawn is decided by event time.

Connectors that send no Kafka key spread one opportunity's events over input partitions
consumed at different speeds, so they arrive in any order. The history keeps each event
compactly, sorted by event time (see `event_time_order` for ties), and judges all of them again whenever one
arrives, with the same rules as `OpportunityState` (which it replays them into):

- events dated before the opportunity's `created` wait (held), whether or not that
  `created` has arrived: they count once one dated before them does, and are dead-lettered
  as `orphaned` once they fall behind the lateness horizon unmatched;
- an event invalid in event-time order (a second win, a move after the close, a move
  backwards) is dead-lettered, also when it was counted until an earlier event arrived:
  it is then withdrawn from every KPI. Validity only ever shrinks as events arrive (an
  earlier event can raise the stage or close the deal at a time, never undo either), so
  a dead-lettered event never becomes valid again and goes to the DLQ exactly once;
- past the lateness horizon an event is settled: its original bytes are dropped, and a
  late event that would withdraw it is refused instead.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

import msgspec

from kpi_state.contributions import INVALID_TRANSITION, UNKNOWN_STAGE, Contribution
from kpi_state.entity import DUPLICATE, HELD, ORPHANED, Judged, Withdrawn
from kpi_state.events import (
    Event,
    OpportunityCreated,
    OpportunityLost,
    OpportunityStageChanged,
    OpportunityWon,
)
from kpi_state.opportunity import OpportunityState

CREATED, MOVED, WON, LOST = range(4)
_KIND = {OpportunityCreated: CREATED, OpportunityStageChanged: MOVED, OpportunityWon: WON, OpportunityLost: LOST}


class Fact(msgspec.Struct, array_like=True, gc=False):
    """What the lifecycle needs of one event, and its original record while it may be dead-lettered."""

    ts: float
    event_id: str
    kind: int
    rep_id: str
    stage: str | None = None  # created: the stage; moved: the target stage
    amount: Decimal | None = None  # created: expected value; won: the won amount
    raw: bytes | None = None


def event_time_order(stages: tuple[str, ...]):
    """The sort key of facts: event time; at one instant the creation first, then moves in
    stage order, then closes; then the event id. Exports with one date per row give the
    creation and the first move the same instant, and an id must not decide between them."""
    position = {stage: i for i, stage in enumerate(stages)}

    def key(fact: Fact) -> tuple[float, int, int, str]:
        return (fact.ts, min(fact.kind, WON), position.get(fact.stage or "", -1), fact.event_id)

    return key


def fact_of(event: Event, raw: bytes | None) -> Fact:
    kind = _KIND[type(event)]
    stage = event.stage if kind == CREATED else event.to_stage if kind == MOVED else None  # type: ignore[union-attr]
    amount = event.amount if kind in (CREATED, WON) else None  # type: ignore[union-attr]
    return Fact(event.ts, event.event_id, kind, event.rep_id, stage, amount, raw)  # type: ignore[union-attr]


def _event_of(fact: Fact, opportunity_id: str) -> Event:
    common = dict(event_id=fact.event_id, ts=fact.ts, opportunity_id=opportunity_id, rep_id=fact.rep_id)
    if fact.kind == CREATED:
        return OpportunityCreated(**common, stage=fact.stage or "", amount=fact.amount)
    if fact.kind == MOVED:
        return OpportunityStageChanged(**common, to_stage=fact.stage or "")
    if fact.kind == WON:
        amount = fact.amount if fact.amount is not None else Decimal(0)
        return OpportunityWon(**common, amount=amount, amount_original=amount, currency="")
    return OpportunityLost(**common)


class OpportunityHistory(msgspec.Struct, kw_only=True, array_like=True):
    """Counted and held events of one opportunity, in event-time order."""

    opportunity_id: str
    facts: list[Fact] = msgspec.field(default_factory=list)

    @classmethod
    def of(cls, event: Event) -> OpportunityHistory:
        return cls(opportunity_id=event.opportunity_id)  # type: ignore[union-attr]

    def knows(self, event_id: str) -> bool:
        """Whether the event is one the history keeps (counted or held)."""
        return any(f.event_id == event_id for f in self.facts)

    def add(self, event: Event, raw: bytes | None, stages: tuple[str, ...]) -> Judged:
        if self.knows(event.event_id):
            # Re-sent after the dedup horizon forgot its id (a re-imported export): the
            # history still knows it.
            return Judged(DUPLICATE)
        fact = fact_of(event, raw)
        facts = list(self.facts)
        bisect.insort(facts, fact, key=event_time_order(stages))
        verdicts, _ = _judge(facts, self.opportunity_id, stages)
        dead = [(f, v) for f, v in zip(facts, verdicts) if v not in (None, HELD)]
        if any(f is not fact and f.raw is None for f, _ in dead):
            # It would withdraw a settled event: too late to rewrite that history.
            return Judged(INVALID_TRANSITION, [])
        self.facts = [f for f, v in zip(facts, verdicts) if v in (None, HELD)]
        mine = verdicts[facts.index(fact)]
        return Judged(mine, [Withdrawn(f.raw, v, f.ts) for f, v in dead if f is not fact])

    def state(self, stages: tuple[str, ...]) -> OpportunityState | None:
        """The lifecycle the counted events give (None while nothing is counted).

        Replayed on demand rather than kept: a handful of events per opportunity replay in
        microseconds, and most opportunities are closed and never asked again.
        """
        return _judge(self.facts, self.opportunity_id, stages)[1]

    def contributions(self, tz: str, stages: tuple[str, ...]) -> list[Contribution]:
        state = self.state(stages)
        return [] if state is None else state.contributions(tz)

    @property
    def held(self) -> int:
        """Events waiting for a `created` dated before them."""
        created = next((i for i, f in enumerate(self.facts) if f.kind == CREATED), len(self.facts))
        return created

    @property
    def settled(self) -> bool:
        """No event keeps its record (none held, none that could still be withdrawn)."""
        return all(f.raw is None for f in self.facts)

    def next_expiry(self, lateness_s: float) -> float | None:
        """When the oldest event still carrying its record passes the horizon."""
        times = [f.ts for f in self.facts if f.raw is not None]
        return min(times) + lateness_s if times else None

    def expire(self, cutoff: float, stages: tuple[str, ...]) -> list[Withdrawn]:
        """Settle every event older than `cutoff`: held ones are orphaned, counted ones keep no record."""
        held = self.facts[: self.held]
        orphaned = [f for f in held if f.ts < cutoff]
        if orphaned:
            self.facts = [f for f in self.facts if f not in orphaned]
        for fact in self.facts:
            if fact.raw is not None and fact.ts < cutoff:
                fact.raw = None
        return [Withdrawn(f.raw, ORPHANED, f.ts) for f in orphaned]


def _judge(
    facts: list[Fact], opportunity_id: str, stages: tuple[str, ...]
) -> tuple[list[str | None], OpportunityState | None]:
    """Every fact's verdict, replaying them in order; and the state the counted ones give."""
    verdicts: list[str | None] = []
    state: OpportunityState | None = None
    for fact in facts:
        event = _event_of(fact, opportunity_id)
        if fact.kind == CREATED and fact.stage not in stages:
            verdicts.append(UNKNOWN_STAGE)
        elif state is None and fact.kind == CREATED:
            state, reason = OpportunityState.start(event, stages)
            verdicts.append(reason)
        elif state is None:
            verdicts.append(HELD)
        else:
            verdicts.append(state.apply(event, stages))
    # Held events are those before the first counted `created`; any after it were judged.
    return verdicts, state
