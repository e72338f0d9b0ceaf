"""Every KPI of the catalogue from a window's component totals: exact numerator and denominator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from typing import NamedTuple

import msgspec

from kpi_state.calendar import period_bounds, previous_period_date
from kpi_state.rollup import ROLLING_DAYS, Totals

ZERO = Decimal(0)


class KpiResult(msgspec.Struct, frozen=True, gc=False):
    """One KPI value before it becomes a record: value is None when the denominator is 0."""

    # Hundreds of thousands are made per flush of a replayed history: a struct is built in
    # C (a NamedTuple's __new__ is Python, a tenth of building records; a frozen dataclass
    # sets each field through object.__setattr__), and holds nothing that makes a cycle.

    kpi: str
    dims: tuple[tuple[str, str], ...]
    numerator: Decimal | None
    denominator: Decimal | None
    value: Decimal | None


def _ratio(kpi: str, num: Decimal, den: Decimal, dims: tuple = ()) -> KpiResult:
    return KpiResult(kpi, dims, num, den, (num / den) if den else None)


def _count(kpi: str, num: Decimal, dims: tuple = ()) -> KpiResult:
    return KpiResult(kpi, dims, num, None, num)


_DIMS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}


def _dims_of(key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    # The same few component keys (stage pairs) are split for every series: once each.
    known = _DIMS.get(key)
    if known is None:
        component, *parts = key.split("|")
        known = component, tuple(tuple(part.split("=", 1)) for part in parts)  # type: ignore[misc]
        if len(_DIMS) < 10_000:
            _DIMS[key] = known
    return known


def windowed(t: Totals, stages: tuple[str, ...], kpis: frozenset[str] | None = None) -> Iterator[KpiResult]:
    """KPIs defined over events in the window, for any window kind; with `kpis`, only the
    groups holding one of them (the others read none of the components asked about)."""
    v = t.value
    for group in WINDOWED_GROUPS:
        if kpis is None or not kpis.isdisjoint(group.kpis):
            yield from group.compute(t, v, stages)


def _activity(t: Totals, v: Callable[[str], Decimal], stages: tuple[str, ...]) -> Iterator[KpiResult]:
    for name in ACTIVITY_COUNTS:
        yield _count(name, v(name))
    yield _ratio("meeting_rate", v("meetings_booked"), v("calls"))


def _opportunities(t: Totals, v: Callable[[str], Decimal], stages: tuple[str, ...]) -> Iterator[KpiResult]:
    yield _count("opportunities_created", v("opportunities_created"))
    won, lost = v("won"), v("lost")
    yield _ratio("win_rate", won, won + lost)
    yield _ratio("lead_conversion", v("created_won"), v("opportunities_created"))
    yield _ratio("sales_cycle_days", v("cycle_days_sum"), won)
    yield _count("bookings", v("bookings"))
    yield _count("won_deals", won)
    yield _ratio("average_deal_size", v("bookings"), won)


def _billing(t: Totals, v: Callable[[str], Decimal], stages: tuple[str, ...]) -> Iterator[KpiResult]:
    revenue = v("invoiced") - v("credited")
    orders = v("orders")
    yield _count("revenue", revenue)
    yield _count("orders", orders)
    yield _count("units_sold", v("units"))
    yield _ratio("average_basket", revenue, orders)
    yield _ratio("gross_margin", v("margin_with_cost"), v("gross_with_cost"))
    yield _ratio("purchase_frequency", orders, Decimal(t.distinct("customers_invoiced")))
    yield _ratio("days_to_pay", v("paid_days_sum"), v("paid_count"))


def _acquisition(t: Totals, v: Callable[[str], Decimal], stages: tuple[str, ...]) -> Iterator[KpiResult]:
    new_customers = v("new_customers")
    yield _count("new_customers", new_customers)
    yield _ratio("cac", v("spend"), new_customers)


def _stages(t: Totals, v: Callable[[str], Decimal], stages: tuple[str, ...]) -> Iterator[KpiResult]:
    return _by_dims(t, stages)


class KpiGroup(NamedTuple):
    """KPIs computed together, and every component (day-cell key before any `|`) they read."""

    kpis: frozenset[str]
    components: frozenset[str]
    compute: Callable[[Totals, Callable[[str], Decimal], tuple[str, ...]], Iterator[KpiResult]]


ACTIVITY_COUNTS = ("calls", "emails", "meetings_booked", "demos", "prospects_contacted")
WINDOWED_GROUPS = (
    KpiGroup(frozenset({*ACTIVITY_COUNTS, "meeting_rate"}), frozenset(ACTIVITY_COUNTS), _activity),
    KpiGroup(frozenset({"opportunities_created", "win_rate", "lead_conversion", "sales_cycle_days",
                        "bookings", "won_deals", "average_deal_size"}),
             frozenset({"opportunities_created", "won", "lost", "created_won", "cycle_days_sum", "bookings"}),
             _opportunities),
    KpiGroup(frozenset({"revenue", "orders", "units_sold", "average_basket", "gross_margin",
                        "purchase_frequency", "days_to_pay"}),
             frozenset({"invoiced", "credited", "orders", "units", "margin_with_cost", "gross_with_cost",
                        "customers_invoiced", "paid_days_sum", "paid_count"}),
             _billing),
    KpiGroup(frozenset({"new_customers", "cac"}), frozenset({"new_customers", "spend"}), _acquisition),
    KpiGroup(frozenset({"stage_conversion", "stage_duration_days"}),
             frozenset({"stage_entered", "stage_advanced", "stage_days_sum", "stage_left"}), _stages),
)
# What the other families read of a window's own totals. Growth reads the previous period
# too, and the snapshots' velocity the 90-day rates: callers add those themselves.
LIFETIME_COMPONENTS = frozenset({"invoiced", "credited", "orders", "customers_invoiced", "spend", "new_customers"})
GROWTH_COMPONENTS = frozenset({"invoiced", "credited", "units"})
SNAPSHOT_COMPONENTS = frozenset({"overdue", "open_opps", "open_value"})
KNOWN_COMPONENTS = frozenset().union(
    *(group.components for group in WINDOWED_GROUPS), LIFETIME_COMPONENTS, GROWTH_COMPONENTS, SNAPSHOT_COMPONENTS
)


def _by_dims(t: Totals, stages: tuple[str, ...]) -> Iterator[KpiResult]:
    entered: dict[str, Decimal] = {}
    advanced: list[tuple[tuple[tuple[str, str], ...], Decimal]] = []
    durations: dict[str, Decimal] = {}
    left: dict[str, Decimal] = {}
    for key, amount in t.values.items():
        if "|" not in key:
            continue
        component, dims = _dims_of(key)
        if component == "stage_entered":
            entered[dims[0][1]] = amount
        elif component == "stage_advanced":
            advanced.append((dims, amount))
        elif component == "stage_days_sum":
            durations[dims[0][1]] = amount
        elif component == "stage_left":
            left[dims[0][1]] = amount
    advanced_by_from = {dict(dims)["from"]: amount for dims, amount in advanced}
    # Every configured stage and pair, zeros included: a record that drops out of the
    # results would otherwise keep its old value downstream.
    for source, target in zip(stages, stages[1:]):
        dims = (("from", source), ("to", target))
        yield _ratio("stage_conversion", advanced_by_from.get(source, ZERO), entered.get(source, ZERO), dims)
    for stage in stages:
        yield _ratio("stage_duration_days", durations.get(stage, ZERO), left.get(stage, ZERO), (("stage", stage),))


def window_days(window: str, start: str, tz: str, first_day: date | None, newest_day: date | None) -> Decimal:
    """Length of the window in days: the period's, N for rolling, the data's span for `all`."""
    if window in ROLLING_DAYS:
        return Decimal(ROLLING_DAYS[window])
    if window == "all":
        if first_day is None or newest_day is None:
            return ZERO
        return Decimal((newest_day - first_day).days + 1)
    lo, hi = period_bounds(date.fromisoformat(start), window, tz)
    return Decimal(round((hi - lo) / 86400))  # DST days still make whole days in a period


def lifetime_value(t: Totals, length_days: Decimal, lifetime_days: Decimal) -> Iterator[KpiResult]:
    """clv = basket × frequency × (lifetime / window length), and ltv_to_cac = clv / cac."""
    v = t.value
    revenue, orders = v("invoiced") - v("credited"), v("orders")
    customers = Decimal(t.distinct("customers_invoiced"))
    if orders and customers and length_days:
        # basket × frequency = revenue / customers; keep one exact fraction.
        clv_num = revenue * lifetime_days
        clv_den = customers * length_days
        clv = clv_num / clv_den
    else:
        clv_num, clv_den, clv = revenue * lifetime_days, ZERO, None
    yield KpiResult("clv", (), clv_num, clv_den, clv)
    spend, new_customers = v("spend"), v("new_customers")
    cac = spend / new_customers if new_customers else None
    if clv is not None and cac:
        yield KpiResult("ltv_to_cac", (), clv, cac, clv / cac)
    else:
        yield KpiResult("ltv_to_cac", (), clv, cac, None)


def growth(current: Totals, previous: Totals) -> Iterator[KpiResult]:
    """revenue_growth, price_effect, volume_effect against the previous period of the same kind.

    A period that holds no events of the scope has no growth (null, not −100 %): it is
    published only because it is the current one, and a record of it must say the same
    as no record at all, whenever and however often it was published.
    """
    if current.empty:
        for kpi in ("revenue_growth", "volume_effect", "price_effect"):
            yield KpiResult(kpi, (), None, None, None)
        return
    rev = current.value("invoiced") - current.value("credited")
    rev_prev = previous.value("invoiced") - previous.value("credited")
    yield _ratio("revenue_growth", rev - rev_prev, rev_prev)
    units, units_prev = current.value("units"), previous.value("units")
    gross, gross_prev = current.value("invoiced"), previous.value("invoiced")
    if units_prev:
        avg_prev = gross_prev / units_prev
        yield _count("volume_effect", (units - units_prev) * avg_prev)
        if units:
            yield _count("price_effect", (gross / units - avg_prev) * units)
        else:
            yield KpiResult("price_effect", (), None, None, None)
    else:
        yield KpiResult("volume_effect", (), None, None, None)
        yield KpiResult("price_effect", (), None, None, None)


def previous_start(window: str, start: str) -> str:
    return previous_period_date(date.fromisoformat(start), window).isoformat()


def snapshots(t: Totals, rates_90d: Totals, stages: tuple[str, ...]) -> Iterator[KpiResult]:
    """Window `all` only: receivables, open pipeline (total and per stage), velocity."""
    yield _count("overdue_receivables", t.value("overdue"))
    open_total = value_total = ZERO
    for stage in stages:
        dims = (("stage", stage),)
        count, value = t.value(f"open_opps|stage={stage}"), t.value(f"open_value|stage={stage}")
        open_total += count
        value_total += value
        yield _count("open_opportunities", count, dims)
        yield _count("pipeline_value", value, dims)
    yield _count("open_opportunities", open_total)
    yield _count("pipeline_value", value_total)
    won, lost = rates_90d.value("won"), rates_90d.value("lost")
    cycle = rates_90d.value("cycle_days_sum") / won if won else ZERO
    if won and cycle:
        # open × (won / (won + lost)) × (bookings / won) / cycle = open × bookings / ((won + lost) × cycle)
        num = open_total * rates_90d.value("bookings")
        den = (won + lost) * cycle
        yield KpiResult("pipeline_velocity", (), num, den, num / den)
    else:
        yield KpiResult("pipeline_velocity", (), None, None, None)
