"""HTTP pages on the worker's web server: /metrics, /health, /ready, /kpis."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kpi_state.count_book import COUNT_WINDOWS
from kpi_state.records import as_dict


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
        status = 200 if runtime.ready else 503
        return web.json({"ready": runtime.ready}, status=status)

    @app.page("/kpis")
    async def kpis(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        query = request.query
        window = query.get("window") or None
        if window is not None and window not in COUNT_WINDOWS:
            return web.json(
                {"error": f"unknown window {window!r}", "windows": list(COUNT_WINDOWS)}, status=400
            )
        start = None
        if query.get("start"):
            try:
                start = date.fromisoformat(query["start"][:10])
            except ValueError:
                return web.json({"error": "start must be a date such as 2026-11-01"}, status=400)
        records = runtime.book.query(
            time.time(),
            scope=query.get("scope") or None,
            window=window,
            kpi=query.get("kpi") or None,
            start=start,
        )
        return web.json([as_dict(r) for r in records])
