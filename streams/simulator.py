"""Seeded, pure generator of realistic CRM and billing traffic as contract envelopes."""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import msgspec

from streams.settings import DEFAULT_STAGES

__all__ = [
    "BAD_KINDS",
    "DEFAULT_CURRENCIES",
    "SCENARIOS",
    "Organisation",
    "Region",
    "Rep",
    "SimRecord",
    "Simulator",
    "Team",
]

SCENARIOS: tuple[str, ...] = ("steady", "slump", "growth", "collapse")
DEFAULT_CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP")

# Each kind of malformed record, and the DLQ reason code (contract §3) it should earn.
BAD_KINDS: dict[str, str] = {
    "not_json": "not_json",
    "truncated": "not_json",
    "not_object": "not_object",
    "oversized": "too_large",
    "missing_field": "missing_field",
    "wrong_type": "bad_type",
    "unknown_type": "unknown_type",
    "bad_timestamp": "bad_value",
    "out_of_range": "bad_value",
    "negative_amount": "bad_value",
    "unknown_currency": "unknown_currency",
    "unknown_stage": "unknown_stage",
    "inconsistent_total": "inconsistent_total",
}

DAY = 86_400
HOUR = 3_600
OVERSIZE_BYTES = 64 * 1024
STRUGGLING_SKILL = 0.3  # steady traffic: the last rep converts at this fraction of the usual rate  # the contract's default limit; oversized records exceed it

# ----------------------------------------------------------------------------------
# The organisation
# ----------------------------------------------------------------------------------

_REGION_NAMES = ("emea", "amer", "apac", "latam", "mea", "anz", "nordics", "dach")
_REGION_UTC_OFFSET_H = {
    "emea": 1, "amer": -5, "apac": 8, "latam": -3, "mea": 3, "anz": 10, "nordics": 1, "dach": 1,
}  # fmt: skip
_REGION_CURRENCIES = {"emea": ("EUR", "GBP"), "amer": ("USD",), "apac": ("USD",)}
_FIRST_NAMES = (
    "Ada", "Bram", "Chloé", "Dev", "Elif", "Farid", "Greta", "Hiro", "Inès", "Jonas",
    "Kemi", "Lars", "Mei", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
    "Uma", "Victor", "Wen", "Yusuf", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Achebe", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Haddad",
    "Ivanova", "Jansen", "Kowalski", "Laurent", "Moreau", "Nakamura", "Okafor", "Patel",
    "Rossi", "Schmidt", "Tanaka", "Varga", "Weber", "Yilmaz", "Zhang",
)  # fmt: skip


@dataclass(frozen=True)
class Rep:
    """One sales rep and where it sits in the organisation."""

    rep_id: str
    name: str
    team_id: str
    region_id: str
    manager: str


@dataclass(frozen=True)
class Team:
    """A team of reps under one manager, billing in one home currency."""

    team_id: str
    region_id: str
    manager: str
    reps: tuple[Rep, ...]


@dataclass(frozen=True)
class Region:
    """A sales region; its UTC offset places the working day of its reps."""

    region_id: str
    utc_offset_h: int
    teams: tuple[Team, ...]


@dataclass(frozen=True)
class Organisation:
    """Regions → teams → reps, with ids like `emea`, `t-emea-1`, `r-01`."""

    regions: tuple[Region, ...]

    @classmethod
    def generate(
        cls,
        seed: int = 0,
        *,
        regions: int = 3,
        teams_per_region: int = 2,
        reps_per_team: int = 4,
    ) -> Organisation:
        """A deterministic organisation of the given sizes; the seed picks the names."""
        if min(regions, teams_per_region, reps_per_team) < 1:
            raise ValueError("an organisation needs at least one region, team and rep")
        rng = random.Random(f"org:{seed}")
        n_reps = regions * teams_per_region * reps_per_team
        names = iter(_people(rng, n_reps + regions * teams_per_region))
        width = max(2, len(str(n_reps)))
        rep_no = 0
        built: list[Region] = []
        for r in range(regions):
            region_id = _REGION_NAMES[r] if r < len(_REGION_NAMES) else f"region-{r + 1}"
            teams: list[Team] = []
            for t in range(teams_per_region):
                team_id = f"t-{region_id}-{t + 1}"
                manager = next(names)
                reps = []
                for _ in range(reps_per_team):
                    rep_no += 1
                    rep_id = f"r-{rep_no:0{width}d}"
                    reps.append(Rep(rep_id, next(names), team_id, region_id, manager))
                teams.append(Team(team_id, region_id, manager, tuple(reps)))
            offset = _REGION_UTC_OFFSET_H.get(region_id, (r * 7) % 24 - 11)
            built.append(Region(region_id, offset, tuple(teams)))
        return cls(tuple(built))

    @property
    def teams(self) -> tuple[Team, ...]:
        """Every team, region by region."""
        return tuple(team for region in self.regions for team in region.teams)

    @property
    def reps(self) -> tuple[Rep, ...]:
        """Every rep, team by team."""
        return tuple(rep for team in self.teams for rep in team.reps)


def _people(rng: random.Random, count: int) -> list[str]:
    """Distinct person names while the name lists last, numbered beyond that."""
    pairs = [(f, last) for f in _FIRST_NAMES for last in _LAST_NAMES]
    if count <= len(pairs):
        return [f"{f} {last}" for f, last in rng.sample(pairs, count)]
    return [f"{f} {last} {i}" for i, (f, last) in enumerate(rng.choices(pairs, k=count))]


# ----------------------------------------------------------------------------------
# Catalogue and behaviour constants (rates per rep per working hour, prices in cents)
# ----------------------------------------------------------------------------------

_CALL_RATE, _EMAIL_RATE, _PROSPECT_RATE = 5.0, 4.0, 1.2
_SPEND_PER_TEAM_PER_WEEK = 4.0
_CALL_OUTCOMES = ("connected", "no_answer", "voicemail", "busy", "wrong_number")
_CALL_OUTCOME_CUM = (0.35, 0.70, 0.90, 0.95, 1.0)
_MEETING_FROM_CALL = 0.15  # of connected calls
_OPP_FROM_MEETING = 0.35  # of discovery meetings with a contact that has no open deal
_P_LOSE, _P_STALL, _P_SKIP, _P_EARLY_CLOSE, _P_WIN = 0.11, 0.12, 0.10, 0.10, 0.58
_LOSS_REASONS = ("price", "competitor", "no_budget", "no_decision", "timing", "product_fit")
_LOSS_REASON_CUM = (0.25, 0.48, 0.63, 0.80, 0.92, 1.0)
# product: (median expected deal in cents, licence sku, list unit price in cents, cost ratio)
_PRODUCTS = {
    "starter": (800_000, "LIC-STARTER", 30_000, 0.12),
    "professional": (3_000_000, "LIC-PRO", 90_000, 0.15),
    "enterprise": (12_000_000, "LIC-ENT", 240_000, 0.18),
}
_PRODUCT_NAMES = tuple(_PRODUCTS)
_PRODUCT_CUM = (0.5, 0.85, 1.0)
_ADDONS = (
    ("SUP-PREMIUM", 250_000, 0.45),
    ("SVC-ONBOARDING", 600_000, 0.65),
    ("TRN-SEAT", 45_000, 0.35),
    ("HW-GATEWAY", 180_000, 0.72),
    ("LIC-API", 120_000, 0.10),
)
_LINE_COUNT_CUM = (0.35, 0.65, 0.85, 0.95, 1.0)
_DISCOUNTS = (0.0, 0.05, 0.10, 0.15)
_SPEND_CHANNELS = {
    "marketing": ("search", "social", "events", "content", "webinar"),
    "sales": ("travel", "tools", "events", "incentives"),
}
_SOURCES = {
    "call.logged": "aircall",
    "email.sent": "hubspot",
    "meeting.booked": "hubspot",
    "demo.completed": "hubspot",
    "prospect.contacted": "hubspot",
    "opportunity.created": "salesforce",
    "opportunity.stage_changed": "salesforce",
    "opportunity.won": "salesforce",
    "opportunity.lost": "salesforce",
    "invoice.issued": "netsuite",
    "payment.received": "stripe",
    "credit_note.issued": "netsuite",
    "spend.recorded": "netsuite",
}
_REQUIRED_DATA = {
    "call.logged": ("rep_id",),
    "email.sent": ("rep_id",),
    "meeting.booked": ("rep_id",),
    "demo.completed": ("rep_id",),
    "prospect.contacted": ("rep_id", "contact_id"),
    "opportunity.created": ("opportunity_id", "rep_id", "stage"),
    "opportunity.stage_changed": ("opportunity_id", "rep_id", "to_stage"),
    "opportunity.won": ("opportunity_id", "rep_id", "amount", "currency"),
    "opportunity.lost": ("opportunity_id", "rep_id"),
    "invoice.issued": ("invoice_id", "customer_id", "currency", "lines"),
    "payment.received": ("invoice_id", "customer_id", "amount", "currency"),
    "credit_note.issued": ("invoice_id", "customer_id", "amount", "currency"),
    "spend.recorded": ("amount", "currency", "category"),
}
_MONEY_TYPES = (
    "opportunity.won", "invoice.issued", "payment.received", "credit_note.issued",
    "spend.recorded",
)  # fmt: skip

_encode = msgspec.json.Encoder().encode
_T = TypeVar("_T")


def _money(cents: int, as_string: bool) -> str | float:
    """Major units: a decimal string, or a JSON number whose text is the exact decimal."""
    if as_string:
        sign = "-" if cents < 0 else ""
        whole, frac = divmod(abs(cents), 100)
        return f"{sign}{whole}.{frac:02d}"
    # float(cents)/100 prints as the shortest round-tripping text, i.e. the exact
    # two-decimal value, so a Decimal-parsing reader sees no binary noise.
    return cents / 100


def _pick(rng: random.Random, items: tuple[_T, ...], cum: tuple[float, ...]) -> _T:
    """A weighted choice over a small cumulative table."""
    r = rng.random()
    for item, bound in zip(items, cum):
        if r < bound:
            return item
    return items[-1]


# ----------------------------------------------------------------------------------
# Mutable simulation state (internal)
# ----------------------------------------------------------------------------------


class _RepState:
    """A rep's live state: activity weights, contacts, home currency."""

    __slots__ = (
        "rep", "region", "currency", "skill", "pace", "contacts",
        "call_w", "email_w", "touch_w", "key",
    )  # fmt: skip

    def __init__(self, rep: Rep, region: _RegionState, currency: str, rng: random.Random) -> None:
        self.rep = rep
        self.region = region
        self.currency = currency
        # Reps differ: some convert better (skill), some simply work more (pace).
        self.skill = rng.uniform(0.8, 1.2)
        self.pace = rng.uniform(0.75, 1.25)
        self.contacts: list[str] = []
        self.key = rep.rep_id.encode()
        self.set_activity(1.0, 1.0)

    def set_activity(self, calls: float, others: float) -> None:
        """Scale this rep's call and other touch rates (scenarios bend them)."""
        self.call_w = _CALL_RATE * self.pace * calls
        self.email_w = _EMAIL_RATE * self.pace * others
        self.touch_w = self.call_w + self.email_w + _PROSPECT_RATE * self.pace * others


class _RegionState:
    """A region's reps, working-hours profile and returning customers."""

    __slots__ = ("region", "offset_h", "offset_s", "hour_factor", "reps", "customers")

    def __init__(self, region: Region) -> None:
        self.region = region
        self.offset_h = region.utc_offset_h
        self.offset_s = region.utc_offset_h * HOUR
        self.hour_factor = _WORKING_WEEK
        self.reps: list[_RepState] = []
        self.customers: list[tuple[str, str]] = []


def _working_week() -> tuple[float, ...]:
    """Activity factor per local hour of the week, Monday 00:00 first."""
    factors = []
    for how in range(168):
        day, hour = divmod(how, 24)
        if day >= 5:
            factors.append(0.02)  # a few reps answer on weekends
        elif 9 <= hour < 17:
            factors.append(1.0)
        elif hour in (8, 17, 18):
            factors.append(0.4)
        else:
            factors.append(0.01)
    return tuple(factors)


_WORKING_WEEK = _working_week()


def _first(item: tuple[int, Any, Any]) -> int:
    return item[0]


def _hour_of_week(local_t: int) -> int:
    # 1970-01-01 was a Thursday, i.e. day 3 of a Monday-first week.
    return ((local_t // DAY + 3) % 7) * 24 + (local_t % DAY) // HOUR


class _Opp:
    """An opportunity in flight."""

    __slots__ = (
        "opp_id", "rep", "contact_id", "customer_id", "account_id", "product",
        "amount", "currency", "stage", "stalls", "closed", "key",
    )  # fmt: skip

    def __init__(
        self, opp_id: str, rep: _RepState, contact_id: str, customer: tuple[str, str]
    ) -> None:
        self.opp_id = opp_id
        self.rep = rep
        self.contact_id = contact_id
        self.customer_id, self.account_id = customer
        self.product = "starter"
        self.amount = 0
        self.currency = rep.currency
        self.stage = 0
        self.stalls = 0
        self.closed = False
        self.key = opp_id.encode()


class _Invoice:
    """An issued invoice, as its later payments and credit notes need it."""

    __slots__ = ("invoice_id", "customer_id", "currency", "rep", "key")

    def __init__(self, invoice_id: str, customer_id: str, currency: str, rep: _RepState) -> None:
        self.invoice_id = invoice_id
        self.customer_id = customer_id
        self.currency = currency
        self.rep = rep
        self.key = customer_id.encode()


class SimRecord(NamedTuple):
    """One produced record plus what tests and producers may want to know about it."""

    topic_kind: str  # "crm" or "billing"
    key: bytes | None
    value: bytes
    timestamp: int  # event time, epoch seconds (a bad record takes the next good one's)
    bad: str | None = None  # a BAD_KINDS key when the record is malformed on purpose
    duplicate: bool = False  # a byte-identical re-send of the previous record


_Action = Callable[[int, Any], None]
# SimRecord's fields as a plain tuple: cheaper to build on the hot path.
_Row = tuple[str, bytes | None, bytes, int, str | None, bool]
_CLOCK = tuple(f"{hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS_Z = tuple(f"{second:02d}Z" for second in range(60))
_SECONDS_UTC = tuple(f"{second:02d}+00:00" for second in range(60))


# ----------------------------------------------------------------------------------
# The simulator
# ----------------------------------------------------------------------------------


class Simulator:
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

    # --- CRM activity --------------------------------------------------------------

    def _touch(self, t: int, rep: _RepState) -> None:
        r = self._rng.random() * rep.touch_w
        if r < rep.call_w and rep.contacts:
            self._call(t, rep)
        elif r < rep.call_w + rep.email_w and rep.contacts:
            contacts = rep.contacts
            contact = contacts[int(self._rng.random() * len(contacts))]
            data = {"rep_id": rep.rep.rep_id, "contact_id": contact}
            self._emit(t, "email.sent", data, rep.key)
        else:
            self._prospect(t, rep)

    def _prospect(self, t: int, rep: _RepState) -> None:
        contact = self._next_id("ct", 6)
        # A rep works a bounded book of contacts; new ones push out random old ones.
        if len(rep.contacts) < 250:
            rep.contacts.append(contact)
        else:
            rep.contacts[self._rng.randrange(250)] = contact
        data = {"rep_id": rep.rep.rep_id, "contact_id": contact}
        self._emit(t, "prospect.contacted", data, rep.key)

    def _call(self, t: int, rep: _RepState) -> None:
        rng = self._rng
        contact = rep.contacts[int(rng.random() * len(rep.contacts))]
        outcome = _pick(rng, _CALL_OUTCOMES, _CALL_OUTCOME_CUM)
        if outcome == "connected":
            duration = min(3600, max(30, round(rng.lognormvariate(math.log(240), 0.6))))
            slumping = self._slumping(rep, t) and self.scenario == "slump"
            p_meeting = _MEETING_FROM_CALL * rep.skill * (0.3 if slumping else 1.0)
            if rng.random() < p_meeting:
                self._schedule(t + 60 + int(rng.random() * 840), self._book_meeting, (rep, contact))
        elif outcome == "voicemail":
            duration = 15 + int(rng.random() * 45)
        elif outcome == "no_answer":
            duration = int(rng.random() * 30)
        else:
            duration = int(rng.random() * 20)
        data = {
            "rep_id": rep.rep.rep_id,
            "contact_id": contact,
            "duration_s": duration,
            "outcome": outcome,
        }
        self._emit(t, "call.logged", data, rep.key)

    def _book_meeting(self, t: int, arg: tuple[_RepState, str]) -> None:
        rep, contact = arg
        opp = self._open_by_contact.get(contact)
        data: dict[str, Any] = {"rep_id": rep.rep.rep_id, "contact_id": contact}
        if opp is not None:
            data["opportunity_id"] = opp.opp_id
        self._emit(t, "meeting.booked", data, opp.key if opp else rep.key)
        if opp is None and self._rng.random() < _OPP_FROM_MEETING:
            # The discovery meeting takes place within days and qualifies a deal.
            when = self._business_time(t + self._days(1, 6), rep.region)
            self._schedule(when, self._create_opportunity, (rep, contact, None))

    # --- opportunities -------------------------------------------------------------

    def _create_opportunity(self, t: int, arg: tuple[_RepState, str, int | None]) -> None:
        rep, contact, stage = arg
        if contact in self._open_by_contact:
            return  # an earlier meeting with this contact already opened a deal
        rng = self._rng
        opp = _Opp(self._next_id("o", 6), rep, contact, self._customer_for(rep))
        opp.product = _pick(rng, _PRODUCT_NAMES, _PRODUCT_CUM)
        median = _PRODUCTS[opp.product][0]
        # Expected values are round numbers, as reps type them in.
        opp.amount = max(100_000, int(round(median * rng.lognormvariate(0, 0.5), -4)))
        if stage is None:  # most deals start at the top; inbound leads come qualified
            stage = 0 if rng.random() < 0.85 or len(self.stages) == 1 else 1
        opp.stage = stage
        self._open_by_contact[contact] = opp
        data = {
            "opportunity_id": opp.opp_id,
            "rep_id": rep.rep.rep_id,
            "stage": self.stages[opp.stage],
            "account_id": opp.account_id,
            "customer_id": opp.customer_id,
            "amount": _money(opp.amount, False),
            "currency": opp.currency,
            "product": opp.product,
        }
        self._emit(t, "opportunity.created", data, opp.key)
        if opp.stage == self._meeting_stage:
            self._meeting_for(t, opp)
        self._schedule_decision(t, opp, 1.0)

    def _customer_for(self, rep: _RepState) -> tuple[str, str]:
        """A returning customer of the region (upsell) or a brand-new one."""
        pool = rep.region.customers
        if pool and self._rng.random() < 0.3:
            return self._rng.choice(pool)
        number = self._ids["customer"] = self._ids["customer"] + 1
        return f"c-{number:05d}", f"a-{number:05d}"

    def _schedule_decision(self, t: int, opp: _Opp, slowness: float) -> None:
        dwell = min(30.0, max(0.5, self._rng.lognormvariate(math.log(4.0), 0.6))) * slowness
        when = self._business_time(t + round(dwell * DAY), opp.rep.region)
        self._schedule(when, self._decide, opp)

    def _decide(self, t: int, opp: _Opp) -> None:
        """The deal's next step: advance (maybe skipping), stall, win or lose."""
        rng = self._rng
        slump = self._slumping(opp.rep, t)
        last = len(self.stages) - 1
        if opp.stage == last or (opp.stage == last - 1 and rng.random() < _P_EARLY_CLOSE):
            # A slump dents closing; a collapse nearly stops it.
            p_win = _P_WIN * opp.rep.skill * ((0.02 if self.scenario == "collapse" else 0.2) if slump else 1.0)
            if rng.random() < p_win:
                self._win(t, opp)
            else:
                self._lose(t, opp, None)
            return
        r = rng.random()
        p_lose = _P_LOSE * (3.0 if slump else 1.0)
        if r < p_lose:
            self._lose(t, opp, None)
        elif r < p_lose + _P_STALL:
            opp.stalls += 1
            if opp.stalls > 2:
                self._lose(t, opp, "no_decision")  # went quiet for too long
            else:
                self._schedule_decision(t, opp, 2.5)
        else:
            jump = 2 if rng.random() < _P_SKIP and opp.stage + 2 <= last else 1
            self._enter_stage(t, opp, opp.stage + jump)
            self._schedule_decision(t, opp, 1.0)

    def _enter_stage(self, t: int, opp: _Opp, to: int) -> None:
        if opp.stage == self._demo_stage:
            # Leaving the demo stage forward means the demo took place.
            demo = {"rep_id": opp.rep.rep.rep_id, "opportunity_id": opp.opp_id}
            self._emit(t, "demo.completed", demo, opp.key)
        if to == self._meeting_stage:
            self._meeting_for(t, opp)
        data = {
            "opportunity_id": opp.opp_id,
            "rep_id": opp.rep.rep.rep_id,
            "from_stage": self.stages[opp.stage],
            "to_stage": self.stages[to],
        }
        opp.stage = to
        self._emit(t, "opportunity.stage_changed", data, opp.key)

    def _meeting_for(self, t: int, opp: _Opp) -> None:
        data = {
            "rep_id": opp.rep.rep.rep_id,
            "opportunity_id": opp.opp_id,
            "contact_id": opp.contact_id,
        }
        self._emit(t, "meeting.booked", data, opp.key)

    def _close(self, opp: _Opp) -> None:
        opp.closed = True
        if self._open_by_contact.get(opp.contact_id) is opp:
            del self._open_by_contact[opp.contact_id]

    def _win(self, t: int, opp: _Opp) -> None:
        self._close(opp)
        # Deals close at or a little under the expected value (discounting).
        won = round(opp.amount * self._rng.uniform(0.8, 1.02))
        data = {
            "opportunity_id": opp.opp_id,
            "rep_id": opp.rep.rep.rep_id,
            "amount": _money(won, False),
            "currency": opp.currency,
        }
        self._emit(t, "opportunity.won", data, opp.key)
        customer = (opp.customer_id, opp.account_id)
        if customer not in opp.rep.region.customers:
            opp.rep.region.customers.append(customer)
        when = self._business_time(t + self._days(0.5, 7), opp.rep.region)
        self._schedule(when, self._issue_invoice, (opp, won))

    def _lose(self, t: int, opp: _Opp, reason: str | None) -> None:
        self._close(opp)
        reason = reason or _pick(self._rng, _LOSS_REASONS, _LOSS_REASON_CUM)
        data = {"opportunity_id": opp.opp_id, "rep_id": opp.rep.rep.rep_id, "reason": reason}
        self._emit(t, "opportunity.lost", data, opp.key)

    # --- billing -------------------------------------------------------------------

    def _issue_invoice(self, t: int, arg: tuple[_Opp, int]) -> None:
        opp, won = arg
        rng = self._rng
        lines, total = self._invoice_lines(opp.product, won)
        invoice = _Invoice(self._next_id("inv", 6), opp.customer_id, opp.currency, opp.rep)
        data: dict[str, Any] = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "currency": invoice.currency,
            "lines": lines,
            "due_at": self._format(t + 30 * DAY, _SECONDS_UTC),
        }
        if rng.random() < 0.95:  # a few invoices are raised without the deal owner
            data["rep_id"] = opp.rep.rep.rep_id
        if rng.random() < 0.6:
            data["total"] = _money(total, True)
        self._emit(t, "invoice.issued", data, invoice.key)
        self._plan_settlement(t, invoice, total)

    def _invoice_lines(self, product: str, amount: int) -> tuple[list[dict[str, Any]], int]:
        """1–5 lines whose total lands near `amount`: the licence first, then add-ons."""
        rng = self._rng
        count = _pick(rng, (1, 2, 3, 4, 5), _LINE_COUNT_CUM)
        _, sku, list_price, cost_ratio = _PRODUCTS[product]
        items = [(sku, list_price, cost_ratio), *rng.sample(_ADDONS, count - 1)]
        main_share = 1.0 if count == 1 else rng.uniform(0.55, 0.85)
        shares = [main_share] + [(1.0 - main_share) / max(1, count - 1)] * (count - 1)
        as_string = rng.random() < 0.5  # exporters disagree on numbers vs strings
        lines, total = [], 0
        for (sku, price, ratio), share in zip(items, shares):
            unit = round(price * (1.0 - rng.choice(_DISCOUNTS)))
            quantity = max(1, round(amount * share / unit))
            line: dict[str, Any] = {
                "sku": sku,
                "quantity": quantity,
                "unit_price": _money(unit, as_string),
            }
            if rng.random() < 0.9:  # not every line carries a cost
                line["unit_cost"] = _money(round(unit * ratio * rng.uniform(0.9, 1.1)), as_string)
            lines.append(line)
            total += quantity * unit
        return lines, total

    def _plan_settlement(self, t: int, invoice: _Invoice, total: int) -> None:
        """Schedule the credit note and payments this invoice will see (if any)."""
        rng = self._rng
        region = invoice.rep.region
        first = 0
        if rng.random() < 0.06:
            credit = max(1, round(total * rng.uniform(0.05, 0.25)))
            credit_delay = self._days(1, 10)
            when = self._business_time(t + credit_delay, region)
            self._schedule(when, self._credit_note, (invoice, credit))
            total -= credit
            first = credit_delay + DAY  # the customer pays the corrected amount, after
        r = rng.random()
        if r < 0.68:  # on time
            self._pay(t + first + self._days(3, 29), invoice, total)
        elif r < 0.83:  # late
            self._pay(t + first + self._days(32, 90), invoice, total)
        elif r < 0.93:  # partial, the rest later or never
            part = max(1, min(total - 1, round(total * rng.uniform(0.3, 0.7))))
            self._pay(t + first + self._days(5, 29), invoice, part)
            if rng.random() < 0.6:
                self._pay(t + first + self._days(35, 100), invoice, total - part)
        # else: never paid, it will show in overdue receivables

    def _pay(self, when: int, invoice: _Invoice, amount: int) -> None:
        if amount > 0:
            at = self._business_time(when, invoice.rep.region)
            self._schedule(at, self._payment, (invoice, amount))

    def _payment(self, t: int, arg: tuple[_Invoice, int]) -> None:
        invoice, amount = arg
        data = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "amount": _money(amount, False),
            "currency": invoice.currency,
        }
        self._emit(t, "payment.received", data, invoice.key)

    def _credit_note(self, t: int, arg: tuple[_Invoice, int]) -> None:
        invoice, amount = arg
        data = {
            "invoice_id": invoice.invoice_id,
            "customer_id": invoice.customer_id,
            "amount": _money(amount, True),
            "currency": invoice.currency,
        }
        self._emit(t, "credit_note.issued", data, invoice.key)

    def _spend(self, t: int, _: None) -> None:
        rng = self._rng
        category = "marketing" if rng.random() < 0.6 else "sales"
        team_id = rng.choice(tuple(self._team_currency)) if rng.random() < 0.9 else None
        currency = self._team_currency[team_id] if team_id else self.currencies[0]
        median = 250_000 if category == "marketing" else 80_000
        amount = max(1_000, round(median * rng.lognormvariate(0, 0.7)))
        data: dict[str, Any] = {
            "amount": _money(amount, False),
            "currency": currency,
            "category": category,
            "channel": rng.choice(_SPEND_CHANNELS[category]),
        }
        if team_id:  # brand campaigns carry no team and count globally only
            data["team_id"] = team_id
        self._emit(t, "spend.recorded", data, team_id.encode() if team_id else None)

    # --- malformed records ---------------------------------------------------------

    def _bad_record(self) -> _Row:
        """A malformed record of a random kind (drawn from its own RNG, see __init__)."""
        kind = self._bad_rng.choice(_BAD_KIND_NAMES)
        self.bad_counts[kind] += 1
        number = sum(self.bad_counts.values())
        etype = self._bad_type_for(kind)
        data, key = self._bad_data(etype, number)
        # Stamped like the good record it precedes, so event time stays ordered.
        t = self._pending[0][3]
        env = self._envelope(t, etype, data, f"{self._run_id}-bad-{number:07x}")
        value = _CORRUPTORS[kind](self, env)
        return ("billing" if etype in _BILLING_TYPES else "crm", key, value, t, kind, False)

    def _bad_type_for(self, kind: str) -> str:
        """An event type the corruption applies to (a stage needs an opportunity...)."""
        if kind in ("negative_amount", "unknown_currency"):
            return self._bad_rng.choice(_MONEY_TYPES)
        if kind == "unknown_stage":
            return self._bad_rng.choice(("opportunity.created", "opportunity.stage_changed"))
        if kind == "inconsistent_total":
            return "invoice.issued"
        return self._bad_rng.choice(_EVENT_TYPES)

    def _bad_data(self, etype: str, number: int) -> tuple[dict[str, Any], bytes | None]:
        """Well-formed data with fresh `x` ids, so no live entity is touched, and its key."""
        rng = self._bad_rng
        rep = rng.choice(self._rep_list)
        rep_id = rep.rep.rep_id
        amount = _money(rng.randrange(10_000, 5_000_000), False)
        opp_id, customer_id = f"o-x{number:06d}", f"c-x{number:06d}"
        if etype in _REP_ACTIVITY_TYPES:
            data: dict[str, Any] = {"rep_id": rep_id, "contact_id": f"ct-x{number:06d}"}
            if etype == "call.logged":
                data.update(duration_s=rng.randrange(30, 900), outcome="connected")
            return data, rep.key
        if etype in _OPPORTUNITY_TYPES:
            data = {"opportunity_id": opp_id, "rep_id": rep_id}
            if etype == "opportunity.created":
                data.update(stage=self.stages[0], customer_id=customer_id)
                data.update(amount=amount, currency=rep.currency)
            elif etype == "opportunity.stage_changed":
                data.update(from_stage=self.stages[0], to_stage=self.stages[-1])
            elif etype == "opportunity.won":
                data.update(amount=amount, currency=rep.currency)
            return data, opp_id.encode()
        if etype == "spend.recorded":
            team = rep.rep.team_id
            data = {"amount": amount, "currency": rep.currency, "category": "sales"}
            data["team_id"] = team
            return data, team.encode()
        data = {"invoice_id": f"inv-x{number:06d}", "customer_id": customer_id}
        data["currency"] = rep.currency
        if etype == "invoice.issued":
            quantity, unit = rng.randrange(1, 20), rng.randrange(1_000, 200_000)
            line = {"sku": "LIC-PRO", "quantity": quantity, "unit_price": _money(unit, True)}
            data.update(rep_id=rep_id, lines=[line], total=_money(quantity * unit, True))
        else:  # payment.received, credit_note.issued
            data["amount"] = amount
        return data, customer_id.encode()


_BILLING_TYPES = frozenset(
    ("invoice.issued", "payment.received", "credit_note.issued", "spend.recorded")
)
_EVENT_TYPES = tuple(_SOURCES)
_REP_ACTIVITY_TYPES = frozenset(("call.logged", "email.sent", "prospect.contacted"))
_OPPORTUNITY_TYPES = frozenset(
    (
        "opportunity.created", "opportunity.stage_changed", "opportunity.won",
        "opportunity.lost", "meeting.booked", "demo.completed",
    )
)  # fmt: skip
_BAD_KIND_NAMES = tuple(BAD_KINDS)


# ----------------------------------------------------------------------------------
# Corruptors: each turns a well-formed envelope into the bytes of one bad kind
# ----------------------------------------------------------------------------------


def _not_json(sim: Simulator, env: dict[str, Any]) -> bytes:
    variants = (
        b"\x00\x01\x02\xff\xfe binary",
        f"{env['type']},{env['occurred_at']},{env['event_id']}".encode(),
        repr(env).encode(),  # Python's repr: single quotes, not JSON
        b"<event><type>call.logged</type></event>",
        b"",
    )
    return sim._bad_rng.choice(variants)


def _truncated(sim: Simulator, env: dict[str, Any]) -> bytes:
    raw = _encode(env)
    # Any proper prefix of a JSON object is invalid: the closing brace is missing.
    return raw[: sim._bad_rng.randrange(1, len(raw) - 1)]


def _not_object(sim: Simulator, env: dict[str, Any]) -> bytes:
    return _encode(sim._bad_rng.choice(([env], env["event_id"], 42, None, [])))


def _oversized(sim: Simulator, env: dict[str, Any]) -> bytes:
    size = OVERSIZE_BYTES + sim._bad_rng.randrange(100, 8_000)
    env["data"]["notes"] = "lorem ipsum " * (size // 12)
    return _encode(env)


def _missing_field(sim: Simulator, env: dict[str, Any]) -> bytes:
    required = [("", name) for name in ("event_id", "type", "occurred_at")]
    required += [("data", name) for name in _REQUIRED_DATA[env["type"]]]
    where, name = sim._bad_rng.choice(required)
    del (env["data"] if where else env)[name]
    return _encode(env)


def _wrong_type(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    choices: list[Callable[[], None]] = [
        lambda: env.__setitem__("data", [data]),
        lambda: env.__setitem__("event_id", 123456),
        lambda: env.__setitem__("occurred_at", 1_700_000_000),
    ]
    if "rep_id" in data:
        choices.append(lambda: data.__setitem__("rep_id", 17))
    if "lines" in data:
        choices.append(lambda: data.__setitem__("lines", data["lines"][0]))
    if "duration_s" in data:
        choices.append(lambda: data.__setitem__("duration_s", [240]))
    sim._bad_rng.choice(choices)()
    return _encode(env)


def _unknown_type(sim: Simulator, env: dict[str, Any]) -> bytes:
    env["type"] = sim._bad_rng.choice(
        ("call.deleted", "opportunity.reopened", "invoice.voided", "Call.Logged")
    )
    return _encode(env)


def _bad_timestamp(sim: Simulator, env: dict[str, Any]) -> bytes:
    at = env["occurred_at"]
    env["occurred_at"] = sim._bad_rng.choice(
        (
            "yesterday",
            "2026-02-30T10:00:00Z",  # no such day
            at.replace("Z", "").replace("+00:00", ""),  # no offset
            at[:10],  # a date only
            "28/11/2026 09:15",
        )
    )
    return _encode(env)


def _out_of_range(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    choices: list[Callable[[], None]] = [
        lambda: env.__setitem__("event_id", ""),
        lambda: env.__setitem__("event_id", "e" * 129),
    ]
    if "duration_s" in data:
        choices.append(lambda: data.__setitem__("duration_s", -sim._bad_rng.randint(1, 600)))
    if "lines" in data:
        choices.append(lambda: _zero_quantity(data))
    if env["type"] in ("payment.received", "credit_note.issued", "spend.recorded"):
        choices.append(lambda: data.__setitem__("amount", 0))
    sim._bad_rng.choice(choices)()
    return _encode(env)


def _zero_quantity(data: dict[str, Any]) -> None:
    data["lines"][0]["quantity"] = 0
    data.pop("total", None)  # keep the total from being the first thing wrong


def _negative_amount(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    if "lines" in data:
        line = data["lines"][0]
        line["unit_price"] = "-" + str(line["unit_price"]).lstrip("-")
        data.pop("total", None)
    else:
        data["amount"] = -abs(float(data["amount"]))
    return _encode(env)


def _unknown_currency(sim: Simulator, env: dict[str, Any]) -> bytes:
    # XTS is ISO 4217's code for testing: well-formed, yet never given a rate.
    env["data"]["currency"] = "XTS" if "XTS" not in sim.currencies else "XXX"
    return _encode(env)


def _unknown_stage(sim: Simulator, env: dict[str, Any]) -> bytes:
    field = "stage" if "stage" in env["data"] else "to_stage"
    names = ("discovery", "closed_won", "Qualified", "evaluation ")
    candidates = [name for name in names if name not in sim.stages]
    env["data"][field] = sim._bad_rng.choice(candidates)
    return _encode(env)


def _inconsistent_total(sim: Simulator, env: dict[str, Any]) -> bytes:
    data = env["data"]
    line = data["lines"][0]
    cents = line["quantity"] * round(float(line["unit_price"]) * 100)
    delta = sim._bad_rng.randint(1, 5_000)
    # Off by a little, either way, as a hand-edited or badly rounded total would be.
    wrong = cents - delta if sim._bad_rng.random() < 0.5 and cents > delta else cents + delta
    data["total"] = _money(wrong, True)
    return _encode(env)


_CORRUPTORS: dict[str, Callable[[Simulator, dict[str, Any]], bytes]] = {
    "not_json": _not_json,
    "truncated": _truncated,
    "not_object": _not_object,
    "oversized": _oversized,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_type": _unknown_type,
    "bad_timestamp": _bad_timestamp,
    "out_of_range": _out_of_range,
    "negative_amount": _negative_amount,
    "unknown_currency": _unknown_currency,
    "unknown_stage": _unknown_stage,
    "inconsistent_total": _inconsistent_total,
}


# ----------------------------------------------------------------------------------
# Argument helpers
# ----------------------------------------------------------------------------------


def _epoch(value: float | datetime) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("start times must be aware datetimes (or epoch seconds)")
        return value.timestamp()
    return float(value)


def _check_arguments(
    scenario: str,
    bad_ratio: float,
    duplicate_ratio: float,
    stages: tuple[str, ...],
    currencies: tuple[str, ...],
    step: float,
    activity: float,
) -> None:
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {', '.join(SCENARIOS)}")
    if not 0.0 <= bad_ratio <= 1.0:
        raise ValueError("bad_ratio must be between 0 and 1")
    if not 0.0 <= duplicate_ratio < 1.0:
        raise ValueError("duplicate_ratio must be in [0, 1)")
    if not stages or len(set(stages)) != len(stages) or {"won", "lost"} & set(stages):
        raise ValueError("stages must be distinct names, without won/lost")
    if not currencies or any(len(c) != 3 or not c.isalpha() or not c.isupper() for c in currencies):
        raise ValueError("currencies must be ISO 4217 codes such as EUR")
    if step < 1:
        raise ValueError("step must be at least one second")
    if activity <= 0:
        raise ValueError("activity must be positive")


def _home_currencies(region_id: str, index: int, currencies: tuple[str, ...]) -> tuple[str, ...]:
    """The currencies a region's teams bill in, limited to the configured ones."""
    preferred = tuple(c for c in _REGION_CURRENCIES.get(region_id, ()) if c in currencies)
    return preferred or (currencies[index % len(currencies)],)


def _demo_stage(stages: tuple[str, ...]) -> int | None:
    """The stage whose completion is a demo: `demo`, else the middle of a long funnel."""
    if "demo" in stages:
        return stages.index("demo")
    return len(stages) // 2 if len(stages) >= 3 else None
