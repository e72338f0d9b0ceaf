"""The oracle's calendar (tests.oracle.periods), against dates and instants worked out by hand.

2026 facts used below: 1 March is a Sunday, so 29 March (Paris springs forward at 01:00 UTC,
CET +1 → CEST +2) and 25 October (falls back at 01:00 UTC, CEST +2 → CET +1) are Sundays.
"""

from __future__ import annotations

import ast
from datetime import date, datetime
from pathlib import Path

import pytest

from tests.oracle import periods


def utc(text: str) -> float:
    return datetime.fromisoformat(text + "+00:00").timestamp()


@pytest.mark.parametrize(
    ("instant", "tz", "day"),
    [
        ("2026-11-27T23:30:00", "UTC", date(2026, 11, 27)),
        # 23:30 UTC is 00:30 CET the next day.
        ("2026-11-27T23:30:00", "Europe/Paris", date(2026, 11, 28)),
        # 23:30 UTC is 15:30 PST the same day.
        ("2026-11-27T23:30:00", "America/Los_Angeles", date(2026, 11, 27)),
        # Spring forward: 28 March ends at 23:00 UTC (CET), 29 March ends at 22:00 UTC (CEST).
        ("2026-03-28T22:59:59", "Europe/Paris", date(2026, 3, 28)),
        ("2026-03-28T23:00:00", "Europe/Paris", date(2026, 3, 29)),
        ("2026-03-29T00:59:59", "Europe/Paris", date(2026, 3, 29)),  # 01:59:59 CET
        ("2026-03-29T01:00:00", "Europe/Paris", date(2026, 3, 29)),  # 03:00 CEST
        ("2026-03-29T21:59:59", "Europe/Paris", date(2026, 3, 29)),
        ("2026-03-29T22:00:00", "Europe/Paris", date(2026, 3, 30)),
        # Fall back: 25 October starts at 22:00 UTC (CEST) and ends at 23:00 UTC (CET).
        ("2026-10-24T22:00:00", "Europe/Paris", date(2026, 10, 25)),
        ("2026-10-25T22:59:59", "Europe/Paris", date(2026, 10, 25)),
        ("2026-10-25T23:00:00", "Europe/Paris", date(2026, 10, 26)),
    ],
)
def test_local_day(instant: str, tz: str, day: date) -> None:
    assert periods.local_day(utc(instant), tz) == day


@pytest.mark.parametrize(
    ("day", "period", "first", "after"),
    [
        (date(2026, 3, 29), "day", date(2026, 3, 29), date(2026, 3, 30)),
        (date(2026, 2, 28), "day", date(2026, 2, 28), date(2026, 3, 1)),
        # A Sunday belongs to the ISO week that started the Monday before.
        (date(2026, 3, 29), "week", date(2026, 3, 23), date(2026, 3, 30)),
        (date(2026, 3, 23), "week", date(2026, 3, 23), date(2026, 3, 30)),
        # Friday 1 January 2027 is in the ISO week of Monday 28 December 2026.
        (date(2027, 1, 1), "week", date(2026, 12, 28), date(2027, 1, 4)),
        # Sunday 3 January 2021 is in week 53 of 2020, from Monday 28 December 2020.
        (date(2021, 1, 3), "week", date(2020, 12, 28), date(2021, 1, 4)),
        (date(2026, 3, 29), "month", date(2026, 3, 1), date(2026, 4, 1)),
        (date(2026, 12, 31), "month", date(2026, 12, 1), date(2027, 1, 1)),
        (date(2026, 3, 31), "quarter", date(2026, 1, 1), date(2026, 4, 1)),
        (date(2026, 4, 1), "quarter", date(2026, 4, 1), date(2026, 7, 1)),
        (date(2026, 11, 28), "quarter", date(2026, 10, 1), date(2027, 1, 1)),
        (date(2026, 11, 28), "year", date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_period_first_day_and_the_next_period(day: date, period: str, first: date, after: date) -> None:
    assert periods.first_day(day, period) == first
    assert periods.first_day_after(first, period) == after


@pytest.mark.parametrize(
    ("start", "period", "before"),
    [
        (date(2026, 3, 1), "day", date(2026, 2, 28)),
        (date(2026, 3, 30), "week", date(2026, 3, 23)),
        (date(2026, 1, 4), "week", date(2025, 12, 29)),
        (date(2026, 3, 1), "month", date(2026, 2, 1)),
        (date(2026, 1, 1), "month", date(2025, 12, 1)),
        (date(2026, 1, 1), "quarter", date(2025, 10, 1)),
        (date(2026, 1, 1), "year", date(2025, 1, 1)),
    ],
)
def test_the_period_before(start: date, period: str, before: date) -> None:
    assert periods.first_day_before(start, period) == before


@pytest.mark.parametrize(
    ("day", "tz", "midnight"),
    [
        (date(2026, 11, 28), "UTC", "2026-11-28T00:00:00Z"),
        (date(2026, 11, 28), "Europe/Paris", "2026-11-27T23:00:00Z"),  # CET +1
        (date(2026, 7, 1), "Europe/Paris", "2026-06-30T22:00:00Z"),  # CEST +2
        (date(2026, 3, 29), "Europe/Paris", "2026-03-28T23:00:00Z"),  # still CET at midnight
        (date(2026, 3, 30), "Europe/Paris", "2026-03-29T22:00:00Z"),  # now CEST
        (date(2026, 10, 25), "Europe/Paris", "2026-10-24T22:00:00Z"),  # still CEST at midnight
        (date(2026, 10, 26), "Europe/Paris", "2026-10-25T23:00:00Z"),  # now CET
        (date(2026, 11, 1), "America/New_York", "2026-11-01T04:00:00Z"),  # EDT −4
    ],
)
def test_local_midnight(day: date, tz: str, midnight: str) -> None:
    assert periods.utc_text(periods.local_midnight(day, tz)) == midnight


@pytest.mark.parametrize(
    ("day", "period", "hours"),
    [
        (date(2026, 3, 29), "day", 23),  # spring forward
        (date(2026, 10, 25), "day", 25),  # fall back
        (date(2026, 3, 29), "week", 7 * 24 - 1),
        (date(2026, 3, 1), "month", 31 * 24 - 1),
        (date(2026, 10, 1), "month", 31 * 24 + 1),
        (date(2026, 1, 1), "year", 365 * 24),  # one hour lost, one gained
    ],
)
def test_periods_across_a_dst_change_in_paris(day: date, period: str, hours: int) -> None:
    start = periods.first_day(day, period)
    lo = periods.local_midnight(start, "Europe/Paris")
    hi = periods.local_midnight(periods.first_day_after(start, period), "Europe/Paris")
    assert hi - lo == hours * 3600


@pytest.mark.parametrize("period", ["7d", "fortnight", "all"])
def test_not_a_calendar_period(period: str) -> None:
    with pytest.raises(ValueError, match="not a calendar period"):
        periods.first_day(date(2026, 1, 1), period)
    with pytest.raises(ValueError, match="not a calendar period"):
        periods.first_day_after(date(2026, 1, 1), period)


PRODUCT = ("kpi_state", "agents", "streams", "exporters")


def imported_modules(source: str) -> set[str]:
    """Every module a source file imports (`from a import b` counts as a.b)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def test_the_import_check_sees_engine_logic() -> None:
    assert imported_modules("from kpi_state import events as ev, calendar") == {
        "kpi_state.events", "kpi_state.calendar"}


def test_the_oracle_shares_only_the_event_structs_with_the_engine() -> None:
    # Sharing the engine's logic would make equality tests compare the code with itself.
    for path in sorted(Path(periods.__file__).parent.glob("*.py")):
        product = {m for m in imported_modules(path.read_text()) if m.split(".")[0] in PRODUCT}
        # kpi_state.events.X: a struct of the events module
        assert {m for m in product if not m.startswith("kpi_state.events")} == set(), path.name
