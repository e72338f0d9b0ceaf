"""Internal topics carry bundles: one Kafka record per partition and batch, many (key, value) items inside.

The partition of an item is chosen here from its key, with a hash that is the same in
every worker and after every restart (crc32), so one entity or one scope always lands on
the same partition of the entity-events and cells topics, as Kafka's keyed partitioning
would place it, without the producer's per-record partitioner.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

from kpi_state.codec import BUNDLE, Bundle

# An item's position inside its bundle is folded into the offset the steps see, so offsets
# stay strictly increasing per partition (the entity step skips what it already applied).
ITEMS_PER_RECORD = 1 << 20
# Bundles stay well under the producer's and the broker's request limits.
MAX_BUNDLE_BYTES = 512 * 1024


def partition_for(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


class Item:
    """One (key, value) of a bundle, read as the record it stands for."""

    __slots__ = ("topic", "partition", "offset", "key", "value")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.key, self.value = topic, partition, offset, key, value


def bundle(items: Iterable[tuple[bytes, bytes]], partitions: int) -> list[tuple[int, bytes]]:
    """(partition, bundle bytes) for keyed `items`, each on its key's partition, in order."""
    return bundle_placed((zlib.crc32(key) % partitions, key, value) for key, value in items)


def bundle_placed(items: Iterable[tuple[int, bytes, bytes]]) -> list[tuple[int, bytes]]:
    """(partition, bundle bytes) for (partition, key, value) items, keeping their order."""
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for partition, key, value in items:
        by_partition.setdefault(partition, []).append((key, value))
    out = []
    for partition in sorted(by_partition):
        chunk: list[tuple[bytes, bytes]] = []
        size = 0
        for item in by_partition[partition]:
            if chunk and size + len(item[1]) > MAX_BUNDLE_BYTES:
                out.append((partition, BUNDLE.encode(Bundle(chunk))))
                chunk, size = [], 0
            chunk.append(item)
            size += len(item[0]) + len(item[1]) + 8
        if chunk:
            out.append((partition, BUNDLE.encode(Bundle(chunk))))
    return out


def unbundle(records: Iterable[Any]) -> list[Item]:
    """The items of bundle records, in order, each with its record's topic and partition."""
    out: list[Item] = []
    for record in records:
        base = record.offset * ITEMS_PER_RECORD
        topic, partition = record.topic, record.partition
        for index, (key, value) in enumerate(BUNDLE.decode(record.value).items):
            out.append(Item(topic, partition, base + index, key, value))
    return out
