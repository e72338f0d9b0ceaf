"""All KPI state of one entity partition: dedup, entity lifecycles, and the day cells they add up to."""

from __future__ import annotations

import heapq
from typing import Any

from kpi_state.activity import ActivityState
from kpi_state.calendar import local_date
from kpi_state.day_cells import CellUpdate, DayCells
from kpi_state.directory import RepDirectory
from kpi_state.entity import CONFLICTING, DUPLICATE, NEW, REPLAYED, EntityRecord, decode_record, encode_record
from kpi_state.entity_kinds import KINDS, kind_of
from kpi_state.events import Event

APPLIED = "applied"


class PartitionEngine:
    """Pure: events in (with their source offset), persisted records and cell changes out."""

    def __init__(
        self, *, tz: str, stages: tuple[str, ...], directory: RepDirectory, dedup_horizon_s: float
    ) -> None:
        self.tz = tz
        self.stages = stages
        self.horizon = dedup_horizon_s
        self.cells = DayCells(directory)
        self.records: dict[bytes, EntityRecord] = {}
        self.states: dict[bytes, Any] = {}
        self.dirty: set[bytes] = set()
        self.now: float | None = None
        # (due time, entity) of customers whose overdue snapshot changes at that time.
        self._due: list[tuple[float, bytes]] = []
        self._day_start = self._day_end = 0.0
        self._day = ""

    # --- events -------------------------------------------------------------------------
    def apply(self, key: bytes, event: Event, offset: int, fingerprint: int) -> str:
        """`applied`, `replayed`, `duplicate`, or the DLQ reason of a refused event."""
        record = self.records.get(key)
        if record is None:
            record = EntityRecord(kind=kind_of(key))
        verdict = record.admit(offset, event.event_id, fingerprint)
        if verdict == REPLAYED:
            return REPLAYED
        if verdict in (DUPLICATE, CONFLICTING):
            record.mark(offset, None, fingerprint, event.ts, self.horizon)
            self._keep(key, record)
            return DUPLICATE if verdict == DUPLICATE else CONFLICTING
        assert verdict == NEW
        kind = KINDS[record.kind]
        state = self.states.get(key)
        if record.kind == "rep":
            if state is None:
                state = ActivityState()
            self.cells.apply([state.add(event.type, event.rep_id, self._local_day(event.ts))])
        else:
            if state is None:
                state, reason = kind.start(event, self.stages)
            else:
                reason = kind.apply(state, event, self.stages)
            if reason is not None:
                return reason
        if self.now is None or event.ts > self.now:
            self.now = event.ts
        record.mark(offset, event.event_id, fingerprint, event.ts, self.horizon)
        self.states[key] = state
        self._keep(key, record)
        if record.kind != "rep":
            self._refresh(key)
        return APPLIED

    def advance(self, now: float) -> None:
        """Move the partition's clock (the newest event time) and refresh due snapshots."""
        if self.now is None or now > self.now:
            self.now = now
        while self._due and self._due[0][0] <= (self.now or 0):
            _, key = heapq.heappop(self._due)
            if key in self.states:
                self._refresh(key)

    # --- persistence --------------------------------------------------------------------
    def take_dirty(self) -> dict[bytes, bytes]:
        """Encoded records of entities changed since the last call (one changelog write each)."""
        out = {}
        for key in self.dirty:
            record = self.records[key]
            record.body = KINDS[record.kind].encode(self.states[key]) if key in self.states else b""
            out[key] = encode_record(record)
        self.dirty.clear()
        return out

    def load(self, key: bytes, raw: bytes) -> None:
        """Adopt a record recovered from the changelog; call `rebuild` after the last one."""
        record = decode_record(raw)
        self.records[key] = record
        if record.body:
            self.states[key] = KINDS[record.kind].decode(record.body)
            if record.newest_ts and (self.now is None or record.newest_ts > self.now):
                self.now = record.newest_ts

    def rebuild(self) -> None:
        """Recompute every cell from the entity states (after recovery or a rep moving team)."""
        self.cells.clear()
        self._due.clear()
        for key, state in self.states.items():
            if self.records[key].kind == "rep":
                self.cells.apply(state.contributions(key[4:].decode()))
            else:
                self._refresh(key)

    def take_cells(self) -> dict[tuple[str, str], CellUpdate]:
        return self.cells.take_dirty()

    # --- internals ----------------------------------------------------------------------
    def _keep(self, key: bytes, record: EntityRecord) -> None:
        self.records[key] = record
        self.dirty.add(key)

    def _refresh(self, key: bytes) -> None:
        kind = KINDS[self.records[key].kind]
        state = self.states[key]
        now = self.now if self.now is not None else 0.0
        self.cells.replace(key, kind.contributions(state, self.tz, now))
        next_due = kind.next_change(state, now)
        if next_due is not None:
            heapq.heappush(self._due, (next_due, key))

    def _local_day(self, ts: float) -> str:
        if not self._day_start <= ts < self._day_end:
            from kpi_state.calendar import period_bounds

            day = local_date(ts, self.tz)
            self._day_start, self._day_end = period_bounds(day, "day", self.tz)
            self._day = day.isoformat()
        return self._day
