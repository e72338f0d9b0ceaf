"""Terminal views of KPI records: the live board (scopes × headline KPIs) and one scope's KPIs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table

STATUS_STYLE = {"green": "green", "amber": "yellow", "red": "bold red", "unknown": ""}
SCOPE_ORDER = {"global": 0, "region": 1, "team": 2, "rep": 3}

# (kpi, window, column title): what a sales director reads first.
BOARD_COLUMNS = (
    ("calls", "30d", "calls 30d"),
    ("meetings_booked", "30d", "meetings 30d"),
    ("win_rate", "30d", "win rate 30d"),
    ("won_deals", "30d", "won 30d"),
    ("bookings", "30d", "bookings 30d"),
    ("revenue", "30d", "revenue 30d"),
    ("gross_margin", "30d", "margin 30d"),
    ("days_to_pay", "30d", "days to pay"),
    ("pipeline_value", "all", "pipeline"),
    ("overdue_receivables", "all", "overdue"),
)
BOARD_WINDOWS = tuple(sorted({window for _, window, _ in BOARD_COLUMNS}))


def _scope_sort(scope: str) -> tuple[int, str]:
    return SCOPE_ORDER.get(scope.partition(":")[0], 9), scope


def fmt(record: dict[str, Any] | None) -> str:
    if record is None or record.get("value") is None:
        return "—"
    value, unit = record["value"], record.get("unit")
    if unit == "ratio":
        return f"{value:.0%}" if abs(value) <= 10 else f"{value:,.1f}"
    if unit == "days":
        return f"{value:,.1f} d"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.0f}"  # money, in the reporting currency


def _styled(record: dict[str, Any] | None) -> str:
    text = fmt(record)
    style = STATUS_STYLE.get((record or {}).get("status", "unknown"), "")
    return f"[{style}]{text}[/]" if style else text


def board_table(records: Iterable[dict[str, Any]], *, title: str, max_rows: int = 40) -> Table:
    """Rows are scopes, columns the headline KPIs, each cell coloured by its status."""
    cells: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for record in records:
        if record.get("dims"):
            continue
        cells.setdefault(record["scope"], {})[(record["kpi"], record["window"])] = record
    table = Table(title=title, header_style="bold", caption="currency amounts in the reporting currency")
    table.add_column("scope", no_wrap=True)
    for _, _, heading in BOARD_COLUMNS:
        table.add_column(heading, justify="right")
    for scope in sorted(cells, key=_scope_sort)[:max_rows]:
        row = cells[scope]
        table.add_row(scope, *(_styled(row.get((kpi, window))) for kpi, window, _ in BOARD_COLUMNS))
    return table


def scope_table(records: Iterable[dict[str, Any]], *, title: str) -> Table:
    """One scope: rows are KPIs (with dims), columns the windows present."""
    by_kpi: dict[str, dict[str, dict[str, Any]]] = {}
    windows: list[str] = []
    for record in records:
        label = record["kpi"] + "".join(f" {k}={v}" for k, v in sorted(record.get("dims", {}).items()))
        by_kpi.setdefault(label, {})[record["window"]] = record
        if record["window"] not in windows:
            windows.append(record["window"])
    table = Table(title=title, header_style="bold")
    table.add_column("kpi", no_wrap=True)
    for window in windows:
        table.add_column(window, justify="right")
    for label in sorted(by_kpi):
        table.add_row(label, *(_styled(by_kpi[label].get(window)) for window in windows))
    return table
