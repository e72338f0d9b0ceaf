"""Publishes the KPI records changed since the last flush to kpi.values and Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kpi_state.calendar import iso_utc
from kpi_state.records import KpiValue, encoded

log = logging.getLogger(__name__)

# Series recomputed between two yields to the event loop: a replay of history can change
# thousands at once, and heartbeats, the web server and the agents must keep running.
SERIES_PER_STEP = 64
# Records handed to Kafka and Redis at a time during a flush (Redis's own chunk size).
OUTPUT_CHUNK = 5000


class Publisher:
    """One flush: changed series → records → every sink; a failing sink is counted and retried."""

    def __init__(self, runtime: Any, kpi_values_topic: str) -> None:
        self.runtime = runtime
        self.topic = kpi_values_topic
        self.in_flight = 0  # series taken but not published yet
        # Records Redis has not taken yet, by key: a newer record replaces an older one.
        self._redis_backlog: dict[str, KpiValue] = {}

    @property
    def redis_waiting(self) -> int:
        """Records computed that Redis has not taken yet (while it is down, all its changes)."""
        return len(self._redis_backlog)

    async def flush(self) -> int:
        runtime = self.runtime
        view, out, metrics, redis = runtime.rollup.view, runtime.out, runtime.metrics, runtime.redis
        series = view.take_changed()
        self.in_flight = len(series)
        stamp = iso_utc(time.time())
        started = time.perf_counter()
        batch: list[tuple[bytes, bytes]] = []
        published = 0
        # Records leave a chunk at a time while the next ones are computed: Kafka's sender
        # and the Redis server then work while this loop does, instead of after it.
        to_redis: asyncio.Future | None = None
        try:
            for index, one in enumerate(series):
                records = view.changed_records(one, stamp)
                batch += [(record.key.encode(), encoded(record)) for record in records]
                if redis is not None:
                    self._redis_backlog.update((record.key, record) for record in records)
                self.in_flight -= 1
                if len(batch) >= OUTPUT_CHUNK:
                    published += await out.send_keyed(self.topic, batch)
                    batch = []
                if (redis is not None and redis.down_since is None and len(self._redis_backlog) >= OUTPUT_CHUNK
                        and (to_redis is None or to_redis.done())):
                    to_redis = asyncio.ensure_future(self._to_redis())
                if index % SERIES_PER_STEP == SERIES_PER_STEP - 1:
                    await asyncio.sleep(0)
            if batch:
                published += await out.send_keyed(self.topic, batch)
            await out.flush()
            kafka_seconds = time.perf_counter() - started
        finally:
            if to_redis is not None:
                await to_redis
        if redis is not None and (self._redis_backlog or redis.resync_wanted):
            await self._to_redis()
        if published:
            metrics.records_published.labels("kafka").inc(published)
            metrics.flush_duration.labels("kafka").observe(kafka_seconds)
        return published

    async def _to_redis(self) -> None:
        runtime = self.runtime
        if runtime.redis.resync_wanted:
            # First write, or Redis is back from an outage and may have lost everything:
            # rewrite every current record this worker owns, not only what changed.
            for record in runtime.rollup.view.current():
                self._redis_backlog.setdefault(record.key, record)
        pending = list(self._redis_backlog.values())
        current = runtime.rollup.view.current_of(pending)  # not view.current(): that scans all history
        started = time.perf_counter()
        try:
            await runtime.redis.write(pending, current)
        except Exception as exc:  # noqa: BLE001 - a Redis outage must not stop the worker
            runtime.metrics.sink_errors.labels("redis").inc()
            # The sink logs an outage once; this line would repeat on every flush.
            log.debug("redis write failed, will retry on next flush: %s", type(exc).__name__)
            return
        # Only what was written leaves the backlog: records computed meanwhile, or newer
        # records of the same keys, are written by the next call.
        backlog = self._redis_backlog
        for record in pending:
            if backlog.get(record.key) is record:
                del backlog[record.key]
        runtime.metrics.records_published.labels("redis").inc(len(pending))
        runtime.metrics.flush_duration.labels("redis").observe(time.perf_counter() - started)
