"""One team's (or the untagged) marketing and sales spend, and the `spend` component it adds."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from kpi_state.contributions import (
    INVALID_TRANSITION,
    Contribution,
    day_of,
    spend_attribution,
)
from kpi_state.events import Event, SpendRecorded

# Spend is kept in UTC quarter-hour slots rather than local days: every time zone in use
# is offset from UTC by a whole number of quarter hours, so a slot lies inside one local
# day in any zone and the time zone can stay a `contributions` argument (a changed zone
# setting re-buckets correctly after a restart), while the state stays bounded per day.
SLOT_SECONDS = 900
_ZERO = Decimal(0)


class SpendState(msgspec.Struct, kw_only=True):
    """Σ spend per quarter-hour slot for one team id (None: spend without a team)."""

    team_id: str | None = None
    slots: dict[int, Decimal] = msgspec.field(default_factory=dict)

    @classmethod
    def start(cls, event: Event) -> tuple[SpendState | None, str | None]:
        if not isinstance(event, SpendRecorded):
            return None, INVALID_TRANSITION
        state = cls(team_id=event.team_id or None)
        state.apply(event)
        return state, None

    def apply(self, event: Event) -> str | None:
        """Add a spend event; None when applied, else a DLQ reason (state left unchanged)."""
        if not isinstance(event, SpendRecorded) or (event.team_id or None) != self.team_id:
            return INVALID_TRANSITION  # not spend, or routed to the wrong entity
        slot = int(event.ts // SLOT_SECONDS)
        self.slots[slot] = self.slots.get(slot, _ZERO) + event.amount
        return None

    def contributions(self, tz: str) -> list[Contribution]:
        """Σ spend per local day; a pure function of the state."""
        by_day: dict[str, Decimal] = {}
        for slot, amount in self.slots.items():
            day = day_of(slot * SLOT_SECONDS, tz)
            by_day[day] = by_day.get(day, _ZERO) + amount
        attribution = spend_attribution(self.team_id)
        return [Contribution("spend", attribution, day, (), by_day[day]) for day in sorted(by_day)]
