"""A rep's dedup ids and activity counts persisted per arrival day: a write carries today, not history.

A rep hears from hundreds of events a week. Kept in its one entity record, every batch
re-wrote the whole dedup window (about 40 bytes an id) and every past day's counts, so
state writes grew with history (482 MB for the bench's 400,000 events). Here the record
keeps only the rep's offsets, and each arrival day of the rep (the UTC day of its newest
event time when an event was applied) is a record of its own under `day_key`:

- open: the ids applied in that day, with fingerprint and time (the dedup window), and the
  activity counts they added (kpi, local day, n);
- sealed, once the whole day is past the dedup horizon of the rep's newest event: the ids'
  digests (id_digests) and the same counts. Written once, never again: a later event,
  however old its time, arrives in a later day.

The rep's counts are the sum of its days, its ids the union. Ids are kept at least the
horizon (a day is sealed only once its end is behind it), as before.

Writes of one rep leave in the order of `RepDays.take` then its record (PartitionEngine.
take_dirty), on one partition. A worker that dies part way leaves days newer than the
record: the events after the record's offsets are read again, and the days' ids tell them
as duplicates, so nothing is counted twice; counts are never in a record the days lack.
Recovery takes the rep's newest event time from its days too, and no event arrives in a
day already sealed (`RepDays.sealed_through`), so a sealed day's record is never
overwritten by an open one.
"""

from __future__ import annotations

import msgspec

from kpi_state import id_digests

DAY_S = 86400.0
PREFIX = b"~rep-day|"  # "~": no entity key starts with it (kpi_state.routing)
# The day of a rep migrated from a record that kept everything (see PartitionEngine.load):
# its counts and digests. Ignored while that record is still the one stored.
LEGACY = -1


class RepDay(msgspec.Struct, array_like=True):
    """One stored arrival day of a rep: open (`seen`) or sealed (`digests`), and its counts."""

    seen: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)
    digests: bytes = b""
    counts: list[tuple[str, str, int]] = msgspec.field(default_factory=list)


def day_index(ts: float) -> int:
    return int(ts // DAY_S)


def day_key(index: int, entity: bytes) -> bytes:
    return PREFIX + b"%d|" % index + entity


def split_day_key(key: bytes) -> tuple[int, bytes]:
    index, _, entity = key[len(PREFIX):].partition(b"|")
    return int(index), entity


class OpenDay:
    """An arrival day still in the dedup window: its ids and the counts they added."""

    __slots__ = ("ids", "counts")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.counts: dict[tuple[str, str], int] = {}

    def count_list(self) -> list[tuple[str, str, int]]:
        return [(kpi, day, n) for (kpi, day), n in self.counts.items()]


class RepDays:
    """One rep's open days, and the day records it owes the state topic."""

    __slots__ = ("open", "dirty", "sealed", "sealed_through", "legacy_until", "legacy_digests")

    def __init__(self) -> None:
        # index -> day, oldest first: a rep's arrival days only move forward (its newest
        # event time), and recovery adds them in order.
        self.open: dict[int, OpenDay] = {}
        self.dirty: set[int] = set()
        self.sealed: dict[int, RepDay] = {}  # sealed since the last take: written once
        # The newest day sealed: nothing arrives in it or before it again, so a sealed day's
        # record is never overwritten by an open one (even if the rep's newest event time
        # was recovered from a record older than its days, see PartitionEngine.rebuild).
        self.sealed_through = LEGACY
        # A migrated rep's LEGACY day is open until its newest id is past the horizon, and
        # keeps the old record's digests with it.
        self.legacy_until = 0.0
        self.legacy_digests = b""

    def add(self, index: int, event_id: str, kpi: str, day: str) -> None:
        if index <= self.sealed_through:
            index = self.sealed_through + 1
        bucket = self.open.get(index)
        if bucket is None:
            bucket = self.open[index] = OpenDay()
        bucket.ids.append(event_id)
        bucket.counts[(kpi, day)] = bucket.counts.get((kpi, day), 0) + 1
        self.dirty.add(index)

    def due(self, cutoff: float) -> int | None:
        """The oldest open day if it is wholly before `cutoff` (newest event time less the horizon)."""
        for index in self.open:
            if index == LEGACY:  # its newest id is kept up to the horizon, as in one record
                return index if self.legacy_until < cutoff else None
            return index if (index + 1) * DAY_S <= cutoff else None
        return None

    def seal(self, index: int) -> tuple[list[str], list[bytes]]:
        """Close day `index`: its ids and their digests, for the caller to forget."""
        bucket = self.open.pop(index)
        self.dirty.discard(index)
        digests = [id_digests.digest(event_id) for event_id in bucket.ids]
        stored = digests + id_digests.slots(self.legacy_digests) if index == LEGACY else digests
        self.sealed[index] = RepDay(digests=b"".join(sorted(stored)), counts=bucket.count_list())
        self.sealed_through = max(self.sealed_through, index)
        if index == LEGACY:
            self.legacy_digests = b""
        return bucket.ids, digests

    def take(self, seen: dict[str, tuple[int, float]]) -> list[tuple[int, RepDay]]:
        """The days changed since the last take (`seen` holds the open days' ids)."""
        out = list(self.sealed.items())
        for index in self.dirty:
            bucket = self.open[index]
            out.append((index, RepDay(
                seen={eid: seen[eid] for eid in bucket.ids}, counts=bucket.count_list(),
                digests=self.legacy_digests if index == LEGACY else b"",
            )))
        self.sealed.clear()
        self.dirty.clear()
        return out

