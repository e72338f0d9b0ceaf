"""Kafka records handed to the worker's steps a fetch at a time, below Faust's per-message path.

Faust delivers each record through its conductor, a channel, a stream and an agent, with an
Event and an ack per record: about a hundred microseconds a record on this project's
machines, more than all of our own work on an event. The worker's steps take whole
batches anyway, so the consumer below hands them every record of one fetch at once, and
Faust keeps doing everything else: group membership, rebalances, seeking to committed
offsets, flow control while rebalancing, and periodic commits.

Offsets: a batch is marked done only after its handler returned, that is after every
output it produced was acknowledged by the broker (the steps flush before they return).
Faust's commit loop then commits the offset after the last record of each done batch,
and a partition leaving in a rebalance has its done offset committed before it goes.
Topics without a batch handler keep Faust's own per-message path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import faust
from faust.tables import TableManager
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

BatchHandler = Callable[[list[Any]], Awaitable[None]]


class BatchRoutes:
    """Which handler takes the records of which topics, and in which order within a fetch."""

    def __init__(self, batch_max: int = 5000) -> None:
        self._by_topic: dict[str, int] = {}
        self._handlers: list[BatchHandler] = []
        # A fetch larger than this reaches a route in several batches (round robin kept).
        self.batch_max = batch_max

    def add(self, topics: Iterable[str], handler: BatchHandler) -> None:
        index = len(self._handlers)
        self._handlers.append(handler)
        for topic in topics:
            self._by_topic[topic] = index

    def route(self, topic: str) -> int | None:
        return self._by_topic.get(topic)

    @property
    def handlers(self) -> Sequence[BatchHandler]:
        return self._handlers


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, draining fetches into batch handlers where routes exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per partition, the offset after the last record of the newest batch done.
        self._done: dict[TP, int] = {}
        # Route index → (its queue, the task that runs its batches), made on first use.
        self._lanes: dict[int, tuple[asyncio.Queue, asyncio.Future]] = {}
        self._handling = 0  # batches inside a handler right now
        self._lane_error: BaseException | None = None

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def routes(self) -> BatchRoutes:
        return cast(PipelineApp, self.app).batch_routes

    async def _drain_messages(self, fetcher: Any) -> None:  # the Fetcher's background task
        stopping = self._stopped.is_set
        fetcher_stopping = fetcher._stopped.is_set
        try:
            while not (stopping() or fetcher_stopping()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                self.diag.unset_flag(CONSUMER_FETCHING)
                await asyncio.sleep(0)  # a fetch that returns at once must not starve the loop
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    # Paused for a rebalance after the fetch: drop it, Faust seeks back.
                    await self.perform_seek()
                    continue
                await self._deliver(records, active)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise

    async def _deliver(self, records: dict[TP, list[Any]], active: set[TP] | None) -> None:
        generation = self.app.consumer_generation_id
        routes = self.routes
        batches: list[list[Any]] = [[] for _ in routes.handlers]
        fresh: dict[TP, list[Any]] = {}
        for tp, items in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            read = self._read_offset[tp]
            if read is not None:
                items = [record for record in items if record.offset >= read]
            if not items:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            index = routes.route(tp.topic)
            if index is None:
                await self._deliver_one_by_one(tp, items)
                continue
            fresh[tp] = items
            self._read_offset[tp] = items[-1].offset + 1  # the next to read (a seek sets it so too)
        # Round robin over partitions, as Faust delivers: the partitions of a fetch advance
        # together, so no input partition's event time runs far ahead of the others'
        # (the entity step's watermark is the slowest of the sources it has seen).
        for tp, record in self.scheduler.iterate(fresh):
            batches[routes.route(tp.topic)].append(record)  # type: ignore[index]
        size = self.routes.batch_max
        for index, batch in enumerate(batches):
            for start in range(0, len(batch), size):
                chunk = batch[start : start + size]
                last = {(r.topic, r.partition): r.offset for r in chunk}
                await self._lane(index).put((generation, chunk, {TP(*tp): o for tp, o in last.items()}))

    def backlog(self, topics: set[str], produced: Mapping[tuple[str, int], int] | None = None) -> int:
        """Records of `topics` on owned partitions that no step has handled yet.

        A partition's end is the broker's highwater as of the last fetch, or `produced`
        (what this worker's own writes were acknowledged up to) when that is further.
        """
        waiting = 0
        for tp in self.assignment():
            if tp.topic not in topics:
                continue
            highwater = self.highwater(tp)
            if produced:
                written = produced.get((tp.topic, tp.partition))
                if written is not None and (highwater is None or written > highwater):
                    highwater = written
            if highwater is None:
                continue
            handled = self._done.get(tp)
            if handled is None:
                handled = self._read_offset.get(tp) or 0
            waiting += max(0, highwater - handled)
        return waiting

    def owns_every_partition(self, topics: Iterable[str]) -> bool:
        """This worker is assigned every partition of `topics` (it is the group's only member)."""
        assignment = self.assignment()
        for topic in topics:
            count = len(self.partition_ids(topic))
            if not count or sum(1 for tp in assignment if tp.topic == topic) < count:
                return False
        return True

    def partition_ids(self, topic: str) -> set[int]:
        """Every partition of `topic` in the client's cluster metadata.

        Unlike `topic_partitions` (the group coordinator's snapshot, which aiokafka keeps on
        the group's leader only), every member knows this.
        """
        return cast(ConsumerThread, self._thread).partition_ids(topic)

    def knows_every_end(self, topics: set[str]) -> bool:
        """A fetch has told the end of every owned partition of `topics`."""
        return all(self.highwater(tp) is not None for tp in self.assignment() if tp.topic in topics)

    def busy(self) -> bool:
        """A step is handling a batch, or one waits for its lane."""
        return self._handling > 0 or any(not queue.empty() for queue, _ in self._lanes.values())

    def _lane(self, index: int) -> asyncio.Queue:
        """The queue of route `index`, and its task: each route's batches run one after the
        other, while the other routes' run beside them (one step's wait for the broker's
        acknowledgement is another step's time to compute)."""
        lane = self._lanes.get(index)
        if lane is None:
            queue: asyncio.Queue = asyncio.Queue(maxsize=1)
            self._lanes[index] = lane = (queue, asyncio.ensure_future(self._run_lane(index, queue)))
        return lane[0]

    async def _run_lane(self, index: int, queue: asyncio.Queue) -> None:
        handler = self.routes.handlers[index]
        while True:
            generation, batch, last = await queue.get()
            self._handling += 1
            try:
                if generation != self.app.consumer_generation_id:
                    continue  # fetched before a rebalance: fetched again after its seek
                await handler(batch)
                assignment = self.assignment()
                for tp, offset in last.items():
                    if tp in assignment:
                        self._done[tp] = offset + 1
            except BaseException as exc:
                self._lane_error = exc
                if not isinstance(exc, asyncio.CancelledError):
                    await self.crash(exc)  # as an exception in Faust's own delivery would
                raise
            finally:
                self._handling -= 1
                queue.task_done()

    async def on_stop(self) -> None:
        for _, task in self._lanes.values():
            task.cancel()
        self._lanes = {}
        await super().on_stop()

    async def settle(self) -> None:
        """Wait until every batch handed to the routes so far has been handled (tests, shutdown)."""
        for queue, _ in list(self._lanes.values()):
            await queue.join()
        error, self._lane_error = self._lane_error, None
        if error is not None:
            raise error

    async def _deliver_one_by_one(self, tp: TP, items: list[Any]) -> None:
        for record in items:
            await self.wait_first(self.callback(self._to_message(tp, record)), self.suspend_flow.wait())
            self._read_offset[tp] = record.offset

    # --- commits: done batches, as well as what Faust's own path acked ----------------------
    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Any:
        pending = set(super()._filter_tps_with_pending_acks(topics))
        pending.update(tp for tp in self._done if topics is None or tp in topics or tp.topic in topics)
        return iter(pending)

    def _new_offset(self, tp: TP) -> int | None:
        done = self._done.get(tp)
        if done is not None:
            return done
        return super()._new_offset(tp)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Faust commits what is pending while it revokes (after the streams are empty): the
        # done batches of the partitions leaving must still be there then, or their next
        # owner reads them again from the last timed commit (events counted in twice, a bad
        # record dead-lettered twice). Forgotten afterwards: a late commit from here would
        # move the next owner's offset back.
        await super().on_partitions_revoked(revoked)
        for tp in revoked:
            self._done.pop(tp, None)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the fetch wait of the app's `fetch_max_wait_ms`."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Read by aiokafka when the consumer starts and builds its fetcher (Faust fixes 1,500).
        consumer._fetch_max_wait_ms = cast(PipelineApp, self.app).fetch_max_wait_ms
        return consumer

    def partition_ids(self, topic: str) -> set[int]:
        consumer = self._consumer
        if consumer is None:
            return set()
        # A read of the client's metadata dict: safe from the app's thread under the GIL.
        return set(consumer._client.cluster.partitions_for_topic(topic) or ())


class BatchTransport(faust_aiokafka.Transport):
    Consumer = BatchConsumer


class NoTablesManager(TableManager):
    """Faust's table manager without its one-second wait for tables declared late.

    The pipeline declares no Faust table: each step keeps its state in a compacted topic
    of its own and takes it back itself (agents/recovery.py). Waiting for late tables only
    delayed every worker's start by a second.
    """

    def add(self, table: Any) -> Any:
        raise RuntimeError("the pipeline keeps no Faust table (see agents/recovery.py)")

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class PipelineApp(faust.App):
    """A Faust app whose consumer delivers routed topics in batches (see `BatchRoutes`)."""

    def __init__(self, *args: Any, fetch_max_wait_ms: int = 1500, **kwargs: Any) -> None:
        self.batch_routes = BatchRoutes()
        self.fetch_max_wait_ms = fetch_max_wait_ms
        kwargs.setdefault("TableManager", NoTablesManager)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)

    def route_batches(self, topic: faust.TopicT, handler: BatchHandler) -> None:
        """Deliver every record of `topic` to `handler`, a fetch at a time."""
        self.batch_routes.add(topic.topics, handler)
        self.topics.add(topic)  # subscribed with the rest when the worker starts
