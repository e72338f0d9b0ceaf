"""(c) Latency at a steady offered load: produce → the probe's KPI on kpi.values, → its alert on kpi.alerts."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.bench.kafka_io import partition_of, partitions_of
from agents.bench.probe import PROBE_RED_BELOW, PROBE_SCOPE, TICK_KEYS, calls_today, probe_call, ticks
from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings
from streams.simulator import Simulator

DAY = 86400
DAY_WALL_S = 3.0  # wall seconds per simulated day of load, at least: days must complete often
TICK_SHARE = 0.25  # at most this share of the offered load closes days
STEP_S = 0.05
MAX_PHASE_S = 420.0
DRAIN_S = 30.0
MIN_RED_DAYS = 15  # alert samples: one per red (even) day  # after the last marker, how long to wait for its records


def plan_days(target_rate: float, events_per_day: float, partitions: int) -> tuple[float, float]:
    """(wall seconds per simulated day, simulator activity) for the load.

    Days must pass often (an alert sample per two days), but the day-closing ticks must stay
    a small share of the offered load: a day lasts at least DAY_WALL_S, longer when the
    ticks would otherwise exceed TICK_SHARE of it.
    """
    ticks_per_day = 2 * partitions * TICK_KEYS
    wall = max(DAY_WALL_S, ticks_per_day / (TICK_SHARE * target_rate))
    activity = min(1.0, target_rate * wall * (1 - TICK_SHARE) / events_per_day)
    return wall, activity


def percentiles(samples: list[float]) -> dict[str, Any]:
    """p50/p99/max by nearest rank (no interpolation between two measured values)."""
    if not samples:
        return {"samples": 0, "p50_s": None, "p99_s": None, "max_s": None}
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]

    return {"samples": len(ordered), "p50_s": rank(0.50), "p99_s": rank(0.99), "max_s": ordered[-1]}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Observed:
    """What the tailing consumers saw of the probe, with the time they saw it."""

    values: list[tuple[float, float, float]] = field(default_factory=list)  # (seen, day start, value)
    alerts: list[tuple[float, str, str]] = field(default_factory=list)  # (seen, status, startsAt)


async def _tail(settings: Settings, topic: str, keep: Callable[[bytes, bytes], None],
                ready: asyncio.Event) -> None:
    parts = await partitions_of(settings, [topic])
    if not parts:
        raise RuntimeError(f"the broker does not know {topic}")
    # A short fetch wait: the embedded broker answers a waiting fetch only when its wait is
    # over, and the observer's own wait (aiokafka's 500 ms) would count as the pipeline's.
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), enable_auto_commit=False, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)  # resolve the end now: markers come after it
        ready.set()
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    keep(record.key or b"", record.value or b"")
    finally:
        await consumer.stop()


def _watchers(observed: Observed) -> tuple[Callable[[bytes, bytes], None], Callable[[bytes, bytes], None]]:
    value_prefix = f"calls|{PROBE_SCOPE}|day|".encode()
    alert_key = f"calls|{PROBE_SCOPE}|day".encode()

    def on_value(key: bytes, raw: bytes) -> None:
        if key.startswith(value_prefix) and raw:
            record = json.loads(raw)
            if record.get("value") is not None:
                observed.values.append((time.perf_counter(), _epoch(record["window_start"]), record["value"]))

    def on_alert(key: bytes, raw: bytes) -> None:
        if key == alert_key and raw:
            record = json.loads(raw)
            observed.alerts.append((time.perf_counter(), record["status"], record.get("startsAt", "")))

    return on_value, on_alert


@dataclass
class Sent:
    markers: list[tuple[float, float, int]] = field(default_factory=list)  # (sent, day start, number)
    completed: list[tuple[float, float, bool]] = field(default_factory=list)  # (sent, day start, red)
    events: int = 0


@dataclass(frozen=True)
class _Due:
    day_start: float
    records: list[tuple[str, int, bytes, bytes]]  # (topic kind, partition, key, value)
    number: int | None = None  # a probe call: its number in its day
    red: bool | None = None  # a closing: whether the day it closes is red (None: not a probe day)


class _Probe:
    """Merges the probe into the load in event-time order: day closings and the probe's calls."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.boundary: float | None = None  # the next midnight to close
        self.planned: int | None = None  # index of the probe day in progress
        self.calls: list[tuple[float, int]] = []  # (event time, number) still to send today

    def before(self, ts: float) -> list[_Due]:
        """What is due before a load event at `ts`, in event-time order."""
        if self.boundary is None:
            self.boundary = (ts // DAY + 1) * DAY
        due = []
        while True:
            if self.calls and self.calls[0][0] <= ts:
                at, number = self.calls.pop(0)
                key, value = probe_call(self.planned or 0, number, at)
                due.append(_Due(self.boundary - DAY, [("crm", partition_of(key, 0, self.partitions), key, value)],
                                number=number))
            elif ts >= self.boundary:
                # Midnight: close the day on every input partition, then plan the next day's
                # calls, spread over the day so that each marker is timed on its own.
                red = None if self.planned is None else calls_today(self.planned) < PROBE_RED_BELOW
                due.append(_Due(self.boundary - DAY, ticks(self.boundary, self.partitions, self.partitions),
                                red=red))
                self.planned = 0 if self.planned is None else self.planned + 1
                count = calls_today(self.planned)
                self.calls = [(self.boundary + DAY * n / (count + 1), n) for n in range(1, count + 1)]
                self.boundary += DAY
            else:
                return due


async def _offer_load(settings: Settings, simulator: Simulator, rate: float, partitions: int,
                      markers: int, sent: Sent, say: Callable[[str], None]) -> float:
    """Send simulated traffic plus the probe at `rate` events/s until enough markers and red days are out."""
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings), acks="all")
    await producer.start()
    topics = {"crm": settings.topic_crm, "billing": settings.topic_billing}
    probe = _Probe(partitions)
    began = time.perf_counter()

    def enough() -> bool:
        red_days = sum(1 for _, _, red in sent.completed if red)
        return len(sent.markers) >= markers and red_days >= MIN_RED_DAYS

    try:
        while not enough() and time.perf_counter() - began < MAX_PHASE_S:
            due = int(rate * (time.perf_counter() - began)) - sent.events
            for row in simulator.next_records(max(0, due)):
                for due_now in probe.before(row.timestamp):
                    at = time.perf_counter()
                    for kind, partition, key, value in due_now.records:
                        await producer.send(topics[kind], value, key=key, partition=partition)
                    sent.events += len(due_now.records)
                    if due_now.number is not None:
                        sent.markers.append((at, due_now.day_start, due_now.number))
                    elif due_now.red is not None:
                        sent.completed.append((at, due_now.day_start, due_now.red))
                await producer.send(topics[row.topic_kind], row.value, key=row.key,
                                    partition=partition_of(row.key, sent.events, partitions))
                sent.events += 1
            await asyncio.sleep(STEP_S)
        await producer.flush()
    finally:
        await producer.stop()
    seconds = time.perf_counter() - began
    say(f"  c: offered {sent.events:,} events in {seconds:.0f} s, {len(sent.markers)} probe calls, "
        f"{len(sent.completed)} days closed")
    return seconds


def match_values(sent: Sent, observed: Observed) -> tuple[list[float], int]:
    """Latency of each marker: its send → the first record of its day counting it; and how many never showed."""
    out, missing = [], 0
    for at, day_start, number in sent.markers:
        seen = next((t for t, start, value in observed.values
                     if start == day_start and value >= number and t >= at), None)
        if seen is None:
            missing += 1
        else:
            out.append(seen - at)
    return out, missing


def match_alerts(sent: Sent, observed: Observed) -> tuple[list[float], int]:
    """Each red day's closing send → the matching firing record (in order), and how many never came."""
    firing = [t for t, status, _ in observed.alerts if status == "firing"]
    red_days = [at for at, _, red in sent.completed if red]
    out = [seen - at for at, seen in zip(red_days, firing)]
    return out, max(0, len(red_days) - len(firing))


async def run_latency(settings: Settings, simulator: Simulator, rate: float, partitions: int,
                      markers: int, say: Callable[[str], None]) -> dict[str, Any]:
    observed, sent = Observed(), Sent()
    on_value, on_alert = _watchers(observed)
    ready = [asyncio.Event(), asyncio.Event()]
    tails = [asyncio.create_task(_tail(settings, settings.topic_kpi_values, on_value, ready[0])),
             asyncio.create_task(_tail(settings, settings.topic_kpi_alerts, on_alert, ready[1]))]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), 30)
        seconds = await _offer_load(settings, simulator, rate, partitions, markers, sent, say)
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            if not match_values(sent, observed)[1] and not match_alerts(sent, observed)[1]:
                break
            await asyncio.sleep(0.2)
    finally:
        for task in tails:
            task.cancel()
        await asyncio.gather(*tails, return_exceptions=True)
    values, values_missing = match_values(sent, observed)
    alerts, alerts_missing = match_alerts(sent, observed)
    return {
        "target_rate": rate, "offered_rate": sent.events / seconds if seconds else 0.0,
        "kpi_values": dict(percentiles(values), missing=values_missing),
        "alerts": dict(percentiles(alerts), missing=alerts_missing,
                       red_days=sum(1 for _, _, red in sent.completed if red)),
        "days_closed": len(sent.completed), "resolved_seen": sum(1 for _, s, _ in observed.alerts if s == "resolved"),
    }
