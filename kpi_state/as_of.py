"""Window totals as of the end of one local day: what alerts judge (later days left out)."""

from __future__ import annotations

from datetime import date, timedelta

from kpi_state.calendar import CALENDAR_WINDOWS, next_period_date, period_start_date
from kpi_state.rollup import ROLLING_DAYS, Rollup, Totals


def totals_as_of(rollup: Rollup, scope: str, window: str, day: date) -> tuple[Totals, str]:
    """(totals, period start) of `window` for the period holding `day`, counting days up to `day` only."""
    if window in ROLLING_DAYS:
        return rollup.rolling(scope, ROLLING_DAYS[window], day), ""  # read, never written
    if window in CALENDAR_WINDOWS:
        start = period_start_date(day, window)
        end = next_period_date(start, window)
        base = rollup.periods.get((scope, window, start.isoformat()))
    else:  # all: lifetime (snapshot cells, day "", are as of now)
        start, end, base = None, None, rollup.periods.get((scope, "all", ""))
    later_days = _later_days(rollup, scope, day, end)
    if not later_days and base is not None:
        return base, start.isoformat() if start is not None else ""  # read, never written
    totals = Totals()
    if base is not None:
        totals.add_totals(base, +1)
    # Take out what later days added (usually a few: how far the fastest partition is ahead).
    for later in later_days:
        cell = rollup.merged[(scope, later)]
        totals.add_totals(cell, -1)
    return totals, start.isoformat() if start is not None else ""


def _later_days(rollup: Rollup, scope: str, day: date, end: date | None) -> list[str]:
    newest = rollup.newest_day
    if newest is None or newest <= day:
        return []
    last = newest if end is None else min(newest, end - timedelta(days=1))
    out = []
    current = day + timedelta(days=1)
    while current <= last:
        key = current.isoformat()
        if (scope, key) in rollup.merged:
            out.append(key)
        current += timedelta(days=1)
    return out
