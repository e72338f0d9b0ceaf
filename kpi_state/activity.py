"""A rep's activity counts per KPI and local day: the state behind the activity family."""

from __future__ import annotations

import msgspec

from kpi_state.catalogue import ACTIVITY_EVENT_KPI
from kpi_state.contributions import Contribution


class ActivityState(msgspec.Struct):
    """kpi -> local ISO day -> count, for one rep."""

    counts: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)

    def count(self, event_type: str, day: str) -> str:
        """Count one event; the KPI it counts for (its cells change by one: DayCells.count)."""
        kpi = ACTIVITY_EVENT_KPI[event_type]
        by_day = self.counts.get(kpi)
        if by_day is None:
            by_day = self.counts[kpi] = {}
        by_day[day] = by_day.get(day, 0) + 1
        return kpi

    def add_counts(self, counts: list[tuple[str, str, int]]) -> None:
        """Add (kpi, local day, n) counts: a stored arrival day of the rep (kpi_state.rep_days)."""
        for kpi, day, n in counts:
            by_day = self.counts.get(kpi)
            if by_day is None:
                by_day = self.counts[kpi] = {}
            by_day[day] = by_day.get(day, 0) + n

    def contributions(self, rep_id: str) -> list[Contribution]:
        attribution = ("rep", rep_id)
        return [
            Contribution(kpi, attribution, day, (), n)
            for kpi, by_day in self.counts.items()
            for day, n in by_day.items()
        ]
