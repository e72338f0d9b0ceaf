"""HTTP pages on the worker's web server: /metrics, /health, /ready, /status, /kpis."""

from __future__ import annotations

import logging
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agents.kpi_query import KpiQuery, QueryError, parse_query
from kpi_state.calendar import CALENDAR_WINDOWS, iso_utc, period_bounds, period_start_date
from kpi_state.records import as_dict
from kpi_state.rollup import WINDOWS

log = logging.getLogger(__name__)


def _ready(runtime: Any) -> tuple[bool, list[str]]:
    readiness = getattr(runtime, "readiness", None)
    if readiness is None:
        return runtime.ready, [] if runtime.ready else ["recovering"]
    reasons = readiness.reasons()
    return not reasons, reasons


async def kpi_records(runtime: Any, query: KpiQuery) -> tuple[list[dict[str, Any]], str]:
    """Matching records and where they came from: Redis (every worker's keys) or this worker."""
    sink = getattr(runtime, "redis", None)
    if sink is not None:
        try:
            return await _from_redis(runtime, sink, query), "redis"
        except Exception as exc:  # noqa: BLE001 - fall back to what this worker owns
            log.debug("reading /kpis from redis failed: %s", type(exc).__name__)
    view = runtime.rollup.view
    records = view.current() if query.start is None else view.at(query.start, query.window)
    return [as_dict(r) for r in records], "local"


async def _from_redis(runtime: Any, sink: Any, query: KpiQuery) -> list[dict[str, Any]]:
    scopes = [query.scope] if query.scope else None
    if query.start is None:
        return await sink.read_current(scopes, [query.window] if query.window else list(WINDOWS))
    tz = runtime.settings.timezone
    records: list[dict[str, Any]] = []
    for window in [query.window] if query.window in CALENDAR_WINDOWS else list(CALENDAR_WINDOWS):
        first = period_start_date(query.start, window)
        start = iso_utc(period_bounds(first, window, tz)[0])
        records += await sink.read_period(query.scope, window, start)
    return records


def select(records: list[dict[str, Any]], query: KpiQuery) -> list[dict[str, Any]]:
    order = {window: i for i, window in enumerate(WINDOWS)}
    return sorted(
        (
            r for r in records
            if query.scope in (None, r["scope"]) and query.window in (None, r["window"])
            and query.kpi in (None, r["kpi"])
        ),
        key=lambda r: (r["scope"], r["kpi"], order.get(r["window"], 99), sorted(r.get("dims", {}).items())),
    )


def register_pages(app: faust.App, runtime: Any) -> None:
    @app.page("/metrics")
    async def metrics(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        body = generate_latest(runtime.registry) + runtime.kpi_metrics.exposition()
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "alive"})

    @app.page("/ready")
    async def ready(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        ok, reasons = _ready(runtime)
        return web.json({"ready": ok, "not_ready": reasons}, status=200 if ok else 503)

    @app.page("/status")
    async def status(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        """A small JSON summary for operators and scripts (cheaper than a full scrape)."""
        runtime.refresh_lag()
        summary = runtime.status()
        summary["ready"], summary["not_ready"] = _ready(runtime)
        sink = getattr(runtime, "redis", None)
        if sink is not None:
            summary["redis"] = "up" if sink.down_since is None else "unreachable"
        return web.json(summary)

    @app.page("/kpis")
    async def kpis(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        try:
            query = parse_query(dict(request.query))
        except QueryError as exc:
            return web.json(
                {"error": str(exc), "parameter": exc.parameter, "accepted": list(exc.accepted)},
                status=400,
            )
        records, source = await kpi_records(runtime, query)
        response = web.json(select(records, query))
        response.headers["X-KPI-Source"] = source
        return response
