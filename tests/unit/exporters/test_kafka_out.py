"""KafkaOut: a full producer queue is waited out, never a crash; keyed records keep their partition."""

from __future__ import annotations

import zlib

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


def out_with(producer: FullThenFree, monkeypatch) -> KafkaOut:
    out = KafkaOut.__new__(KafkaOut)
    out._producer, out._started, out._lock = producer, True, None

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
