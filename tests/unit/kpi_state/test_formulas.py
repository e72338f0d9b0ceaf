"""Catalogue formulas (kpi_state.formulas) from component totals; every expected number is worked out by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from kpi_state.formulas import (
    KpiResult,
    growth,
    lifetime_value,
    previous_start,
    snapshots,
    window_days,
    windowed,
)
from kpi_state.rollup import Totals

STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
PAIRS = list(zip(STAGES, STAGES[1:]))


def totals(members: dict[str, list[str]] | None = None, **values: int | str) -> Totals:
    """Totals from plain component values (dimensioned ones are added with `with_dims`)."""
    t = Totals()
    t.add({k: D(str(v)) for k, v in values.items()}, members or {}, +1)
    return t


def with_dims(t: Totals, key: str, amount: int | str) -> Totals:
    t.add({key: D(str(amount))}, {}, +1)
    return t


def by_key(results) -> dict[tuple, KpiResult]:
    out = {}
    for r in results:
        assert (r.kpi, r.dims) not in out, f"{r.kpi} {r.dims} twice"
        out[(r.kpi, r.dims)] = r
    return out


COUNTS = ("calls", "emails", "meetings_booked", "demos", "prospects_contacted", "opportunities_created",
          "bookings", "won_deals", "revenue", "orders", "units_sold", "new_customers")
RATIOS = ("meeting_rate", "win_rate", "lead_conversion", "sales_cycle_days", "average_deal_size",
          "average_basket", "gross_margin", "cac", "purchase_frequency", "days_to_pay")


def test_an_empty_window_counts_zero_and_has_no_ratio() -> None:
    results = by_key(windowed(Totals(), STAGES))
    for kpi in COUNTS:
        assert (results[(kpi, ())].value, results[(kpi, ())].denominator) == (0, None), kpi
    for kpi in RATIOS:
        r = results[(kpi, ())]
        assert (r.numerator, r.denominator, r.value) == (0, 0, None), kpi
    # Every configured pair and stage, zeros included, so that no record drops out.
    for a, b in PAIRS:
        assert results[("stage_conversion", (("from", a), ("to", b)))].value is None
    for stage in STAGES:
        assert results[("stage_duration_days", (("stage", stage),))].value is None
    assert len(results) == len(COUNTS) + len(RATIOS) + len(PAIRS) + len(STAGES)


WORKED = totals(
    {"customers_invoiced": ["c1", "c2", "c3"]},
    calls=12, meetings_booked=3,  # meeting_rate 3/12 = 0.25
    won=3, lost=1,  # win_rate 3/4
    created_won=2, opportunities_created=8,  # lead_conversion 2/8
    cycle_days_sum=45,  # sales_cycle_days 45/3 = 15
    bookings=30000,  # average_deal_size 30000/3 = 10000
    invoiced=1200, credited=200, orders=4,  # revenue 1000, average_basket 1000/4 = 250
    margin_with_cost=300, gross_with_cost=1200,  # gross_margin 0.25
    spend=5000, new_customers=2,  # cac 2500
    paid_days_sum=30, paid_count=2,  # days_to_pay 15
    units=7,
)
with_dims(WORKED, "stage_entered|stage=prospecting", 10)
with_dims(WORKED, "stage_advanced|from=prospecting|to=qualified", 4)  # 4/10 = 0.4
with_dims(WORKED, "stage_days_sum|stage=qualified", 9)
with_dims(WORKED, "stage_left|stage=qualified", 3)  # 9/3 = 3 days


@pytest.mark.parametrize(
    ("kpi", "dims", "numerator", "denominator", "value"),
    [
        ("calls", (), 12, None, 12),
        ("meetings_booked", (), 3, None, 3),
        ("meeting_rate", (), 3, 12, D("0.25")),
        ("win_rate", (), 3, 4, D("0.75")),
        ("lead_conversion", (), 2, 8, D("0.25")),
        ("sales_cycle_days", (), 45, 3, 15),
        ("bookings", (), 30000, None, 30000),
        ("won_deals", (), 3, None, 3),
        ("average_deal_size", (), 30000, 3, 10000),
        ("revenue", (), 1000, None, 1000),
        ("orders", (), 4, None, 4),
        ("units_sold", (), 7, None, 7),
        ("average_basket", (), 1000, 4, 250),
        ("gross_margin", (), 300, 1200, D("0.25")),
        ("new_customers", (), 2, None, 2),
        ("cac", (), 5000, 2, 2500),
        ("purchase_frequency", (), 4, 3, D(4) / D(3)),
        ("days_to_pay", (), 30, 2, 15),
        ("stage_conversion", (("from", "prospecting"), ("to", "qualified")), 4, 10, D("0.4")),
        # Entered qualified 0 times in this window: no conversion from it.
        ("stage_conversion", (("from", "qualified"), ("to", "meeting")), 0, 0, None),
        ("stage_duration_days", (("stage", "qualified"),), 9, 3, 3),
        ("stage_duration_days", (("stage", "demo"),), 0, 0, None),
    ],
)
def test_windowed_kpis_carry_numerator_and_denominator(kpi, dims, numerator, denominator, value) -> None:
    r = by_key(windowed(WORKED, STAGES))[(kpi, dims)]
    assert (r.numerator, r.denominator, r.value) == (numerator, denominator, value)


@pytest.mark.parametrize(
    ("values", "kpi", "numerator"),
    [
        ({"meetings_booked": 2}, "meeting_rate", 2),  # meetings but no calls
        ({"created_won": 1}, "lead_conversion", 1),
        ({"bookings": 500}, "average_deal_size", 500),  # no won count: not a deal size
        ({"invoiced": 100}, "average_basket", 100),
        ({"margin_with_cost": 10}, "gross_margin", 10),
        ({"spend": 900}, "cac", 900),  # spend but no new customer
        ({"orders": 3}, "purchase_frequency", 3),
        ({"paid_days_sum": 12}, "days_to_pay", 12),
    ],
)
def test_a_zero_denominator_gives_null(values, kpi, numerator) -> None:
    r = by_key(windowed(totals(**values), STAGES))[(kpi, ())]
    assert (r.numerator, r.denominator, r.value) == (numerator, 0, None)


def test_lost_deals_alone_give_a_win_rate_of_zero() -> None:
    r = by_key(windowed(totals(lost=4), STAGES))[("win_rate", ())]
    assert (r.numerator, r.denominator, r.value) == (0, 4, 0)


# --- clv and ltv_to_cac ----------------------------------------------------------------


def test_clv_and_ltv_to_cac_worked_example() -> None:
    # revenue 1000 over 4 orders from 2 customers in a 30-day window, lifetime 1095 days:
    # basket 250 × frequency 2 × 1095/30 = 1000 × 1095 / (2 × 30) = 1,095,000 / 60 = 18,250.
    # cac = 3650 / 1 = 3650, ltv_to_cac = 18,250 / 3650 = 5.
    t = totals({"customers_invoiced": ["c1", "c2"]}, invoiced=1000, orders=4, spend=3650, new_customers=1)
    clv, ratio = lifetime_value(t, D(30), D(1095))
    assert (clv.kpi, clv.numerator, clv.denominator, clv.value) == ("clv", 1_095_000, 60, 18_250)
    assert (ratio.kpi, ratio.numerator, ratio.denominator, ratio.value) == ("ltv_to_cac", 18_250, 3650, 5)


def test_credit_notes_lower_clv() -> None:
    # revenue 1000 − 400 = 600 from 1 customer over 1095 days with lifetime 1095: clv 600.
    t = totals({"customers_invoiced": ["c1"]}, invoiced=1000, credited=400, orders=1)
    clv, _ = lifetime_value(t, D(1095), D(1095))
    assert clv.value == 600


@pytest.mark.parametrize(
    ("t", "length", "clv_defined", "why"),
    [
        (totals(spend=100, new_customers=1), D(30), False, "no orders, no customers"),
        (totals({"customers_invoiced": ["c1"]}, invoiced=100, orders=1), D(0), False, "a window of no days"),
        (totals({"customers_invoiced": ["c1"]}, invoiced=100, orders=1), D(30), True, "no spend: cac null"),
        (totals({"customers_invoiced": ["c1"]}, invoiced=100, orders=1, spend=50), D(30), True,
         "spend but no new customer: cac null"),
    ],
)
def test_ltv_to_cac_is_null_when_a_factor_is(t, length, clv_defined, why) -> None:
    clv, ratio = lifetime_value(t, length, D(1095))
    assert (clv.value is not None) == clv_defined, why
    assert ratio.value is None, why


# --- growth and its price and volume effects ----------------------------------------------


def test_growth_price_and_volume_effects_worked_example() -> None:
    # current: gross 1500, credits 100 → revenue 1400, 30 units (average price 50)
    # previous: gross 1000 → revenue 1000, 25 units (average price 40)
    # revenue_growth = (1400 − 1000) / 1000 = 0.4
    # volume_effect = (30 − 25) × 40 = 200; price_effect = (50 − 40) × 30 = 300;
    # together 500 = the change of gross 1500 − 1000.
    current = totals(invoiced=1500, credited=100, units=30)
    previous = totals(invoiced=1000, units=25)
    r = by_key(growth(current, previous))
    assert (r[("revenue_growth", ())].numerator, r[("revenue_growth", ())].denominator) == (400, 1000)
    assert r[("revenue_growth", ())].value == D("0.4")
    assert r[("volume_effect", ())].value == 200
    assert r[("price_effect", ())].value == 300


def test_no_previous_period_means_no_growth() -> None:
    r = by_key(growth(totals(invoiced=1500, units=30), Totals()))
    assert [r[(k, ())].value for k in ("revenue_growth", "volume_effect", "price_effect")] == [None] * 3


def test_a_period_with_only_a_credit_note_has_volume_but_no_price_effect() -> None:
    # current: no units sold, a credit of 50 → revenue −50; previous: 400 for 10 units (40 each).
    # revenue_growth = (−50 − 400) / 400 = −1.125; volume_effect = (0 − 10) × 40 = −400;
    # price_effect needs a current average price: null.
    r = by_key(growth(totals(credited=50), totals(invoiced=400, units=10)))
    assert r[("revenue_growth", ())].value == D("-1.125")
    assert r[("volume_effect", ())].value == -400
    assert r[("price_effect", ())].value is None


@pytest.mark.parametrize(
    ("window", "start", "previous"),
    [("day", "2026-03-01", "2026-02-28"), ("week", "2026-01-05", "2025-12-29"),
     ("month", "2026-01-01", "2025-12-01"), ("quarter", "2026-01-01", "2025-10-01"),
     ("year", "2026-01-01", "2025-01-01")],
)
def test_previous_start(window: str, start: str, previous: str) -> None:
    assert previous_start(window, start) == previous


# --- window lengths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "start", "tz", "first", "newest", "days"),
    [
        ("7d", "", "UTC", None, None, 7),
        ("30d", "", "UTC", None, None, 30),
        ("90d", "", "UTC", None, None, 90),
        ("all", "", "UTC", date(2026, 1, 1), date(2026, 1, 31), 31),  # both ends included
        ("all", "", "UTC", None, None, 0),
        ("day", "2026-03-29", "Europe/Paris", None, None, 1),  # a 23-hour day is still one day
        ("week", "2026-03-23", "Europe/Paris", None, None, 7),
        ("month", "2026-02-01", "UTC", None, None, 28),
        ("month", "2026-03-01", "Europe/Paris", None, None, 31),
        ("quarter", "2026-01-01", "UTC", None, None, 90),  # 31 + 28 + 31
        ("year", "2024-01-01", "UTC", None, None, 366),
    ],
)
def test_window_days(window, start, tz, first, newest, days) -> None:
    assert window_days(window, start, tz, first, newest) == days


# --- snapshots and pipeline velocity -----------------------------------------------------------


def test_snapshots_worked_example() -> None:
    t = totals(overdue=700)
    for key, amount in {"open_opps|stage=qualified": 2, "open_value|stage=qualified": 5000,
                        "open_opps|stage=proposal": 1, "open_value|stage=proposal": 10000}.items():
        with_dims(t, key, amount)
    # 90 days: 3 won, 1 lost, bookings 30,000, cycles 60 days in all (20 per win).
    # velocity = open × win_rate × average deal / cycle = 3 × 0.75 × 10,000 / 20 = 1125
    #          = open × bookings / ((won + lost) × cycle) = 90,000 / 80
    r = by_key(snapshots(t, totals(won=3, lost=1, bookings=30000, cycle_days_sum=60), STAGES))
    assert r[("overdue_receivables", ())].value == 700
    assert r[("open_opportunities", ())].value == 3
    assert r[("pipeline_value", ())].value == 15000
    assert r[("open_opportunities", (("stage", "qualified"),))].value == 2
    assert r[("pipeline_value", (("stage", "proposal"),))].value == 10000
    assert r[("open_opportunities", (("stage", "demo"),))].value == 0  # every stage, zeros included
    v = r[("pipeline_velocity", ())]
    assert (v.numerator, v.denominator, v.value) == (90000, 80, D("1125"))


@pytest.mark.parametrize("rates", [Totals(), totals(lost=2), totals(won=1, bookings=100)])
def test_no_velocity_without_wins_and_a_cycle(rates: Totals) -> None:
    t = with_dims(Totals(), "open_opps|stage=demo", 4)
    assert by_key(snapshots(t, rates, STAGES))[("pipeline_velocity", ())].value is None
