"""The firing alerts under the live board: what is red, since when, and what the KPIs beneath say."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from rich.table import Table


def fetch_alerts(url: str, status: str = "firing") -> list[dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/alerts?status={status}", timeout=3) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def alerts_table(alerts: list[dict[str, Any]], max_rows: int = 10) -> Table:
    table = Table(title=f"Firing alerts ({len(alerts)})", header_style="bold", title_style="bold red")
    for column in ("severity", "alert", "since", "reading"):
        table.add_column(column, overflow="fold")
    for alert in sorted(alerts, key=lambda a: a["startsAt"], reverse=True)[:max_rows]:
        table.add_row(
            alert["labels"]["severity"], alert["annotations"]["description"],
            alert["startsAt"][:16].replace("T", " "), alert.get("context", {}).get("reading", ""),
            style="red" if alert["labels"]["severity"] == "critical" else None,
        )
    return table
