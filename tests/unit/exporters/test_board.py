"""The terminal views: short numbers, natural window order, role columns, paging, 80 columns."""

import pytest
from rich.console import Console

from exporters.board import WINDOW_ORDER, fmt, role_table, scope_table, short_number


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (7, "7"), (999, "999"), (1000, "1.0k"), (12345, "12.3k"), (123456, "123k"),
     (1234567, "1.2M"), (-45600, "-45.6k"), (2.5, "2.5"), (3_400_000_000, "3.4G")],
)
def test_short_numbers(value, text):
    assert short_number(value) == text


def rec(kpi, scope, window, value, unit="count", status="unknown", dims=None):
    return {"kpi": kpi, "scope": scope, "window": window, "value": value, "unit": unit,
            "status": status, "dims": dims or {}, "window_start": None}


def test_formats_by_unit():
    assert fmt(rec("win_rate", "global", "30d", 0.4231, "ratio")) == "42%"
    assert fmt(rec("ltv_to_cac", "global", "30d", 3.24, "ratio")) == "3.2×"
    assert fmt(rec("sales_cycle_days", "global", "30d", 12.34, "days")) == "12.3d"
    assert fmt(rec("bookings", "global", "30d", 1234567.0, "EUR")) == "1.2M"
    assert fmt(rec("bookings", "global", "30d", None, "EUR")) == "—"


def render(renderable, width=80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_scope_table_puts_windows_in_natural_order_and_fits_80_columns():
    records = [rec("calls", "global", w, 12345) for w in reversed(WINDOW_ORDER)]
    records.append(rec("stage_conversion", "global", "30d", 0.5, "ratio", dims={"from": "qualified", "to": "meeting"}))
    text = render(scope_table(records, title="KPIs of global"))
    header = next(line for line in text.splitlines() if "kpi" in line)
    assert header.split()[1:] == ["day", "week", "month", "7d", "30d", "all"]
    assert "12.3k" in text and "conv qualified→meeting" in text
    records.append(rec("stage_conversion", "global", "30d", 0.5, "ratio", dims={"from": "proposal", "to": "negotiation"}))
    assert "conv proposal→negotiation" in render(scope_table(records, title="t"))
    assert max(len(line) for line in text.splitlines()) <= 80


def test_director_view_rows_columns_statuses_and_pages():
    records = [rec("bookings", "global", "30d", 5000, "EUR", status="red")]
    records += [rec("bookings", f"rep:r-{i:02d}", "30d", i * 1000, "EUR") for i in range(1, 21)]
    records += [rec("bookings", "rep:r-01", "7d", 1, "EUR"), rec("bookings", "region:emea", "30d", 1, "EUR")]
    records.append(rec("pipeline_value", "global", "all", 2_500_000, "EUR"))
    first = role_table("director", records, rows_per_page=15)
    assert (first.page, first.pages, first.rows) == (0, 2, 15)
    text = render(first.table)
    assert text.splitlines()[0].split()[:3] == ["scope", "bookings", "win"]
    assert "region:emea" not in text  # directors read teams and reps
    assert "2.5M" in text and "pipeline ·all" in text
    cell = first.table.columns[1]._cells[0]
    assert str(cell) == "5.0k" and cell.style == "bold red"
    second = role_table("director", records, rows_per_page=15, page=1)
    assert second.rows == 6 and "rep:r-20" in render(second.table)
    only = role_table("director", records, scope="rep:r-03")
    assert only.rows == 1


def test_firing_alerts_under_a_board_take_one_line_each_in_an_80_column_terminal():
    from rich.console import Console

    from exporters.alerts_board import alert_lines_of

    alerts = [
        {"labels": {"severity": "critical", "scope": f"rep:r-{i:02d}", "kpi": "win_rate", "window": "30d"},
         "startsAt": f"2026-11-{10 + i:02d}T00:00:00Z",
         "context": {"reading": "work better: efficiency is red while activity holds up"}}
        for i in range(5)
    ]
    console = Console(width=80, record=True, color_system=None)
    console.print(alert_lines_of(alerts, max_rows=3))
    lines = console.export_text().splitlines()
    assert lines[0] == "Firing alerts (5)"
    assert len(lines) == 4  # the title and the three newest, one line each
    assert lines[1].startswith("critical rep:r-04 win_rate 30d since 2026-11-14")
    assert all(len(line) <= 80 for line in lines)
