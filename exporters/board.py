"""The live terminal board: KPI records as a green/amber/red table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table

STATUS_STYLE = {"green": "green", "amber": "yellow", "red": "bold red", "unknown": "dim"}
SCOPE_ORDER = {"global": 0, "region": 1, "team": 2, "rep": 3}


def _scope_sort(scope: str) -> tuple[int, str]:
    kind = scope.partition(":")[0]
    return SCOPE_ORDER.get(kind, 9), scope


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return f"{int(value):,}"


def board_table(records: Iterable[dict[str, Any]], *, title: str, max_rows: int = 40) -> Table:
    """Rows are scopes, columns are KPIs; each cell coloured by its status."""
    records = list(records)
    kpis = sorted({r["kpi"] for r in records})
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        cells.setdefault(record["scope"], {})[record["kpi"]] = record
    window_start = next((r.get("window_start") for r in records if r.get("window_start")), None)
    caption = f"window starting {window_start}" if window_start else None
    table = Table(title=title, caption=caption, header_style="bold")
    table.add_column("scope")
    for kpi in kpis:
        table.add_column(kpi, justify="right")
    for scope in sorted(cells, key=_scope_sort)[:max_rows]:
        row = [scope]
        for kpi in kpis:
            record = cells[scope].get(kpi)
            if record is None:
                row.append("")
                continue
            style = STATUS_STYLE.get(record.get("status", "unknown"), "")
            row.append(f"[{style}]{_fmt(record.get('value'))}[/]" if style else _fmt(record.get("value")))
        table.add_row(*row)
    return table
