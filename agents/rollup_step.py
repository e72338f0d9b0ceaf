"""The rollup step: partial day cells from every entity partition → scope totals → KPI records."""

from __future__ import annotations

from datetime import date
from typing import Any

from kpi_state.alert_book import AlertBook
from kpi_state.calendar import period_bounds
from kpi_state.codec import CELLS, STORED_PARTS, StoredParts
from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig
from kpi_state.rollup import Rollup
from kpi_state.watermark import HEARTBEAT_SCOPE, Watermark, complete_days

def table_key(partition: int, scope: str, day: str) -> bytes:
    return f"{partition}|{scope}|{day}".encode()


# The day field of a scope's alert-state key: never a date, so never a cell.
ALERTS_DAY = "alerts"


def split_table_key(key: bytes) -> tuple[int, str, str]:
    partition, scope, day = key.decode().split("|", 2)
    return int(partition), scope, day


class RollupStep:
    """No Faust here: cell messages in, table writes and KPI records out."""

    def __init__(self, config: ViewConfig) -> None:
        self.config = config
        self.rollup = Rollup(config.tz)
        self.view = KpiView(self.rollup, config)
        self.alerts = AlertBook(self.view.thresholds, config.lineage)
        self.partition_of: dict[str, int] = {}  # scope → the cells partition it arrives on
        self.watermark = Watermark()
        self.owned: set[int] = set()
        self.judged: date | None = None  # the last local day whose alerts were judged

    def process(self, messages: list[Any]) -> list[tuple[int, bytes, bytes]]:
        """Apply cell messages; return (partition, table key, value) writes, one per touched day."""
        touched: dict[tuple[int, str, str], None] = {}
        for message in messages:
            scope = message.key.decode()
            cells = CELLS.decode(message.value)
            self.owned.add(message.partition)
            if scope == HEARTBEAT_SCOPE:
                # Only a heartbeat says "everything before me from that partition is here":
                # a batch may end in the middle of one flush's cells.
                self.watermark.see(cells.partition, message.partition, cells.newest_ts)
                continue
            for day, (values, members) in cells.days.items():
                self.rollup.update(cells.partition, scope, day, CellUpdate(values, members))
                touched[(message.partition, scope, day)] = None
            self.partition_of[scope] = message.partition
            self.rollup.see_time(cells.newest_ts)
        writes = [self._stored(partition, scope, day) for partition, scope, day in touched]
        for _, _, day in touched:
            if day:
                self.view.note_day(date.fromisoformat(day))
        return writes + self._judge() + self.alert_writes()

    def _judge(self) -> list[tuple[int, bytes, bytes]]:
        """Judge alerts on each local day every entity partition has passed, in the batch's state writes."""
        days = complete_days(self.judged, self.watermark.value(self.owned), self.config.tz, self.view.first_day)
        for day in days:
            end = period_bounds(day, "day", self.config.tz)[1]
            self.alerts.evaluate_day(self.view, self.rollup.scopes, day, end)
            self.judged = day
        if not days:
            return []
        mark = self.judged.isoformat().encode()  # type: ignore[union-attr]
        return [(p, table_key(p, HEARTBEAT_SCOPE, ALERTS_DAY), mark) for p in sorted(self.owned)]

    def alert_writes(self) -> list[tuple[int, bytes, bytes]]:
        """State records of the scopes whose alerts changed (transitions, outbox)."""
        return [(self.partition_of[scope], table_key(self.partition_of[scope], scope, ALERTS_DAY), raw)
                for scope, raw in self.alerts.take_dirty() if scope in self.partition_of]

    def _stored(self, partition: int, scope: str, day: str) -> tuple[int, bytes, bytes]:
        parts = self.rollup.parts.get((scope, day), {})
        value = StoredParts(
            self.rollup.newest_ts or 0.0,
            {p: ({k: str(v) for k, v in u.values.items()}, u.members) for p, u in parts.items()},
        )
        return partition, table_key(partition, scope, day), STORED_PARTS.encode(value)

    def recover(self, items: list[tuple[bytes, bytes]], partitions: set[int]) -> None:
        from decimal import Decimal

        self.rollup = Rollup(self.config.tz)
        self.view = KpiView(self.rollup, self.config)
        self.alerts = AlertBook(self.view.thresholds, self.config.lineage)
        self.partition_of = {}
        self.watermark = Watermark()
        self.owned = set(partitions)
        judged: list[date] = []
        for key, raw in items:
            partition, scope, day = split_table_key(key)
            if partition not in partitions:
                continue
            if scope == HEARTBEAT_SCOPE:
                judged.append(date.fromisoformat(raw.decode()))
                continue
            self.partition_of[scope] = partition
            if day == ALERTS_DAY:
                self.alerts.restore(scope, raw)
                continue
            if day:
                self.view.note_day(date.fromisoformat(day))
            stored = STORED_PARTS.decode(raw)
            if not stored.parts:
                # Emptied before the crash: its records may still show the old numbers.
                self.rollup.remember(scope, day)
            for source, (values, members) in stored.parts.items():
                update = CellUpdate({k: Decimal(v) for k, v in values.items()}, members)
                self.rollup.update(source, scope, day, update)
            if stored.newest_ts:
                self.rollup.see_time(stored.newest_ts)
        # The earliest of the owned partitions: a day may be judged again, never skipped
        # (scopes remember the last day they judged).
        self.judged = min(judged) if judged else None
        # Republish everything: records changed just before a crash may not have left.
        self.view.republish_all()
