"""The KPI view (kpi_state.kpi_view): records and their keys, publishing only what moved, current() and at()."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D

from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig
from kpi_state.rollup import Rollup

STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
STAMP = datetime.fromisoformat("2026-03-02T15:00:05+00:00").timestamp()


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


def view(tz: str = "UTC") -> KpiView:
    return KpiView(Rollup(tz), ViewConfig(tz=tz, stages=STAGES, currency="EUR"))


def feed(v: KpiView, day: str, at: str, **values: int) -> None:
    v.rollup.update(0, "rep:a", day, CellUpdate({k: D(n) for k, n in values.items()}, {}))
    v.rollup.see_time(utc(at))


def test_records_and_their_keys() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4, meetings_booked=1)
    records = {r.key: r for r in v.refresh(STAMP)}
    calls = records["calls|rep:a|day|2026-03-02T00:00:00Z"]
    assert (calls.value, calls.numerator, calls.denominator, calls.unit) == (4, 4, None, "count")
    assert (calls.window_start, calls.window_end, calls.updated_at) == (
        "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", "2026-03-02T15:00:05Z")
    rate = records["meeting_rate|rep:a|week|2026-03-02T00:00:00Z"]  # Monday 2 March starts its week
    assert (rate.value, rate.numerator, rate.denominator, rate.unit) == (0.25, 1, 4, "ratio")
    assert records["bookings|rep:a|month|2026-03-01T00:00:00Z"].unit == "EUR"
    assert records["sales_cycle_days|rep:a|quarter|2026-01-01T00:00:00Z"].unit == "days"
    # Dims are part of the key, in name order.
    conversion = records["stage_conversion|rep:a|day|2026-03-02T00:00:00Z|from=prospecting|to=qualified"]
    assert conversion.dims == {"from": "prospecting", "to": "qualified"}
    assert "stage_duration_days|rep:a|year|2026-01-01T00:00:00Z|stage=demo" in records
    # Rolling windows and `all` have one key each; their record says which days they cover.
    week = records["calls|rep:a|7d|"]
    assert (week.value, week.window_start, week.window_end) == (4, "2026-02-24T00:00:00Z", "2026-03-03T00:00:00Z")
    lifetime = records["calls|rep:a|all|"]
    assert (lifetime.value, lifetime.window_start) == (4, None)
    assert "pipeline_value|rep:a|all||stage=demo" in records
    assert "pipeline_value|rep:a|day|2026-03-02T00:00:00Z|stage=demo" not in records  # `all` only
    assert "revenue_growth|rep:a|month|2026-03-01T00:00:00Z" in records  # calendar windows only
    assert "revenue_growth|rep:a|30d|" not in records


def test_calendar_keys_follow_the_time_zone() -> None:
    v = view("Europe/Paris")
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=1)
    keys = {r.key for r in v.refresh(STAMP)}
    # Midnight in Paris (CET, +1) is 23:00 UTC the day before.
    assert "calls|rep:a|day|2026-03-01T23:00:00Z" in keys
    assert "calls|rep:a|month|2026-02-28T23:00:00Z" in keys


def test_only_what_moved_is_published_again() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4, meetings_booked=1)
    v.refresh(STAMP)
    assert v.refresh(STAMP) == []  # nothing changed
    feed(v, "2026-03-02", "2026-03-02T15:10:00", calls=5, meetings_booked=1)
    again = {r.key: r for r in v.refresh(STAMP)}
    assert again["calls|rep:a|day|2026-03-02T00:00:00Z"].value == 5
    assert again["meeting_rate|rep:a|day|2026-03-02T00:00:00Z"].value == 0.2  # 1 / 5
    # Unchanged KPIs of the same series stay quiet.
    assert "emails|rep:a|day|2026-03-02T00:00:00Z" not in again
    assert "meetings_booked|rep:a|day|2026-03-02T00:00:00Z" not in again
    assert v.latest["calls|rep:a|day|2026-03-02T00:00:00Z"].value == 5


def test_a_changed_period_recomputes_the_growth_of_the_next() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-03T10:00:00", invoiced=100, units=1)
    feed(v, "2026-03-03", "2026-03-03T10:00:00", invoiced=150, units=1)
    first = {r.key: r for r in v.refresh(STAMP)}
    assert first["revenue_growth|rep:a|day|2026-03-03T00:00:00Z"].value == 0.5  # (150 − 100) / 100
    feed(v, "2026-03-02", "2026-03-03T10:00:00", invoiced=200, units=1)  # a late correction of Monday
    second = {r.key: r for r in v.refresh(STAMP)}
    assert second["revenue_growth|rep:a|day|2026-03-03T00:00:00Z"].value == -0.25  # (150 − 200) / 200


def test_current_shows_the_current_period_of_every_key() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4)
    v.refresh(STAMP)
    feed(v, "2026-03-05", "2026-03-05T09:00:00", calls=2)  # Thursday of the same week
    v.refresh(STAMP)
    current = {r.key: r for r in v.current()}
    assert current["calls|rep:a|day|2026-03-05T00:00:00Z"].value == 2
    assert "calls|rep:a|day|2026-03-02T00:00:00Z" not in current  # an earlier day
    assert current["calls|rep:a|week|2026-03-02T00:00:00Z"].value == 6
    assert current["calls|rep:a|7d|"].value == 6
    assert current["calls|rep:a|all|"].value == 6
    assert v.latest["calls|rep:a|day|2026-03-02T00:00:00Z"].value == 4  # history stays readable


def test_at_reads_the_periods_holding_a_date() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4)
    feed(v, "2026-04-07", "2026-04-07T15:00:00", calls=1)
    v.refresh(STAMP)
    days = {r.key for r in v.at(date(2026, 3, 2), "day") if r.kpi == "calls"}
    assert days == {"calls|rep:a|day|2026-03-02T00:00:00Z"}
    kinds = {(r.window, r.window_start) for r in v.at(date(2026, 3, 4), None) if r.kpi == "calls"}
    # 4 March holds no event, but its week, month, quarter and year do.
    assert kinds == {("week", "2026-03-02T00:00:00Z"), ("month", "2026-03-01T00:00:00Z"),
                     ("quarter", "2026-01-01T00:00:00Z"), ("year", "2026-01-01T00:00:00Z")}
    march = [r for r in v.at(date(2026, 3, 31), "month") if r.kpi == "calls"]
    assert [r.value for r in march] == [4]


def test_a_past_period_publishes_only_the_kpis_that_hold_something() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4)
    feed(v, "2026-03-09", "2026-03-09T09:00:00", calls=1)  # a week later: 2 March is past
    keys = {r.key for r in v.refresh(STAMP)}
    past = {k for k in keys if k.split("|")[2:4] == ["day", "2026-03-02T00:00:00Z"]}
    # calls held something; meeting_rate is 0 of 4 calls, a value; emails and win_rate hold nothing.
    assert {k.split("|")[0] for k in past} == {"calls", "meeting_rate"}
    # The current periods publish every KPI, zeros included: boards and rules need them.
    assert "emails|rep:a|day|2026-03-09T00:00:00Z" in keys
    assert "win_rate|rep:a|week|2026-03-09T00:00:00Z" in keys
    assert "emails|rep:a|7d|" in keys and "emails|rep:a|all|" in keys


def test_a_published_past_record_follows_its_kpi_back_to_empty() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4)
    v.refresh(STAMP)  # 2 March is current: every KPI published
    feed(v, "2026-03-09", "2026-03-09T09:00:00", calls=1)
    v.refresh(STAMP)
    # An event of 2 March withdrawn later: the day is past and its calls record goes back to 0.
    v.rollup.update(0, "rep:a", "2026-03-02", CellUpdate({}, {}))
    again = {r.key: r for r in v.refresh(STAMP)}
    assert again["calls|rep:a|day|2026-03-02T00:00:00Z"].value == 0


def test_after_a_recovery_every_record_is_published_again_empty_ones_included() -> None:
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4)
    feed(v, "2026-03-09", "2026-03-09T09:00:00", calls=1)
    v.refresh(STAMP)
    # A fresh view over the same state (a restarted worker) does not know what left before.
    restarted = KpiView(v.rollup, v.config)
    restarted.republish_all()
    keys = {r.key for r in restarted.refresh(STAMP)}
    assert "emails|rep:a|day|2026-03-02T00:00:00Z" in keys  # a zero the crash may have hidden
    # Then back to the rule: a new past day publishes only what holds something.
    feed(restarted, "2026-03-03", "2026-03-09T09:00:00", calls=2)
    later = {r.key for r in restarted.refresh(STAMP)}
    assert "calls|rep:a|day|2026-03-03T00:00:00Z" in later
    assert "emails|rep:a|day|2026-03-03T00:00:00Z" not in later


def test_the_key_a_record_is_filed_under_is_the_one_its_fields_spell() -> None:
    from kpi_state.records import record_key

    v = view("Europe/Paris")
    feed(v, "2026-03-02", "2026-03-02T15:00:00", calls=4, **{"stage_entered|stage=demo": 2})
    records = v.refresh(STAMP)
    assert len(records) > 100
    for record in records:
        assert record.key == record_key(record.kpi, record.scope, record.window, record.window_start, record.dims)
        assert v.latest[record.key] is record


def test_results_as_of_for_some_kpis_are_those_of_the_whole_computation() -> None:
    from kpi_state.catalogue import CATALOGUE
    from kpi_state.rollup import WINDOWS

    v = view()
    rich = dict(calls=9, meetings_booked=2, won=3, lost=2, bookings=900, cycle_days_sum=40, invoiced=500,
                credited=20, orders=4, units=12, spend=80, new_customers=2, margin_with_cost=90,
                gross_with_cost=300, paid_days_sum=30, paid_count=2, opportunities_created=5, created_won=1,
                overdue=70, **{"stage_entered|stage=demo": 4, "stage_advanced|from=demo|to=proposal": 1,
                               "open_opps|stage=demo": 2, "open_value|stage=demo": 400})
    feed(v, "2026-02-27", "2026-03-02T15:00:00", **rich)
    feed(v, "2026-03-02", "2026-03-02T15:00:00", **rich)
    v.rollup.update(0, "rep:a", "", CellUpdate({"overdue": D(70), "open_opps|stage=demo": D(2)}, {}))
    for window in WINDOWS:
        _, everything = v.results_as_of("rep:a", window, date(2026, 3, 2))
        assert everything, window
        for kpi in CATALOGUE:
            _, some = v.results_as_of("rep:a", window, date(2026, 3, 2), frozenset({kpi}))
            assert [r for r in some if r.kpi == kpi] == [r for r in everything if r.kpi == kpi], (window, kpi)


def test_lifetime_kpis_of_a_quiet_scope_follow_the_newest_day() -> None:
    # clv over `all` lasts from the scope's first invoice to the newest event time: a scope
    # with nothing new must still see its length grow as other scopes' events move time on.
    v = view()
    v.rollup.update(0, "rep:a", "2026-03-02",
                    CellUpdate({"invoiced": D(1000), "orders": D(1)}, {"customers_invoiced": ["c1"]}))
    v.rollup.see_time(utc("2026-03-02T15:00:00"))
    first = {r.key: r for r in v.refresh(STAMP)}
    assert first["clv|rep:a|all|"].value == 1000 * 1095 / 1  # one day so far
    v.rollup.update(0, "rep:b", "2026-03-11", CellUpdate({"calls": D(1)}, {}))
    v.rollup.see_time(utc("2026-03-11T09:00:00"))
    later = {r.key: r for r in v.refresh(STAMP)}
    assert later["clv|rep:a|all|"].value == 1000 * 1095 / 10  # 2 to 11 March: ten days
    assert "calls|rep:a|all|" not in later  # what did not move stays quiet


def objective_rule(kpi: str, goal: int) -> str:
    """A thresholds-file rule on `all` with one objective for rep:a."""
    return (f"  {kpi}:\n    windows: [all]\n    direction: higher\n    red: 1\n    objectives:\n"
            f"      - scope: \"rep:a\"\n        window: all\n        value: {goal}\n")


OBJECTIVES = "version: 1\nkpis:\n" + objective_rule("clv", 50000) + objective_rule("calls", 10)


def test_when_only_the_day_moved_the_lifetime_records_equal_a_full_recomputation() -> None:
    # A quiet scope's `all` series is recomputed for its lifetime and snapshot KPIs only;
    # everything it publishes, objective attainment included, is what a full pass gives.
    from kpi_state.thresholds import load_thresholds

    def fed() -> KpiView:
        v = KpiView(Rollup("UTC"), ViewConfig(tz="UTC", stages=STAGES, currency="EUR",
                                              thresholds=load_thresholds(OBJECTIVES)))
        v.rollup.update(0, "rep:a", "2026-03-02", CellUpdate(
            {"invoiced": D(1000), "orders": D(1), "calls": D(4), "won": D(1), "bookings": D(1000),
             "cycle_days_sum": D(5)}, {"customers_invoiced": ["c1"]}))
        v.rollup.update(0, "rep:a", "", CellUpdate({"open_opps|stage=demo": D(2), "open_value|stage=demo": D(800)}, {}))
        v.rollup.see_time(utc("2026-03-02T15:00:00"))
        return v

    quiet = fed()
    quiet.refresh(STAMP)
    quiet.rollup.update(0, "rep:b", "2026-03-11", CellUpdate({"calls": D(1)}, {}))
    quiet.rollup.see_time(utc("2026-03-11T09:00:00"))  # rep:a gets nothing: only the day moves
    moved = {r.key: r for r in quiet.refresh(STAMP)}
    assert quiet._day_only == {("rep:a", "all", "")}
    assert moved["clv|rep:a|all|"].value == 1000 * 1095 / 10
    assert moved["objective_attainment|rep:a|all||kpi=clv"].value == 1000 * 1095 / 10 / 50000
    assert "objective_attainment|rep:a|all||kpi=calls" not in moved  # unchanged, not nulled
    assert "calls|rep:a|all|" not in moved

    full = fed()
    full.refresh(STAMP)
    full.rollup.update(0, "rep:b", "2026-03-11", CellUpdate({"calls": D(1)}, {}))
    full.rollup.see_time(utc("2026-03-11T09:00:00"))
    full.republish_all()  # every series, every KPI computed
    full.refresh(STAMP)
    lifetime = {k: (r.value, r.numerator, r.denominator, r.status)
                for k, r in full.latest.items() if k.split("|")[1:3] == ["rep:a", "all"]}
    assert {k: (r.value, r.numerator, r.denominator, r.status) for k, r in quiet.latest.items()
            if k in lifetime} == lifetime
    assert quiet.latest["objective_attainment|rep:a|all||kpi=calls"].value == 4 / 10


def test_pipeline_velocity_as_of_a_day_reads_the_90d_rates_of_that_day() -> None:
    # Alerts judge past days while newer ones are already in: a win after the judged day
    # must not change the velocity judged for it.
    v = view()
    feed(v, "2026-03-02", "2026-03-02T15:00:00", won=1, lost=1, bookings=1000, cycle_days_sum=10)
    v.rollup.update(0, "rep:a", "", CellUpdate({"open_opps|stage=demo": D(4)}, {}))
    _, before = v.results_as_of("rep:a", "all", date(2026, 3, 2), frozenset({"pipeline_velocity"}))
    feed(v, "2026-03-05", "2026-03-05T15:00:00", won=3, bookings=9000, cycle_days_sum=90)
    _, judged = v.results_as_of("rep:a", "all", date(2026, 3, 2), frozenset({"pipeline_velocity"}))
    velocity = [r for r in judged if r.kpi == "pipeline_velocity"]
    assert velocity == [r for r in before if r.kpi == "pipeline_velocity"]
    # open 4 × bookings 1000 / ((won 1 + lost 1) × cycle 10 days)
    assert velocity[0].value == D(4000) / D(20)
    _, now = v.results_as_of("rep:a", "all", date(2026, 3, 5), frozenset({"pipeline_velocity"}))
    assert [r.value for r in now if r.kpi == "pipeline_velocity"] == [D(4 * 10000) / D(5 * 25)]
