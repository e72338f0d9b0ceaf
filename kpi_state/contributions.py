"""What an entity state adds to the KPI components: contributions, attributions, days and durations."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from kpi_state.calendar import local_date
from kpi_state.directory import UNASSIGNED

Attribution = tuple[str, str]  # ("rep", rep_id) | ("team", team_id) | ("global", "")
Dims = tuple[tuple[str, str], ...]  # sorted (name, value) pairs

GLOBAL: Attribution = ("global", "")
SNAPSHOT = ""  # the day of snapshot components, valid for window `all` only

# DLQ reason codes an entity state returns from `apply` (contract section 3).
INVALID_TRANSITION = "invalid_transition"
UNKNOWN_STAGE = "unknown_stage"

# Durations are reported in days with a fixed quantum (1e-9 day ≈ 86 µs): seconds / 86400
# does not terminate in decimal, and values with a bounded number of places keep the
# aggregates' add-then-subtract diffing exact within Decimal's 28 digits.
_DAY_QUANTUM = Decimal("1e-9")
_SECONDS_PER_DAY = Decimal(86400)


class Contribution(NamedTuple):
    """What one entity adds to one component, for one attribution and local day."""

    component: str
    attribution: Attribution
    day: str  # local ISO date; SNAPSHOT ("") for snapshots
    dims: Dims = ()
    value: Any = 1  # int or Decimal
    distinct: str | None = None  # set for distinct counts (the counted id)


def rep_attribution(rep_id: str) -> Attribution:
    return ("rep", rep_id)


def billing_attribution(rep_id: str | None) -> Attribution:
    """An invoice's attribution: its rep, else team `unassigned` (it still counts globally)."""
    return ("rep", rep_id) if rep_id else ("team", UNASSIGNED)


def spend_attribution(team_id: str | None) -> Attribution:
    """Spend with a team counts for the team and its region, else for `global` only."""
    return ("team", team_id) if team_id else GLOBAL


def day_of(ts: float, tz: str) -> str:
    """The local ISO date of epoch second `ts` in `tz`."""
    return local_date(ts, tz).isoformat()


def days_between(start: float, end: float) -> Decimal:
    """(end − start) in days, from the exact binary values of the two timestamps."""
    seconds = Decimal(end) - Decimal(start)
    return (seconds / _SECONDS_PER_DAY).quantize(_DAY_QUANTUM, rounding=ROUND_HALF_EVEN)


class DayCache:
    """Memoised `day_of` for one `contributions()` call: entities repeat the same instants."""

    __slots__ = ("tz", "_days")

    def __init__(self, tz: str) -> None:
        self.tz = tz
        self._days: dict[float, str] = {}

    def __call__(self, ts: float) -> str:
        day = self._days.get(ts)
        if day is None:
            day = self._days[ts] = day_of(ts, self.tz)
        return day
