"""Event time every entity partition has passed, as seen by one rollup: the day alerts may judge.

The rollup's own newest event time is the maximum over entity partitions, which run at
different speeds: a window ending there can still miss a slower partition's cells. Each
entity partition therefore sends a heartbeat (its stream time) to every cells partition at
each flush; within one cells partition, a heartbeat arrives after every cell sent before it.
The watermark is the minimum over (entity partition, owned cells partition) of those times.
"""

from __future__ import annotations

from datetime import date, timedelta

from kpi_state.calendar import local_date

HEARTBEAT_SCOPE = "~heartbeat"  # never a scope: scopes are global or kind:id


class Watermark:
    def __init__(self) -> None:
        self.newest: dict[tuple[int, int], float] = {}  # (entity partition, cells partition) → time
        self.sources: set[int] = set()

    def see(self, source: int, cells_partition: int, ts: float) -> None:
        key = (source, cells_partition)
        if ts > self.newest.get(key, float("-inf")):
            self.newest[key] = ts
        self.sources.add(source)

    def value(self, owned: set[int]) -> float | None:
        """The smallest time over every known entity partition and owned cells partition (None: not yet)."""
        if not self.sources or not owned:
            return None
        times = [self.newest.get((s, p)) for s in self.sources for p in owned]
        if any(t is None for t in times):
            return None
        return min(times)  # type: ignore[type-var]


# A pipeline that judges for the first time (history replayed before any live traffic)
# starts this far behind the watermark: older days are history, not something to page about.
FIRST_JUDGED_DAYS_BACK = 92


def complete_days(last: date | None, watermark: float | None, tz: str, first: date | None) -> list[date]:
    """Local days wholly behind the watermark and not judged yet, oldest first."""
    if watermark is None or first is None:
        return []
    upto = local_date(watermark, tz) - timedelta(days=1)
    if last is None:
        day = max(first, upto - timedelta(days=FIRST_JUDGED_DAYS_BACK))
    else:
        day = last + timedelta(days=1)
    out = []
    while day <= upto:
        out.append(day)
        day += timedelta(days=1)
    return out
