"""The Simulator: clock, scheduled actions and scenarios (steady, slump, growth, collapse)."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

from streams.settings import DEFAULT_STAGES
from streams.simulator.common import (
    DAY,
    DEFAULT_CURRENCIES,
    HOUR,
    STRUGGLING_SKILL,
    SimRecord,
    _Action,
    _BILLING_TYPES,
    _CLOCK,
    _Opp,
    _RegionState,
    _RepState,
    _Row,
    _SECONDS_UTC,
    _SECONDS_Z,
    _SOURCES,
    _SPEND_PER_TEAM_PER_WEEK,
    _check_arguments,
    _demo_stage,
    _encode,
    _epoch,
    _first,
    _hour_of_week,
)
from streams.simulator.org import Organisation, _home_currencies
from streams.simulator.deals import _Deals
from streams.simulator.bad import _Malformed


# ----------------------------------------------------------------------------------
# The simulator
# ----------------------------------------------------------------------------------


class Simulator(_Deals, _Malformed):
    """Seeded CRM + billing traffic of one organisation, in event-time order.

    Simulated time starts at `start` and moves in ticks of `step` seconds. Each
    tick draws the reps' calls, emails and prospecting (Poisson, shaped by each
    region's working hours, `activity` and the scenario) plus spend; everything
    else follows from those as scheduled consequences: meetings, opportunities
    walking the configured `stages`, wins and losses weeks later, invoices,
    credit notes and payments. `bad_ratio` of the records handed out are
    malformed (see BAD_KINDS); `duplicate_ratio` of good ones are re-sent.
    No I/O and no clock: the same arguments always give the same bytes.
    """

    def __init__(
        self,
        seed: int,
        *,
        start: float | datetime,
        org: Organisation | None = None,
        scenario: str = "steady",
        bad_ratio: float = 0.0,
        stages: tuple[str, ...] = DEFAULT_STAGES,
        currencies: tuple[str, ...] = DEFAULT_CURRENCIES,
        step: float = 300.0,
        activity: float = 1.0,
        duplicate_ratio: float = 0.001,
        slump_rep: str | None = None,
        slump_start: float | datetime | None = None,
        slump_days: float = 21.0,
        growth_per_day: float = 0.02,
        initial_deals: int = 5,
    ) -> None:
        _check_arguments(scenario, bad_ratio, duplicate_ratio, stages, currencies, step, activity)
        self.seed = seed
        self.scenario = scenario
        self.org = org if org is not None else Organisation.generate(seed)
        self.stages = tuple(stages)
        self.currencies = tuple(currencies)
        self.bad_ratio = bad_ratio
        self.duplicate_ratio = duplicate_ratio
        self.origin = math.ceil(_epoch(start))
        self._rng = random.Random(seed)
        # Malformed records draw from their own stream, so the good traffic is the
        # same whatever bad_ratio is, and batch boundaries never change the output.
        self._bad_rng = random.Random(f"bad:{seed}")
        self._step = max(1, round(step))
        self._activity = activity
        self._growth_per_day = growth_per_day if scenario == "growth" else 0.0
        self._run_id = f"{self._rng.getrandbits(48):012x}"
        self._build_org_state()
        self._meeting_stage = self.stages.index("meeting") if "meeting" in self.stages else None
        self._demo_stage = _demo_stage(self.stages)
        self._set_up_slump(slump_rep, slump_start, slump_days)

        self._heap: list[tuple[int, int, _Action, Any]] = []
        self._spontaneous: list[tuple[int, _Action, Any]] = []
        self._spontaneous_at = 0
        self._rate_tables: dict[int, tuple[list[tuple[_Action, Any]], list[float], float]] = {}
        self._spend_rate = len(self.org.teams) * _SPEND_PER_TEAM_PER_WEEK / (7 * 24)
        self._pending: deque[_Row] = deque()
        self._tick_end = self.origin
        self._now = self.origin
        self._seq = 0
        self._ids: Counter[str] = Counter()
        self._open_by_contact: dict[str, _Opp] = {}
        self._dates: dict[int, str] = {}
        self.type_counts: Counter[str] = Counter()
        self.bad_counts: Counter[str] = Counter()
        self.duplicates = 0
        self._seed_pipeline(initial_deals)

    # --- public API ----------------------------------------------------------------

    @property
    def now(self) -> int:
        """The simulated clock: event time of the latest action, epoch seconds."""
        return self._now

    @property
    def produced(self) -> int:
        """Records handed out so far, good, bad and duplicate."""
        return sum(self.type_counts.values()) + sum(self.bad_counts.values()) + self.duplicates

    def rep_upserts(self) -> list[dict[str, Any]]:
        """`rep.upserted` envelopes for the whole organisation, stamped at the start time."""
        at = self._format(self.origin)
        return [
            {
                "event_id": f"{self._run_id}-rep-{rep.rep_id}",
                "type": "rep.upserted",
                "occurred_at": at,
                "source": "workday",
                "schema_version": 1,
                "data": {
                    "rep_id": rep.rep_id,
                    "team_id": rep.team_id,
                    "region_id": rep.region_id,
                    "name": rep.name,
                    "manager": rep.manager,
                },
            }
            for rep in self.org.reps
        ]

    def next_batch(
        self, n: int, *, until: float | None = None
    ) -> list[tuple[str, bytes | None, bytes]]:
        """The next n records as (topic kind, key, value); fewer if `until` is reached."""
        return [row[:3] for row in self._rows(n, until)]

    def next_records(self, n: int, *, until: float | None = None) -> list[SimRecord]:
        """Like next_batch, with each record's event time and bad/duplicate labels.

        `until` (epoch seconds) stops before any event later than it, so a live
        producer never runs ahead of the wall clock. How the stream is cut into
        batches never changes its content.
        """
        return list(map(SimRecord._make, self._rows(n, until)))

    def _rows(self, n: int, until: float | None) -> list[_Row]:
        out: list[_Row] = []
        limit = math.inf if until is None else until
        while len(out) < n:
            if not self._pending and not self._advance(limit):
                break
            if self.bad_ratio and self._bad_rng.random() < self.bad_ratio:
                out.append(self._bad_record())
            else:
                out.append(self._pending.popleft())
        return out

    # --- set-up --------------------------------------------------------------------

    def _build_org_state(self) -> None:
        self._regions: list[_RegionState] = []
        self._reps: dict[str, _RepState] = {}
        for region in self.org.regions:
            state = _RegionState(region)
            homes = _home_currencies(region.region_id, len(self._regions), self.currencies)
            for t, team in enumerate(region.teams):
                for rep in team.reps:
                    rep_state = _RepState(rep, state, homes[t % len(homes)], self._rng)
                    state.reps.append(rep_state)
                    self._reps[rep.rep_id] = rep_state
            self._regions.append(state)
        self._rep_list = tuple(self._reps.values())
        if self.scenario == "steady" and len(self._rep_list) > 1:
            # One rep struggles to close (the demo shows red cells and an alert early on).
            self._rep_list[-1].skill *= STRUGGLING_SKILL
        self._team_currency = {
            team.team_id: self._reps[team.reps[0].rep_id].currency for team in self.org.teams
        }

    def _set_up_slump(
        self, rep_id: str | None, start: float | datetime | None, days: float
    ) -> None:
        self._slump_rep: _RepState | None = None
        self._slump_active = False
        self._slump_from = self._slump_to = 0
        if self.scenario not in ("slump", "collapse"):
            return
        rep_id = rep_id if rep_id is not None else self.org.reps[0].rep_id
        if rep_id not in self._reps:
            raise ValueError(f"slump_rep {rep_id!r} is not a rep of the organisation")
        if days <= 0:
            raise ValueError("slump_days must be positive")
        self._slump_rep = self._reps[rep_id]
        # Default: four normal weeks first, so "before" has a baseline to compare with.
        self._slump_from = self.origin + 28 * DAY if start is None else round(_epoch(start))
        self._slump_to = self._slump_from + round(days * DAY)

    @property
    def slump_window(self) -> tuple[int, int] | None:
        """(start, end) epoch seconds of the slump, or None outside that scenario."""
        return (self._slump_from, self._slump_to) if self._slump_rep else None

    def _seed_pipeline(self, per_rep: int) -> None:
        """Deals already in flight at the start (a CRM import in the first hour), so
        wins and invoices flow from the first weeks instead of after a cold start."""
        rng = self._rng
        for rep in self._reps.values():
            for _ in range(per_rep):
                contact = self._next_id("ct", 6)
                rep.contacts.append(contact)
                when = self.origin + rng.randrange(HOUR)
                stage = rng.randrange(len(self.stages))
                self._schedule(when, self._create_opportunity, (rep, contact, stage))

    # --- the event loop ------------------------------------------------------------

    def _advance(self, limit: float) -> bool:
        """Run actions until some record is pending; False once `limit` is reached.

        Two time-ordered sources merge here: this tick's spontaneous activity (a
        sorted list, the bulk of the traffic, kept off the heap because it is
        cheaper) and the follow-ups that earlier actions scheduled (the heap).
        """
        heap, pending = self._heap, self._pending
        while not pending:
            next_heap = heap[0][0] if heap else math.inf
            spontaneous = self._spontaneous
            i = self._spontaneous_at
            if i < len(spontaneous) and spontaneous[i][0] <= next_heap:
                t, action, arg = spontaneous[i]
                if t > limit:
                    return False
                self._spontaneous_at = i + 1
            elif next_heap < self._tick_end:
                if next_heap > limit:
                    return False
                t, _, action, arg = heapq.heappop(heap)
            elif self._tick_end > limit:
                return False
            else:
                self._tick()
                continue
            self._now = t
            action(t, arg)
        return True

    def _schedule(self, t: int, action: _Action, arg: Any) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, action, arg))

    def _tick(self) -> None:
        """Draw spontaneous activity (touches, spend) for the next `step` seconds."""
        t0, step, rng = self._tick_end, self._step, self._rng
        self._tick_end = t0 + step
        if self._slump_rep is not None:
            self._update_slump(t0)
        scale = self._activity * step / HOUR
        if self._growth_per_day:
            scale *= self._growth(t0)
        targets, cum, rate = self._rates_at(_hour_of_week(t0))
        count = self._poisson(rate * scale)
        if not count:
            self._spontaneous, self._spontaneous_at = [], 0
            return
        drawn = [
            (t0 + int(rng.random() * step), action, arg)
            for action, arg in rng.choices(targets, cum_weights=cum, k=count)
        ]
        drawn.sort(key=_first)
        self._spontaneous, self._spontaneous_at = drawn, 0

    def _rates_at(self, utc_hour: int) -> tuple[list[tuple[_Action, Any]], list[float], float]:
        """Who acts how often in this hour of the week; cached until a rate changes."""
        table = self._rate_tables.get(utc_hour)
        if table is None:
            targets: list[tuple[_Action, Any]] = []
            cum: list[float] = []
            total = 0.0
            for region in self._regions:
                factor = region.hour_factor[(utc_hour + region.offset_h) % 168]
                for rep in region.reps:
                    total += rep.touch_w * factor
                    targets.append((self._touch, rep))
                    cum.append(total)
            # Spend is booked around the clock, not in the reps' working hours.
            total += self._spend_rate
            targets.append((self._spend, None))
            cum.append(total)
            table = self._rate_tables[utc_hour] = (targets, cum, total)
        return table

    def _growth(self, t: int) -> float:
        return min(5.0, 1.0 + self._growth_per_day * max(0, t - self.origin) / DAY)

    def _update_slump(self, t: int) -> None:
        rep = self._slump_rep
        if rep is None:
            return
        active = self._slump_from <= t < self._slump_to
        if active != self._slump_active:
            self._slump_active = active
            if self.scenario == "collapse":
                return  # the rep works as much as ever; only closing collapses
            # Calls collapse hardest; emails and prospecting only sag.
            if active:
                rep.set_activity(0.2, 0.5)
            else:
                rep.set_activity(1.0, 1.0)
            self._rate_tables.clear()

    def _slumping(self, rep: _RepState, t: int) -> bool:
        return rep is self._slump_rep and self._slump_from <= t < self._slump_to

    def _poisson(self, lam: float) -> int:
        rng = self._rng
        if lam <= 0.0:
            return 0
        if lam > 30.0:  # normal approximation: exact sampling gets slow for big rates
            return max(0, round(rng.gauss(lam, math.sqrt(lam))))
        limit, k, p = math.exp(-lam), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        return k

    def _business_time(self, t: int, region: _RegionState) -> int:
        """`t`, or a moment in the region's next working hours when `t` falls outside."""
        factor, off = region.hour_factor, region.offset_s
        if factor[_hour_of_week(t + off)] >= 1.0:
            return t
        local = t + off - (t + off) % HOUR
        for _ in range(168):
            local += HOUR
            if factor[_hour_of_week(local)] >= 1.0:
                break
        return local - off + self._rng.randrange(2 * HOUR)

    def _days(self, low: float, high: float) -> int:
        return round(self._rng.uniform(low, high) * DAY)

    # --- output --------------------------------------------------------------------

    def _format(self, t: int, seconds: tuple[str, ...] = _SECONDS_Z) -> str:
        """RFC 3339 from lookup tables: formatting is the hot path of generation."""
        day, sec = divmod(t, DAY)
        date = self._dates.get(day)
        if date is None:
            date = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%dT")
            self._dates[day] = date
        return date + _CLOCK[sec // 60] + seconds[sec % 60]

    def _envelope(self, t: int, etype: str, data: dict[str, Any], event_id: str) -> dict[str, Any]:
        billing = etype in _BILLING_TYPES
        env: dict[str, Any] = {
            "event_id": event_id,
            "type": etype,
            # Billing systems write "+00:00", CRM ones "Z": readers must take both.
            "occurred_at": self._format(t, _SECONDS_UTC if billing else _SECONDS_Z),
            "source": _SOURCES.get(etype, "crm"),
        }
        if not billing:  # optional, defaults to 1: billing sources leave it out
            env["schema_version"] = 1
        env["data"] = data
        return env

    def _emit(self, t: int, etype: str, data: dict[str, Any], key: bytes | None) -> None:
        kind = "billing" if etype in _BILLING_TYPES else "crm"
        self._seq += 1
        value = _encode(self._envelope(t, etype, data, f"{self._run_id}-{self._seq:08x}"))
        self._pending.append((kind, key, value, t, None, False))
        self.type_counts[etype] += 1
        if self.duplicate_ratio and self._rng.random() < self.duplicate_ratio:
            # An at-least-once producer retry: same bytes, right behind the original.
            self._pending.append((kind, key, value, t, None, True))
            self.duplicates += 1

    def _next_id(self, prefix: str, width: int) -> str:
        self._ids[prefix] += 1
        return f"{prefix}-{self._ids[prefix]:0{width}d}"
