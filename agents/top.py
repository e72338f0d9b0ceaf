"""`kpi-pipeline top`: one role's board from a worker, redrawn in place, paged to the terminal."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from exporters.alerts_board import alert_lines_of, fetch_alerts
from exporters.board import ROLE_NAMES, ROLE_VIEWS, quality_table, role_table

PAGE_EVERY = 3  # refreshes per page when the scopes do not fit the terminal
CHROME_LINES = 6  # header, table heading and rule, footer, and a line for the cursor
ALERT_ROWS = 3  # firing alerts shown under a role's board


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.read()
    except OSError:
        return None


def rejected_by_reason(metrics: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "kpi_pipeline_events_rejected_total":
                found[sample.labels.get("reason", "?")] = sample.value
    return found


class Board:
    """Fetches what a role's view needs and renders one frame of it."""

    def __init__(self, web: str, role: str, *, window: str | None = None, scope: str | None = None,
                 clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S")) -> None:
        self.web, self.role, self.window, self.scope, self.clock = web, role, window, scope, clock
        self.refreshes = 0

    def _records(self) -> list[dict[str, Any]] | None:
        view = ROLE_VIEWS[self.role]
        records: list[dict[str, Any]] = []
        for window in dict.fromkeys((self.window or view.window, "all")):
            body = _get(f"{self.web}/kpis?window={window}")
            if body is None:
                return None
            records += json.loads(body)
        return records

    def frame(self, height: int) -> RenderableType:
        self.refreshes += 1
        others = "|".join(r for r in ROLE_NAMES if r != self.role)
        footer = Text(f"other views: kpi-pipeline top --role {others}   Ctrl-C quits", style="dim")
        if self.role == "quality":
            status, metrics = _get(f"{self.web}/status"), _get(f"{self.web}/metrics")
            if status is None or metrics is None:
                return Text(f"no worker answers at {self.web}")
            header = Text(f"Data quality · {self.clock()}", style="bold")
            return Group(header, quality_table(json.loads(status), rejected_by_reason(metrics.decode())), footer)
        records = self._records()
        if records is None:
            return Text(f"no worker answers at {self.web}")
        view = ROLE_VIEWS[self.role]
        # Only the alerts of the scopes this view shows (an executive reads the company's).
        firing = [a for a in fetch_alerts(self.web) or []
                  if a["labels"]["scope"].partition(":")[0] in view.kinds]
        # Firing alerts go under the board (a few, newest first): the rows they take come
        # off the board's page.
        shown = min(len(firing), ALERT_ROWS)
        alert_lines = shown + 1 if shown else 0
        page = role_table(self.role, records, window=self.window, scope=self.scope,
                          page=(self.refreshes - 1) // PAGE_EVERY,
                          rows_per_page=max(3, height - CHROME_LINES - alert_lines))
        paging = f" · page {page.page + 1}/{page.pages}" if page.pages > 1 else ""
        where = f" · {self.scope}" if self.scope else ""
        header = Text(f"{view.title} · {self.window or view.window}{where} · {self.clock()}{paging}",
                      style="bold")
        body: RenderableType = page.table if page.rows else Text("no KPI values for these scopes yet")
        if shown:
            return Group(header, body, alert_lines_of(firing, shown), footer)
        return Group(header, body, footer)


def watch_board(
    web: str, *, console: Console, role: str = "director", window: str | None = None,
    scope: str | None = None, interval: float = 2.0, duration: float | None = None,
    alive: Callable[[], bool] = lambda: True,
) -> int:
    """Redraw the board until Ctrl-C, `duration`, or `alive()` turns false."""
    board = Board(web, role, window=window, scope=scope)
    deadline = time.monotonic() + duration if duration else None
    interactive = console.is_terminal and duration is None

    def running() -> bool:
        return alive() and (deadline is None or time.monotonic() < deadline)

    try:
        if interactive:
            with Live(board.frame(console.height), console=console, auto_refresh=False) as live:
                while running():
                    time.sleep(interval)
                    live.update(board.frame(console.height), refresh=True)
        else:
            next_print = time.monotonic()
            while running():
                if time.monotonic() >= next_print:
                    console.print(board.frame(console.height))
                    next_print = time.monotonic() + 10
                time.sleep(0.5)
            console.print(board.frame(console.height))
    except KeyboardInterrupt:
        console.print("stopping…")
    return 0
