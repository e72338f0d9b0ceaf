"""Alert notifiers: a bounded queue and a delivery task each, retries with backoff, counters, SSRF guard.

`submit()` never waits: event processing hands a record over and goes on. A full queue or
a notification that keeps failing past its attempts is dropped and counted. Every request
carries the record's id as `Idempotency-Key`, so a receiver can drop repeats (after a
crash a notification may be delivered again, never with a different key).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from exporters.notify_formats import alertmanager_body, slack_body, webhook_body
from exporters.ssrf import GuardedResolver, RefusedTarget, check_url, host_of
from kpi_state.thresholds import Notifier as NotifierConfig

log = logging.getLogger(__name__)


class NotifyMetrics:
    """sent, failed (one failed attempt), retried, dropped, by notifier name (never its URL)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(f"kpi_pipeline_notifications_{name}", doc, ["notifier"], registry=registry)

        self.sent = counter("sent", "Notifications delivered")
        self.failed = counter("failed", "Delivery attempts that failed")
        self.retried = counter("retried", "Delivery attempts repeated after a failure")
        self.dropped = counter("dropped", "Notifications given up (queue full, refused target or out of attempts)")


class Delivery:
    """One notifier: its queue, its worker task and how a record becomes a request."""

    def __init__(
        self, config: NotifierConfig, metrics: NotifyMetrics, *, queue_size: int = 1000,
        attempts: int = 8, backoff_s: float = 0.5, max_backoff_s: float = 30.0, timeout_s: float = 5.0,
        on_done: Callable[[str, str], None] | None = None, sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(queue_size)
        self.attempts, self.backoff_s, self.max_backoff_s = attempts, backoff_s, max_backoff_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, connect=min(timeout_s, 3.0))
        self.on_done = on_done  # (notifier name, record id) once delivered or dropped
        self.sleep = sleep
        self.host = host_of(config.url)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def submit(self, record: dict[str, Any]) -> bool:
        """Queue a record; False (and counted as dropped) when the queue is full."""
        try:
            self.queue.put_nowait((record["id"], record))
        except asyncio.QueueFull:
            self.metrics.dropped.labels(self.name).inc()
            log.warning("notifier %s: queue full, notification dropped", self.name)
            self._done(record["id"])
            return False
        return True

    async def start(self) -> None:
        if self._task is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.config.allow_hosts), use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, trust_env=False)
            self._task = asyncio.create_task(self._run(), name=f"notifier-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            ident, record = await self.queue.get()
            try:
                await self.deliver(ident, record)
            finally:
                self.queue.task_done()

    async def deliver(self, ident: str, record: dict[str, Any]) -> bool:
        delay = self.backoff_s
        for attempt in range(self.attempts):
            if attempt:
                self.metrics.retried.labels(self.name).inc()
                await self.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
            try:
                await self.post(self.body([record]), ident)
            except RefusedTarget as exc:
                self.metrics.dropped.labels(self.name).inc()
                log.error("notifier %s: target refused: %s", self.name, exc)
                self._done(ident)
                return False
            except Exception as exc:  # noqa: BLE001 - any failure is retried, never raised into the worker
                self.metrics.failed.labels(self.name).inc()
                log.warning("notifier %s (%s): attempt %d failed: %s", self.name, self.host, attempt + 1,
                            _safe_reason(exc))
                continue
            self.metrics.sent.labels(self.name).inc()
            self._done(ident)
            return True
        self.metrics.dropped.labels(self.name).inc()
        log.error("notifier %s: notification dropped after %d attempts", self.name, self.attempts)
        self._done(ident)
        return False

    def body(self, records: list[dict[str, Any]]) -> Any:
        kind = self.config.type
        if kind == "slack":
            return slack_body(records[0])
        if kind == "alertmanager":
            return alertmanager_body(records, self.config.resend_interval_s)
        return webhook_body(records[0])

    async def post(self, body: Any, ident: str) -> None:
        check_url(self.config.url, self.config.allow_hosts)
        if self._session is None:
            await self.start()
        assert self._session is not None
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": ident}
        # No redirects: a 3xx to an internal address must not be followed.
        async with self._session.post(self.config.url, data=data, headers=headers, allow_redirects=False) as resp:
            if 300 <= resp.status < 400:
                raise RefusedTarget(f"HTTP {resp.status}: redirects are not followed")
            if resp.status >= 300:
                raise DeliveryError(f"HTTP {resp.status}")

    def _done(self, ident: str) -> None:
        if self.on_done is not None:
            self.on_done(self.name, ident)


class DeliveryError(Exception):
    pass


def _safe_reason(exc: Exception) -> str:
    """What went wrong, without the URL (its path or query may hold a token)."""
    if isinstance(exc, DeliveryError):
        return str(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({type(exc.os_error).__name__})"
    return type(exc).__name__


class Resender:
    """Alertmanager forgets a firing alert after resolve_timeout: re-send the active ones periodically."""

    def __init__(self, delivery: Delivery, active: Callable[[], list[dict[str, Any]]]) -> None:
        self.delivery = delivery
        self.active = active

    async def once(self) -> None:
        records = self.active()
        if not records:
            return
        try:
            await self.delivery.post(self.delivery.body(records), f"resend-{len(records)}")
            self.delivery.metrics.sent.labels(self.delivery.name).inc()
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            self.delivery.metrics.failed.labels(self.delivery.name).inc()
            log.warning("notifier %s: re-sending active alerts failed: %s", self.delivery.name, _safe_reason(exc))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.delivery.config.resend_interval_s)
            await self.once()
