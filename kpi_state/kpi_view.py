"""Turns rollup totals into KPI value records, and keeps the latest record of every key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from kpi_state.calendar import (
    CALENDAR_WINDOWS,
    iso_utc,
    next_period_date,
    period_bounds,
    period_start_date,
)
from kpi_state.catalogue import CATALOGUE
from kpi_state.formulas import (
    KNOWN_COMPONENTS,
    LIFETIME_COMPONENTS,
    WINDOWED_GROUPS,
    KpiResult,
    growth,
    lifetime_value,
    previous_start,
    snapshots,
    window_days,
    windowed,
)
from kpi_state.as_of import totals_as_of
from kpi_state.objectives import attainment
from kpi_state.records import KpiValue, dims_suffix
from kpi_state.rollup import ROLLING_DAYS, Rollup, Series, Totals
from kpi_state.thresholds import Thresholds, default_thresholds, lineage_of


@dataclass(frozen=True)
class ViewConfig:
    tz: str
    stages: tuple[str, ...]
    currency: str = "EUR"
    customer_lifetime_days: Decimal = Decimal(1095)
    thresholds: Thresholds | None = None  # None: the shipped default file
    # Scope → itself and the scopes it belongs to, most specific first (for overrides).
    lineage: Callable[[str], tuple[str, ...]] = lineage_of

    def judge(self) -> Thresholds:
        return self.thresholds if self.thresholds is not None else default_thresholds()


# clv and ltv_to_cac exist only for windows of a month or longer (CONTRACT §4).
CLV_WINDOWS = frozenset({"month", "quarter", "year", "30d", "90d", "all"})
# The KPIs of each group `_results` computes apart from the window's own (`windowed`).
LIFETIME_KPIS = frozenset({"clv", "ltv_to_cac"})
GROWTH_KPIS = frozenset({"revenue_growth", "price_effect", "volume_effect"})
SNAPSHOT_KPIS = frozenset({"overdue_receivables", "open_opportunities", "pipeline_value", "pipeline_velocity"})
# What can move in an `all` series when only the newest day did (its totals did not).
DAY_MOVED_KPIS = LIFETIME_KPIS | SNAPSHOT_KPIS
# What `windowed` computes from the window's own totals, its stage KPIs included.
WINDOWED_KPIS = frozenset(CATALOGUE) - LIFETIME_KPIS - GROWTH_KPIS - SNAPSHOT_KPIS - {"objective_attainment"}

_WHOLE = frozenset({"<whole>"})  # in KpiView._moved: recompute every KPI
_READING: dict[tuple[frozenset[str], str], frozenset[str] | None] = {}


def kpis_reading(components: frozenset[str], window: str) -> frozenset[str] | None:
    """The KPIs of a `window` series that can have moved when only `components` of its
    totals did (None: any of them). Growth always: it reads the previous period, and a
    period's first event of any kind turns its growth from null into a number. `all`
    always gets its lifetime and snapshot KPIs: they read the newest day and the 90-day
    rates too."""
    key = (components, window)
    known = _READING.get(key, False)
    if known is not False:
        return known
    if not components <= KNOWN_COMPONENTS:
        kpis = None  # a component no group claims: recompute everything rather than guess
    else:
        found: set[str] = set()
        for group in WINDOWED_GROUPS:
            if not group.components.isdisjoint(components):
                found |= group.kpis
        if window in CLV_WINDOWS and not LIFETIME_COMPONENTS.isdisjoint(components):
            found |= LIFETIME_KPIS
        if window in CALENDAR_WINDOWS:
            found |= GROWTH_KPIS
        if window == "all":
            found |= DAY_MOVED_KPIS
        kpis = frozenset(found)
    if len(_READING) < 10_000:
        _READING[key] = kpis
    return kpis


# KPI → (unit, judged however little of a rolling window the data covers): ratios and means.
_UNITS = {name: (spec.unit, spec.unit in ("ratio", "days")) for name, spec in CATALOGUE.items()}


def _empty(result: KpiResult) -> bool:
    """Nothing in it: no value, or a zero with nothing (or zero) under it."""
    return not result.value and not result.numerator and not result.denominator


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class KpiView:
    """Latest KPI records by key; `refresh` recomputes the series the rollup says changed."""

    def __init__(self, rollup: Rollup, config: ViewConfig) -> None:
        self.rollup = rollup
        self.config = config
        self.latest: dict[str, KpiValue] = {}
        # Last numbers published per series and (kpi, dims), to publish only what moved.
        self._numbers: dict[Series, dict[tuple, tuple]] = {}
        self._current: list[KpiValue] | None = None
        self._first_day: date | None = None
        self.thresholds = config.judge()
        # After a recovery nothing is known of what left before the crash: the next round
        # publishes every record, empty ones included (see `changed_records`).
        self._republish_wanted = False
        self._republishing = False
        self._day_only: set[Series] = set()  # `all` series only the newest day moved
        # Series taken but not recomputed yet → the components that moved in them (see
        # Rollup.take_changed); a series not here is recomputed whole.
        self._moved: dict[Series, frozenset[str]] = {}
        self._goals: dict[tuple[str, str], tuple[list[tuple[str, float]], frozenset[str]]] = {}
        self._bounds_cache: dict[tuple, tuple[str | None, str | None]] = {}

    def refresh(self, updated_at: float) -> list[KpiValue]:
        """Records of every KPI that changed since the last refresh (all of them at once)."""
        stamp = iso_utc(updated_at)
        out: list[KpiValue] = []
        for series in self.take_changed():
            out += self.changed_records(series, stamp)
        return out

    def republish_all(self) -> None:
        """Every series again, every record included, at the next round (after a recovery)."""
        self.rollup.mark_all_changed()
        self._republish_wanted = True

    def take_changed(self) -> list[Series]:
        """The series to recompute, in order; callers may spread the work over several steps."""
        self._republishing, self._republish_wanted = self._republish_wanted, False
        changed = self.rollup.take_changed()
        self._day_only = set() if self._republishing else self.rollup.day_only
        moved = self._moved
        if self._republishing:
            moved.clear()
        else:
            # A series still waiting from an earlier take has moved in both takes' components.
            # A series waiting whole (`_WHOLE`) stays whole.
            components = self.rollup.components
            for series in changed:
                names = components.get(series)
                earlier = moved.get(series)
                if names is None or earlier is _WHOLE:
                    moved[series] = _WHOLE  # anything may have moved
                else:
                    moved[series] = names if earlier is None else earlier | names
        for scope, window, start in list(changed):
            if window in CALENDAR_WINDOWS and start:
                day = date.fromisoformat(start)
                if window == "day":
                    self.note_day(day)
                # The next period's growth compares with this one.
                following = (scope, window, next_period_date(day, window).isoformat())
                nxt = self.rollup.periods.get(following)
                if nxt is not None and not nxt.empty:  # a period with no events has no records
                    if following not in changed and not self._republishing:
                        # Its own totals did not move: growth is all that can have.
                        moved.setdefault(following, frozenset())
                    changed.add(following)
        return sorted(changed)

    def note_day(self, day: date) -> None:
        """The first day holding data (lifetime length, rolling-window coverage)."""
        if self._first_day is None or day < self._first_day:
            self._first_day = day

    def changed_records(self, series: Series, stamp: str) -> list[KpiValue]:
        """Records of the series' KPIs whose numbers or window moved since last time.

        A series changes as a whole but its KPIs rarely all do; comparing plain numbers
        first keeps the records (and the messages) to the KPIs that changed.

        A past calendar period publishes only the KPIs that hold something: a KPI with
        nothing in it is zero or null, which no record says as well (a replayed history
        would otherwise publish every KPI of every rep and day, most of them empty). Once
        published, a record follows every change, back to empty included. The current
        periods, rolling windows and `all` publish every KPI: boards, metrics and
        Prometheus rules need a zero to see a zero.
        """
        scope, window, start = series
        bounds = self._bounds(window, start)
        window_start, window_end = bounds
        known = self._numbers.setdefault(series, {})
        skip_empty = (not self._republishing and window in CALENDAR_WINDOWS
                      and start != self.rollup.current_start(window))
        # What every record of the series shares, worked out once (tens of KPIs each).
        covered = self.covered(window)
        lineage = self.config.lineage(scope)
        currency = self.config.currency
        key_start = window_start if window in CALENDAR_WINDOWS and window_start else ""
        key_middle = f"|{scope}|{window}|{key_start}"
        out = []
        # Only the day moved: the lifetime and snapshot KPIs are all that can have changed.
        moved = self._moved.pop(series, _WHOLE)
        if not known or moved is _WHOLE:
            moved = None  # never computed: its first records are all of them, whatever moved
        if series in self._day_only:
            kpis = DAY_MOVED_KPIS
        elif moved is not None:
            kpis = kpis_reading(moved, window)
            # An objective's attainment is a record however empty its KPI (objective under
            # it): it is published the first time its series is, as with every KPI.
            goals = self._objectives(scope, window)[1]
            if kpis is not None and goals and not goals <= kpis:
                kpis = kpis | goals
        else:
            kpis = None
        for result in self.results(series, kpis):
            numbers = (result.numerator, result.denominator, result.value, bounds)
            kpi, dims = result.kpi, result.dims
            slot = (kpi, dims)
            previous = known.get(slot)
            if previous == numbers:
                continue
            if previous is None and skip_empty and _empty(result):
                continue
            known[slot] = numbers
            unit = _UNITS[kpi][0]
            value = None if result.value is None else float(result.value)
            denominator = None if result.denominator is None else float(result.denominator)
            status = self._judged(kpi, scope, window, value, denominator, covered, lineage)
            record = KpiValue(
                kpi, scope, window, window_start, window_end, value,
                None if result.numerator is None else float(result.numerator), denominator,
                currency if unit == "money" else unit, status, dict(dims), stamp,
            )
            key = record.__dict__["key"] = kpi + key_middle + dims_suffix(dims)
            self.latest[key] = record
            out.append(record)
        if out:
            self._current = None
        return out

    def _objectives(self, scope: str, window: str) -> tuple[list[tuple[str, float]], frozenset[str]]:
        """The (kpi, objective) pairs of a scope and window kind, and their KPIs (asked per series)."""
        key = (scope, window)
        goals = self._goals.get(key)
        if goals is None:
            objectives = self.thresholds.objectives(scope, window)
            goals = self._goals[key] = (objectives, frozenset(kpi for kpi, _ in objectives))
        return goals

    def _results(self, series: Series, totals: Totals | None = None, day: date | None = None,
                 kpis: frozenset[str] | None = None) -> Iterable[KpiResult]:
        """The series' KPIs; with `kpis`, the groups holding none of them are left out."""
        scope, window, start = series
        rollup, config = self.rollup, self.config
        if totals is None:
            totals = rollup.totals(scope, window, start)
        if kpis is None or not kpis.isdisjoint(WINDOWED_KPIS):
            yield from windowed(totals, config.stages, kpis)
        if window in CLV_WINDOWS and (kpis is None or not kpis.isdisjoint(LIFETIME_KPIS)):
            # Shorter windows would extrapolate one purchase into a lifetime of daily ones.
            first = rollup.first_invoice_day(scope) if window == "all" else None
            length = window_days(window, start, config.tz, first, day or rollup.newest_day)
            yield from lifetime_value(totals, length, config.customer_lifetime_days)
        if window in CALENDAR_WINDOWS and (kpis is None or not kpis.isdisjoint(GROWTH_KPIS)):
            yield from growth(totals, rollup.totals(scope, window, previous_start(window, start)))
        if window == "all" and (kpis is None or not kpis.isdisjoint(SNAPSHOT_KPIS)):
            # Velocity's rates are those of the 90 days up to the day asked, when one is.
            rates = rollup.totals(scope, "90d", "") if day is None else totals_as_of(rollup, scope, "90d", day)[0]
            yield from snapshots(totals, rates, config.stages)

    def results(self, series: Series, kpis: frozenset[str] | None = None) -> Iterable[KpiResult]:
        """Every KPI of the series (with `kpis`, the groups holding them), objective_attainment
        last (it reads the others: with `kpis`, only the objectives of those)."""
        results = list(self._results(series, kpis=kpis))
        yield from results
        objectives = self._objectives(series[0], series[1])[0]
        if kpis is not None:
            objectives = [(kpi, goal) for kpi, goal in objectives if kpi in kpis]
        yield from attainment(results, objectives)

    def results_as_of(self, scope: str, window: str, day: date,
                      kpis: frozenset[str] | None = None) -> tuple[str, list[KpiResult]]:
        """(period start, results) of the period of `window` holding `day`, days after it left out.

        With `kpis` (what alerts judge), only the groups of KPIs holding one of them are
        computed: judging every scope for every day of a replayed history adds up.
        """
        totals, start = totals_as_of(self.rollup, scope, window, day)
        if kpis is not None and "objective_attainment" in kpis:
            kpis = None  # an objective may be set on any KPI: attainment needs them all
        results = list(self._results((scope, window, start), totals, day, kpis))
        if kpis is not None and "objective_attainment" not in kpis:
            return start, results
        return start, results + list(attainment(results, self.thresholds.objectives(scope, window)))

    def covered(self, window: str, day: date | None = None, kpi: str | None = None) -> bool:
        """A rolling window of a count or sum is judged only once the data covers all of it:
        those grow with the days covered (no ramp-up reds); ratios and means do not."""
        days = ROLLING_DAYS.get(window)
        if days is None or (kpi is not None and CATALOGUE[kpi].unit in ("ratio", "days")):
            return True
        newest = day or self.rollup.newest_day
        return (self._first_day is not None and newest is not None
                and (newest - self._first_day).days + 1 >= days)

    @property
    def first_day(self) -> date | None:
        return self._first_day

    def status(self, result: KpiResult, scope: str, window: str, day: date | None = None) -> str:
        return self._judged(result.kpi, scope, window, _num(result.value), _num(result.denominator),
                            self.covered(window, day), self.config.lineage(scope))

    def _judged(self, kpi: str, scope: str, window: str, value: float | None, denominator: float | None,
                covered: bool, lineage: tuple[str, ...]) -> str:
        """The thresholds' status; `covered`: the data covers the window (see `covered`)."""
        if not covered and not _UNITS[kpi][1]:
            return "unknown"
        sample = value if denominator is None else denominator
        return self.thresholds.status(kpi, scope, window, value, sample, lineage)

    def current(self) -> list[KpiValue]:
        """The current period's records of every key (what boards and /metrics show).

        Cached until the next refresh that publishes something: scrapes and board
        polls then cost nothing, however much history `latest` holds.
        """
        if self._current is None:
            self._current = self.current_of(self.latest.values())
        return self._current

    def current_of(self, records: Iterable[KpiValue]) -> list[KpiValue]:
        """Those of `records` that are their window's current period (rolling and `all` always are)."""
        starts = self.current_starts()
        return [r for r in records if r.window not in starts or r.window_start == starts[r.window]]

    def current_starts(self) -> dict[str, str | None]:
        """The window_start of each calendar window's current period."""
        return {w: self._bounds(w, self.rollup.current_start(w))[0] for w in CALENDAR_WINDOWS}

    def at(self, day: date, window: str | None) -> list[KpiValue]:
        """The records of the calendar periods holding `day` (one window or all kinds)."""
        kinds = [window] if window in CALENDAR_WINDOWS else list(CALENDAR_WINDOWS)
        starts = {w: self._bounds(w, period_start_date(day, w).isoformat())[0] for w in kinds}
        return [r for r in self.latest.values() if r.window in starts and r.window_start == starts[r.window]]

    def _bounds(self, window: str, start: str) -> tuple[str | None, str | None]:
        # Asked once per series and flush, for a few thousand distinct answers: a calendar
        # period's bounds depend on its start alone, a rolling window's on the newest day.
        key = (window, start) if window in CALENDAR_WINDOWS else (window, self.rollup.newest_day)
        bounds = self._bounds_cache.get(key)
        if bounds is None:
            if len(self._bounds_cache) >= 100_000:
                self._bounds_cache.clear()
            bounds = self._bounds_cache[key] = self._bounds_of(window, start)
        return bounds

    def _bounds_of(self, window: str, start: str) -> tuple[str | None, str | None]:
        tz = self.config.tz
        if window in CALENDAR_WINDOWS:
            if not start:
                return None, None
            lo, hi = period_bounds(date.fromisoformat(start), window, tz)
            return iso_utc(lo), iso_utc(hi)
        newest_day = self.rollup.newest_day
        if newest_day is None:
            return None, None
        if window in ROLLING_DAYS:
            # Whole local days, up to and including the newest event's day.
            first = newest_day - timedelta(days=ROLLING_DAYS[window] - 1)
            return (iso_utc(period_bounds(first, "day", tz)[0]),
                    iso_utc(period_bounds(newest_day, "day", tz)[1]))
        return None, None
