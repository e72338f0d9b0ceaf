"""Publishes the KPI records changed since the last flush to kpi.values and Redis."""

from __future__ import annotations

import logging
import time
from typing import Any

from kpi_state.records import KpiValue, to_json

log = logging.getLogger(__name__)


class Publisher:
    """One flush: changed series → records → every sink; a failing sink is counted and retried."""

    def __init__(self, runtime: Any, kpi_values_topic: Any) -> None:
        self.runtime = runtime
        self.topic = kpi_values_topic
        # Records Redis has not taken yet, by key: a newer record replaces an older one.
        self._redis_backlog: dict[str, KpiValue] = {}

    async def flush(self) -> int:
        runtime = self.runtime
        metrics = runtime.metrics
        records = runtime.rollup.view.refresh(time.time())
        if not records and not self._redis_backlog:
            return 0
        started = time.perf_counter()
        for record in records:
            await self.topic.send(key=record.key.encode(), value=to_json(record))
        metrics.records_published.labels("kafka").inc(len(records))
        metrics.flush_duration.labels("kafka").observe(time.perf_counter() - started)
        if runtime.redis is not None:
            self._redis_backlog.update((record.key, record) for record in records)
            await self._to_redis()
        return len(records)

    async def _to_redis(self) -> None:
        runtime = self.runtime
        pending = list(self._redis_backlog.values())
        current_keys = {r.key for r in runtime.rollup.view.current()}
        current = [r for r in pending if r.key in current_keys]
        started = time.perf_counter()
        try:
            await runtime.redis.write(pending, current)
        except Exception as exc:  # noqa: BLE001 - a Redis outage must not stop the worker
            runtime.metrics.sink_errors.labels("redis").inc()
            log.warning("redis write failed, will retry on next flush: %s", type(exc).__name__)
            return
        self._redis_backlog.clear()
        runtime.metrics.records_published.labels("redis").inc(len(pending))
        runtime.metrics.flush_duration.labels("redis").observe(time.perf_counter() - started)
