"""Calendar windows: boundaries, ISO weeks, quarters and time zones."""

from datetime import date, datetime, timezone

import pytest

from kpi_state.calendar import iso_utc, local_date, period_bounds, previous_period_date


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("day", "window", "tz", "start", "end"),
    [
        (date(2026, 11, 28), "day", "UTC", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z"),
        # 2026-11-28 is a Saturday: its ISO week starts Monday 23rd.
        (date(2026, 11, 28), "week", "UTC", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z"),
        # ISO week spanning a year boundary.
        (date(2027, 1, 1), "week", "UTC", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z"),
        (date(2026, 11, 28), "month", "UTC", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z"),
        (date(2026, 12, 31), "month", "UTC", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        (date(2026, 11, 28), "quarter", "UTC", "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        (date(2026, 2, 14), "quarter", "UTC", "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        (date(2026, 11, 28), "year", "UTC", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        # Paris is UTC+1 in winter: the local day starts at 23:00 UTC the day before.
        (date(2026, 11, 28), "day", "Europe/Paris", "2026-11-27T23:00:00Z", "2026-11-28T23:00:00Z"),
        # The DST change day in Paris lasts 23 hours.
        (date(2026, 3, 29), "day", "Europe/Paris", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
        (date(2026, 11, 28), "month", "America/New_York", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z"),
    ],
)
def test_period_bounds(day, window, tz, start, end):
    lo, hi = period_bounds(day, window, tz)
    assert (iso_utc(lo), iso_utc(hi)) == (start, end)


def test_local_date_follows_the_time_zone():
    instant = ts("2026-11-27T23:30:00+00:00")
    assert local_date(instant, "UTC") == date(2026, 11, 27)
    assert local_date(instant, "Europe/Paris") == date(2026, 11, 28)
    assert local_date(instant, "America/Los_Angeles") == date(2026, 11, 27)


@pytest.mark.parametrize(
    ("start", "window", "previous"),
    [
        (date(2026, 1, 1), "quarter", date(2025, 10, 1)),
        (date(2026, 3, 1), "month", date(2026, 2, 1)),
        (date(2026, 11, 23), "week", date(2026, 11, 16)),
        (date(2026, 1, 1), "year", date(2025, 1, 1)),
    ],
)
def test_previous_period(start, window, previous):
    assert previous_period_date(start, window) == previous


def test_unknown_window_is_an_error():
    with pytest.raises(ValueError):
        period_bounds(date(2026, 1, 1), "fortnight", "UTC")


def test_iso_utc_has_a_z():
    assert iso_utc(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()) == "2026-01-02T03:04:05Z"
