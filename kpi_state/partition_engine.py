"""All KPI state of one entity partition: dedup, entity lifecycles, and the day cells they add up to."""

from __future__ import annotations

import heapq
import sys
from collections.abc import Callable
from typing import Any

from kpi_state.activity import ActivityState
from kpi_state.calendar import local_date
from kpi_state import id_digests
from kpi_state.codec import ENGINE_CLOCK, ENTITY_RECORD, REP_DAY, EngineClock
from kpi_state.day_cells import CellUpdate, DayCells
from kpi_state.directory import RepDirectory
from kpi_state.entity import (
    CONFLICTING,
    DUPLICATE,
    HELD,
    NEW,
    REPLAYED,
    EntityRecord,
    Withdrawn,
)
from kpi_state.entity_kinds import KINDS, kind_of
from kpi_state.events import Event
from kpi_state.rep_days import DAY_S, LEGACY, OpenDay, RepDays, day_index, day_key, split_day_key
from kpi_state.rep_days import PREFIX as DAY_PREFIX

APPLIED = "applied"
# The engine's own record in the state topic: its clock and the watermark's sources.
ENGINE_KEY = b"~engine"


class PartitionEngine:
    """Pure: events in (with their source offset), persisted records and cell changes out."""

    def __init__(
        self, *, tz: str, stages: tuple[str, ...], directory: RepDirectory, dedup_horizon_s: float,
        lateness_s: float = 7 * 86400,
    ) -> None:
        self.tz = tz
        self.stages = stages
        self.horizon = dedup_horizon_s
        self.lateness = lateness_s
        self.cells = DayCells(directory)
        self.records: dict[bytes, EntityRecord] = {}
        self.states: dict[bytes, Any] = {}
        # Settled entities (nothing held, no record kept for the DLQ, no id left in the
        # dedup window, cells a function of the state alone) stay as their encoded record,
        # decoded again only when an event of theirs arrives: most are never asked again.
        self.cold: dict[bytes, bytes] = {}
        self.dirty: set[bytes] = set()
        self.now: float | None = None
        # Newest event time seen from each source partition. Its minimum is the watermark:
        # an event still to come from a source is at most `lateness` older than what that
        # source sent last (its edge checks that), so events behind watermark − lateness
        # can no longer be matched or withdrawn by anything that arrives.
        self.sources: dict[str, float] = {}
        # Input partitions known to exist that have sent nothing yet → the wall time that
        # was first noticed. Until one sends, its events may be of any age, so the watermark
        # waits for it, for at most the patience given to `expect` (Kafka Streams' task
        # idling): a partition that never receives anything must not stop the clock forever.
        self._silent_since: dict[str, float] = {}
        self._awaited: list[str] = []  # of those, the ones still waited for
        self._clock_dirty = False
        # (due time, entity) of customers whose overdue snapshot changes at that time.
        self._due: list[tuple[float, bytes]] = []
        # (time, entity) at which an entity has events to settle at the lateness horizon.
        self._expiry: list[tuple[float, bytes]] = []
        self.held: dict[bytes, int] = {}  # entity -> events waiting for their match
        # Events taken out of an entity (withdrawn or orphaned), for the DLQ.
        self.dead: list[Withdrawn] = []
        self._day_start = self._day_end = 0.0
        self._day = ""
        self.rep_days: dict[bytes, RepDays] = {}  # kpi_state.rep_days
        self._loaded_days: dict[bytes, list[tuple[int, Any]]] = {}  # recovered, adopted in `rebuild`
        self._legacy: set[bytes] = set()  # reps recovered from a record that kept everything

    # --- events -------------------------------------------------------------------------
    def apply(
        self, key: bytes, event: Event, offset: int, fingerprint: int, raw: bytes | None = None,
        source: str | None = None, origin: str | None = None,
    ) -> str:
        """`applied`, `held`, `replayed`, `duplicate`, or the DLQ reason of a refused event.

        `raw` is the record as it arrived, kept while the event may still leave for the DLQ
        (withdrawn by an earlier event, or orphaned); such events are in `take_dead()`.
        `source` names the input partition the event came from (for the watermark).
        `offset` is the event's offset in `origin`, its input partition (`source` by
        default; history's partitions hold no watermark back, so they have no source).
        """
        if origin is None:
            origin = source or ""
        if source is not None and event.ts > self.sources.get(source, float("-inf")):
            self.sources[source] = event.ts
            self._clock_dirty = True
        if key in self.cold:
            self._thaw(key)
        record = self.records.get(key)
        if record is None:
            record = EntityRecord(kind=kind_of(key))
        verdict = record.admit(origin, offset, event.event_id, fingerprint)
        if verdict == REPLAYED:
            return REPLAYED
        if verdict in (DUPLICATE, CONFLICTING):
            record.mark(origin, offset, None, fingerprint, event.ts, self.horizon)
            self._keep(key, record)
            return DUPLICATE if verdict == DUPLICATE else CONFLICTING
        assert verdict == NEW
        if record.kind == "rep":
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = ActivityState()
            day = self._local_day(event.ts)
            kpi = state.count(event.type, day)
            self.cells.count(kpi, ("rep", event.rep_id), day)
            self._mark_rep(key, record, origin, offset, event, fingerprint, kpi, day)
            outcome = APPLIED
        else:
            kind = KINDS[record.kind]
            state = self.states.get(key)
            fresh = state is None
            if fresh:
                state = kind.new(event)
            before = self._contributions(key, state) if kind.stateless_cells and not fresh else []
            judged = kind.add(state, event, raw, self.stages)
            outcome = APPLIED if judged.verdict is None else judged.verdict
            self.dead.extend(judged.withdrawn)
            if not fresh or outcome in (APPLIED, HELD):
                self.states[key] = state
                if kind.stateless_cells:
                    # Contributions that depend on the state alone are derived again from
                    # the state before and after, rather than kept for every entity.
                    self.cells.apply_change(before, self._contributions(key, state))
                else:
                    self._refresh(key)
            # Every judged id is remembered: a re-sent copy is a duplicate, whatever the verdict.
            record.mark(origin, offset, event.event_id, fingerprint, event.ts, self.horizon, self._knows(key))
        self._keep(key, record)
        if record.kind != "rep" and key in self.states:
            self._settle_later(key)  # after `mark`: the id just seen also has its horizon
        if self.now is None or event.ts > self.now:
            self.now = event.ts
            self._clock_dirty = True
        return outcome

    def heard(self, newest: dict[str, float]) -> None:
        """Input partitions' stream times from an edge: sources of the watermark even when
        none of their events came here (what an edge lets through is never later than the
        lateness limit behind them)."""
        sources = self.sources
        for source, ts in newest.items():
            if ts > sources.get(source, float("-inf")):
                sources[source] = ts
                self._clock_dirty = True

    def take_dead(self) -> list[Withdrawn]:
        dead, self.dead = self.dead, []
        return dead

    def expect(self, inputs: frozenset[str], wall_now: float, patience_s: float) -> bool:
        """`inputs` are every input partition that exists; True when the watermark just stopped waiting."""
        silent = self._silent_since
        for source in inputs:
            if source not in self.sources and source not in silent:
                silent[source] = wall_now
        for source in [s for s in silent if s in self.sources or s not in inputs]:
            del silent[source]
        was = bool(self._awaited)
        self._awaited = sorted(s for s, since in silent.items() if wall_now - since < patience_s)
        return was and not self._awaited

    @property
    def awaited(self) -> list[str]:
        """Input partitions not heard from that the watermark waits for now."""
        return self._awaited

    @property
    def watermark(self) -> float | None:
        if self._awaited or not self.sources:
            return None
        return min(self.sources.values())

    def held_events(self) -> int:
        return sum(self.held.values())

    def advance(self, now: float) -> None:
        """Move the partition's clock (the newest event time): refresh due snapshots, and
        settle what fell behind the lateness horizon (orphans go to `take_dead()`)."""
        if self.now is None or now > self.now:
            self.now = now
        clock = self.now or 0.0
        while self._due and self._due[0][0] <= clock:
            _, key = heapq.heappop(self._due)
            if key in self.states:
                self._refresh(key)
        watermark = self.watermark
        if watermark is None:
            return
        while self._expiry and self._expiry[0][0] < watermark:
            _, key = heapq.heappop(self._expiry)
            state = self.states.get(key)
            if state is None:
                continue
            # Ids past the dedup horizon of the watermark are forgotten (most entities
            # never see another event that would prune them).
            self.records[key].forget_before(watermark - self.horizon, self._knows(key))
            kind = KINDS[self.records[key].kind]
            # Only held events can be orphaned: an entity holding none keeps its cells, and
            # deriving its contributions for nothing cost most of a settling.
            held = kind.held(state)
            before = self._contributions(key, state) if kind.stateless_cells and held else None
            orphaned = kind.expire(state, watermark - self.lateness, self.stages)
            if orphaned:
                self.dead.extend(orphaned)
                if not kind.stateless_cells:
                    self._refresh(key)
                elif before is None:  # orphans come from held events alone (see above)
                    raise AssertionError(f"{key!r} orphaned events it did not hold")
                else:
                    self.cells.apply_change(before, self._contributions(key, state))
            self.dirty.add(key)  # settled events keep no record: persist the smaller state
            self._settle_later(key)

    def _days_of(self, key: bytes) -> RepDays:
        days = self.rep_days.get(key)
        if days is None:
            days = self.rep_days[key] = RepDays()
        return days

    def _mark_rep(
        self, key: bytes, record: EntityRecord, origin: str, offset: int, event: Event, fingerprint: int,
        kpi: str, day: str,
    ) -> None:
        """A rep remembers the id in its arrival day (kpi_state.rep_days), with the count it added."""
        record.note(origin, offset)
        record.seen[event.event_id] = (fingerprint, event.ts)
        days = self._days_of(key)
        advanced = event.ts > record.newest_ts
        if advanced:
            record.newest_ts = event.ts
        days.add(day_index(record.newest_ts), event.event_id, kpi, day)
        if advanced:
            cutoff = record.newest_ts - self.horizon
            while (index := days.due(cutoff)) is not None:
                record.retire(*days.seal(index))

    # --- persistence --------------------------------------------------------------------
    def take_dirty(self) -> dict[bytes, bytes]:
        """Encoded records of entities changed since the last call (one changelog write each).

        A rep's changed days come before its record (kpi_state.rep_days says why)."""
        out = {}
        for key in self.dirty:
            record = self.records[key]
            if record.kind == "rep":
                out.update(self._rep_writes(key, record))
                continue
            state = self.states.get(key)
            record.body = KINDS[record.kind].encode(state) if state is not None else b""
            out[key] = raw = ENTITY_RECORD.encode(record)
            record.body = b""  # the state lives decoded; its bytes are on the state topic
            if state is not None and self._settled(record, state):
                self.cold[key] = raw
                del self.records[key], self.states[key]
        self.dirty.clear()
        if self._clock_dirty:
            out[ENGINE_KEY] = ENGINE_CLOCK.encode(EngineClock(self.now, self.sources))
            self._clock_dirty = False
        return out

    def _rep_writes(self, key: bytes, record: EntityRecord) -> dict[bytes, bytes]:
        days = self.rep_days.get(key)
        out = {day_key(index, key): REP_DAY.encode(day) for index, day in days.take(record.seen)} if days else {}
        # The record itself keeps only offsets: its ids and counts are in its days.
        seen, past, recent = record.seen, record.past, record.recent
        record.seen, record.past, record.recent = {}, b"", b""
        out[key] = ENTITY_RECORD.encode(record)
        record.seen, record.past, record.recent = seen, past, recent
        return out

    def load(self, key: bytes, raw: bytes) -> None:
        """Adopt a record recovered from the changelog; call `rebuild` after the last one."""
        if key == ENGINE_KEY:
            clock = ENGINE_CLOCK.decode(raw)
            self.now, self.sources = clock.now, dict(clock.sources)
            return
        if key.startswith(DAY_PREFIX):
            index, entity = split_day_key(key)
            self._loaded_days.setdefault(entity, []).append((index, REP_DAY.decode(raw)))
            return
        record = _decoded(raw)
        if record.kind == "rep" and (record.body or record.seen or record.past or record.recent):
            self._legacy.add(key)  # stored before rep days: migrated in `rebuild`
        if record.body:
            state = KINDS[record.kind].decode(record.body)
            if self._settled(record, state):
                self.cold[key] = raw
                return
            self.states[key] = state
            record.body = b""
        self.records[key] = record

    def rebuild(self) -> None:
        """Recompute every cell from the entity states (after recovery or a rep moving team)."""
        self._adopt_rep_days()
        self.cells.clear()
        self._due.clear()
        self._expiry.clear()
        for key, raw in self.cold.items():
            record = ENTITY_RECORD.decode(raw)
            self.cells.apply(self._contributions(key, KINDS[record.kind].decode(record.body)))
        for key, state in self.states.items():
            kind = self.records[key].kind
            if kind == "rep":
                self.cells.apply(state.contributions(key[4:].decode()))
                continue
            self._settle_later(key)
            if KINDS[kind].stateless_cells:
                self.cells.apply(self._contributions(key, state))
            else:
                self._refresh(key)

    def take_cells(self) -> dict[tuple[str, str], CellUpdate]:
        return self.cells.take_dirty()

    def _adopt_rep_days(self) -> None:
        """Reps' recovered days back into their records and counts; old whole records migrated."""
        loaded, self._loaded_days = self._loaded_days, {}
        legacy, self._legacy = self._legacy, set()
        for key in legacy:  # first: its LEGACY day takes the counts of the old record alone
            self._migrate_rep(key)
        for key, stored in loaded.items():
            record = self.records.get(key)
            if record is None:
                record = self.records[key] = EntityRecord(kind="rep")
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = ActivityState()
            days = self._days_of(key)
            digests: list[bytes] = []
            for index, day in sorted(stored, key=lambda item: item[0]):
                if index == LEGACY and key in legacy:
                    continue  # made from the old record, which is still the one stored
                state.add_counts(day.counts)
                digests += id_digests.slots(day.digests)
                if not day.seen:
                    if index != LEGACY:
                        days.sealed_through = max(days.sealed_through, index)
                        # Sealed once the rep's newest event was a horizon past its end.
                        record.newest_ts = max(record.newest_ts, (index + 1) * DAY_S + self.horizon)
                    continue
                record.seen.update(day.seen)
                # Days can be newer than the record (a worker died between the two writes).
                record.newest_ts = max(record.newest_ts, max(ts for _, ts in day.seen.values()))
                bucket = days.open[index] = OpenDay()
                bucket.ids = list(day.seen)
                bucket.counts = {(kpi, local_day): n for kpi, local_day, n in day.counts}
                if index == LEGACY:
                    days.legacy_until = max(ts for _, ts in day.seen.values())
                    days.legacy_digests = day.digests
            if digests:
                record.past = id_digests.merged(record.past, id_digests.slots(record.recent) + digests)
                record.recent = b""

    def _migrate_rep(self, key: bytes) -> None:
        """A rep stored as one whole record: its ids and counts become its LEGACY day."""
        record = self.records[key]
        state = self.states.get(key)
        days = self._days_of(key)
        legacy = OpenDay()
        if state is not None:
            legacy.counts = {(kpi, day): n for kpi, by_day in state.counts.items() for day, n in by_day.items()}
        legacy.ids = list(record.seen)
        days.open = {LEGACY: legacy, **days.open}
        days.dirty.add(LEGACY)
        days.legacy_until = max((ts for _, ts in record.seen.values()), default=0.0)
        days.legacy_digests = id_digests.merged(record.past, id_digests.slots(record.recent))
        self.dirty.add(key)

    # --- internals ----------------------------------------------------------------------
    def _keep(self, key: bytes, record: EntityRecord) -> None:
        self.records[key] = record
        self.dirty.add(key)

    def _settled(self, record: EntityRecord, state: Any) -> bool:
        return not record.seen and KINDS[record.kind].settled(state)

    def _knows(self, key: bytes) -> Callable[[str], bool] | None:
        state = self.states.get(key)
        knows = KINDS[kind_of(key)].knows
        return None if state is None or knows is None else lambda event_id: knows(state, event_id)

    def _thaw(self, key: bytes) -> None:
        record = _decoded(self.cold.pop(key))
        self.states[key] = KINDS[record.kind].decode(record.body)
        record.body = b""
        self.records[key] = record

    def _settle_later(self, key: bytes) -> None:
        kind = KINDS[self.records[key].kind] if key in self.records else KINDS[kind_of(key)]
        state = self.states[key]
        held = kind.held(state)
        if held:
            self.held[key] = held
        else:
            self.held.pop(key, None)
        when = kind.next_expiry(state, self.lateness)
        seen = self.records[key].seen if key in self.records else None
        if seen:
            oldest = min(ts for _, ts in seen.values()) + self.horizon
            when = oldest if when is None else min(when, oldest)
        if when is not None:
            heapq.heappush(self._expiry, (when, key))

    def _contributions(self, key: bytes, state: Any) -> list:
        kind = KINDS[kind_of(key)]
        return kind.contributions(state, self.tz, self.now if self.now is not None else 0.0, self.stages)

    def _refresh(self, key: bytes) -> None:
        kind = KINDS[self.records[key].kind] if key in self.records else KINDS[kind_of(key)]
        state = self.states[key]
        now = self.now if self.now is not None else 0.0
        self.cells.replace(key, kind.contributions(state, self.tz, now, self.stages))
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


def _decoded(raw: bytes) -> EntityRecord:
    record = ENTITY_RECORD.decode(raw)
    record.applied_origin = sys.intern(record.applied_origin)  # a few names, shared by many records
    return record
