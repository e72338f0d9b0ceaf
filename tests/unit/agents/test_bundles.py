"""Bundles: items keep their partition by key, their order, and offsets that only grow."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from agents.bundles import ITEMS_PER_RECORD, MAX_BUNDLE_BYTES, bundle, bundle_placed, unbundle


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


def test_items_land_on_their_keys_partition_in_order() -> None:
    items = [(f"opp:{i % 7}".encode(), f"v{i}".encode()) for i in range(50)]
    records = [Record("t", p, offset, value) for offset, (p, value) in enumerate(bundle(items, 4))]
    read = unbundle(records)
    assert sorted((i.key, i.value) for i in read) == sorted(items)
    for item in read:
        assert item.partition == zlib.crc32(item.key) % 4
    for key in {k for k, _ in items}:
        assert [i.value for i in read if i.key == key] == [v for k, v in items if k == key]


def test_offsets_grow_across_and_within_bundles() -> None:
    records = [Record("t", 0, offset, value) for offset, (_, value) in
               enumerate(bundle_placed([(0, b"k", b"a"), (0, b"k", b"b")]) * 2)]
    offsets = [item.offset for item in unbundle(records)]
    assert offsets == [0, 1, ITEMS_PER_RECORD, ITEMS_PER_RECORD + 1]


def test_a_large_batch_is_split_below_the_request_limit() -> None:
    big = b"x" * (MAX_BUNDLE_BYTES // 3)
    out = bundle_placed([(1, b"k", big) for _ in range(7)])
    assert len(out) >= 3 and all(p == 1 for p, _ in out)
    assert all(len(raw) <= MAX_BUNDLE_BYTES + 1024 for _, raw in out)
    assert [i.value for i in unbundle(Record("t", 1, n, raw) for n, (_, raw) in enumerate(out))] == [big] * 7
