"""Count KPIs: replay safety by offset, rollups to team/region/global, windows, rebuilds."""

from datetime import date, datetime

import pytest

from kpi_state.count_book import CountBook, partial_key
from kpi_state.counts import decode_counts, encode_counts
from kpi_state.directory import RepDirectory


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


MON = ts("2026-11-23T10:00:00+00:00")
SAT = ts("2026-11-28T09:00:00+00:00")


def total(book: CountBook, kpi: str, scope: str, window: str, start: str = "") -> int:
    return book.record((kpi, scope, window, start), 0).value


def test_offsets_already_applied_are_not_counted_again():
    book = CountBook("UTC")
    assert book.apply(0, 5, "r-1", "calls", SAT)
    assert not book.apply(0, 5, "r-1", "calls", SAT)
    assert not book.apply(0, 4, "r-1", "calls", SAT)
    assert book.apply(0, 6, "r-1", "calls", SAT)
    assert total(book, "calls", "rep:r-1", "all") == 2


def test_offsets_are_per_partition():
    book = CountBook("UTC")
    assert book.apply(0, 5, "r-1", "calls", SAT)
    assert book.apply(1, 5, "r-1", "calls", SAT)
    assert total(book, "calls", "rep:r-1", "all") == 2


def test_rollup_to_team_region_and_global():
    directory = RepDirectory()
    directory.place("r-1", "t-a", "emea")
    directory.place("r-2", "t-a", "emea")
    directory.place("r-3", "t-b", "amer")
    book = CountBook("UTC", directory)
    for offset, rep in enumerate(["r-1", "r-1", "r-2", "r-3", "r-4"]):
        book.apply(0, offset, rep, "calls", SAT)
    assert total(book, "calls", "team:t-a", "all") == 3
    assert total(book, "calls", "region:emea", "all") == 3
    assert total(book, "calls", "region:amer", "all") == 1
    # r-4 has no mapping: it counts under `unassigned`.
    assert total(book, "calls", "team:unassigned", "all") == 1
    assert total(book, "calls", "global", "all") == 5


def test_calendar_windows_hold_their_own_periods():
    book = CountBook("UTC")
    book.apply(0, 0, "r-1", "calls", MON)
    book.apply(0, 1, "r-1", "calls", SAT)
    book.apply(0, 2, "r-1", "calls", ts("2026-10-31T12:00:00+00:00"))
    assert total(book, "calls", "global", "day", "2026-11-28") == 1
    assert total(book, "calls", "global", "week", "2026-11-23") == 2
    assert total(book, "calls", "global", "month", "2026-11-01") == 2
    assert total(book, "calls", "global", "month", "2026-10-01") == 1
    assert total(book, "calls", "global", "quarter", "2026-10-01") == 3


def test_time_zone_moves_events_across_days():
    late_evening_utc = ts("2026-11-27T23:30:00+00:00")
    utc, paris = CountBook("UTC"), CountBook("Europe/Paris")
    utc.apply(0, 0, "r-1", "calls", late_evening_utc)
    paris.apply(0, 0, "r-1", "calls", late_evening_utc)
    assert total(utc, "calls", "global", "day", "2026-11-27") == 1
    assert total(paris, "calls", "global", "day", "2026-11-28") == 1
    record = paris.record(("calls", "global", "day", "2026-11-28"), 0)
    assert record.window_start == "2026-11-27T23:00:00Z"


def test_current_records_follow_the_newest_event_time_and_show_zero():
    book = CountBook("UTC")
    book.apply(0, 0, "r-1", "calls", MON)
    book.apply(0, 1, "r-2", "calls", SAT)
    current = {(r.scope, r.window): r for r in book.current_records(0)}
    # r-1 called on Monday only: zero today, one this week.
    assert current[("rep:r-1", "day")].value == 0
    assert current[("rep:r-1", "day")].window_start == "2026-11-28T00:00:00Z"
    assert current[("rep:r-1", "week")].value == 1
    assert current[("global", "all")].value == 2
    assert current[("global", "all")].window_start is None


def test_query_by_start_picks_a_past_period():
    book = CountBook("UTC")
    book.apply(0, 0, "r-1", "calls", MON)
    book.apply(0, 1, "r-1", "calls", SAT)
    records = book.query(0, scope="global", window="day", start=date(2026, 11, 23))
    assert [(r.window_start, r.value) for r in records] == [("2026-11-23T00:00:00Z", 1)]


def test_changed_series_are_reported_once():
    book = CountBook("UTC")
    book.apply(0, 0, "r-1", "calls", SAT)
    changed = book.take_changed()
    assert ("calls", "rep:r-1", "day", "2026-11-28") in changed
    assert ("calls", "global", "all", "") in changed
    assert book.take_changed() == set()


def test_recovered_partials_rebuild_the_same_totals():
    live = CountBook("UTC")
    for offset in range(10):
        live.apply(offset % 2, offset, f"r-{offset % 3}", "calls", SAT + offset)
    persisted = {key: encode_counts(p) for key, p in live.take_dirty_partials().items()}
    recovered = CountBook("UTC")
    for key, raw in persisted.items():
        recovered.load(key, decode_counts(raw))
    for scope in ["global", "rep:r-0", "rep:r-1", "rep:r-2"]:
        assert total(recovered, "calls", scope, "all") == total(live, "calls", scope, "all")
    # And replaying the same offsets after recovery changes nothing.
    assert not recovered.apply(0, 8, "r-2", "calls", SAT + 8)


def test_drop_partition_removes_only_its_contribution():
    book = CountBook("UTC")
    book.apply(0, 0, "r-1", "calls", SAT)
    book.apply(1, 0, "r-1", "calls", SAT)
    book.drop_partition(1)
    assert total(book, "calls", "rep:r-1", "all") == 1
    assert partial_key(1, "r-1") not in book.partials


def test_rebuild_after_a_rep_moves_team():
    directory = RepDirectory()
    directory.place("r-1", "t-a", "emea")
    book = CountBook("UTC", directory)
    book.apply(0, 0, "r-1", "calls", SAT)
    assert directory.place("r-1", "t-b", "emea")
    book.rebuild()
    assert total(book, "calls", "team:t-b", "all") == 1
    assert total(book, "calls", "team:t-a", "all") == 0


@pytest.mark.parametrize("window", ["day", "week", "month", "quarter", "year", "all"])
def test_empty_book_has_no_records(window):
    assert CountBook("UTC").query(0, window=window) == []
