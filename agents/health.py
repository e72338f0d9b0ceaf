"""Worker health that tells the truth: readiness reasons, one log line per outage, a stop deadline."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger(__name__)

# A stop that takes longer is stuck (typically committing to an unreachable broker). The
# worker then exits anyway: state is written before offsets are committed, so a hard exit
# is no worse than SIGKILL, which recovery handles.
STOP_DEADLINE_S = 8.0
NOT_READY_REASONS = ("recovering", "broker_unreachable", "state_topics_unreachable")


def port_problem(host: str, port: int) -> str | None:
    """Why the worker's web server could not listen on host:port, or None when it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Faust's web server (aiohttp) sets SO_REUSEADDR too: only a real listener blocks it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return None


class GuardedWorker(faust.Worker):
    """Faust's worker, with a deadline on stopping whatever signal or crash starts it."""

    async def stop(self) -> None:
        _start_stop_deadline(STOP_DEADLINE_S)
        await super().stop()


def _start_stop_deadline(seconds: float) -> None:
    def expire() -> None:
        log.warning("stopping took more than %.0f s; exiting now (state is safe)", seconds)
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


class Outage:
    """One dependency's up/down state: logs once when it goes down and once when it is back."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.clock = clock
        self.down_since: float | None = None
        self.failures = 0
        self.last_error = ""

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, error: BaseException | str) -> None:
        self.failures += 1
        self.last_error = error if isinstance(error, str) else type(error).__name__
        if self.down_since is None:
            self.down_since = self.clock()
            log.error("%s unreachable (%s); retrying quietly until it is back", self.name, self.last_error)

    def ok(self, suppressed: int = 0) -> None:
        if self.down_since is not None:
            log.warning(
                "%s back after %.1f s (%d failed probes, last: %s; %d repeated client errors not logged)",
                self.name, self.clock() - self.down_since, self.failures, self.last_error, suppressed,
            )
        self.down_since, self.failures = None, 0


class QuietRepeats(logging.Filter):
    """Lets one line of each Kafka client warning through per minute and counts the rest.

    aiokafka and Faust log every failed reconnect (about a hundred lines a second while
    the broker is away); the outage itself is reported by `Outage`, with the count.
    """

    NOISY = ("aiokafka", "faust", "mode")

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self.passed: dict[tuple[str, Any], float] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.NOISY) or record.levelno < logging.WARNING:
            return True
        key = (record.name, record.msg)
        now = self.clock()
        if now - self.passed.get(key, -self.every_s) < self.every_s:
            self.suppressed += 1
            return False
        self.passed[key] = now
        return True

    def take_count(self) -> int:
        count, self.suppressed = self.suppressed, 0
        return count


Probe = Callable[[], Awaitable[set[str]]]


class Readiness:
    """`/ready` and the gauge `kpi_pipeline_not_ready{reason}`: recovered and connected."""

    def __init__(self, registry: CollectorRegistry, recovered: Callable[[], bool]) -> None:
        self.recovered = recovered
        self.broker = Outage("broker")
        self.missing: set[str] = set()  # state topics the broker does not serve
        self.quiet = QuietRepeats()
        self.gauge = Gauge(
            "kpi_pipeline_not_ready",
            "1 for each reason the worker is not ready: recovering, broker_unreachable, "
            "state_topics_unreachable",
            ["reason"],
            registry=registry,
        )
        for reason in NOT_READY_REASONS:
            self.gauge.labels(reason).set_function(lambda reason=reason: float(reason in self.reasons()))

    def reasons(self) -> list[str]:
        found = []
        if not self.recovered():
            found.append("recovering")
        if self.broker.down:
            found.append("broker_unreachable")
        elif self.missing:
            found.append("state_topics_unreachable")
        return found

    @property
    def ready(self) -> bool:
        return not self.reasons()

    async def watch(self, probe: Probe, interval: float = 1.0, timeout: float = 3.0) -> None:
        """Probe the broker forever; `probe()` returns the state topics it cannot serve."""
        while True:
            try:
                self.missing = await asyncio.wait_for(probe(), timeout)
            except Exception as exc:  # noqa: BLE001 - every failure means unreachable
                self.broker.failed(str(exc)[:120] or type(exc).__name__)
            else:
                self.broker.ok(self.quiet.take_count() if self.broker.down else 0)
            await asyncio.sleep(interval)


def install_quiet_logs(quiet: logging.Filter) -> None:
    """Attach `quiet` to every handler of the root logger (Faust has set them up by now)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)


def broker_probe(settings: Any, state_topics: list[str]) -> Probe:
    """A metadata request on a client of its own; returns the state topics without a leader."""
    from aiokafka.client import AIOKafkaClient
    from aiokafka.structs import TopicPartition

    from streams.kafka_security import aiokafka_kwargs

    clients: list[AIOKafkaClient] = []

    async def probe() -> set[str]:
        if not clients:
            client = AIOKafkaClient(**aiokafka_kwargs(settings), request_timeout_ms=2500)
            try:
                await client.bootstrap()
            except BaseException:
                await client.close()
                raise
            clients.append(client)
        metadata = await clients[0].fetch_all_metadata()
        missing = set()
        for topic in state_topics:
            partitions = metadata.partitions_for_topic(topic)
            if not partitions or any(
                metadata.leader_for_partition(TopicPartition(topic, p)) in (None, -1) for p in partitions
            ):
                missing.add(topic)
        return missing

    return probe


def attach_health(app: faust.App, runtime: Any, state_topics: list[str]) -> Readiness:
    """Wire readiness into the app: `runtime.readiness`, the probe task, quieter logs."""
    readiness = Readiness(runtime.registry, lambda: runtime.ready)
    runtime.readiness = readiness
    probe = broker_probe(runtime.settings, state_topics)

    @app.task
    async def watch_broker() -> None:
        install_quiet_logs(readiness.quiet)
        await readiness.watch(probe)

    return readiness
