"""(a) The baseline: a plain aiokafka consumer reading and JSON-decoding every input record."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from aiokafka import AIOKafkaConsumer

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings


@dataclass(frozen=True)
class BaselineResult:
    events: int
    seconds: float  # partitions assigned (fetching starts) → last record decoded
    seconds_from_first: float  # first record handed over → last record decoded

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def rate_from_first(self) -> float:
        return self.events / self.seconds_from_first if self.seconds_from_first > 0 else 0.0


# (a) reads the default backlog in well under a second, so one run is mostly its first
# fetches and whatever else the machine did in that moment: the median of a few runs is the
# number reported, every run's rate beside it.
BASELINE_RUNS = 3


def median_run(runs: Sequence[BaselineResult]) -> BaselineResult:
    """The run whose rate is the median (the lower middle one of an even count)."""
    if not runs:
        raise ValueError("no baseline run")
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


async def run_baseline(
    settings: Settings, topics: Sequence[str], expected: int, timeout_s: float = 600.0,
) -> BaselineResult:
    """Consume `topics` from the start in a group of its own until `expected` records are decoded.

    The clock starts when the group has assigned the partitions: aiokafka starts fetching
    then, in the background, so timing from the first record handed over would leave the
    first fetches out (most of a small backlog). The group join itself is not timed.
    """
    consumer = AIOKafkaConsumer(
        *topics, **aiokafka_kwargs(settings), group_id=f"kpi-bench-baseline-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    decode = msgspec.json.decode
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise TimeoutError("the baseline consumer got no partitions")
            await asyncio.sleep(0.001)
        assigned = time.perf_counter()
        count = 0
        first: float | None = None
        while count < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"baseline consumer read {count} of {expected} records")
            batches = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            for records in batches.values():
                if first is None and records:
                    first = time.perf_counter()
                for record in records:
                    decode(record.value)
                count += len(records)
        last = time.perf_counter()
    finally:
        await consumer.stop()
    return BaselineResult(count, last - assigned, last - (first or last))
