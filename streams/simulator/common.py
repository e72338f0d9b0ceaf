"""Simulator constants, catalogue, per-entity state and argument checks shared by its modules."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import msgspec

from streams.simulator.org import Region, Rep


SCENARIOS: tuple[str, ...] = ("steady", "slump", "growth", "collapse")
DEFAULT_CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP")

DAY = 86_400
HOUR = 3_600
OVERSIZE_BYTES = 64 * 1024
STRUGGLING_SKILL = 0.3  # steady traffic: the last rep converts at this fraction of the usual rate  # the contract's default limit; oversized records exceed it

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



def _demo_stage(stages: tuple[str, ...]) -> int | None:
    """The stage whose completion is a demo: `demo`, else the middle of a long funnel."""
    if "demo" in stages:
        return stages.index("demo")
    return len(stages) // 2 if len(stages) >= 3 else None


_BILLING_TYPES = frozenset(
    ("invoice.issued", "payment.received", "credit_note.issued", "spend.recorded")
)
