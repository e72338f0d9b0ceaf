"""Broker helpers of the benchmark: topics, a fast bulk producer, end and committed offsets."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings

BATCH_BYTES = 1024 * 1024
IN_FLIGHT = 16  # batches sent before waiting for the oldest: keeps the broker busy


async def create_topics(settings: Settings, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        specs = [NewTopic(name, partitions, settings.topic_replication_factor)
                 for name in names if name not in existing]
        if specs:
            try:
                await admin.create_topics(specs)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


def partition_of(key: bytes | None, index: int, partitions: int) -> int:
    """A stable spread by key (crc32, in C); keyless records round-robin."""
    return zlib.crc32(key) % partitions if key is not None else index % partitions


async def produce(
    settings: Settings, topic: str, records: Sequence[tuple[bytes | None, bytes]], partitions: int,
    timestamp_ms: int | None = None,
) -> int:
    """Send every (key, value) in whole batches per partition; returns the count on the broker."""
    producer = AIOKafkaProducer(
        **aiokafka_kwargs(settings), acks="all", max_batch_size=BATCH_BYTES,
        max_request_size=4 * BATCH_BYTES,
    )
    await producer.start()
    try:
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for index, (key, value) in enumerate(records):
            by_partition.setdefault(partition_of(key, index, partitions), []).append((key, value))
        pending: list[asyncio.Future] = []
        for partition, rows in by_partition.items():
            batch = producer.create_batch()
            for key, value in rows:
                if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                    pending.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=timestamp_ms)
                if len(pending) >= IN_FLIGHT:
                    await pending.pop(0)
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        for future in pending:
            await future
    finally:
        await producer.stop()
    return len(records)


async def partitions_of(settings: Settings, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`, from the broker's metadata (topics a worker just created too)."""
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [TopicPartition(d["topic"], p["partition"]) for d in described
            for p in d.get("partitions") or ()]


async def end_offsets(settings: Settings, topics: Sequence[str]) -> dict[TopicPartition, int]:
    """The next offset of every partition of `topics` (what a caught-up group has committed)."""
    parts = await partitions_of(settings, topics)
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(parts)) if parts else {}
    finally:
        await consumer.stop()


async def committed_offsets(
    settings: Settings, group: str, partitions: Sequence[TopicPartition]
) -> dict[TopicPartition, int]:
    """What consumer group `group` has committed on `partitions` (missing: nothing committed)."""
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        # Named partitions: the embedded broker closes the connection on an "all partitions" fetch.
        found = await admin.list_consumer_group_offsets(group, partitions=list(partitions))
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def group_lag(settings: Settings, group: str, topics: Sequence[str]) -> dict[str, int]:
    """Records of `topics` the group has not committed yet, as {"topic[p]": lag}."""
    ends = await end_offsets(settings, topics)
    done = await committed_offsets(settings, group, list(ends))
    return {f"{tp.topic}[{tp.partition}]": max(0, end - done.get(tp, 0)) for tp, end in ends.items()}
