"""Reads the pipeline's own state topics back: the latest value of every key on some partitions.

The worker writes each step's state (entities, rollup cells, stream time) to a compacted
topic of its own, partitioned like the step's input. After a (re)assignment it reads the
partitions it now owns from the beginning, before the step processes anything.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings


async def read_state(settings: Settings, topic: str, partitions: set[int]) -> list[tuple[bytes, bytes]]:
    """Latest (key, value) per key on `partitions` of `topic`, read up to the current end."""
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        **aiokafka_kwargs(settings), group_id=None, enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    latest: dict[bytes, bytes] = {}
    try:
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, messages in batch.items():
                for message in messages:
                    if message.key is not None and message.value is not None:
                        latest[message.key] = message.value
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return list(latest.items())
