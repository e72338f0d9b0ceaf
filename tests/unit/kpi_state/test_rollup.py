"""The rollup (kpi_state.rollup): absolute partial cells, calendar spreading, rolling windows, current periods."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi_state.day_cells import CellUpdate
from kpi_state.rollup import Rollup, Totals


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


def calls(n: int) -> CellUpdate:
    return CellUpdate({"calls": D(n)}, {})


def test_a_partial_cell_replaces_what_its_partition_said_before() -> None:
    rollup = Rollup("UTC")
    rollup.update(0, "rep:a", "2026-03-02", calls(2))
    rollup.update(0, "rep:a", "2026-03-02", calls(5))  # absolute: 5, not 2 + 5
    rollup.update(1, "rep:a", "2026-03-02", calls(3))  # another partition adds up: 5 + 3
    assert rollup.totals("rep:a", "day", "2026-03-02").value("calls") == 8
    rollup.update(0, "rep:a", "2026-03-02", calls(5))  # replayed: harmless
    assert rollup.totals("rep:a", "day", "2026-03-02").value("calls") == 8
    rollup.update(1, "rep:a", "2026-03-02", CellUpdate({}, {}))  # partition 1 emptied its cell
    assert rollup.totals("rep:a", "day", "2026-03-02").value("calls") == 5
    assert rollup.totals("rep:a", "all", "").value("calls") == 5


def test_distinct_members_count_once_across_partitions() -> None:
    rollup = Rollup("UTC")
    rollup.update(0, "global", "2026-03-02", CellUpdate({}, {"customers_invoiced": ["c1", "c2"]}))
    rollup.update(1, "global", "2026-03-03", CellUpdate({}, {"customers_invoiced": ["c2", "c3"]}))
    assert rollup.totals("global", "week", "2026-03-02").distinct("customers_invoiced") == 3  # c1 c2 c3
    rollup.update(0, "global", "2026-03-02", CellUpdate({}, {"customers_invoiced": ["c1"]}))
    # c2 still comes from partition 1.
    assert rollup.totals("global", "week", "2026-03-02").distinct("customers_invoiced") == 3
    rollup.update(1, "global", "2026-03-03", CellUpdate({}, {}))
    assert rollup.totals("global", "week", "2026-03-02").distinct("customers_invoiced") == 1


@pytest.mark.parametrize(
    ("day", "window", "start"),
    [
        # Sunday 1 March 2026 belongs to the ISO week of Monday 23 February.
        ("2026-03-01", "day", "2026-03-01"),
        ("2026-03-01", "week", "2026-02-23"),
        ("2026-03-01", "month", "2026-03-01"),
        ("2026-03-01", "quarter", "2026-01-01"),
        ("2026-03-01", "year", "2026-01-01"),
        ("2026-03-02", "week", "2026-03-02"),
        ("2026-12-31", "quarter", "2026-10-01"),
        ("2027-01-01", "week", "2026-12-28"),
    ],
)
def test_a_day_cell_counts_in_every_calendar_period_holding_it(day: str, window: str, start: str) -> None:
    rollup = Rollup("UTC")
    rollup.update(0, "rep:a", day, calls(4))
    assert rollup.totals("rep:a", window, start).value("calls") == 4
    assert (("rep:a", window, start)) in rollup.take_changed()


def test_days_add_up_in_their_periods() -> None:
    rollup = Rollup("UTC")
    for day, n in [("2026-03-01", 1), ("2026-03-02", 10), ("2026-03-31", 100), ("2026-04-01", 1000)]:
        rollup.update(0, "rep:a", day, calls(n))
    assert rollup.totals("rep:a", "week", "2026-02-23").value("calls") == 1
    assert rollup.totals("rep:a", "week", "2026-03-02").value("calls") == 10
    assert rollup.totals("rep:a", "month", "2026-03-01").value("calls") == 111
    assert rollup.totals("rep:a", "quarter", "2026-01-01").value("calls") == 111
    assert rollup.totals("rep:a", "quarter", "2026-04-01").value("calls") == 1000
    assert rollup.totals("rep:a", "year", "2026-01-01").value("calls") == 1111
    assert rollup.totals("rep:a", "all", "").value("calls") == 1111
    assert rollup.totals("rep:b", "all", "").empty


def test_snapshot_cells_count_in_all_only() -> None:
    rollup = Rollup("UTC")
    rollup.update(0, "global", "", CellUpdate({"overdue": D(700)}, {}))
    assert rollup.totals("global", "all", "").value("overdue") == 700
    assert {series for series in rollup.periods if series[0] == "global"} == {("global", "all", "")}


def test_rolling_windows_are_whole_local_days_up_to_the_newest() -> None:
    rollup = Rollup("UTC")
    # Newest event Tuesday 10 March 2026 12:00: 7d = 4–10 March, 30d = 9 Feb–10 March,
    # 90d = 11 December 2025–10 March.
    for day, n in [("2026-03-04", 1), ("2026-03-03", 10), ("2026-02-09", 100), ("2026-02-08", 1000),
                   ("2025-12-11", 10000), ("2025-12-10", 100000)]:
        rollup.update(0, "rep:a", day, calls(n))
    rollup.see_time(utc("2026-03-10T12:00:00"))
    assert rollup.totals("rep:a", "7d", "").value("calls") == 1
    assert rollup.totals("rep:a", "30d", "").value("calls") == 111
    assert rollup.totals("rep:a", "90d", "").value("calls") == 11111
    assert rollup.totals("rep:a", "all", "").value("calls") == 111111
    # The window moves with the newest event: on 11 March, 4 March is still in, 3 March not.
    rollup.see_time(utc("2026-03-11T00:00:00"))
    assert rollup.totals("rep:a", "7d", "").value("calls") == 0  # 5–11 March
    assert rollup.totals("rep:a", "30d", "").value("calls") == 11  # 10 Feb–11 March


def test_rolling_days_are_local_days() -> None:
    rollup = Rollup("Europe/Paris")
    rollup.update(0, "rep:a", "2026-03-04", calls(1))
    rollup.update(0, "rep:a", "2026-03-03", calls(10))
    # 23:30 UTC on 9 March is 00:30 on 10 March in Paris: 7d = 4–10 March.
    rollup.see_time(utc("2026-03-09T23:30:00"))
    assert rollup.newest_day.isoformat() == "2026-03-10"
    assert rollup.totals("rep:a", "7d", "").value("calls") == 1


def test_time_never_goes_back() -> None:
    rollup = Rollup("UTC")
    rollup.see_time(utc("2026-03-10T12:00:00"))
    rollup.see_time(utc("2026-03-01T12:00:00"))
    assert rollup.newest_day.isoformat() == "2026-03-10"
    assert rollup.newest_ts == utc("2026-03-10T12:00:00")


def test_a_scopes_current_periods_follow_the_newest_day() -> None:
    rollup = Rollup("UTC")
    assert rollup.current_start("week") == ""  # no event yet
    rollup.update(0, "rep:a", "2026-03-02", calls(1))
    rollup.take_changed()
    # Thursday 12 March 2026: week of Monday 9 March.
    rollup.see_time(utc("2026-03-12T09:00:00"))
    assert [rollup.current_start(w) for w in ("day", "week", "month", "quarter", "year")] == [
        "2026-03-12", "2026-03-09", "2026-03-01", "2026-01-01", "2026-01-01"]
    assert rollup.current_start("7d") == rollup.current_start("all") == ""
    changed = rollup.take_changed()
    # The day and week that just became current are published for the known scope,
    # although they hold nothing of it; and its rolling windows moved.
    for series in [("rep:a", "day", "2026-03-12"), ("rep:a", "week", "2026-03-09"),
                   ("rep:a", "month", "2026-03-01"), ("rep:a", "7d", ""), ("rep:a", "90d", "")]:
        assert series in changed, series
    assert rollup.totals("rep:a", "day", "2026-03-12").empty
    assert rollup.take_changed() == set()
    rollup.see_time(utc("2026-03-12T18:00:00"))  # same day: nothing moved
    assert rollup.take_changed() == set()


def test_take_changed_lists_each_touched_series_once() -> None:
    rollup = Rollup("UTC")
    rollup.update(0, "rep:a", "2026-03-02", calls(1))
    rollup.update(1, "rep:a", "2026-03-03", calls(1))
    changed = rollup.take_changed()
    assert {s for s in changed if s[1] == "week"} == {("rep:a", "week", "2026-03-02")}
    assert {s for s in changed if s[1] == "day"} == {("rep:a", "day", "2026-03-02"), ("rep:a", "day", "2026-03-03")}
    assert ("rep:a", "all", "") in changed
    rollup.update(0, "rep:a", "2026-03-02", calls(1))  # the same again: nothing changes
    assert rollup.take_changed() == set()


def test_totals_add_and_subtract_to_nothing() -> None:
    t = Totals()
    t.add({"calls": D(3)}, {"customers_invoiced": ["c1"]}, +1)
    t.add({"calls": D(3)}, {"customers_invoiced": ["c1"]}, -1)
    assert t.empty and t.value("calls") == 0 and t.distinct("customers_invoiced") == 0


_updates = st.lists(
    st.tuples(
        st.integers(0, 2),  # partition
        st.sampled_from(["2026-03-01", "2026-03-02", ""]),  # two days and the snapshot cell
        st.dictionaries(st.sampled_from(["calls", "orders", "invoiced"]),
                        st.decimals(-50, 50, places=2, allow_nan=False, allow_infinity=False).filter(bool),
                        max_size=3),
        st.dictionaries(st.sampled_from(["customers_invoiced", "reps_active"]),
                        st.lists(st.sampled_from(["c1", "c2", "c3"]), unique=True, min_size=1).map(sorted),
                        max_size=2),
    ),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_updates)
def test_every_sequence_of_partial_cells_adds_up_to_the_last_ones(updates) -> None:
    rollup = Rollup("UTC")
    last: dict[tuple[int, str], CellUpdate] = {}
    for partition, day, values, members in updates:
        update = CellUpdate(values, members)
        rollup.update(partition, "rep:a", day, update)
        last[(partition, day)] = update
    # From scratch: what the last word of each partition adds up to, per period.
    for window, start, days in (("day", "2026-03-02", {"2026-03-02"}), ("week", "2026-03-02", {"2026-03-02"}),
                                ("week", "2026-02-23", {"2026-03-01"}),
                                ("all", "", {"2026-03-01", "2026-03-02", ""})):
        expected = Totals()
        for (_, day), update in last.items():
            if day in days:
                expected.add(update.values, update.members, +1)
        got = rollup.totals("rep:a", window, start)
        assert got.values == expected.values, (window, start)
        assert got.members == expected.members, (window, start)
    for day in ("2026-03-01", "2026-03-02", ""):
        expected = Totals()
        for (_, cell_day), update in last.items():
            if cell_day == day:
                expected.add(update.values, update.members, +1)
        merged = rollup.merged.get(("rep:a", day), Totals())
        assert (merged.values, merged.members) == (expected.values, expected.members)


_DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(12)]
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("cell"), st.sampled_from(["rep:a", "rep:b"]), st.integers(0, 1), st.sampled_from(_DAYS),
                  st.dictionaries(st.sampled_from(["calls", "orders"]), st.integers(-5, 5).map(D).filter(bool),
                                  max_size=2),
                  st.lists(st.sampled_from(["c1", "c2"]), unique=True).map(sorted)),
        st.tuples(st.just("ask"), st.sampled_from(["rep:a", "rep:b"]), st.sampled_from([3, 7]), st.sampled_from(_DAYS)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_a_rolling_sum_kept_between_questions_equals_one_summed_afresh(steps) -> None:
    # Two scopes, windows of 3 and 7 days over 12 days: sums moved forward, backward, and far.
    rollup = Rollup("UTC")
    for step in steps:
        if step[0] == "cell":
            _, scope, partition, day, values, members = step
            update = CellUpdate(values, {"customers_invoiced": members} if members else {})
            rollup.update(partition, scope, day.isoformat(), update)
            continue
        _, scope, days, as_of = step
        expected = Totals()
        for back in range(days):
            cell = rollup.merged.get((scope, (as_of - timedelta(days=back)).isoformat()))
            if cell is not None:
                expected.add_totals(cell, +1)
        got = rollup.rolling(scope, days, as_of)
        assert (got.values, got.members) == (expected.values, expected.members), (scope, days, as_of)


def _summed(rollup: Rollup, scope: str, days: list[date]) -> tuple[dict, dict]:
    """The merged cells of `days` added up from scratch: what any period or rolling sum must hold."""
    values: dict[str, D] = {}
    members: dict[str, dict[str, int]] = {}
    for day in days:
        cell = rollup.merged.get((scope, day.isoformat()))
        if cell is None:
            continue
        for key, amount in cell.values.items():
            values[key] = values.get(key, 0) + amount
        for key, ids in cell.members.items():
            for member, times in ids.items():
                members.setdefault(key, {})[member] = members.setdefault(key, {}).get(member, 0) + times
    return ({k: v for k, v in values.items() if v}, {k: v for k, v in members.items() if v})


def _held(totals: Totals) -> tuple[dict, dict]:
    return ({k: v for k, v in totals.values.items() if v}, {k: dict(v) for k, v in totals.members.items() if v})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 40), st.integers(0, 3), st.integers(0, 3),
                          st.frozensets(st.sampled_from("abcd")), st.booleans()), min_size=1, max_size=60))
def test_periods_and_rolling_sums_hold_every_update_whenever_they_are_read(steps) -> None:
    # Updates reach the periods and the kept rolling sums when something reads them; reads
    # in between (a rolling sum moving to another day included) must see every update.
    first = date(2026, 1, 1)
    rollup = Rollup("UTC")
    for partition, offset, n_calls, orders, customers, read in steps:
        day = first + timedelta(days=offset)
        members = {"customers_invoiced": sorted(customers)} if customers else {}
        rollup.update(partition, "rep:a", day.isoformat(),
                      CellUpdate({k: D(v) for k, v in (("calls", n_calls), ("orders", orders)) if v}, members))
        if read:
            as_of = first + timedelta(days=(offset * 7) % 45)
            for length in (7, 30):
                window = [as_of - timedelta(days=back) for back in range(length)]
                assert _held(rollup.rolling("rep:a", length, as_of)) == _summed(rollup, "rep:a", window)
    days = [first + timedelta(days=n) for n in range(41)]
    assert _held(rollup.periods[("rep:a", "all", "")]) == _summed(rollup, "rep:a", days)
    january = [d for d in days if d.month == 1]
    assert _held(rollup.totals("rep:a", "month", "2026-01-01")) == _summed(rollup, "rep:a", january)
    as_of = days[-1]
    assert _held(rollup.rolling("rep:a", 7, as_of)) == _summed(rollup, "rep:a", days[-7:])
