"""Publisher: records leave for Kafka and Redis a chunk at a time, and none is dropped on the way."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry

from agents.publish import OUTPUT_CHUNK, SERIES_PER_STEP, Publisher
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.records import KpiValue

SERIES = 3 * SERIES_PER_STEP  # the flush yields to the loop between steps of series
PER_SERIES = OUTPUT_CHUNK // 40  # a chunk is ready well before the first step ends


def record(series: int, index: int, value: float) -> KpiValue:
    return KpiValue(f"k{index}", f"rep:r-{series}", "7d", None, None, value, None, None,
                    "count", "green", {}, "2026-09-01T00:00:00Z")


class View:
    """The rollup's view as the Publisher reads it: changed series, their records, current ones."""

    def __init__(self, value: float = 1.0) -> None:
        self.value = value
        self.computed: list[int] = []  # series whose records were computed, in order
        self.latest: dict[str, KpiValue] = {}

    def take_changed(self) -> list[int]:
        return list(range(SERIES))

    def changed_records(self, series: int, stamp: str) -> list[KpiValue]:
        self.computed.append(series)
        records = [record(series, index, self.value) for index in range(PER_SERIES)]
        self.latest.update((r.key, r) for r in records)
        return records

    def current(self) -> list[KpiValue]:
        return list(self.latest.values())

    def current_of(self, records: list[KpiValue]) -> list[KpiValue]:
        return list(records)


class Out:
    def __init__(self) -> None:
        self.sent: dict[bytes, bytes] = {}

    async def send_keyed(self, topic: str, records: list[tuple[bytes, bytes]]) -> int:
        self.sent.update(records)
        return len(records)

    async def flush(self) -> None:
        pass


class Redis:
    """A sink whose writes take a while: each one lets the flush compute records meanwhile."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.stored: dict[str, float | None] = {}
        self.writes: list[tuple[int, int]] = []  # (records in the write, series computed when it began)
        self.down_since: float | None = None
        self.resync_wanted = False
        self.attempts = 0

    async def write(self, records: list[KpiValue], current: list[KpiValue]) -> None:
        self.attempts += 1
        if self.down_since is not None:
            raise ConnectionError("down")
        self.writes.append((len(records), len(self.view.computed)))
        for _ in range(3):
            await asyncio.sleep(0)
        self.stored.update((r.key, r.value) for r in records)


class Runtime:
    def __init__(self, view: View) -> None:
        self.rollup = type("Rollup", (), {"view": view})()
        self.out = Out()
        self.redis = Redis(view)
        self.metrics = PipelineMetrics(CollectorRegistry())


def test_redis_takes_records_while_the_flush_still_computes_and_ends_with_every_one() -> None:
    view = View()
    runtime = Runtime(view)
    published = asyncio.run(Publisher(runtime, "kpi.values").flush())
    assert published == SERIES * PER_SERIES == len(runtime.out.sent)
    # The first write began before the last series was computed: Redis worked meanwhile.
    assert runtime.redis.writes[0][1] < SERIES
    # Records computed during a write stayed in the backlog and left with a later one.
    assert runtime.redis.stored == {r.key: 1.0 for r in view.latest.values()}
    assert sum(count for count, _ in runtime.redis.writes) == len(view.latest)


def test_a_down_redis_is_tried_once_per_flush_and_gets_everything_once_back() -> None:
    view = View()
    runtime = Runtime(view)
    publisher = Publisher(runtime, "kpi.values")
    runtime.redis.down_since = 0.0
    asyncio.run(publisher.flush())
    assert runtime.redis.attempts == 1  # not once per chunk while it is known to be down
    assert runtime.redis.stored == {}
    assert publisher.redis_waiting == len(view.latest)  # what /status counts as unpublished
    runtime.redis.down_since = None
    view.value = 2.0
    asyncio.run(publisher.flush())
    assert runtime.redis.stored == {r.key: 2.0 for r in view.latest.values()}
    assert publisher.redis_waiting == 0
