"""Event counts per rep and local day, as one source partition contributed them, replay-safe."""

from __future__ import annotations

import msgspec


class RepDayCounts(msgspec.Struct):
    """One rep's counts from one source partition, plus the newest source offset applied.

    The offset lives in the same value as the counts so one changelog record carries
    both: after a crash the source is re-read from the last committed offset and every
    event at or below `applied_offset` is recognised as already counted.
    """

    applied_offset: int = -1
    # kpi -> local date (ISO) -> count
    counts: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)

    def add(self, offset: int, kpi: str, day: str, n: int = 1) -> bool:
        """Count `n` for `kpi` on `day`; False when this offset was already applied."""
        if offset <= self.applied_offset:
            return False
        self.applied_offset = offset
        by_day = self.counts.get(kpi)
        if by_day is None:
            by_day = self.counts[kpi] = {}
        by_day[day] = by_day.get(day, 0) + n
        return True

    def cells(self) -> list[tuple[str, str, int]]:
        """Every (kpi, day, count) held."""
        return [(kpi, day, n) for kpi, by_day in self.counts.items() for day, n in by_day.items()]


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(RepDayCounts)


def encode_counts(value: RepDayCounts) -> bytes:
    return _encoder.encode(value)


def decode_counts(raw: bytes) -> RepDayCounts:
    return _decoder.decode(raw)
