"""Terminal views of KPI records for an 80×24 terminal: one board per role, and one scope's KPIs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from kpi_state.catalogue import CATALOGUE

STATUS_STYLE = {"green": "green", "amber": "yellow", "red": "bold red"}
WINDOW_ORDER = ("day", "week", "month", "quarter", "year", "7d", "30d", "90d", "all")
# Windows `kpis` shows when none is asked for: nine do not fit 80 columns.
SCOPE_TABLE_WINDOWS = ("day", "week", "month", "7d", "30d", "all")
# KPIs with dims print their dims, so their name is shortened to leave room for them.
DIMS_LABEL = {"stage_conversion": "conv", "stage_duration_days": "days_in", "open_opportunities": "open",
              "pipeline_value": "pipeline", "objective_attainment": "attainment"}
ALL_ONLY = {"open_opportunities", "pipeline_value", "pipeline_velocity", "overdue_receivables"}
TIMES = {"ltv_to_cac", "purchase_frequency"}  # ratios above 1, read as "3.2×"
ROLE_NAMES = ("rep", "director", "executive", "quality")


@dataclass(frozen=True)
class RoleView:
    """What one role reads first: 3 to 5 headline KPIs for the scopes it looks after."""

    title: str
    kinds: tuple[str, ...]  # scope kinds shown as rows, in this order
    columns: tuple[tuple[str, str], ...]  # (kpi, heading)
    window: str  # default window (KPIs that exist only for `all` always use `all`)


ROLE_VIEWS: dict[str, RoleView] = {
    "rep": RoleView(
        "Rep", ("rep",),
        (("calls", "calls"), ("meetings_booked", "meetings"), ("win_rate", "win rate"),
         ("bookings", "bookings"), ("pipeline_value", "pipeline")),
        "7d",
    ),
    "director": RoleView(
        "Sales director", ("global", "team", "rep"),
        (("bookings", "bookings"), ("win_rate", "win rate"), ("sales_cycle_days", "cycle"),
         ("pipeline_value", "pipeline"), ("calls", "calls")),
        "30d",
    ),
    "executive": RoleView(
        "Executive", ("global", "region", "team"),
        (("revenue", "revenue"), ("gross_margin", "margin"), ("cac", "CAC"), ("clv", "CLV"),
         ("ltv_to_cac", "LTV:CAC")),
        "30d",
    ),
}


def short_number(value: float) -> str:
    """12 → 12, 12345 → 12.3k, 1234567 → 1.2M: at most six characters."""
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            scaled = value / limit
            return f"{scaled:.0f}{suffix}" if abs(scaled) >= 100 else f"{scaled:.1f}{suffix}"
    return f"{value:.0f}" if size >= 10 or value == int(value) else f"{value:.1f}"


def fmt(record: dict[str, Any] | None) -> str:
    if record is None or record.get("value") is None:
        return "—"
    value, unit, kpi = record["value"], record.get("unit"), record.get("kpi")
    if kpi in TIMES:
        return f"{value:.1f}×"
    if unit == "ratio":
        return f"{value:.0%}" if abs(value) < 10 else short_number(value)
    if unit == "days":
        return f"{value:.1f}d"
    return short_number(value)  # counts, and money in the reporting currency


def styled(record: dict[str, Any] | None) -> Text:
    style = STATUS_STYLE.get((record or {}).get("status", "unknown"), "")
    return Text(fmt(record), style=style)


def _compact(title: str | None = None) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
                 padding=(0, 1), title_justify="left", show_edge=False)


def scope_matches(scope: str, wanted: str | None) -> bool:
    """`wanted` is a kind (rep, team, region, global) or one scope."""
    return wanted is None or scope == wanted or scope.partition(":")[0] == wanted


@dataclass
class Page:
    table: Table
    page: int
    pages: int
    rows: int


def role_table(
    role: str, records: Iterable[dict[str, Any]], *, window: str | None = None,
    scope: str | None = None, page: int = 0, rows_per_page: int = 15,
) -> Page:
    """Rows are scopes, columns the role's headline KPIs, each cell coloured by its status."""
    view = ROLE_VIEWS[role]
    window = window or view.window
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    wanted = {kpi for kpi, _ in view.columns}
    for record in records:
        kpi = record["kpi"]
        if record.get("dims") or kpi not in wanted:
            continue
        if record["window"] != ("all" if kpi in ALL_ONLY else window):
            continue
        kind = record["scope"].partition(":")[0]
        if kind in view.kinds and scope_matches(record["scope"], scope):
            cells.setdefault(record["scope"], {})[kpi] = record
    scopes = sorted(cells, key=lambda s: (view.kinds.index(s.partition(":")[0]), s))
    pages = max(1, -(-len(scopes) // rows_per_page))
    page = page % pages
    table = _compact()
    table.add_column("scope", no_wrap=True, max_width=18, overflow="ellipsis")
    for kpi, heading in view.columns:
        table.add_column(heading + (" ·all" if kpi in ALL_ONLY and window != "all" else ""),
                         justify="right", no_wrap=True)
    shown = scopes[page * rows_per_page : (page + 1) * rows_per_page]
    for name in shown:
        table.add_row(name, *(styled(cells[name].get(kpi)) for kpi, _ in view.columns))
    return Page(table, page, pages, len(shown))


def quality_table(status: dict[str, Any], rejected: dict[str, float]) -> Group:
    """What a data-quality reader checks first: flow, rejections by reason, lag, readiness."""
    flow = _compact()
    flow.add_column("pipeline", no_wrap=True)
    flow.add_column("value", justify="right")
    ready = status.get("ready")
    flow.add_row("ready", Text("yes" if ready else "no: " + ", ".join(status.get("not_ready", [])),
                               style="green" if ready else "bold red"))
    for name, label in (("events_in", "events in"), ("events_applied", "applied"),
                        ("events_rejected", "rejected (DLQ)"), ("duplicates", "duplicates"),
                        ("unpublished", "waiting to publish")):
        flow.add_row(label, short_number(float(status.get(name) or 0)))
    lag = status.get("lag") or {}
    flow.add_row("consumer lag", short_number(sum(lag.values())))
    if "redis" in status:
        flow.add_row("redis", Text(status["redis"], style="green" if status["redis"] == "up" else "bold red"))
    reasons = _compact()
    reasons.add_column("DLQ reason", no_wrap=True)
    reasons.add_column("records", justify="right")
    for reason, count in sorted(rejected.items(), key=lambda item: -item[1])[:10]:
        reasons.add_row(reason, Text(short_number(count), style="yellow" if count else ""))
    if not rejected:
        reasons.add_row("none", "0")
    grid = Table.grid(padding=(0, 4))
    grid.add_row(flow, reasons)
    return Group(grid)


def scope_table(records: Iterable[dict[str, Any]], *, title: str, width: int = 80) -> Table:
    """One scope: rows are KPIs (with dims), columns the windows, in natural order."""
    by_kpi: dict[str, dict[str, dict[str, Any]]] = {}
    present: set[str] = set()
    order: dict[str, int] = {}
    for index, record in enumerate(records):
        dims = record.get("dims") or {}
        kpi = record["kpi"]
        label = kpi if not dims else DIMS_LABEL.get(kpi, kpi) + " " + "→".join(
            str(dims[name]) for name in sorted(dims, key=lambda n: (n != "from", n)))
        by_kpi.setdefault(label, {})[record["window"]] = record
        present.add(record["window"])
        order.setdefault(label, index)
    windows = [w for w in WINDOW_ORDER if w in present]
    if len(windows) > len(SCOPE_TABLE_WINDOWS):
        windows = [w for w in windows if w in SCOPE_TABLE_WINDOWS]
    table = _compact(title)
    label_width = max(12, width - 8 * len(windows) - 2)
    table.add_column("kpi", no_wrap=True, max_width=label_width, overflow="ellipsis")
    for window in windows:
        table.add_column(window, justify="right", no_wrap=True)
    rank = {name: i for i, name in enumerate(CATALOGUE)}
    rank.update({alias: rank[name] for name, alias in DIMS_LABEL.items() if name in rank})
    for label in sorted(by_kpi, key=lambda name: (rank.get(name.split(" ")[0], 99), order[name])):
        row = by_kpi[label]
        if any(window in row for window in windows):
            table.add_row(label, *(styled(row.get(window)) for window in windows))
    return table
