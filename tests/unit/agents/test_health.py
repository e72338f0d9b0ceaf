"""Readiness reasons, one log line per outage, and quiet repeats of Kafka client errors."""

import asyncio
import logging

from prometheus_client import CollectorRegistry

from agents.health import Outage, QuietRepeats, Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    clock = Clock()
    outage = Outage("broker", clock)
    with caplog.at_level(logging.WARNING, logger="agents.health"):
        for _ in range(50):
            outage.failed(ConnectionError())
            clock.now += 1
        outage.ok(suppressed=1234)
        outage.ok()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "broker unreachable (ConnectionError)" in messages[0]
    assert "back after 50.0 s (50 failed probes" in messages[1] and "1234 repeated" in messages[1]
    assert not outage.down


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_client_errors_pass_once_a_minute_per_kind_and_are_counted():
    clock = Clock()
    quiet = QuietRepeats(60, clock)
    passed = [quiet.filter(record("aiokafka.conn", "Unable connect to node %s", n)) for n in range(100)]
    assert passed.count(True) == 1
    assert quiet.filter(record("aiokafka", "Unable to update metadata from %s", 1))  # another kind
    assert quiet.filter(record("agents.app", "ours %s", 1)) and quiet.filter(record("agents.app", "ours %s", 1))
    assert quiet.filter(record("aiokafka.conn", "debug %s", 1, level=logging.INFO))
    clock.now += 61
    assert quiet.filter(record("aiokafka.conn", "Unable connect to node %s", 7))
    assert quiet.take_count() == 99 and quiet.take_count() == 0


def test_readiness_says_why_and_the_gauge_agrees():
    registry = CollectorRegistry()
    recovered = {"done": False}
    readiness = Readiness(registry, lambda: recovered["done"])
    assert readiness.reasons() == ["recovering"]

    def gauge(reason: str) -> float:
        return registry.get_sample_value("kpi_pipeline_not_ready", {"reason": reason})

    assert gauge("recovering") == 1
    recovered["done"] = True
    missing = {"kpi-pipeline-rollup-state"}

    async def probe() -> set[str]:
        return missing

    async def failing() -> set[str]:
        raise ConnectionError("refused")

    async def once(p) -> None:
        task = asyncio.create_task(readiness.watch(p, interval=0.01))
        await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(once(probe))
    assert readiness.reasons() == ["state_topics_unreachable"] and gauge("state_topics_unreachable") == 1
    asyncio.run(once(failing))
    assert readiness.reasons() == ["broker_unreachable"] and not readiness.ready
    assert gauge("broker_unreachable") == 1 and gauge("recovering") == 0
    missing.clear()
    asyncio.run(once(probe))
    assert readiness.ready and readiness.reasons() == []
