"""The edge, entity and rollup steps fed with plain record objects (no broker, no Faust)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal as D

from prometheus_client import CollectorRegistry

from agents.batches import forwarded_items
from agents.bundles import partition_for
from agents.edge import BILLING_TYPES, CRM_TYPES, Edge
from agents.entities import EntityStep, input_sources
from agents.rollup_step import RollupStep
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.day_cells import CellUpdate
from kpi_state.directory import RepDirectory
from kpi_state.kpi_view import ViewConfig
from kpi_state.routing import entity_key
from kpi_state.stream_clock import StreamClock
from kpi_state.codec import CELLS, FORWARDED, PROGRESS_KEY, Cells, Forwarded
from streams.settings import DEFAULT_STAGES
from tests.inprocess import BILLING, CRM, Record, Settings, decoder

WALL = datetime(2026, 3, 2, 12, tzinfo=timezone.utc).timestamp()
DAY = 86400.0


def envelope(event_id: str, event_type: str, when: str, **data: object) -> bytes:
    return json.dumps({"event_id": event_id, "type": event_type, "occurred_at": when,
                       "source": "crm", "schema_version": 1, "data": data}).encode()


def call(event_id: str, when: str = "2026-03-02T09:00:00Z", rep: str = "a", **data: object) -> bytes:
    return envelope(event_id, "call.logged", when, rep_id=rep, **data)


SPEND = envelope("s1", "spend.recorded", "2026-03-02T09:00:00Z", amount="10.00", currency="EUR",
                 category="marketing", team_id="t1")


def metrics() -> PipelineMetrics:
    return PipelineMetrics(CollectorRegistry())


def edge() -> Edge:
    return Edge(decoder(Settings()), StreamClock(7 * DAY, 300), metrics(), {CRM: CRM_TYPES, BILLING: BILLING_TYPES})


def headers(rejection) -> dict[str, str]:
    return {name: value.decode() for name, value in rejection.headers}


# --- edge -------------------------------------------------------------------------------------


def test_the_edge_forwards_by_entity_with_the_original_record() -> None:
    value = call("e1")
    forwards, rejections = edge().process([Record(CRM, 2, 41, b"whatever", value, [("trace", b"x")])], WALL)
    assert rejections == []
    [(key, packed)] = forwards
    assert key == b"rep:a"  # the producer's key is not used: the pipeline re-keys by entity
    original = FORWARDED.decode(packed)
    assert (original.topic, original.partition, original.offset, original.key, original.value) == (
        CRM, 2, 41, b"whatever", value)
    assert original.headers == [("trace", b"x")]


def test_the_edge_keys_opportunity_and_billing_events_by_their_entity() -> None:
    opened = envelope("c1", "opportunity.created", "2026-03-02T09:00:00Z", opportunity_id="o-9",
                      rep_id="a", stage="prospecting")
    forwards, _ = edge().process([Record(CRM, 0, 0, None, opened), Record(BILLING, 0, 0, None, SPEND)], WALL)
    assert [key for key, _ in forwards] == [b"opp:o-9", b"spend:t1"]


def test_the_edge_dead_letters_with_reason_and_provenance() -> None:
    records = [
        Record(CRM, 1, 7, b"k", b"{not json", timestamp=1_000_000),
        Record(CRM, 1, 8, None, SPEND),  # a valid billing event on the CRM topic
        Record(CRM, 1, 9, None, call("f1", "2026-03-02T12:05:01Z")),  # 301 s ahead of the wall clock
    ]
    forwards, rejections = edge().process(records, WALL)
    assert forwards == []
    assert [r.reason for r in rejections] == ["not_json", "unknown_type", "future_timestamp"]
    first = headers(rejections[0])
    assert (first["kpi.error.reason"], first["kpi.source.topic"], first["kpi.source.partition"],
            first["kpi.source.offset"], first["kpi.source.timestamp"]) == ("not_json", CRM, "1", "7", "1000000")
    assert (rejections[0].key, rejections[0].value) == (b"k", b"{not json")  # unchanged


def test_lateness_is_judged_per_input_partition() -> None:
    e = edge()
    e.process([Record(CRM, 0, 0, None, call("new", "2026-03-02T09:00:00Z"))], WALL)
    # 7 days and 1 second behind partition 0's stream time: too late there...
    old = call("old", "2026-02-23T08:59:59Z")
    _, rejections = e.process([Record(CRM, 0, 1, None, old)], WALL)
    assert [r.reason for r in rejections] == ["too_late"]
    # ...but partition 1 has seen nothing newer, and exactly 7 days behind is still in time.
    forwards, rejections = e.process([Record(CRM, 1, 0, None, old),
                                      Record(CRM, 0, 2, None, call("edge", "2026-02-23T09:00:00Z"))], WALL)
    assert rejections == [] and len(forwards) == 2


def test_a_keyed_topic_refuses_a_key_that_differs_from_the_data() -> None:
    gate = Edge(decoder(Settings()), StreamClock(float("inf"), float("inf")), metrics(),
                {"sales.reps": frozenset({"rep.upserted"})}, {"sales.reps": "rep_id"})
    rep = envelope("r1", "rep.upserted", "2026-03-02T09:00:00Z", rep_id="a", team_id="t1", region_id="north")
    _, rejections = gate.process([Record("sales.reps", 0, 0, b"b", rep), Record("sales.reps", 0, 1, b"a", rep)], WALL)
    assert [r.reason for r in rejections] == ["key_mismatch"]


# --- entities ---------------------------------------------------------------------------------


def entity_step() -> EntityStep:
    directory = RepDirectory()
    directory.place("a", "t1", "north")
    return EntityStep(decoder=decoder(Settings()), directory=directory, metrics=metrics(), tz="UTC",
                       stages=DEFAULT_STAGES, dedup_horizon_s=8 * DAY)


def forwarded(partition: int, offset: int, value: bytes, source_offset: int, source_partition: int = 3) -> Record:
    """`value` forwarded as an older edge did, without its decoded event, keyed by its entity."""
    packed = FORWARDED.encode(Forwarded(None, value, [], CRM, source_partition, source_offset, 1_000))
    return Record("entity-events", partition, offset, entity_key(decoder(Settings()).decode(value)), packed)


def cells_by_scope(step: EntityStep) -> dict[str, tuple[int, float, dict]]:
    out = {}
    for key, value in step.cell_messages():
        cells = CELLS.decode(value)
        out[key.decode()] = (cells.partition, cells.newest_ts, cells.days)
    return out


def test_the_entity_step_counts_dedups_and_dead_letters_conflicts() -> None:
    step = entity_step()
    rejections = step.process([
        forwarded(1, 0, call("e1", duration_s=60), 100),
        forwarded(1, 1, call("e2", "2026-03-02T10:00:00Z"), 101),
        forwarded(1, 2, call("e1", duration_s=60), 102),  # re-sent: dropped silently
        forwarded(1, 3, call("e1", duration_s=75), 103),  # same id, other content
    ])
    assert [r.reason for r in rejections] == ["conflicting_duplicate"]
    # The DLQ record is the original input record, with the input's provenance.
    meta = headers(rejections[0])
    assert (meta["kpi.source.topic"], meta["kpi.source.partition"], meta["kpi.source.offset"]) == (CRM, "3", "103")
    assert json.loads(rejections[0].value)["data"]["duration_s"] == 75
    cells = cells_by_scope(step)
    assert set(cells) == {"rep:a", "team:t1", "region:north", "global"}
    partition, newest, days = cells["team:t1"]
    assert partition == 1
    assert newest == datetime(2026, 3, 2, 10, tzinfo=timezone.utc).timestamp()
    assert days == {"2026-03-02": ({"calls": D(2)}, {})}
    assert step.cell_messages() == []  # nothing changed since


def test_events_the_edge_carried_and_events_read_again_from_json_are_judged_alike() -> None:
    # The edge forwards each event decoded; an older edge forwarded the JSON only. A copy
    # of either kind is the same event to the dedup window: re-sent, it is a duplicate,
    # changed, a conflict, whichever way the first one came.
    sent, _ = edge().process([
        Record(CRM, 3, 100, None, call("e1", duration_s=60)),
        Record(CRM, 3, 101, None, call("e2", "2026-03-02T10:00:00Z")),
    ], WALL)
    assert all(FORWARDED.decode(value).event is not None for _, value in sent)
    assert [key for key, _ in sent] == [b"rep:a", b"rep:a"]
    step = entity_step()
    carried = [Record("entity-events", 1, offset, key, value) for offset, (key, value) in enumerate(sent)]
    rejections = step.process(carried + [
        forwarded(1, 2, call("e1", duration_s=60), 102),  # re-sent, without its event
        forwarded(1, 3, call("e2", "2026-03-02T10:00:00Z", duration_s=5), 103),  # other content
    ])
    assert [(r.reason, headers(r)["kpi.source.offset"]) for r in rejections] == [("conflicting_duplicate", "103")]
    assert cells_by_scope(step)["rep:a"][2] == {"2026-03-02": ({"calls": D(2)}, {})}
    # And the other way round: first without, then carried.
    again = entity_step()
    assert again.process([forwarded(1, 0, call("e1", duration_s=60), 100)]) == []
    resent, _ = edge().process([Record(CRM, 3, 101, None, call("e1", duration_s=60))], WALL)
    assert again.process([Record("entity-events", 1, 1, key, value) for key, value in resent]) == []
    assert step.metrics.duplicates._value.get() == 1
    assert again.metrics.duplicates._value.get() == 1
    assert cells_by_scope(again)["rep:a"][2] == {"2026-03-02": ({"calls": D(1)}, {})}


def test_the_entity_step_recovers_its_own_partitions_and_skips_what_it_applied() -> None:
    step = entity_step()
    batch = [forwarded(0, 0, call("e1"), 1), forwarded(1, 0, call("e2"), 2), forwarded(1, 1, call("e3"), 3)]
    step.process(batch)
    stored = [(key, raw) for _, key, raw in step.dirty_records()]
    # Per (partition, entity): the rep's record, and its arrival day (kpi_state.rep_days).
    assert {key for key, _ in stored if key.endswith(b"rep:a")} == {
        b"0|rep:a", b"1|rep:a", b"0|~rep-day|20514|rep:a", b"1|~rep-day|20514|rep:a",
    }
    again = entity_step()
    again.recover(stored, {1})  # this worker owns partition 1 only
    assert set(again.engines) == {1}
    # Every cell is re-sent after recovery: e2 and e3 of partition 1.
    assert cells_by_scope(again)["rep:a"][2] == {"2026-03-02": ({"calls": D(2)}, {})}
    # The batch re-read after the crash changes nothing.
    assert again.process(batch[1:]) == []
    assert cells_by_scope(again) == {}


def test_an_event_forwarded_again_is_a_replay_told_by_its_input_offset() -> None:
    step = entity_step()
    first = [forwarded(1, 0, call("e1"), 100), forwarded(1, 1, call("e2"), 101, source_partition=0)]
    step.process(first)
    # An edge that died before committing forwards input offsets 100.. again: later
    # entity-events offsets, the same input offsets. Replays, not duplicates; e3 is new
    # although its input offset is below the others', on another input partition.
    again = [forwarded(1, 7, call("e1"), 100), forwarded(1, 8, call("e2"), 101, source_partition=0),
             forwarded(1, 9, call("e3"), 50, source_partition=1)]
    assert step.process(again) == []
    assert step.metrics.replayed._value.get() == 2
    assert step.metrics.duplicates._value.get() == 0
    assert cells_by_scope(step)["rep:a"][2] == {"2026-03-02": ({"calls": D(3)}, {})}


# --- rollup -----------------------------------------------------------------------------------


def cell_message(offset: int, source: int, calls: int, newest: str = "2026-03-02T10:00:00Z") -> Record:
    ts = datetime.fromisoformat(newest.replace("Z", "+00:00")).timestamp()
    value = CELLS.encode(Cells.of(source, ts, {"2026-03-02": CellUpdate({"calls": D(calls)}, {})}))
    return Record("cells", 2, offset, b"rep:a", value)


def rollup_step() -> RollupStep:
    return RollupStep(ViewConfig(tz="UTC", stages=DEFAULT_STAGES, currency="EUR"))


def published(step: RollupStep) -> dict[str, float | None]:
    return {r.key: r.value for r in step.view.refresh(WALL)}


def test_the_rollup_step_sums_partitions_and_replaces_their_cells() -> None:
    step = rollup_step()
    writes = step.process([cell_message(0, source=0, calls=2), cell_message(1, source=1, calls=3)])
    assert [(p, key) for p, key, _ in writes] == [(2, b"2|rep:a|2026-03-02")]
    assert published(step)["calls|rep:a|day|2026-03-02T00:00:00Z"] == 5  # 2 + 3
    step.process([cell_message(2, source=0, calls=4)])  # partition 0's cell is now 4, not 2 + 4
    assert published(step)["calls|rep:a|week|2026-03-02T00:00:00Z"] == 7
    step.process([cell_message(2, source=0, calls=4)])  # re-read: harmless
    assert published(step) == {}


def test_the_rollup_step_recovers_from_its_table_writes() -> None:
    step = rollup_step()
    writes = step.process([cell_message(0, source=0, calls=2), cell_message(1, source=1, calls=3)])
    before = published(step)
    again = rollup_step()
    again.recover([(key, value) for _, key, value in writes], {2})
    # Everything is published again, with the same numbers and windows; after a restart the
    # empty records are published too (one may have been emptied just before the crash).
    republished = published(again)
    assert {key: value for key, value in republished.items() if key in before} == before
    assert set(republished) >= set(before)
    assert all(value in (None, 0) for key, value in republished.items() if key not in before)
    assert again.rollup.newest_ts == datetime(2026, 3, 2, 10, tzinfo=timezone.utc).timestamp()
    other = rollup_step()
    other.recover([(key, value) for _, key, value in writes], {0, 1})  # not the owner of partition 2
    assert published(other) == {}


class _Metadata:
    """The consumer's partition ids by topic (BatchConsumer.partition_ids)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def partition_ids(self, topic: str) -> set[int]:
        return set(range(self.counts.get(topic, 0)))


def test_the_input_sources_are_every_partition_the_metadata_knows() -> None:
    consumer = _Metadata({CRM: 2, BILLING: 1})
    assert input_sources(consumer, (CRM, BILLING, "unknown.topic")) == {f"{CRM}|0", f"{CRM}|1", f"{BILLING}|0"}


def test_the_entity_step_holds_orphans_while_an_input_partition_is_silent_then_lets_them_go() -> None:
    step = entity_step()
    step.inputs_of = lambda: frozenset({f"{CRM}|3", f"{CRM}|4"})  # forwarded() records come from CRM partition 3
    win = envelope("w", "opportunity.won", "2026-03-01T09:00:00Z", opportunity_id="o-1", rep_id="a",
                   amount="100", currency="EUR")
    later = envelope("c", "call.logged", "2026-03-10T09:00:00Z", rep_id="a")
    rejected = step.process([forwarded(0, 0, win, 0), forwarded(0, 1, later, 1)], WALL)
    assert rejected == [] and step.held() == 1
    assert step.engines[0].awaited == [f"{CRM}|4"]
    assert step.expect_inputs(WALL + step.input_patience_s - 1) is False
    assert step.expect_inputs(WALL + step.input_patience_s) is True  # partition 4 stayed empty
    assert [r.reason for r in step.process([])] == ["orphaned"]
    assert step.held() == 0


def test_every_entity_partition_hears_how_far_each_input_partition_is_even_without_its_events() -> None:
    # One call on CRM partition 1: its event goes to one entity partition, its stream time to all four.
    edge_ = edge()
    forwards, _ = edge_.process([Record(CRM, 1, 0, None, call("e1", "2026-03-02T09:00:00Z"))], WALL)
    items = forwarded_items(edge_, forwards, edge_.clock.take_changed(), 4)
    event_partition = partition_for(b"rep:a", 4)
    assert [(p, key) for p, key, _ in items] == [(event_partition, b"rep:a")] + [(p, PROGRESS_KEY) for p in range(4)]
    step = entity_step()
    step.inputs_of = lambda: frozenset({f"{CRM}|1"})
    records = [Record("entity-events", p, n, key, value) for n, (p, key, value) in enumerate(items)]
    assert step.process(records, WALL) == []
    called = datetime(2026, 3, 2, 9, tzinfo=timezone.utc).timestamp()
    for partition in range(4):  # no engine waits for CRM partition 1: each knows where it stands
        engine = step.engines[partition]
        assert engine.awaited == [] and engine.watermark == called
    assert step.engines[event_partition].now == called
    assert {p: e.now for p, e in step.engines.items() if p != event_partition} == dict.fromkeys(
        set(range(4)) - {event_partition})  # a stream time is no event: the engines' clocks stay


def test_history_and_unmoved_partitions_send_no_progress() -> None:
    history = Edge(decoder(Settings()), StreamClock(7 * DAY, 300), metrics(),
                   {CRM: CRM_TYPES, "events.backfill": CRM_TYPES}, history=frozenset({"events.backfill"}))
    forwards, _ = history.process([Record("events.backfill", 0, 0, None, call("h1"))], WALL)
    assert [key for _, key, _ in forwarded_items(history, forwards, history.clock.take_changed(), 4)] == [b"rep:a"]
    assert history.progress({}) is None
