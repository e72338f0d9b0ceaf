"""Sums day cells from every entity partition into scope totals per calendar, rolling and lifetime window."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache

from kpi_state.calendar import CALENDAR_WINDOWS, local_date, period_start_date
from kpi_state.day_cells import CellUpdate

ROLLING_DAYS = {"7d": 7, "30d": 30, "90d": 90}
_ONE_DAY = timedelta(days=1)
WINDOWS = (*CALENDAR_WINDOWS, *ROLLING_DAYS, "all")

Series = tuple[str, str, str]  # (scope, window, period start as local ISO date, "" if none)


@dataclass
class Totals:
    """Component sums and distinct members of one scope over one window."""

    values: dict[str, Decimal] = field(default_factory=dict)
    members: dict[str, Counter[str]] = field(default_factory=dict)

    def value(self, key: str) -> Decimal:
        return self.values.get(key, Decimal(0))

    def distinct(self, key: str) -> int:
        return len(self.members.get(key, ()))

    def add(self, values: dict[str, Decimal], members: dict[str, list[str]] | dict[str, Counter[str]], sign: int) -> None:
        mine = self.values
        for key, amount in values.items():
            # Most calls add (+1): a Decimal multiplication by one costs more than the test.
            total = mine.get(key, 0) + (amount if sign == 1 else sign * amount)
            if total:
                mine[key] = total
            else:
                mine.pop(key, None)
        for key, ids in members.items():
            counter = self.members.setdefault(key, Counter())
            for member in ids:
                counter[member] += sign
                if counter[member] <= 0:
                    del counter[member]
            if not counter:
                del self.members[key]

    def add_totals(self, other: Totals, sign: int) -> None:
        """Add (or take out) another total, each member as many times as it counts there."""
        self.add(other.values, {}, sign)
        for key, ids in other.members.items():
            counter = self.members.setdefault(key, Counter())
            for member, times in ids.items():
                left = counter[member] + sign * times
                if left > 0:
                    counter[member] = left
                else:
                    counter.pop(member, None)
            if not counter:
                del self.members[key]

    @property
    def empty(self) -> bool:
        return not self.values and not self.members


class Rollup:
    """The rollup step's state for the scopes it owns: partials by partition, totals by window."""

    def __init__(self, tz: str) -> None:
        self.tz = tz
        self.parts: dict[tuple[str, str], dict[int, CellUpdate]] = {}
        self.merged: dict[tuple[str, str], Totals] = {}
        self._periods: dict[Series, Totals] = {}
        # Net changes of merged cells not yet added to the periods and kept rolling sums
        # holding them: a worker on a backlog updates each (scope, day) once a batch, and
        # adding each update to its nine periods then cost more than everything else the
        # rollup does; added once per read (a flush, an alert's judgement) instead.
        self._unsettled: dict[tuple[str, str], _NetChange] = {}
        self.changed: set[Series] = set()
        # What moved, so the view recomputes only the KPIs reading it: the cell keys each
        # (scope, day) update changed since the last take, unless a series is in `_full`
        # (marked by a path that does not say: a day move, a new scope, a recovery).
        # `components` holds the last take's, per series (see take_changed).
        self._touched: dict[tuple[str, str], set[str]] = {}
        self._full: set[Series] = set()
        self._rolling_full: set[str] = set()
        self.components: dict[Series, frozenset[str]] = {}
        self.newest_ts: float | None = None
        self._newest_day: date | None = None
        self._rolling_dirty: set[str] = set()
        self.scopes: set[str] = set()
        # Local days holding an invoice, per scope: `all` lasts from the first of them.
        self.invoice_days: dict[str, set[str]] = {}
        self.day_only: set[Series] = set()  # see take_changed
        # (scope, N) → [local day, the sum of the merged cells of the N days up to it]: a
        # rolling window as of a day is this sum moved there a day at a time. Alerts judge
        # every scope's 7d, 30d and 90d as of every completed day, and summing the days
        # again each time was a tenth of the worker's time on a replayed history.
        self._sums: dict[tuple[str, int], list] = {}
        self._sum_lengths: set[int] = set()  # the N of every kept sum

    # --- writes -------------------------------------------------------------------------
    def update(self, partition: int, scope: str, day: str, update: CellUpdate) -> None:
        """Replace what `partition` said about (scope, day): partials are absolute, so replays are harmless."""
        key = (scope, day)
        by_partition = self.parts.setdefault(key, {})
        old = by_partition.get(partition)
        if old == update:
            return
        merged = self.merged.setdefault(key, Totals())
        # Only the difference goes into the merged cell and the periods holding it: a cell
        # update usually moves a count or two of the dozen components it holds.
        values, added, removed = _difference(old, update)
        merged.add(values, added, +1)
        if removed:
            merged.add({}, removed, -1)
        net = self._unsettled.get(key)
        if net is None:
            net = self._unsettled[key] = _NetChange()
        net.add(values, added, removed)
        touched = self._touched.get(key)
        if touched is None:
            touched = self._touched[key] = set()
        touched.update(values, added, removed)  # keys only; their components are found per take
        if update.values or update.members:
            by_partition[partition] = update
        else:
            by_partition.pop(partition, None)
        if day:
            days = self.invoice_days.setdefault(scope, set())
            if merged.values.get("orders"):
                days.add(day)
            else:
                days.discard(day)
        if scope not in self.scopes:
            self.scopes.add(scope)
            # Every known scope shows its current periods, whether or not this update
            # falls in them: the same set of records as a recovery, which knows all scopes.
            # Its first records are all of them, zeros included.
            self._mark_current(scope)
            self._full.add((scope, "all", ""))
            self._rolling_full.add(scope)
        if day:
            self._rolling_dirty.add(scope)

    def remember(self, scope: str, day: str) -> None:
        """A (scope, day) that held something once and is empty now: republish its periods."""
        self.scopes.add(scope)
        local = date.fromisoformat(day) if day else None
        self._full.update(self._series_of(scope, local))
        self._targets(scope, local)

    def see_time(self, ts: float) -> None:
        """Advance the newest event time (rolling windows end there)."""
        if self.newest_ts is not None and ts <= self.newest_ts:
            return
        self.newest_ts = ts
        day = local_date(ts, self.tz)
        if day != self._newest_day:
            self._newest_day = day
            self._rolling_dirty |= self.scopes
            self._rolling_full |= self.scopes  # the windows moved: any KPI may have
            # The current calendar periods moved: their records must show up (possibly empty).
            for scope in self.scopes:
                self._mark_current(scope)

    def take_changed(self) -> set[Series]:
        """The series to recompute; of them, `day_only` are the `all` series only the newest
        day moved (their own totals are unchanged), and `components` says what moved in
        those only cell updates changed (a series not in it: anything may have)."""
        self._settle()
        self.components = self._take_components()
        day_only = set()
        for scope in self._rolling_dirty:
            for window in ROLLING_DAYS:
                self.changed.add((scope, window, ""))
            # `all` reads the newest day too: clv's length runs to it, and pipeline_velocity
            # reads the 90d rates. A scope with no new cell would keep them stale otherwise.
            lifetime = (scope, "all", "")
            if lifetime not in self.changed:
                day_only.add(lifetime)
                self.changed.add(lifetime)
        self.day_only = day_only
        self._rolling_dirty.clear()
        changed, self.changed = self.changed, set()
        return changed

    def _take_components(self) -> dict[Series, frozenset[str]]:
        """Per series, the components its cells' updates moved (see `components`)."""
        full, rolling_full = self._full, self._rolling_full
        by_series: dict[Series, set[str]] = {}
        by_scope: dict[str, set[str]] = {}
        for (scope, day), keys in self._touched.items():
            names = {_component(key) for key in keys}
            series = self._series_of(scope, date.fromisoformat(day) if day else None)
            if day and scope not in rolling_full:
                by_scope.setdefault(scope, set()).update(names)
            for one in series:
                if one not in full:
                    by_series.setdefault(one, set()).update(names)
        components = {one: frozenset(names) for one, names in by_series.items()}
        for scope, names in by_scope.items():
            frozen = frozenset(names)
            for window in ROLLING_DAYS:
                components[(scope, window, "")] = frozen
        self._touched.clear()
        full.clear()
        rolling_full.clear()
        return components

    @property
    def pending(self) -> int:
        """Series changed but not taken yet (cells not yet added to theirs count one each)."""
        return len(self.changed) + len(self._rolling_dirty) + len(self._unsettled)

    @property
    def periods(self) -> dict[Series, Totals]:
        """The calendar periods' and `all`'s totals (read them, never write them)."""
        self._settle()
        return self._periods

    def _settle(self) -> None:
        """Add the merged cells' net changes to the periods and rolling sums holding them."""
        unsettled = self._unsettled
        if not unsettled:
            return
        self._unsettled = {}
        for (scope, day), net in unsettled.items():
            values, gained, lost = net.split()
            local = date.fromisoformat(day) if day else None
            for totals in (*self._targets(scope, local), *self._sums_holding(scope, local)):
                if values or gained:
                    totals.add(values, gained, +1)
                if lost:
                    totals.add({}, lost, -1)

    def mark_all_changed(self) -> None:
        self.changed |= set(self.periods)
        self._full |= set(self.periods)
        self._rolling_dirty |= self.scopes
        self._rolling_full |= self.scopes

    def _mark_current(self, scope: str) -> None:
        day = self._newest_day
        if day is not None:
            for window in CALENDAR_WINDOWS:
                series = (scope, window, period_start_date(day, window).isoformat())
                self.changed.add(series)
                self._full.add(series)

    # --- reads --------------------------------------------------------------------------
    @property
    def newest_day(self) -> date | None:
        return self._newest_day

    def totals(self, scope: str, window: str, start: str) -> Totals:
        if window in ROLLING_DAYS:
            if self._newest_day is None:
                return Totals()
            return self.rolling(scope, ROLLING_DAYS[window], self._newest_day)
        return self.periods.get((scope, window, start)) or Totals()  # `periods` settles first

    def first_invoice_day(self, scope: str) -> date | None:
        days = self.invoice_days.get(scope)
        return date.fromisoformat(min(days)) if days else None

    def current_start(self, window: str) -> str:
        if window in CALENDAR_WINDOWS and self._newest_day is not None:
            return period_start_date(self._newest_day, window).isoformat()
        return ""

    # --- internals ----------------------------------------------------------------------
    def _targets(self, scope: str, local: date | None) -> list[Totals]:
        """The totals of every period holding (scope, local day), each marked changed; a
        snapshot cell (no day) is held by `all` only."""
        series = self._series_of(scope, local)
        out = []
        periods = self._periods
        for one in series:
            totals = periods.get(one)
            if totals is None:
                totals = periods[one] = Totals()
            out.append(totals)
            self.changed.add(one)
        return out

    @staticmethod
    def _series_of(scope: str, local: date | None) -> list[Series]:
        """Every series holding (scope, local day): `all`, and the calendar periods of a day."""
        series: list[Series] = [(scope, "all", "")]
        if local is not None:
            series += [(scope, window, start) for window, start in _period_starts(local)]
        return series

    def rolling(self, scope: str, days: int, as_of: date) -> Totals:
        """The merged cells of the `days` local days up to `as_of`, summed (read it, never write it)."""
        # Kept sums must hold every change before they move: moving one reads merged
        # cells, which hold them already.
        self._settle()
        entry = self._sums.get((scope, days))
        if entry is None or 2 * abs((as_of - entry[0]).days) >= days:
            totals = Totals()
            for back in range(days):
                self._add_day(totals, scope, as_of - timedelta(days=back), +1)
            self._sums[(scope, days)] = [as_of, totals]
            self._sum_lengths.add(days)
            return totals
        day, totals = entry
        while day < as_of:
            day += _ONE_DAY
            self._add_day(totals, scope, day, +1)
            self._add_day(totals, scope, day - timedelta(days=days), -1)
        while day > as_of:
            self._add_day(totals, scope, day, -1)
            self._add_day(totals, scope, day - timedelta(days=days), +1)
            day -= _ONE_DAY
        entry[0] = day
        return totals

    def _add_day(self, totals: Totals, scope: str, day: date, sign: int) -> None:
        cell = self.merged.get((scope, day.isoformat()))
        if cell is not None:
            totals.add_totals(cell, sign)

    def _sums_holding(self, scope: str, local: date | None) -> list[Totals]:
        """The kept rolling sums whose days include (scope, local day): a cell change moves them too."""
        if local is None or not self._sums:
            return []
        out = []
        for days in self._sum_lengths:
            entry = self._sums.get((scope, days))
            if entry is not None and 0 <= (entry[0] - local).days < days:
                out.append(entry[1])
        return out


class _NetChange:
    """What a merged cell gained and lost since its periods last took its changes: amounts
    by key, and members by key with a signed count each."""

    __slots__ = ("values", "members")

    def __init__(self) -> None:
        self.values: dict[str, Decimal] = {}
        self.members: dict[str, Counter[str]] = {}

    def add(self, values: dict[str, Decimal], added: dict[str, list[str]], removed: dict[str, list[str]]) -> None:
        mine = self.values
        for key, amount in values.items():
            mine[key] = mine.get(key, 0) + amount
        for ids, sign in ((added, 1), (removed, -1)):
            for key, members in ids.items():
                counts = self.members.get(key)
                if counts is None:
                    counts = self.members[key] = Counter()
                for member in members:
                    counts[member] += sign

    def split(self) -> tuple[dict[str, Decimal], dict[str, list[str]], dict[str, list[str]]]:
        """(amounts that moved, members gained, members lost), each member as often as it moved."""
        values = {key: amount for key, amount in self.values.items() if amount}
        gained: dict[str, list[str]] = {}
        lost: dict[str, list[str]] = {}
        for key, counts in self.members.items():
            for member, times in counts.items():
                if times > 0:
                    gained.setdefault(key, []).extend([member] * times)
                elif times < 0:
                    lost.setdefault(key, []).extend([member] * -times)
        return values, gained, lost


_COMPONENTS: dict[str, str] = {}


def _component(key: str) -> str:
    """A cell key's component: the part before any `|` (a few dozen distinct keys)."""
    name = _COMPONENTS.get(key)
    if name is None:
        name = key.partition("|")[0]
        if len(_COMPONENTS) < 10_000:
            _COMPONENTS[key] = name
    return name


@lru_cache(maxsize=4096)
def _period_starts(local: date) -> tuple[tuple[str, str], ...]:
    """(calendar window, ISO start of its period holding `local`): the same few days get
    every cell update of a batch."""
    return tuple((window, period_start_date(local, window).isoformat()) for window in CALENDAR_WINDOWS)


def _difference(old: CellUpdate | None, new: CellUpdate) -> tuple[dict[str, Decimal], dict[str, list[str]], dict[str, list[str]]]:
    """(value changes, members added, members removed) from `old` to `new`."""
    if old is None:
        return new.values, new.members, {}
    before = old.values
    values = {key: amount - before.get(key, 0) for key, amount in new.values.items()
              if amount != before.get(key, 0)}
    for key, amount in before.items():
        if key not in new.values:
            values[key] = -amount
    added: dict[str, list[str]] = {}
    removed: dict[str, list[str]] = {}
    for key in new.members.keys() | old.members.keys():
        now, then = new.members.get(key, ()), old.members.get(key, ())
        if now == then:
            continue
        gained, lost = set(now).difference(then), set(then).difference(now)
        if gained:
            added[key] = sorted(gained)
        if lost:
            removed[key] = sorted(lost)
    return values, added, removed
