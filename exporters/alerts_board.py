"""The firing alerts under the live board: what is red, since when, and what the KPIs beneath say."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text


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


def alert_lines_of(alerts: list[dict[str, Any]], max_rows: int) -> Group:
    """Firing alerts as one line each (newest first), cut to the terminal's width."""
    lines = [Text(f"Firing alerts ({len(alerts)})", style="bold red")]
    for alert in sorted(alerts, key=lambda a: a["startsAt"], reverse=True)[:max_rows]:
        labels = alert["labels"]
        reading = alert.get("context", {}).get("reading", "")
        text = (f"{labels['severity']:<8} {labels['scope']} {labels['kpi']} {labels['window']} "
                f"since {alert['startsAt'][:10]} · {reading}")
        style = "red" if labels["severity"] == "critical" else "yellow"
        lines.append(Text(text, style=style, no_wrap=True, overflow="ellipsis"))
    return Group(*lines)
