"""HTTP pages on the worker's web server: /metrics, /health, /ready, /kpis."""

from __future__ import annotations

from datetime import date
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kpi_state.records import as_dict
from kpi_state.rollup import WINDOWS


def register_pages(app: faust.App, runtime: Any) -> None:
    @app.page("/metrics")
    async def metrics(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        body = generate_latest(runtime.registry)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        return web.json({"status": "alive"})

    @app.page("/ready")
    async def ready(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        return web.json({"ready": runtime.ready}, status=200 if runtime.ready else 503)

    @app.page("/status")
    async def status(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        """A small JSON summary for operators and scripts (cheaper than a full scrape)."""
        return web.json(runtime.status())

    @app.page("/kpis")
    async def kpis(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        query = request.query
        window = query.get("window") or None
        if window is not None and window not in WINDOWS:
            return web.json({"error": f"unknown window {window!r}", "windows": list(WINDOWS)}, status=400)
        start = query.get("start") or None
        if start is not None:
            try:
                start_day = date.fromisoformat(start[:10])
            except ValueError:
                return web.json({"error": "start must be a date such as 2026-11-01"}, status=400)
        view = runtime.rollup.view
        if start is None:
            records = view.current()
        else:
            records = view.at(start_day, window)
        scope, kpi = query.get("scope") or None, query.get("kpi") or None
        return web.json(
            [
                as_dict(r)
                for r in sorted(records, key=lambda r: (r.scope, r.kpi, r.window))
                if scope in (None, r.scope) and window in (None, r.window) and kpi in (None, r.kpi)
            ]
        )
