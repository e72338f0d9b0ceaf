"""The rollup stage: partial day cells from every entity partition → scope totals → KPI records."""

from __future__ import annotations

from typing import Any

import msgspec

from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig
from kpi_state.rollup import Rollup
from streams.internal import unpack_cells

# Table value of one (scope, day): what each entity partition last said about it.
_state_encoder = msgspec.msgpack.Encoder(decimal_format="string")


class StoredParts(msgspec.Struct, array_like=True):
    newest_ts: float
    parts: dict[int, tuple[dict[str, str], dict[str, list[str]]]]


_state_decoder = msgspec.msgpack.Decoder(StoredParts)


def table_key(partition: int, scope: str, day: str) -> bytes:
    return f"{partition}|{scope}|{day}".encode()


def split_table_key(key: bytes) -> tuple[int, str, str]:
    partition, scope, day = key.decode().split("|", 2)
    return int(partition), scope, day


class RollupStage:
    """No Faust here: cell messages in, table writes and KPI records out."""

    def __init__(self, config: ViewConfig) -> None:
        self.config = config
        self.rollup = Rollup(config.tz)
        self.view = KpiView(self.rollup, config)

    def process(self, messages: list[Any]) -> list[tuple[int, bytes, bytes]]:
        """Apply cell messages; return (partition, table key, value) writes, one per touched day."""
        touched: dict[tuple[int, str, str], None] = {}
        for message in messages:
            scope = message.key.decode()
            cells = unpack_cells(message.value)
            for day, (values, members) in cells.days.items():
                self.rollup.update(cells.partition, scope, day, CellUpdate(values, members))
                touched[(message.partition, scope, day)] = None
            self.rollup.see_time(cells.newest_ts)
        return [self._stored(partition, scope, day) for partition, scope, day in touched]

    def _stored(self, partition: int, scope: str, day: str) -> tuple[int, bytes, bytes]:
        parts = self.rollup.parts.get((scope, day), {})
        value = StoredParts(
            self.rollup.newest_ts or 0.0,
            {p: ({k: str(v) for k, v in u.values.items()}, u.members) for p, u in parts.items()},
        )
        return partition, table_key(partition, scope, day), _state_encoder.encode(value)

    def recover(self, items: list[tuple[bytes, bytes]], partitions: set[int]) -> None:
        from decimal import Decimal

        self.rollup = Rollup(self.config.tz)
        self.view = KpiView(self.rollup, self.config)
        for key, raw in items:
            partition, scope, day = split_table_key(key)
            if partition not in partitions:
                continue
            stored = _state_decoder.decode(raw)
            if not stored.parts:
                # Emptied before the crash: its records may still show the old numbers.
                self.rollup.remember(scope, day)
            for source, (values, members) in stored.parts.items():
                update = CellUpdate({k: Decimal(v) for k, v in values.items()}, members)
                self.rollup.update(source, scope, day, update)
            if stored.newest_ts:
                self.rollup.see_time(stored.newest_ts)
        # Republish everything: records changed just before a crash may not have left.
        self.rollup.mark_all_changed()
