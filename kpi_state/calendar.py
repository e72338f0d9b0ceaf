"""Calendar windows by event time: which day, ISO week, month, quarter or year holds an instant."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

CALENDAR_WINDOWS = ("day", "week", "month", "quarter", "year")


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_date(ts: float, tz: str) -> date:
    """The calendar date of epoch second `ts` in time zone `tz`."""
    return datetime.fromtimestamp(ts, zone(tz)).date()


def _period_start_date(day: date, window: str) -> date:
    if window == "day":
        return day
    if window == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if window == "month":
        return day.replace(day=1)
    if window == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if window == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"not a calendar window: {window!r}")


def _next_period_date(start: date, window: str) -> date:
    if window == "day":
        return start + timedelta(days=1)
    if window == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[window]
    month_index = start.year * 12 + start.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def _midnight(day: date, tz: str) -> float:
    # Midnight local time; zoneinfo resolves DST gaps by folding forward.
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).timestamp()


def period_bounds(day: date, window: str, tz: str) -> tuple[float, float]:
    """[start, end) in epoch seconds of the calendar `window` containing local `day`."""
    start = _period_start_date(day, window)
    return _midnight(start, tz), _midnight(_next_period_date(start, window), tz)


def period_start_date(day: date, window: str) -> date:
    """First local date of the calendar `window` containing `day`."""
    return _period_start_date(day, window)


def previous_period_date(start: date, window: str) -> date:
    """First local date of the period just before the one starting at `start`."""
    return _period_start_date(start - timedelta(days=1), window)


def next_period_date(start: date, window: str) -> date:
    """First local date of the period just after the one starting at `start`."""
    return _next_period_date(start, window)


def iso_utc(ts: float) -> str:
    """RFC 3339 UTC with a Z, second precision, as the contract's records show."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
