"""Reads kpi.alerts back: the ids already there (outbox reconciliation) and a live follower for /alerts."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka_security import aiokafka_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)
# Records read back from the end of each partition when reconciling: an outbox entry is
# written just before its record is sent, so a record sent before a crash is near the end.
RECONCILE_TAIL = 10_000


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, enable_auto_commit=False)


async def published_ids(settings: Settings, topic: str, tail: int = RECONCILE_TAIL) -> set[str]:
    """Ids of the alert records among the last `tail` records of every partition of `topic`."""
    consumer = _consumer(settings)
    await consumer.start()
    ids: set[str] = set()
    try:
        await consumer.topics()  # fetches the metadata partitions_for_topic reads
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return ids
        consumer.assign(tps)
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begin[tp], end[tp] - tail))
        remaining = {tp for tp in tps if end[tp] > begin[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for messages in batch.values():
                for message in messages:
                    ident = _id_of(message.value)
                    if ident:
                        ids.add(ident)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return ids


def _id_of(value: bytes | None) -> str | None:
    try:
        return json.loads(value)["id"] if value else None
    except (ValueError, KeyError, TypeError):
        return None


class AlertHistory:
    """The latest record of each episode, as read from kpi.alerts (any worker answers for every key)."""

    def __init__(self, keep_resolved: int = 1000) -> None:
        self.firing: dict[str, dict[str, Any]] = {}
        self.resolved: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.keep_resolved = keep_resolved

    def add(self, record: dict[str, Any]) -> None:
        episode = record.get("episode")
        if not episode:
            return
        if record.get("status") == "firing":
            if episode not in self.resolved:  # a late re-read firing never reopens an episode
                self.firing[episode] = record
        else:
            self.firing.pop(episode, None)
            self.resolved[episode] = record
            self.resolved.move_to_end(episode)
            while len(self.resolved) > self.keep_resolved:
                self.resolved.popitem(last=False)

    def list(self, status: str | None) -> list[dict[str, Any]]:
        chosen = []
        if status in (None, "firing"):
            chosen += self.firing.values()
        if status in (None, "resolved"):
            chosen += self.resolved.values()
        return sorted(chosen, key=lambda r: (r["startsAt"], r["episode"], r["status"]))


async def follow(settings: Settings, topic: str, on_record: Callable[[dict[str, Any]], None]) -> None:
    """Read every record of `topic` from the beginning, then keep following it."""
    consumer = AIOKafkaConsumer(topic, **aiokafka_kwargs(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async for message in consumer:
            try:
                on_record(json.loads(message.value))
            except (ValueError, TypeError):
                log.warning("kpi.alerts record at %s[%d]@%d is not JSON", message.topic,
                            message.partition, message.offset)
    finally:
        await consumer.stop()
