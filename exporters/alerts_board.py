"""The firing alerts under the live board: what is red, since when, and what the KPIs beneath say."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from rich.console import Group
from rich.text import Text


def fetch_alerts(url: str, status: str = "firing") -> list[dict[str, Any]] | None:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/alerts?status={status}", timeout=3) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


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
