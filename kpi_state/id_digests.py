"""Event ids past the dedup horizon, kept as sorted 64-bit digests: 8 bytes an id, whatever its age.

A re-import through the backfill topic re-sends events months old; their ids left the
dedup window (`EntityRecord.seen`, which also keeps a content fingerprint) long ago.
Each id that leaves it is kept here as the first 8 bytes of its BLAKE2b digest, in a
sorted run of big-endian bytes (so byte order is numeric order and the stored form is
the same on every machine). Two different ids of one entity collide with probability
2^-64 per pair: the later one would be dropped as a duplicate. Content is not kept, so a
re-sent id with other content past the horizon is a plain duplicate, not a conflicting one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SIZE = 8


def digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=SIZE).digest()


def contains(run: bytes, key: bytes) -> bool:
    """Whether the sorted run holds `key` (binary search over its 8-byte slots)."""
    low, high = 0, len(run) // SIZE
    while low < high:
        middle = (low + high) // 2
        at = run[middle * SIZE : (middle + 1) * SIZE]
        if at == key:
            return True
        if at < key:
            low = middle + 1
        else:
            high = middle
    return False


def slots(run: bytes) -> list[bytes]:
    """A sorted run's digests, each its 8 bytes."""
    return [run[i : i + SIZE] for i in range(0, len(run), SIZE)]


def merged(run: bytes, keys: Iterable[bytes]) -> bytes:
    """The sorted run with `keys` added (each digest once)."""
    every = set(slots(run))
    every.update(keys)
    return b"".join(sorted(every))
