"""The four Grafana boards, one per role: rep, sales director, executive, data quality."""

from __future__ import annotations

from exporters.dashboards.panels import DATASOURCE, GLOBAL, Board, Scope, Thresholds
from exporters.dashboards.sdk import VariableRefresh, VariableSort, dashboard
from exporters.pipeline_metrics import NEWEST_EVENT_METRIC

TAGS = ["kpi-pipeline"]
REPS = Scope("rep")
TEAMS = Scope("team")
ME = Scope("rep", "$rep")


def _dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title).uid(uid).description(description).tags([*TAGS, uid.removeprefix("kpi-")])
        .refresh("30s").time("now-24h", "now").timezone("browser").editable()
    )


def rep_board(thresholds: Thresholds, currency: str) -> dashboard.Dashboard:
    builder = _dashboard("kpi-rep", "Sales KPIs: rep", "One rep's own activity, efficiency and pipeline.")
    builder.with_variable(
        dashboard.QueryVariable("rep").label("Rep").datasource(DATASOURCE)
        .query('label_values(sales_kpi_status{scope_kind="rep"}, scope_id)')
        .definition('label_values(sales_kpi_status{scope_kind="rep"}, scope_id)')
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
    )
    board = Board(builder, thresholds, currency)
    board.row("Headline")
    for kpi in ("meetings_booked", "win_rate", "bookings", "open_opportunities", "pipeline_value"):
        board.kpi_stat(kpi, ME, width=24 // 5)
    board.row("Activity")
    for kpi in ("calls", "emails", "demos", "prospects_contacted", "opportunities_created"):
        board.kpi_stat(kpi, ME, width=24 // 5)
    board.kpi_trend("Activity today", ["calls", "emails", "meetings_booked", "demos"], ME, "day", width=24)
    board.row("Efficiency")
    for kpi in ("meeting_rate", "win_rate", "lead_conversion", "sales_cycle_days", "average_deal_size"):
        board.kpi_stat(kpi, ME, width=24 // 5)
    board.kpi_bars("stage_conversion", ME, ("from",), "{{from}} → next", title="Funnel: conversion from")
    board.kpi_bars("open_opportunities", ME, ("stage",), "{{stage}}", title="Open opportunities by stage")
    board.kpi_bars("pipeline_value", ME, ("stage",), "{{stage}}", title="Pipeline value by stage")
    return builder


def director_board(thresholds: Thresholds, currency: str) -> dashboard.Dashboard:
    builder = _dashboard(
        "kpi-director", "Sales KPIs: sales director",
        "Objectives, reps side by side, funnel, cycle and stage durations, pipeline health.",
    )
    board = Board(builder, thresholds, currency)
    board.row("Headline")
    board.kpi_bars("objective_attainment", GLOBAL, ("kpi",), "{{kpi}}", title="Objectives: attainment", width=8)
    for kpi in ("win_rate", "sales_cycle_days", "pipeline_value", "bookings"):
        board.kpi_stat(kpi, GLOBAL)
    board.row("Reps side by side")
    for kpi in ("bookings", "win_rate", "meetings_booked"):
        board.kpi_bars(kpi, REPS, ("scope_id",), "{{scope_id}}", title=f"{kpi.replace('_', ' ').capitalize()} by rep")
    board.kpi_bars("objective_attainment", REPS, ("scope_id", "kpi"), "{{scope_id}} {{kpi}}",
                   title="Objectives by rep", width=12)
    board.kpi_bars("win_rate", TEAMS, ("scope_id",), "{{scope_id}}", title="Win rate by team", width=12)
    board.row("Funnel and durations")
    board.kpi_bars("stage_conversion", GLOBAL, ("from",), "{{from}} → next", title="Conversion from each stage")
    board.kpi_bars("stage_duration_days", GLOBAL, ("stage",), "{{stage}}", title="Time spent in each stage")
    board.kpi_trend("Sales cycle", ["sales_cycle_days"], GLOBAL, "90d", width=8)
    board.row("Pipeline")
    board.kpi_bars("pipeline_value", GLOBAL, ("stage",), "{{stage}}", title="Pipeline value by stage")
    board.kpi_bars("open_opportunities", GLOBAL, ("stage",), "{{stage}}", title="Open opportunities by stage")
    board.kpi_stat("pipeline_velocity", GLOBAL, width=8)
    return builder


def executive_board(thresholds: Thresholds, currency: str) -> dashboard.Dashboard:
    builder = _dashboard(
        "kpi-executive", "Sales KPIs: executive",
        "Revenue and its growth (price and volume effects), margin, acquisition cost, customer value, cash.",
    )
    board = Board(builder, thresholds, currency)
    board.row("Headline")
    for kpi in ("revenue", "gross_margin", "cac", "clv", "ltv_to_cac"):
        board.kpi_stat(kpi, GLOBAL, width=24 // 5)
    board.row("Growth")
    for kpi in ("revenue_growth", "price_effect", "volume_effect"):
        board.kpi_stat(kpi, GLOBAL, width=8)
    board.kpi_trend("Revenue this month", ["revenue"], GLOBAL, "month")
    board.kpi_bars("revenue", Scope("region"), ("scope_id",), "{{scope_id}}", title="Revenue by region",
                   width=12)
    board.row("Customers and cash")
    for kpi in ("new_customers", "average_basket", "purchase_frequency", "days_to_pay", "overdue_receivables"):
        board.kpi_stat(kpi, GLOBAL, width=24 // 5)
    return builder


def quality_board(thresholds: Thresholds, currency: str) -> dashboard.Dashboard:
    builder = _dashboard(
        "kpi-quality", "Sales KPIs: data quality",
        "Is every figure trustworthy? Rejected, duplicate and late events, freshness and lag of each input.",
    )
    board = Board(builder, thresholds, currency)
    rate = "$__rate_interval"
    board.row("Inputs")
    board.health("Events read per second", [(f"sum by (topic) (rate(kpi_pipeline_events_in_total[{rate}]))", "{{topic}}")],
                 unit="ops")
    board.health("Newest event age", [(f"time() - max by (topic) ({NEWEST_EVENT_METRIC})", "{{topic}}")],
                 unit="s", description="How long ago the newest event of each input topic happened (event time).")
    board.health("Consumer lag", [("sum by (topic) (kpi_pipeline_consumer_lag_records)", "{{topic}}")],
                 description="Records not yet processed and committed, summed over the workers that own them.")
    board.health("Workers up", [('sum(up{job="kpi-pipeline"})', "up")], kind="stat", width=6)
    board.health("Partitions owned", [("sum by (instance) (kpi_pipeline_assigned_partitions)", "{{instance}}")],
                 kind="stat", width=6)
    board.row("Rejected and dropped")
    board.health("Dead-lettered by reason", [("sum by (reason) (kpi_pipeline_events_rejected_total)", "{{reason}}")],
                 kind="table", description="Records sent to events.dlq since the workers started, by reason.")
    board.health("Rejected per second", [(f"sum by (reason) (rate(kpi_pipeline_events_rejected_total[{rate}]))", "{{reason}}")],
                 unit="ops")
    board.health("Duplicates and late", [
        ("sum(kpi_pipeline_duplicates_total)", "duplicates"),
        ("sum(kpi_pipeline_late_events_total)", "too late"),
        ("sum(kpi_pipeline_replayed_skipped_total)", "re-read after restart"),
    ], kind="stat", width=12)
    board.health("Held for a missing event", [("sum(kpi_pipeline_held_events)", "held now")],
                 kind="stat", width=6,
                 description="Events waiting on their entity for the event that makes them valid (a win before its "
                             "opportunity's created, a payment before its invoice); past the lateness horizon they "
                             "go to the DLQ as orphaned.")
    board.health("KPI series folded into other", [("sum(kpi_pipeline_series_folded_total) or vector(0)", "folded")],
                 kind="stat", width=6)
    board.row("Outputs")
    board.health("Flush time p95", [(
        f"histogram_quantile(0.95, sum by (le, sink) (rate(kpi_pipeline_flush_duration_seconds_bucket[{rate}])))",
        "{{sink}}",
    )], unit="s")
    board.health("Scrape time p95", [(
        f"histogram_quantile(0.95, sum by (le) (rate(kpi_pipeline_scrape_duration_seconds_bucket[{rate}])))",
        "scrape",
    )], unit="s")
    board.health("Changes waiting for a flush", [("sum(kpi_pipeline_unpublished_changes)", "waiting")])
    board.health("Sink errors", [("sum(kpi_pipeline_sink_errors_total) or vector(0)", "errors")],
                 kind="stat")
    board.health("KPIs red", [("count(sales_kpi_status == 2) or vector(0)", "red")], kind="stat", width=6)
    board.health("KPIs unknown", [("count(sales_kpi_status == -1) or vector(0)", "unknown")], kind="stat",
                 width=6)
    return builder


BOARDS = {
    "rep": rep_board,
    "director": director_board,
    "executive": executive_board,
    "quality": quality_board,
}
