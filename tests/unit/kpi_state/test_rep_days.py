"""A rep's state stored per arrival day (kpi_state.rep_days): bounded writes, recovery, crashes, migration."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

import msgspec

from kpi_state.codec import ACTIVITY, ENTITY_RECORD
from kpi_state.partition_engine import APPLIED, PartitionEngine
from kpi_state.rep_days import LEGACY, day_index, day_key

from tests.unit.kpi_state.test_partition_engine import DAY, HOUR, MON, call, engine, feed

REP = b"rep:a"


def day_of(n: int) -> str:
    """The UTC date of day n after MON."""
    return datetime.fromtimestamp(MON + n * DAY, timezone.utc).date().isoformat()


def calls_on(e: PartitionEngine, scope: str, day: str) -> D:
    """The calls cell of (scope, day), read as the rollup would receive it."""
    e.cells.mark_all_dirty()
    update = e.cells.take_dirty().get((scope, day))
    return D(0) if update is None else update.values.get("calls", D(0))


class Topic:
    """A compacted state topic: the last value of each key, and every write in order."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.writes: list[dict[bytes, bytes]] = []

    def take(self, e: PartitionEngine) -> dict[bytes, bytes]:
        written = e.take_dirty()
        self.values.update(written)
        self.writes.append(written)
        return written


def recovered(values: dict[bytes, bytes], horizon_days: float = 8) -> PartitionEngine:
    again = engine(horizon_days)
    for key, raw in values.items():
        again.load(key, raw)
    again.rebuild()
    again.take_cells()
    return again


def busy_rep(days: int, per_day: int = 20, topic: Topic | None = None) -> tuple[PartitionEngine, Topic, int]:
    """Rep a with `per_day` calls a day (ids d<day>-<n>), the state taken after each day."""
    e, topic = engine(), topic or Topic()
    offset = 0
    for d in range(days):
        for n in range(per_day):
            assert feed(e, call(f"d{d}-{n}", MON + d * DAY + n * 60), offset) == APPLIED
            offset += 1
        topic.take(e)
    return e, topic, offset


def test_a_reps_write_carries_its_newest_day_not_its_history() -> None:
    _, topic, _ = busy_rep(30)
    sizes = [sum(len(raw) for raw in written.values()) for written in topic.writes]
    # The first day writes its 20 ids; day 30 writes its own 20, and the day sealed then.
    # Kept in one record, day 30 re-wrote 8 days of ids, 22 days of digests and 30 of counts.
    assert sizes[-1] < 2 * sizes[0]
    assert max(sizes[10:]) < 2 * sizes[0]


def test_a_day_is_sealed_once_whole_behind_the_horizon_and_written_once() -> None:
    _, topic, _ = busy_rep(12)
    first_day = day_key(day_index(MON), REP)
    written = [n for n, writes in enumerate(topic.writes) if first_day in writes]
    # Open on day 0, sealed on day 9 (its end is 8 days behind 10:00 of day 9 first on day 9).
    assert written == [0, 9]


def test_recovery_from_the_days_keeps_counts_and_every_kind_of_dedup() -> None:
    e, topic, offset = busy_rep(20)
    again = recovered(topic.values)
    assert [calls_on(again, "rep:a", day_of(d)) for d in range(20)] == [D(20)] * 20
    assert again.records[REP].applied_offset == offset - 1
    # Day 0 is sealed: its ids are digests. Day 19 is open: an id with other content conflicts.
    assert feed(again, call("d0-3", MON + 3 * 60), offset) == "duplicate"
    assert feed(again, call("d19-5", MON + 19 * DAY + 5 * 60), offset + 1) == "duplicate"
    assert feed(again, call("d19-5", MON + 19 * DAY + 5 * 60, duration_s=9.0), offset + 2) == "conflicting_duplicate"
    assert feed(again, call("d19-0", MON + 19 * DAY), 3) == "replayed"
    assert calls_on(again, "rep:a", day_of(19)) == D(20)
    # The recovered rep goes on sealing and writing as the one that never stopped.
    for n in range(5):
        assert feed(e, call(f"x{n}", MON + 20 * DAY + n), offset + 3 + n) == APPLIED
        assert feed(again, call(f"x{n}", MON + 20 * DAY + n), offset + 3 + n) == APPLIED
    assert set(again.take_dirty()) - {b"~engine"} == set(e.take_dirty()) - {b"~engine"}


def test_days_written_without_their_record_count_nothing_twice() -> None:
    _, topic, offset = busy_rep(10)
    e = recovered(topic.values)
    batch = [call(f"late{n}", MON + 9 * DAY + HOUR + n) for n in range(10)]
    for n, event in enumerate(batch):
        assert feed(e, event, offset + n) == APPLIED
    written = e.take_dirty()
    # The worker died after the day left and before the rep's record did.
    prefix = dict(topic.values)
    prefix.update({key: raw for key, raw in written.items() if key.startswith(b"~rep-day|")})
    again = recovered(prefix)
    # The batch is read again from the record's offsets: its ids are known from the day.
    assert [feed(again, event, offset + n) for n, event in enumerate(batch)] == ["duplicate"] * 10
    assert calls_on(again, "rep:a", day_of(9)) == D(30)


def _stored_whole(e: PartitionEngine) -> dict[bytes, bytes]:
    """The rep as versions before rep days stored it: one record with its ids and counts."""
    record = e.records[REP]
    whole = msgspec.structs.replace(record, body=ACTIVITY.encode(e.states[REP]))
    return {REP: ENTITY_RECORD.encode(whole)}


def test_a_rep_stored_as_one_record_is_migrated_to_days() -> None:
    e, _, offset = busy_rep(12)
    old = _stored_whole(e)
    migrated = recovered(old)
    assert [calls_on(migrated, "rep:a", day_of(d)) for d in range(12)] == [D(20)] * 12
    assert feed(migrated, call("d0-1", MON + 60), offset) == "duplicate"  # a digest of the old record
    assert feed(migrated, call("d11-1", MON + 11 * DAY + 60, duration_s=9.0), offset + 1) == "conflicting_duplicate"
    written = migrated.take_dirty()
    assert day_key(LEGACY, REP) in written and REP in written
    topic = dict(old)
    topic.update(written)
    # Stored as days now; the old ids still tell duplicates, the counts are the same.
    again = recovered(topic)
    assert [calls_on(again, "rep:a", day_of(d)) for d in range(12)] == [D(20)] * 12
    assert feed(again, call("d0-1", MON + 60), offset + 2) == "duplicate"
    assert feed(again, call("d11-1", MON + 11 * DAY + 60, duration_s=9.0), offset + 3) == "conflicting_duplicate"
    # Once the old ids are past the horizon, the LEGACY day is sealed with every digest.
    assert feed(again, call("new", MON + 21 * DAY), offset + 4) == APPLIED
    sealed = again.take_dirty()
    topic.update(sealed)
    later = recovered(topic)
    assert set(later.records[REP].seen) == {"new"}
    assert feed(later, call("d11-1", MON + 11 * DAY + 60), offset + 5) == "duplicate"
    assert feed(later, call("d0-1", MON + 60), offset + 6) == "duplicate"
    assert sum(calls_on(later, "rep:a", day_of(d)) for d in range(22)) == D(241)


def test_a_crash_during_the_migration_counts_the_old_record_once() -> None:
    e, _, offset = busy_rep(5)
    old = _stored_whole(e)
    migrated = recovered(old)
    assert feed(migrated, call("after", MON + 5 * DAY), offset) == APPLIED
    written = migrated.take_dirty()
    # Its days left, the record did not: the old record is still the one stored.
    topic = dict(old)
    topic.update({key: raw for key, raw in written.items() if key.startswith(b"~rep-day|")})
    again = recovered(topic)
    assert [calls_on(again, "rep:a", day_of(d)) for d in range(5)] == [D(20)] * 5
    assert calls_on(again, "rep:a", day_of(5)) == D(1)
    assert feed(again, call("after", MON + 5 * DAY), offset) == "duplicate"


def test_a_sealed_day_written_without_its_record_is_never_reopened() -> None:
    # Horizon 1 day: a call three days on seals day 0.
    e, topic = engine(1), Topic()
    for n in range(10):
        assert feed(e, call(f"d0-{n}", MON + n * 60), n) == APPLIED
    topic.take(e)
    assert feed(e, call("jump", MON + 3 * DAY), 10) == APPLIED
    written = e.take_dirty()
    assert day_key(day_index(MON), REP) in written  # sealed now
    # The worker died after the days, before the rep's record (its newest time is day 0's).
    topic.values.update({key: raw for key, raw in written.items() if key.startswith(b"~rep-day|")})
    again = recovered(topic.values, horizon_days=1)
    assert feed(again, call("jump", MON + 3 * DAY), 10) == "duplicate"
    # A late event must not arrive in the sealed day 0, whose record it would overwrite.
    assert feed(again, call("late", MON + 2 * HOUR), 11) == APPLIED
    written = again.take_dirty()
    assert day_key(day_index(MON), REP) not in written
    topic.values.update(written)
    later = recovered(topic.values, horizon_days=1)
    assert calls_on(later, "rep:a", day_of(0)) == D(11)
    assert feed(later, call("d0-3", MON + 3 * 60), 12) == "duplicate"
