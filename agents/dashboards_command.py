"""`kpi-pipeline dashboards`: writes the Grafana boards of every role as JSON files."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from exporters.dashboards import BoardsError, packaged_thresholds, read_thresholds, write_all


def run_dashboards(out: Path, thresholds: Path | None, currency: str, console: Console,
                   err_console: Console) -> int:
    """Exit code 0 when written, 2 when the thresholds file is missing or unreadable."""
    source = thresholds or (Path(os.environ["KPI_THRESHOLDS_FILE"]) if os.environ.get("KPI_THRESHOLDS_FILE")
                            else packaged_thresholds())
    if source is None:
        err_console.print("no thresholds file: pass --thresholds FILE (or set KPI_THRESHOLDS_FILE)")
        return 2
    try:
        written = write_all(out, read_thresholds(source), currency)
    except BoardsError as exc:
        err_console.print(f"[bold red]{exc}[/]")
        return 2
    for path in written:
        console.print(f"wrote {path}")
    return 0
