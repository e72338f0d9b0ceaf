"""A thin aiokafka producer for the simulator and replay: batches, keys, no per-record waits."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings


class EventProducer:
    """Sends (topic, key, value) triples; `flush()` waits until the broker has them all."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = AIOKafkaProducer(
            **aiokafka_kwargs(settings), acks="all", linger_ms=5, max_batch_size=256 * 1024
        )

    async def __aenter__(self) -> EventProducer:
        try:
            await self._producer.start()
        except BaseException:
            # A producer that failed to start still holds a client: close it, or Python
            # warns "Unclosed AIOKafkaProducer" on the way out.
            await self._producer.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send_many(self, records: Iterable[tuple[str, bytes | None, bytes]]) -> int:
        count = 0
        for topic, key, value in records:
            await self._producer.send(topic, value=value, key=key)
            count += 1
        return count

    async def flush(self) -> None:
        await self._producer.flush()
