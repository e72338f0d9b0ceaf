"""Record formats of the pipeline's internal topics (entity events, partial cells)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from kpi_state.day_cells import CellUpdate


class Forwarded(msgspec.Struct, array_like=True):
    """An input record re-keyed by entity, carried unchanged so a later stage can dead-letter it."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


class Cells(msgspec.Struct, array_like=True):
    """Absolute day cells of one scope from one entity partition (replacing earlier ones)."""

    partition: int
    newest_ts: float
    days: dict[str, tuple[dict[str, Decimal], dict[str, list[str]]]]


_encoder = msgspec.msgpack.Encoder(decimal_format="string")
_forwarded = msgspec.msgpack.Decoder(Forwarded)
_cells = msgspec.msgpack.Decoder(Cells)


def pack_forwarded(record: Forwarded) -> bytes:
    return _encoder.encode(record)


def unpack_forwarded(raw: bytes) -> Forwarded:
    return _forwarded.decode(raw)


def pack_cells(partition: int, newest_ts: float, days: dict[str, CellUpdate]) -> bytes:
    return _encoder.encode(
        Cells(partition, newest_ts, {day: (u.values, u.members) for day, u in days.items()})
    )


def unpack_cells(raw: bytes) -> Cells:
    return _cells.decode(raw)
