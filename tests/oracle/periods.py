"""The oracle's own calendar: local days and day/ISO week/month/quarter/year periods, with zoneinfo."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

PERIODS = ("day", "week", "month", "quarter", "year")
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


def local_day(ts: float, tz: str) -> date:
    """The wall-clock date in `tz` at epoch second `ts`."""
    return datetime.fromtimestamp(ts, timezone.utc).astimezone(ZoneInfo(tz)).date()


def first_day(day: date, period: str) -> date:
    """The first local date of the `period` that holds `day`."""
    if period == "day":
        return day
    if period == "week":
        year, week, _ = day.isocalendar()
        return date.fromisocalendar(year, week, 1)
    if period == "month":
        return date(day.year, day.month, 1)
    if period == "quarter":
        return date(day.year, 1 + 3 * ((day.month - 1) // 3), 1)
    if period == "year":
        return date(day.year, 1, 1)
    raise ValueError(f"not a calendar period: {period!r}")


def first_day_after(start: date, period: str) -> date:
    """The first local date of the period following the one that starts on `start`."""
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(weeks=1)
    if period not in _MONTHS:
        raise ValueError(f"not a calendar period: {period!r}")
    carry, month0 = divmod(start.month - 1 + _MONTHS[period], 12)
    return date(start.year + carry, month0 + 1, 1)


def first_day_before(start: date, period: str) -> date:
    """The first local date of the period just before the one that starts on `start`."""
    return first_day(start - timedelta(days=1), period)


def local_midnight(day: date, tz: str) -> float:
    """Epoch second at which `day` begins in `tz`.

    Where a DST change skips midnight, fold=0 reads 00:00 with the offset before the change,
    which is the very instant of the change: the first instant of that day.
    """
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()


def utc_text(ts: float) -> str:
    """RFC 3339 UTC, second precision, with a Z: the contract's window_start."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
