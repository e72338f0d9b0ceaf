"""One opportunity's lifecycle (stages, won, lost) and the funnel, cycle and pipeline components it adds."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from kpi_state.contributions import (
    INVALID_TRANSITION,
    SNAPSHOT,
    UNKNOWN_STAGE,
    Contribution,
    DayCache,
    days_between,
    rep_attribution,
)
from kpi_state.events import (
    Event,
    OpportunityCreated,
    OpportunityLost,
    OpportunityStageChanged,
    OpportunityWon,
)

WON = "won"
LOST = "lost"
_ZERO = Decimal(0)


class Visit(msgspec.Struct, array_like=True, gc=False):
    """One stage passed through: who moved the opportunity in, and out (once it left)."""

    stage: str
    entered_ts: float
    entered_by: str
    left_ts: float | None = None
    left_by: str | None = None


class OpportunityState(msgspec.Struct, kw_only=True):
    """An opportunity from its creation on; `visits` lists every stage passed, in stage order.

    Skipped stages are written out as visits when they are skipped (entered and left at the
    same instant), so `contributions` needs no stage configuration and a later change of
    that configuration does not rewrite history.
    """

    opportunity_id: str
    created_ts: float
    created_by: str
    amount: Decimal | None = None  # expected value, reporting currency
    visits: list[Visit] = msgspec.field(default_factory=list)
    outcome: str | None = None  # WON | LOST once closed
    closed_ts: float | None = None
    closed_by: str | None = None
    won_amount: Decimal | None = None
    won_next: str | None = None  # the stage after the one a won deal was in

    @classmethod
    def start(
        cls, event: Event, stages: tuple[str, ...]
    ) -> tuple[OpportunityState | None, str | None]:
        """A new opportunity from its first event, which must be `opportunity.created`.

        Any other first event is `invalid_transition`: its creation has not been seen, so
        the funnel position and cycle start it implies are unknown.
        """
        if not isinstance(event, OpportunityCreated):
            return None, INVALID_TRANSITION
        if event.stage not in stages:
            return None, UNKNOWN_STAGE
        reached = stages.index(event.stage)
        state = cls(
            opportunity_id=event.opportunity_id,
            created_ts=event.ts,
            created_by=event.rep_id,
            amount=event.amount,
        )
        # The creation stage and every earlier one are entered at the creation instant.
        state._enter(stages[: reached + 1], event.ts, event.rep_id)
        return state, None

    # --- events -----------------------------------------------------------------------
    def apply(self, event: Event, stages: tuple[str, ...]) -> str | None:
        """Apply a later event; None when applied, else a DLQ reason (state left unchanged)."""
        if isinstance(event, OpportunityStageChanged):
            return self._move(event, stages)
        if isinstance(event, OpportunityWon):
            return self._win(event, stages)
        if isinstance(event, OpportunityLost):
            return self._lose(event)
        # A second `created`, or an event of another entity routed here.
        return INVALID_TRANSITION

    def _move(self, event: OpportunityStageChanged, stages: tuple[str, ...]) -> str | None:
        if event.to_stage not in stages:
            return UNKNOWN_STAGE
        current = self._position(stages)
        if self.outcome is not None or current is None or not self._in_order(event.ts):
            return INVALID_TRANSITION
        target = stages.index(event.to_stage)
        if target <= current:  # backwards or the same stage: not a move forward
            return INVALID_TRANSITION
        # `from_stage` is informative only: the stage held here is authoritative, and
        # stages between it and the target count as passed (cumulative funnel).
        self._enter(stages[current + 1 : target + 1], event.ts, event.rep_id)
        return None

    def _win(self, event: OpportunityWon, stages: tuple[str, ...]) -> str | None:
        current = self._position(stages)
        if self.outcome is not None or current is None or not self._in_order(event.ts):
            return INVALID_TRANSITION
        # Won is beyond every stage, so the current one converts to the next; the stages
        # after it were never worked, so they get no (zero-length) visit that would drag
        # their mean duration down.
        self.won_next = stages[current + 1] if current + 1 < len(stages) else None
        self._close(WON, event.ts, event.rep_id)
        self.won_amount = event.amount
        return None

    def _lose(self, event: OpportunityLost) -> str | None:
        if self.outcome is not None or not self._in_order(event.ts):
            return INVALID_TRANSITION
        self._close(LOST, event.ts, event.rep_id)
        return None

    def _position(self, stages: tuple[str, ...]) -> int | None:
        """Index of the current stage in `stages`; None if the configuration dropped it."""
        stage = self.visits[-1].stage
        return stages.index(stage) if stage in stages else None

    def _in_order(self, ts: float) -> bool:
        # A transition dated before the last one would give negative stage durations:
        # events of one opportunity must arrive in event-time order (ties allowed).
        return ts >= self.visits[-1].entered_ts

    def _enter(self, stages: tuple[str, ...], ts: float, rep_id: str) -> None:
        """Leave the current stage and pass through `stages` (all but the last one skipped)."""
        for stage in stages:
            self._leave_current(ts, rep_id)
            self.visits.append(Visit(stage, ts, rep_id))

    def _close(self, outcome: str, ts: float, rep_id: str) -> None:
        self._leave_current(ts, rep_id)
        self.outcome, self.closed_ts, self.closed_by = outcome, ts, rep_id

    def _leave_current(self, ts: float, rep_id: str) -> None:
        if self.visits:
            last = self.visits[-1]
            last.left_ts, last.left_by = ts, rep_id

    # --- components -------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.outcome is None

    @property
    def stage(self) -> str:
        return self.visits[-1].stage

    def contributions(self, tz: str) -> list[Contribution]:
        """Everything this opportunity adds to the components; a pure function of the state."""
        day = DayCache(tz)
        out = self._lifecycle(day)
        out.extend(self._funnel(day))
        out.extend(self._snapshot())
        return out

    def _lifecycle(self, day: DayCache) -> list[Contribution]:
        # Measured from creation: the creating rep, on the creation day.
        creator, created_day = rep_attribution(self.created_by), day(self.created_ts)
        out = [Contribution("opportunities_created", creator, created_day)]
        if self.closed_ts is None or self.closed_by is None:
            return out
        closer, closed_day = rep_attribution(self.closed_by), day(self.closed_ts)
        if self.outcome == LOST:
            out.append(Contribution("lost", closer, closed_day))
            return out
        out += [
            Contribution("created_won", creator, created_day),
            Contribution("won", closer, closed_day),
            Contribution("bookings", closer, closed_day, (), self.won_amount or _ZERO),
            Contribution("cycle_days_sum", closer, closed_day, (),
                         days_between(self.created_ts, self.closed_ts)),
        ]
        return out

    def _funnel(self, day: DayCache) -> list[Contribution]:
        out: list[Contribution] = []
        visits = self.visits
        for i, visit in enumerate(visits):
            stage_dims = (("stage", visit.stage),)
            # The advance counts where its denominator (the entry) counts: same rep, same day.
            entrant, entered_day = rep_attribution(visit.entered_by), day(visit.entered_ts)
            out.append(Contribution("stage_entered", entrant, entered_day, stage_dims))
            following = visits[i + 1].stage if i + 1 < len(visits) else self.won_next
            if following is not None:
                advance_dims = (("from", visit.stage), ("to", following))
                out.append(Contribution("stage_advanced", entrant, entered_day, advance_dims))
            if visit.left_ts is not None and visit.left_by is not None:
                leaver, left_day = rep_attribution(visit.left_by), day(visit.left_ts)
                spent = days_between(visit.entered_ts, visit.left_ts)
                out.append(Contribution("stage_left", leaver, left_day, stage_dims))
                out.append(Contribution("stage_days_sum", leaver, left_day, stage_dims, spent))
        return out

    def _snapshot(self) -> list[Contribution]:
        if not self.is_open:
            return []
        # The rep who moved it into its current stage is the one holding it now.
        current = self.visits[-1]
        holder, dims = rep_attribution(current.entered_by), (("stage", current.stage),)
        return [
            Contribution("open_opps", holder, SNAPSHOT, dims),
            Contribution("open_value", holder, SNAPSHOT, dims, self.amount or _ZERO),
        ]
