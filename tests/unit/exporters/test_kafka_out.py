"""KafkaOut: a full producer queue is waited out, never a crash; keyed records keep their partition."""

from __future__ import annotations

import asyncio
import zlib

from aiokafka.structs import RecordMetadata

from aiokafka.errors import KafkaTimeoutError

from exporters.kafka_out import KafkaOut


class FullThenFree:
    """An aiokafka producer whose queue is full for the first `full` tries."""

    def __init__(self, full: int) -> None:
        self.full = full
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes]]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    def create_batch(self) -> list:
        class Batch(list):
            def append(self, *, key, value, timestamp):  # noqa: ARG002 - aiokafka's signature
                super().append((key, value))
                return True

            def record_count(self) -> int:
                return len(self)

        return Batch()

    async def send_batch(self, batch, topic, *, partition):
        if self.full:
            self.full -= 1
            raise KafkaTimeoutError()
        self.sent.append((topic, partition, list(batch)))


def started_out(producer: object) -> KafkaOut:
    """A KafkaOut already started on `producer` (no broker)."""
    out = KafkaOut.__new__(KafkaOut)
    out._producer, out._started, out._lock = producer, True, None  # type: ignore[assignment]
    out.produced_end, out._tracked = {}, frozenset()
    return out


def out_with(producer: FullThenFree, monkeypatch) -> KafkaOut:
    out = started_out(producer)

    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr("exporters.kafka_out.asyncio.sleep", no_wait)
    return out


async def test_a_full_queue_is_retried_and_every_record_sent_once(monkeypatch) -> None:
    producer = FullThenFree(full=3)
    out = out_with(producer, monkeypatch)
    records = [(f"k{i}".encode(), b"v") for i in range(10)]
    assert await out.send_keyed("kpi.values", records) == 10
    sent = [item for _, _, items in producer.sent for item in items]
    assert sorted(sent) == sorted(records)
    for _, partition, items in producer.sent:
        assert all(zlib.crc32(key) % 3 == partition for key, _ in items)


class Acknowledging:
    """An aiokafka producer whose `send` hands back a delivery future, resolved later."""

    def __init__(self) -> None:
        self.pending: list[tuple[asyncio.Future, str, int]] = []
        self.next_offset: dict[tuple[str, int], int] = {}

    async def send(self, topic, *, value, key, partition, headers):  # noqa: ARG002 - aiokafka's
        future = asyncio.get_running_loop().create_future()
        self.pending.append((future, topic, partition))
        return future

    def acknowledge(self, fail: bool = False) -> None:
        for future, topic, partition in self.pending:
            if fail:
                future.set_exception(KafkaTimeoutError())
                continue
            offset = self.next_offset.get((topic, partition), 0)
            self.next_offset[(topic, partition)] = offset + 1
            future.set_result(RecordMetadata(topic, partition, None, offset, -1, -1, None))
        self.pending.clear()


async def test_the_end_of_a_tracked_topic_is_known_once_the_broker_acknowledged_it() -> None:
    producer = Acknowledging()
    out = started_out(producer)
    out.track(["entity-events"])
    for _ in range(3):
        await out.send("entity-events", None, b"bundle", partition=2)
    await out.send("events.dlq", None, b"bad")
    assert out.produced_end == {}  # sent is not written: nothing acknowledged yet
    producer.acknowledge()
    await asyncio.sleep(0)  # done callbacks run on the next loop iteration
    assert out.produced_end == {("entity-events", 2): 3}  # the DLQ is not tracked
    await out.send("entity-events", None, b"bundle", partition=2)
    producer.acknowledge(fail=True)
    await asyncio.sleep(0)
    assert out.produced_end == {("entity-events", 2): 3}  # a failed write moves nothing
