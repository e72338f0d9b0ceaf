"""BatchConsumer: a fetch goes to the steps in route order, and offsets are committable only once a batch is done."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from faust.types import TP

from agents.delivery import BatchConsumer, PipelineApp


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


@pytest.fixture
def consumer(monkeypatch):
    app = PipelineApp("delivery-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    owned = {TP("in", 0), TP("in", 1), TP("mid", 0)}
    monkeypatch.setattr(consumer, "assignment", lambda: owned)
    monkeypatch.setattr(consumer, "highwater", lambda tp: 100)
    consumer.resume_flow()
    return app, consumer


def fetch(*records: Record) -> dict[TP, list[Record]]:
    out: dict[TP, list[Record]] = {}
    for record in records:
        out.setdefault(TP(record.topic, record.partition), []).append(record)
    return out


async def test_a_fetch_goes_to_each_route_in_the_order_routes_were_added(consumer) -> None:
    app, consumer = consumer
    seen: list[tuple[str, list[int]]] = []

    async def first(records):
        seen.append(("first", [r.offset for r in records]))

    async def second(records):
        seen.append(("second", [r.offset for r in records]))

    app.batch_routes.add(["in"], first)
    app.batch_routes.add(["mid"], second)
    await consumer._deliver(fetch(Record("mid", 0, 5), Record("in", 0, 1), Record("in", 1, 2), Record("in", 0, 3)), None)
    await consumer.settle()
    # Round robin over the partitions of a topic: in[0]@1, in[1]@2, in[0]@3.
    assert seen == [("first", [1, 2, 3]), ("second", [5])]
    assert consumer._new_offset(TP("in", 0)) == 4 and consumer._new_offset(TP("in", 1)) == 3
    assert consumer._new_offset(TP("mid", 0)) == 6
    assert set(consumer._filter_tps_with_pending_acks()) == {TP("in", 0), TP("in", 1), TP("mid", 0)}


async def test_a_batch_that_fails_leaves_its_offsets_uncommitted(consumer, monkeypatch) -> None:
    app, consumer = consumer

    async def failing(records):
        raise RuntimeError("the broker went away mid-flush")

    app.batch_routes.add(["in"], failing)
    crashed: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashed.append(exc)

    monkeypatch.setattr(consumer, "crash", crash)
    await consumer._deliver(fetch(Record("in", 0, 7)), None)
    with pytest.raises(RuntimeError):
        await consumer.settle()
    assert [type(e) for e in crashed] == [RuntimeError]  # the worker stops, as Faust's agents would
    assert consumer._new_offset(TP("in", 0)) is None


async def test_records_already_read_are_not_delivered_twice(consumer) -> None:
    app, consumer = consumer
    got: list[int] = []

    async def collect(records):
        got.extend(r.offset for r in records)

    app.batch_routes.add(["in"], collect)
    await consumer._deliver(fetch(Record("in", 0, 1), Record("in", 0, 2)), None)
    await consumer.settle()
    await consumer._deliver(fetch(Record("in", 0, 2), Record("in", 0, 3)), None)
    await consumer.settle()  # a re-fetch overlaps
    assert got == [1, 2, 3]


async def test_revoked_partitions_forget_their_done_offsets(consumer) -> None:
    app, consumer = consumer

    async def collect(records):
        pass

    app.batch_routes.add(["in"], collect)
    await consumer._deliver(fetch(Record("in", 1, 9), Record("in", 0, 4)), None)
    await consumer.settle()
    assert consumer._new_offset(TP("in", 1)) == 10
    await consumer.on_partitions_revoked({TP("in", 1)})
    assert set(consumer._filter_tps_with_pending_acks()) == {TP("in", 0)}


class Thread:
    """The consumer thread as Faust's commits reach it: what is committed is recorded."""

    def __init__(self) -> None:
        self.commits: list[dict] = []

    async def commit(self, offsets):
        self.commits.append(offsets)


async def test_a_revoked_partition_has_its_done_offset_committed_before_it_leaves(consumer, monkeypatch) -> None:
    # Its next owner starts after what this worker finished instead of reading it again.
    app, consumer = consumer
    thread = Thread()
    monkeypatch.setattr(consumer, "_thread", thread)

    async def collect(records):
        pass

    app.batch_routes.add(["in"], collect)
    await consumer._deliver(fetch(Record("in", 1, 9), Record("in", 0, 4)), None)
    await consumer.settle()
    await consumer.on_partitions_revoked({TP("in", 1)})
    committed = {(tp.topic, tp.partition): offset for offsets in thread.commits for tp, offset in offsets.items()}
    assert committed[("in", 1)] == 10  # the offset after its last done record
    assert TP("in", 1) not in set(consumer._filter_tps_with_pending_acks())  # and never again from here


async def test_partitions_not_active_are_left_out(consumer) -> None:
    app, consumer = consumer
    got: list[tuple[int, int]] = []

    async def collect(records):
        got.extend((r.partition, r.offset) for r in records)

    app.batch_routes.add(["in"], collect)
    await consumer._deliver(fetch(Record("in", 0, 1), Record("in", 1, 1)), {TP("in", 0)})
    await consumer.settle()
    assert got == [(0, 1)]


async def test_a_step_waiting_for_the_broker_does_not_hold_up_the_others(consumer) -> None:
    import asyncio

    app, consumer = consumer
    acked = asyncio.Event()
    done: list[str] = []

    async def edge(records):
        await acked.wait()  # its flush waits for the broker
        done.append("edge")

    async def entities(records):
        done.append("entities")

    app.batch_routes.add(["in"], edge)
    app.batch_routes.add(["mid"], entities)
    await consumer._deliver(fetch(Record("in", 0, 1), Record("mid", 0, 1)), None)
    for _ in range(10):
        await asyncio.sleep(0)
    assert done == ["entities"] and consumer._new_offset(TP("in", 0)) is None
    acked.set()
    await consumer.settle()
    assert done == ["entities", "edge"] and consumer._new_offset(TP("in", 0)) == 2


def test_the_backlog_counts_records_this_worker_wrote_before_a_fetch_shows_them(consumer) -> None:
    _, consumer = consumer
    consumer._done = {TP("in", 0): 100, TP("in", 1): 100, TP("mid", 0): 100}
    assert consumer.backlog({"in", "mid"}) == 0  # every highwater (100) handled
    # The edge wrote mid[0] up to offset 129, acknowledged; no fetch has said so yet.
    assert consumer.backlog({"in", "mid"}, {("mid", 0): 130}) == 30
    assert consumer.backlog({"in"}, {("mid", 0): 130}) == 0
    # A fetch that saw further than the worker's own writes (another writer) wins.
    assert consumer.backlog({"mid"}, {("mid", 0): 90}) == 0


def test_owning_every_partition_needs_all_of_each_topic(consumer, monkeypatch) -> None:
    _, consumer = consumer
    counts = {"in": 2, "mid": 1, "out": 3}
    monkeypatch.setattr(consumer, "partition_ids", lambda topic: set(range(counts.get(topic, 0))))
    assert consumer.owns_every_partition(["in", "mid"])
    assert not consumer.owns_every_partition(["in", "out"])  # out is another worker's
    counts["in"] = 3  # a partition added to the input: one of them is not here
    assert not consumer.owns_every_partition(["in"])
    assert not consumer.owns_every_partition(["unknown"])  # no metadata yet: not known


def test_every_end_is_known_once_each_owned_partition_was_fetched(consumer, monkeypatch) -> None:
    _, consumer = consumer
    ends = {TP("in", 0): 10, TP("in", 1): 4, TP("mid", 0): None}
    monkeypatch.setattr(consumer, "highwater", ends.get)
    assert consumer.knows_every_end({"in"})
    assert not consumer.knows_every_end({"in", "mid"})


async def test_the_worker_consumer_waits_at_the_broker_as_long_as_the_app_says() -> None:
    app = PipelineApp("delivery-test", broker="kafka://127.0.0.1:1", web_enabled=False, fetch_max_wait_ms=20)
    thread = app.consumer._new_consumer_thread()
    made = thread._create_worker_consumer(app.transport)
    assert made._fetch_max_wait_ms == 20  # Faust's own choice would be 1,500


async def test_every_member_knows_the_input_partitions_from_the_cluster_metadata() -> None:
    # The group coordinator's snapshot (topic_partitions) is filled on the leader only:
    # the entity step's wait for silent inputs reads the client's metadata instead.
    app = PipelineApp("delivery-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    thread = app.consumer._new_consumer_thread()
    app.consumer._thread = thread
    assert app.consumer.partition_ids("crm.events") == set()  # not started: nothing known
    thread._consumer = made = thread._create_worker_consumer(app.transport)
    made._client.cluster._partitions["crm.events"] = {0: None, 1: None, 2: None}
    assert app.consumer.partition_ids("crm.events") == {0, 1, 2}
    assert app.consumer.partition_ids("billing.events") == set()
