"""Options of `kpi-pipeline replay` → a column mapping, a plan, a report, and the sending."""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from kpi_state.errors import KpiError
from streams.replay_csv import (
    DEFAULT_STAGE_MAP,
    ColumnMapping,
    load_product_catalogue,
    load_rep_directory,
)
from streams.replay_run import (
    FORMATS,
    ReplayPlan,
    plan_csv,
    plan_jsonl,
    rejection_warnings,
    send_plan,
    to_backfill,
)
from streams.settings import Settings

MAPPABLE = (
    "opportunity_id", "sales_agent", "deal_stage", "product", "account",
    "engage_date", "close_date", "close_value",
)


class UsageError(ValueError):
    """A replay option that cannot be used; the message says what to write instead."""


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{what} wants NAME=VALUE, got {item!r}")
        pairs[name.strip()] = value.strip()
    return pairs


def build_mapping(
    *, columns: list[str], stage_map: str | None, currency: str, timezone: str,
    id_prefix: str, date_formats: list[str], products: Path | None,
) -> ColumnMapping:
    overrides: dict[str, str | None] = {}
    for name, column in _pairs(columns, "--col").items():
        if name not in MAPPABLE:
            raise UsageError(f"--col {name}=…: unknown field; use one of {', '.join(MAPPABLE)}")
        overrides[name] = None if column in ("", "-") else column
    stages = dict(DEFAULT_STAGE_MAP)
    if stage_map:
        stages = _pairs([part for part in stage_map.split(",") if part.strip()], "--stage-map")
    catalogue = load_product_catalogue(products) if products else {}
    return ColumnMapping(
        **overrides, stage_map=stages, currency=currency.upper(), timezone=timezone,
        id_prefix=id_prefix, date_formats=tuple(date_formats), product_catalogue=catalogue,
    )


def run_replay(
    settings: Settings, file: Path, *, fmt: str, reps: Path | None, products: Path | None,
    currency: str, timezone: str, id_prefix: str, stage_map: str | None,
    date_formats: list[str], columns: list[str], dry_run: bool, skipped_report: Path | None,
    console: Console, err_console: Console, to: str = "backfill",
) -> int:
    if to not in ("backfill", "live"):
        _err(err_console, f"unknown --to {to!r}; use backfill (history, the default) or live")
        return 2
    if fmt not in FORMATS:
        _err(err_console, (f"unknown --format {fmt!r}; use one of: {', '.join(FORMATS)}"))
        return 2
    try:
        if fmt == "jsonl":
            plan = plan_jsonl(file, settings)
        else:
            mapping = build_mapping(
                columns=columns, stage_map=stage_map, currency=currency, timezone=timezone,
                id_prefix=id_prefix, date_formats=date_formats, products=products,
            )
            rep_events = load_rep_directory(reps) if reps else []
            plan, _ = plan_csv(file, mapping, settings, rep_events)
    except (UsageError, KpiError, ValueError) as exc:
        _err(err_console, (f"cannot replay {file}: {exc}"))
        return 2
    if fmt == "jsonl" and not plan.records:
        _err(err_console, (f"cannot replay {file}: no event in it"))
        return 2
    if fmt == "jsonl" and plan.skipped and len(plan.skipped) == sum(plan.counts.values()):
        _err(err_console, (f"cannot replay {file}: no line is a usable event\n" + _lines(plan)))
        return 2
    if to == "backfill":
        to_backfill(plan, settings)
    for warning in rejection_warnings(plan, settings, live=to == "live", now=time.time()):
        _err(err_console, f"warning: {warning}")
    _report(plan, console)
    if fmt == "jsonl" and plan.skipped:
        # Sent anyway: the pipeline's dead-letter topic keeps them with the same reasons.
        _err(err_console, (f"{len(plan.skipped)} unusable line(s), sent on to the dead-letter topic:\n"
                               + _lines(plan)))
    if skipped_report is not None:
        _write_skipped(plan, skipped_report)
        console.print(f"skipped rows written to {skipped_report}")
    if dry_run:
        console.print("dry run: nothing sent")
        return 0
    try:
        sent = asyncio.run(asyncio.wait_for(send_plan(plan, settings), 600))
    except Exception as exc:  # noqa: BLE001 - connection problems become advice
        _err(err_console, (
            f"could not send to {settings.broker_url} ({type(exc).__name__}); "
            "check KPI_BROKER_URL or use --dry-run"
        ))
        return 1
    console.print(f"sent {sent} records to {settings.broker_url}")
    return 0


def _err(console: Console, message: str) -> None:
    """Plain text (paths and user input may hold brackets), never wrapped mid-path."""
    console.print(Text(message), soft_wrap=True)


def _lines(plan: ReplayPlan, limit: int = 10) -> str:
    shown = [f"  line {row.line}: {row.reason} ({row.detail})" for row in plan.skipped[:limit]]
    if len(plan.skipped) > limit:
        shown.append(f"  … and {len(plan.skipped) - limit} more (--skipped-report FILE lists them all)")
    return "\n".join(shown)


def _report(plan: ReplayPlan, console: Console) -> None:
    table = Table(title="replay", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, count in sorted(plan.counts.items()):
        table.add_row(name, f"{count:,}")
    reasons: dict[str, int] = {}
    for row in plan.skipped:
        reasons[row.reason] = reasons.get(row.reason, 0) + 1
    for reason, count in sorted(reasons.items()):
        table.add_row(f"skipped: {reason}", f"{count:,}")
    console.print(table)


def _write_skipped(plan: ReplayPlan, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "line", "opportunity_id", "reason", "detail"])
        for row in plan.skipped:
            writer.writerow([row.row, row.line or "", row.opportunity_id or "", row.reason, row.detail])
