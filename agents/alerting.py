"""Sends what the rollup's alert outbox holds: kpi.alerts first, then Redis and the notifiers; /alerts.

Order for one transition (exactly one record per episode on kpi.alerts, across crashes):
1. the rollup stores the transition in its outbox, in the state record of the batch (flushed);
2. `publish` sends the record to kpi.alerts and waits for the broker's acknowledgement;
3. the entry is marked published and, once every notifier is done with it, removed
   (both changes are persisted by the next state write).
After a crash the outbox comes back with the state: entries not marked published are looked
up on kpi.alerts by id (`reconcile`) and sent only if missing. Notifications are at least once:
a crash after a delivery but before the outbox forgets it delivers again, with the same
Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

import faust

from agents.batches import send_placed
from exporters.alerts_log import AlertHistory, follow, published_ids
from exporters.notifiers import Delivery, NotifyMetrics, Resender
from exporters.redis_alerts import RedisAlerts
from kpi_state.watermark import HEARTBEAT_SCOPE
from kpi_state.codec import CELLS, Cells

log = logging.getLogger(__name__)
REDIS_REFRESH_S = 60.0


class AlertOutput:
    """One per worker; the rollup agent calls `publish` after each batch's state is flushed."""

    def __init__(self, runtime: Any, state_topic: str, cells_topic: str) -> None:
        self.runtime = runtime
        self.state_topic = state_topic  # the rollup step's state topic: the outbox lives there
        self.cells_topic = cells_topic
        settings = runtime.settings
        self.topic = settings.topic_kpi_alerts
        self.metrics = NotifyMetrics(runtime.registry)
        self.deliveries = [Delivery(config, self.metrics, on_done=self._done)
                           for config in runtime.thresholds.notifiers]
        self.resenders = [Resender(d, self._active_records) for d in self.deliveries
                          if d.config.type == "alertmanager"]
        self.redis = RedisAlerts(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        self._redis_backlog: list[tuple[str, bytes, dict[str, Any]]] = []
        # When the firing alerts were last set in Redis; -inf: now. Redis may hold none of
        # them at the start, after a recovery (the scopes owned changed), after a failed
        # write (it may have restarted empty). Alerts change rarely, so a Redis restarted
        # between two writes would go unseen: they are set again this often anyway (a few
        # fields, not announced).
        self._redis_synced_at = -math.inf
        self.redis_refresh_s = REDIS_REFRESH_S
        self.clock = time.monotonic
        self.history = AlertHistory()
        self._waiting: dict[str, set[str]] = {}  # record id → notifiers not done with it yet
        self._reconciled = True
        self._lock = asyncio.Lock()
        self.beats: dict[int, float] = {}  # entity partition → stream time last sent as heartbeat

    async def after_batch(self) -> None:
        """Send what the outbox holds, then store the outbox's new state (published, delivered)."""
        await self.publish()
        for partition, key, value in self.runtime.rollup.alert_writes():
            await self.runtime.out.send(self.state_topic, key, value, partition=partition)
        await self.runtime.out.flush()

    async def heartbeats(self) -> None:
        """Each entity partition's stream time to every cells partition (after the batch's cells)."""
        out = self.runtime.out
        beats = heartbeats(self.runtime.entities, self.runtime.settings.topic_partitions, self.beats)
        await send_placed(out, self.cells_topic, beats)
        if beats:
            await out.flush()

    @property
    def book(self) -> Any:
        return self.runtime.rollup.alerts

    async def recovered(self) -> None:
        """The steps just took their state back: unpublished entries need a look at kpi.alerts."""
        self._reconciled = False
        self._redis_synced_at = -math.inf
        self._waiting.clear()
        self.beats.clear()  # the rollup's watermark starts over: tell it every stream time again
        await self.heartbeats()

    async def publish(self) -> None:
        async with self._lock:
            if not self._reconciled:
                await self._reconcile()
            out = self.runtime.out
            fresh = [entry for entry in self.book.outbox() if not entry.published]
            for entry in fresh:
                await out.send(self.topic, entry.key.encode(), entry.record)
            sent = {entry.id for entry in fresh}
            if fresh:
                await out.flush()
                self.book.mark_published(sent)
            for entry in self.book.outbox():
                if entry.id in self._waiting:
                    continue
                record = json.loads(entry.record)
                # By id: the outbox's entries are copies marked published by now.
                if entry.id in sent:
                    self._redis_backlog.append((entry.key, entry.record, record))
                self._notify(entry.id, record)
            await self._to_redis()

    async def _reconcile(self) -> None:
        pending = [entry for entry in self.book.outbox() if not entry.published]
        if pending:
            found = await published_ids(self.runtime.settings, self.topic)
            already = {entry.id for entry in pending if entry.id in found}
            self.book.mark_published(already)
            log.info("alert outbox after recovery: %d entries, %d already on %s",
                     len(pending), len(already), self.topic)
        self._reconciled = True

    def _notify(self, ident: str, record: dict[str, Any]) -> None:
        if not self.deliveries:
            self.book.delivered({ident})
            return
        self._waiting[ident] = {d.name for d in self.deliveries}
        for delivery in self.deliveries:
            delivery.submit(record)

    def _done(self, name: str, ident: str) -> None:
        waiting = self._waiting.get(ident)
        if waiting is None:
            return
        waiting.discard(name)
        if not waiting:
            self.book.delivered({ident})  # persisted by the next state write

    async def _to_redis(self) -> None:
        if self.redis is None:
            return
        records = list(self._redis_backlog)
        now = self.clock()
        resync = now - self._redis_synced_at >= self.redis_refresh_s
        # Set after the changes, so the hash ends as the book is now.
        active = self.book.active_by_key() if resync else []
        if not records and not active:
            if resync:  # nothing fires: nothing to set
                self._redis_synced_at = now
            return
        try:
            await self.redis.write(records, active)
        except Exception as exc:  # noqa: BLE001 - Redis down must not stop alerts
            self.runtime.metrics.sink_errors.labels("redis").inc()
            log.warning("redis alert write failed, will retry: %s", type(exc).__name__)
            self._redis_synced_at = -math.inf
            return
        del self._redis_backlog[: len(records)]  # what came meanwhile goes with the next write
        if resync:
            self._redis_synced_at = now

    def _active_records(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.book.active()]

    async def start(self) -> None:
        for delivery in self.deliveries:
            await delivery.start()

    async def stop(self) -> None:
        for delivery in self.deliveries:
            await delivery.stop()
        if self.redis is not None:
            await self.redis.close()


def heartbeats(entities: Any, cells_partitions: int, last: dict[int, float]) -> list[tuple[int, bytes, bytes]]:
    """(cells partition, key, value): what each entity partition's inputs have all passed, to every cells partition.

    Sent after the flush's cells, so a rollup knows when every entity partition has passed
    a day (see kpi_state/watermark.py); only when that time moved (`last` remembers), so an
    idle pipeline sends nothing.
    """
    out = []
    for source in sorted(entities.engines):
        mark = entities.engines[source].watermark  # persisted with the engine's state
        if mark is None or last.get(source) == mark:
            continue
        last[source] = mark
        value = CELLS.encode(Cells.of(source, mark, {}))
        out += [(p, HEARTBEAT_SCOPE.encode(), value) for p in range(cells_partitions)]
    return out


def install_alerting(app: faust.App, runtime: Any, topics: Any) -> AlertOutput:
    """Tasks, timer and the /alerts page; `topics` are the steps' (agents.batches.StepTopics)."""
    output = AlertOutput(runtime, topics.rollup_state, topics.cells)

    @app.task
    async def start_notifiers() -> None:
        await output.start()

    @app.task
    async def follow_alerts() -> None:
        await follow(runtime.settings, output.topic, output.history.add)

    for resender in output.resenders:
        app.task(resender.run)

    @app.timer(1.0, on_leader=False)
    async def alert_outbox() -> None:
        # Outbox entries whose notifications finished are forgotten without waiting for input.
        if runtime.ready:
            async with runtime.gate.turn("rollup"):
                await output.after_batch()

    @app.page("/alerts")
    async def alerts(web: faust.web.Web, request: faust.web.Request) -> faust.web.Response:
        status = request.query.get("status") or None
        if status not in (None, "firing", "resolved"):
            return web.json({"error": "status must be firing or resolved"}, status=400)
        return web.json(output.history.list(status))

    return output
