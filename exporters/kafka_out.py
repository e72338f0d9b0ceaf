"""One plain aiokafka producer for everything the worker writes in bulk.

Faust's own producer path queues table writes in a small buffer that stalls every agent
when full; measured here, it moved a few hundred records per second where aiokafka alone
moves tens of thousands. The agents therefore write changelog records, re-keyed events,
cells, KPI values and dead letters through this producer, and `flush()` it before a batch
ends, so what a batch wrote is on the broker before Faust commits the batch's offsets.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)


class KafkaOut:
    """Lifecycle like the other exporters: `start()` connects and fails fast, `send()` enqueues."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._started = False
        self._lock: asyncio.Lock | None = None
        # (topic, partition) → the offset after the newest record the broker acknowledged,
        # for the topics named in `track()`: the worker's own internal topics, whose ends it
        # then knows before a fetch tells it.
        self.produced_end: dict[tuple[str, int], int] = {}
        self._tracked: frozenset[str] = frozenset()

    def track(self, topics: Iterable[str]) -> None:
        self._tracked = frozenset(topics)

    async def start(self) -> None:
        # Built here, not in __init__: aiokafka binds to the running event loop.
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._started:
                self._producer = AIOKafkaProducer(
                    **aiokafka_kwargs(self.settings),
                    acks="all",
                    linger_ms=5,
                    max_batch_size=512 * 1024,
                    max_request_size=4 * 1024 * 1024,
                )
                await self._producer.start()
                self._started = True

    async def stop(self) -> None:
        if self._started and self._producer is not None:
            await self._producer.stop()
            self._started = False

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, *,
        partition: int | None = None, headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Any:
        """Enqueue one record; returns the delivery future (awaiting it is optional)."""
        if not self._started:
            await self.start()
        assert self._producer is not None
        producer = self._producer
        delivery = await self._enqueue(topic, lambda: producer.send(
            topic, value=value, key=key, partition=partition,
            headers=list(headers) if headers else None,
        ))
        if topic in self._tracked:
            delivery.add_done_callback(self._note_end)
        return delivery

    def _note_end(self, delivery: asyncio.Future) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            return
        sent = delivery.result()
        where = (sent.topic, sent.partition)
        if sent.offset + 1 > self.produced_end.get(where, 0):
            self.produced_end[where] = sent.offset + 1

    async def _enqueue(self, topic: str, enqueue: Any) -> Any:
        """`enqueue()` again while the producer's queue stays full.

        aiokafka gives up waiting for room after its request timeout, when the broker is
        slow or unreachable; nothing was queued then, so trying again loses and doubles
        nothing, and the worker outlives the outage instead of crashing on it.
        """
        waited = 0
        while True:
            try:
                return await enqueue()
            except KafkaTimeoutError:
                waited += 1
                if waited == 1:
                    log.warning("the broker is not taking records for %s; holding them until it does", topic)
                await asyncio.sleep(min(5.0, 0.1 * 2 ** min(waited, 6)))

    async def send_keyed(self, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
        """Enqueue many keyed records, each on partition crc32(key) mod the topic's partitions.

        aiokafka's `send` costs tens of microseconds a record (its partitioner is pure
        Python); filling its record batches directly costs a small part of that. crc32 is
        the same in every worker and after every restart, so a key always lands on one
        partition of a compacted topic.
        """
        if not self._started:
            await self.start()
        assert self._producer is not None
        partitions = len(await self._producer.partitions_for(topic))
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for key, value in records:
            by_partition.setdefault(zlib.crc32(key) % partitions, []).append((key, value))
        for partition, items in by_partition.items():
            await self._send_batches(topic, partition, items)
        return sum(len(items) for items in by_partition.values())

    async def _send_batches(self, topic: str, partition: int, items: list[tuple[bytes, bytes]]) -> None:
        assert self._producer is not None
        producer = self._producer
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                await self._enqueue(topic, lambda full=batch: producer.send_batch(full, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a record of {len(value)} bytes does not fit a batch of {topic}")
        if batch.record_count():
            await self._enqueue(topic, lambda: producer.send_batch(batch, topic, partition=partition))

    async def flush(self) -> None:
        """Wait until every record enqueued so far is acknowledged by the broker."""
        if self._started and self._producer is not None:
            await self._producer.flush()
