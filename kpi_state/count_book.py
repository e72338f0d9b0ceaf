"""Count KPIs per scope and window, kept up to date from per-partition rep partials."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from kpi_state.calendar import (
    CALENDAR_WINDOWS,
    iso_utc,
    local_date,
    period_bounds,
    period_start_date,
)
from kpi_state.catalogue import CATALOGUE
from kpi_state.counts import RepDayCounts
from kpi_state.directory import RepDirectory
from kpi_state.records import KpiValue

COUNT_WINDOWS = (*CALENDAR_WINDOWS, "all")

# (kpi, scope, window, period start as local ISO date or "" for `all`)
SeriesKey = tuple[str, str, str, str]


def partial_key(partition: int, rep_id: str) -> bytes:
    """Table key of one rep's partial from one source partition."""
    return f"{partition}|{rep_id}".encode()


def split_partial_key(key: bytes) -> tuple[int, str]:
    partition, _, rep_id = key.decode().partition("|")
    return int(partition), rep_id


class _DayCache:
    """Remembers the current local day's bounds: most events fall on the same day."""

    def __init__(self, tz: str) -> None:
        self.tz = tz
        self.start = self.end = 0.0
        self.day_iso = ""

    def locate(self, ts: float) -> str:
        """The local day (ISO) holding epoch second `ts`."""
        if not self.start <= ts < self.end:
            day = local_date(ts, self.tz)
            self.start, self.end = period_bounds(day, "day", self.tz)
            self.day_iso = day.isoformat()
        return self.day_iso


def periods_of_day(day: date) -> tuple[str, ...]:
    """Start date of each count window holding `day`, in COUNT_WINDOWS order."""
    return (*(period_start_date(day, w).isoformat() for w in CALENDAR_WINDOWS), "")


class CountBook:
    """Partials as persisted, and the per-series totals derived from them."""

    def __init__(self, tz: str, directory: RepDirectory | None = None) -> None:
        self.tz = tz
        self.directory = directory or RepDirectory()
        self.partials: dict[bytes, RepDayCounts] = {}
        self.totals: dict[SeriesKey, int] = defaultdict(int)
        self.dirty_partials: set[bytes] = set()
        self.changed: set[SeriesKey] = set()
        self.newest_ts: float | None = None
        self._days = _DayCache(tz)
        # Counts applied since the last settle, by (rep, kpi, local day): folding
        # them into the series totals once per flush keeps per-event work small.
        self._pending: dict[tuple[str, str, str], int] = {}

    # --- writes -----------------------------------------------------------
    def apply(self, partition: int, offset: int, rep_id: str, kpi: str, ts: float) -> bool:
        """Count one event; False when its offset was already applied (a replay)."""
        key = partial_key(partition, rep_id)
        partial = self.partials.get(key)
        if partial is None:
            partial = self.partials[key] = RepDayCounts()
        day_iso = self._days.locate(ts)
        if not partial.add(offset, kpi, day_iso):
            return False
        self.dirty_partials.add(key)
        if self.newest_ts is None or ts > self.newest_ts:
            self.newest_ts = ts
        cell = (rep_id, kpi, day_iso)
        self._pending[cell] = self._pending.get(cell, 0) + 1
        return True

    def load(self, key: bytes, partial: RepDayCounts) -> None:
        """Adopt a partial recovered from the changelog (replacing any older copy)."""
        self._settle()
        _, rep_id = split_partial_key(key)
        old = self.partials.get(key)
        if old is not None:
            self._fold(rep_id, old, -1)
        self.partials[key] = partial
        self._fold(rep_id, partial, +1)

    def drop_partition(self, partition: int) -> None:
        """Forget the partials of a partition this worker no longer owns."""
        self._settle()
        for key in [k for k in self.partials if split_partial_key(k)[0] == partition]:
            _, rep_id = split_partial_key(key)
            self._fold(rep_id, self.partials.pop(key), -1)
            self.dirty_partials.discard(key)

    def rebuild(self) -> None:
        """Recompute every total, e.g. after a rep moved to another team."""
        self._pending.clear()  # the partials already hold them
        old = set(self.totals)
        self.totals.clear()
        for key, partial in self.partials.items():
            self._fold(split_partial_key(key)[1], partial, +1)
        self.changed |= old | set(self.totals)

    def take_dirty_partials(self) -> dict[bytes, RepDayCounts]:
        dirty = {key: self.partials[key] for key in self.dirty_partials if key in self.partials}
        self.dirty_partials.clear()
        return dirty

    def take_changed(self) -> set[SeriesKey]:
        self._settle()
        changed, self.changed = self.changed, set()
        return changed

    # --- reads ------------------------------------------------------------
    def scopes(self) -> set[str]:
        self._settle()
        return {series[1] for series in self.totals}

    def current_period(self, window: str) -> str:
        """Start of the `window` period holding the newest event time ("" for `all`)."""
        if window == "all" or self.newest_ts is None:
            return ""
        return period_start_date(local_date(self.newest_ts, self.tz), window).isoformat()

    def record(self, series: SeriesKey, updated_at: float) -> KpiValue:
        self._settle()
        kpi, scope, window, start = series
        count = self.totals.get(series, 0)
        if window == "all":
            window_start = window_end = None
        else:
            lo, hi = period_bounds(date.fromisoformat(start), window, self.tz)
            window_start, window_end = iso_utc(lo), iso_utc(hi)
        return KpiValue(
            kpi=kpi,
            scope=scope,
            window=window,
            window_start=window_start,
            window_end=window_end,
            value=count,
            numerator=count,
            denominator=None,
            unit=CATALOGUE[kpi].unit,
            status="unknown",
            dims={},
            updated_at=iso_utc(updated_at),
        )

    def is_current(self, series: SeriesKey) -> bool:
        return series[3] == self.current_period(series[2])

    def current_records(self, updated_at: float) -> list[KpiValue]:
        """The current period of every KPI, scope and window seen (0 where nothing fell yet)."""
        self._settle()
        pairs = {(kpi, scope) for kpi, scope, _, _ in self.totals}
        starts = {window: self.current_period(window) for window in COUNT_WINDOWS}
        return [
            self.record((kpi, scope, window, starts[window]), updated_at)
            for kpi, scope in sorted(pairs)
            for window in COUNT_WINDOWS
        ]

    def query(
        self,
        updated_at: float,
        *,
        scope: str | None = None,
        window: str | None = None,
        kpi: str | None = None,
        start: date | None = None,
    ) -> list[KpiValue]:
        """Records for the filters; the current period unless `start` picks a calendar one."""
        self._settle()
        if start is None:
            records = self.current_records(updated_at)
        else:
            windows = [w for w in CALENDAR_WINDOWS if window in (None, w)]
            pairs = {(k, s) for k, s, _, _ in self.totals}
            records = [
                self.record((k, s, w, period_start_date(start, w).isoformat()), updated_at)
                for k, s in sorted(pairs)
                for w in windows
            ]
        return [
            r
            for r in records
            if scope in (None, r.scope) and window in (None, r.window) and kpi in (None, r.kpi)
        ]

    # --- internals ----------------------------------------------------------
    def _settle(self) -> None:
        pending, self._pending = self._pending, {}
        for (rep_id, kpi, day_iso), n in pending.items():
            self._add_to_totals(rep_id, kpi, periods_of_day(date.fromisoformat(day_iso)), n)

    def _add_to_totals(self, rep_id: str, kpi: str, periods: tuple[str, ...], n: int) -> None:
        totals, changed = self.totals, self.changed
        for scope in self.directory.scopes_of_rep(rep_id):
            for window, start in zip(COUNT_WINDOWS, periods):
                series = (kpi, scope, window, start)
                totals[series] += n
                changed.add(series)

    def _fold(self, rep_id: str, partial: RepDayCounts, sign: int) -> None:
        for kpi, day_iso, n in partial.cells():
            day = date.fromisoformat(day_iso)
            self._add_to_totals(rep_id, kpi, periods_of_day(day), sign * n)
            start, _ = period_bounds(day, "day", self.tz)
            if sign > 0 and (self.newest_ts is None or start > self.newest_ts):
                # A day bucket only tells which day: its start is a safe lower bound.
                self.newest_ts = start
