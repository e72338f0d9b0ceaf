"""The Faust app factory: topics, tables, the three thin agents, the flush timer, web pages.

edge      crm.events, billing.events  → validate, DLQ, re-key by entity → {app}-entity-events
entities  {app}-entity-events         → dedup, lifecycles, day cells   → {app}-cells (by scope)
rollup    {app}-cells                 → scope totals, KPI records      → kpi.values, Redis, /metrics
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import faust
import mode
from prometheus_client import CollectorRegistry

from agents.batches import (
    StepTopics,
    announce_recovered,
    dead_letter,
    entity_batch,
    rebuild_cells,
    rollup_batch,
)
from agents.edge import BILLING_TYPES, CRM_TYPES, Edge
from agents.entities import EntityStage
from agents.health import attach_health
from agents.publish import Publisher
from agents.rebalance import StepGate
from agents.rollup_stage import RollupStage
from agents.alerting import install_alerting
from agents.thresholds_command import read_thresholds
from agents.web import register_pages
from exporters.kafka_out import KafkaOut
from exporters.pipeline_metrics import InputFreshness, PipelineMetrics
from exporters.prometheus import KpiCollector
from exporters.redis_sink import RedisSink
from kpi_state.directory import RepDirectory
from kpi_state.kpi_view import ViewConfig
from kpi_state.stream_clock import StreamClock
from kpi_state.thresholds import lineage_in
from streams.currency import Rates
from streams.decode import Decoder
from streams.kafka_security import ssl_context
from streams.reps import RepsReader, read_reps_file
from streams.settings import Settings
from streams.state_log import read_state
from streams.topics import internal_topic_names, state_topic_name

log = logging.getLogger(__name__)
INFINITE = float("inf")


class Runtime:
    """What the agents, timers and pages of one worker share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.directory = RepDirectory()
        self.thresholds = read_thresholds(settings.thresholds_file)
        self.directory_changed = False
        self.decoder = Decoder(
            stages=settings.stages,
            rates=Rates(settings.reporting_currency, settings.exchange_rates),
            max_event_bytes=settings.max_event_bytes,
        )
        self.clock = StreamClock(settings.lateness_s, settings.future_skew_s)
        self.edge = Edge(
            self.decoder, self.clock, self.metrics,
            {settings.topic_crm: CRM_TYPES, settings.topic_billing: BILLING_TYPES,
             settings.topic_backfill: CRM_TYPES | BILLING_TYPES},
            history=frozenset({settings.topic_backfill}),
        )
        # sales.reps is reference data: no lateness, but its key must be the rep.
        self.reps_gate = Edge(
            self.decoder, StreamClock(INFINITE, INFINITE), self.metrics,
            {settings.topic_reps: frozenset({"rep.upserted"})}, {settings.topic_reps: "rep_id"},
        )
        self.entities = EntityStage(
            decoder=self.decoder, directory=self.directory, metrics=self.metrics,
            tz=settings.timezone, stages=settings.stages, dedup_horizon_s=settings.dedup_horizon_s,
            lateness_s=settings.lateness_s, backfill_topic=settings.topic_backfill,
        )
        self.rollup = RollupStage(
            ViewConfig(
                tz=settings.timezone, stages=settings.stages, currency=settings.reporting_currency,
                customer_lifetime_days=Decimal(str(settings.customer_lifetime_days)),
                thresholds=self.thresholds, lineage=lineage_in(self.directory),
            )
        )
        self.registry.register(
            KpiCollector(
                self, settings.max_series_per_kpi,
                on_fold=lambda kpi, n: self.metrics.series_folded.labels(kpi).inc(n),
                currency=settings.reporting_currency,
                on_collected=self.metrics.scrape_duration.observe,
            )
        )
        self.registry.register(InputFreshness(lambda: self.clock.newest))
        self.out = KafkaOut(settings)
        self.redis = RedisSink.from_settings(settings) if settings.redis_url else None
        self.gate = StepGate(("edge", "entities", "rollup"))
        self.publisher: Publisher | None = None
        self.metrics.unpublished.set_function(self.unpublished)
        self.metrics.held.set_function(lambda: float(self.entities.held()))

    def status(self) -> dict[str, Any]:
        def total(counter: Any) -> float:
            return sum(sample.value for metric in counter.collect() for sample in metric.samples
                       if sample.name.endswith("_total"))

        lag = {
            f"{sample.labels['topic']}[{sample.labels['partition']}]": sample.value
            for metric in self.metrics.lag.collect() for sample in metric.samples
        }
        return {
            "ready": self.ready,
            "events_in": total(self.metrics.events_in),
            "events_applied": total(self.metrics.events_applied),
            "events_rejected": total(self.metrics.events_rejected),
            "duplicates": total(self.metrics.duplicates),
            "lag": lag,
            "unpublished": self.unpublished(),
            "records_published": total(self.metrics.records_published),
        }

    def unpublished(self) -> float:
        cells = sum(len(engine.cells.dirty) for engine in self.entities.engines.values())
        publishing = self.publisher.in_flight if self.publisher is not None else 0
        return float(cells + self.rollup.rollup.pending + publishing)

    @property
    def ready(self) -> bool:
        return self.gate.ready.is_set()

    def place_rep(self, rep_id: str, team_id: str, region_id: str) -> None:
        if self.directory.place(rep_id, team_id, region_id):
            self.directory_changed = True

    def current_records(self) -> list:
        return self.rollup.view.current()


def faust_credentials(settings: Settings) -> Any:
    """Faust's credentials for the configured protocol (None for PLAINTEXT)."""
    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value() if settings.sasl_password else None,
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings, *, input_partitions: int) -> tuple[faust.App, Runtime]:
    """Build the app for `settings`; `input_partitions` is the input topics' partition count."""
    runtime = Runtime(settings)
    if settings.reps_file is not None:
        for rep_id, team_id, region_id in read_reps_file(settings.reps_file):
            runtime.place_rep(rep_id, team_id, region_id)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        table_standby_replicas=0,
        producer_acks=-1,
        logging_config=None,
    )

    def raw_topic(*names: str) -> faust.TopicT:
        return app.topic(
            *names, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    entity_events_name, cells_name = internal_topic_names(settings)
    inputs = raw_topic(settings.topic_crm, settings.topic_billing, settings.topic_backfill)
    reps_topic = raw_topic(settings.topic_reps)
    entity_events = raw_topic(entity_events_name)
    cells = raw_topic(cells_name)

    def recover_clock(items: list[tuple[bytes, bytes]], active: set[int]) -> None:
        runtime.clock.newest.clear()
        for key, raw in items:
            name = key.decode()
            if int(name.rsplit("|", 1)[1]) in active:
                runtime.clock.newest[name] = float(raw)

    stages = {
        # stage: (the input whose partitions it owns, how it takes its state back)
        "stream-time": (settings.topic_crm, recover_clock),
        "entities": (entity_events_name, runtime.entities.recover),
        "rollup": (cells_name, runtime.rollup.recover),
    }
    state_topics = {stage: state_topic_name(settings, stage) for stage in stages}

    gate = runtime.gate
    step_topics = StepTopics(
        dlq=settings.topic_dlq, cells=cells_name,
        entity_state=state_topics["entities"], rollup_state=state_topics["rollup"],
    )

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any = None, **kwargs: Any) -> None:
        # Each stage reads back the state of exactly the partitions it now owns, before
        # its agent handles a record.
        runtime.metrics.rebalances.inc()
        async with gate.rebalancing():
            gate.owned = set(assigned or ())
            for stage, (source, recover) in stages.items():
                owned = {tp.partition for tp in gate.owned if tp.topic == source}
                items = await read_state(settings, state_topics[stage], owned)
                recover(items, owned)
                log.info("%s recovered: %d keys on partitions %s", stage, len(items), sorted(owned))
            await announce_recovered(runtime.entities, runtime.out, step_topics)
            await alerting.recovered()
        gate.ready.set()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
        # Batches in flight finish and persist their state before the partitions move on,
        # so the next owner recovers what they applied.
        async with gate.rebalancing():
            gate.owned -= set(revoked or ())

    out = runtime.out
    alerting = install_alerting(app, runtime, step_topics)

    @app.agent(inputs, name="edge")
    async def edge(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            async with gate.turn("edge"):
                forwards, rejections = runtime.edge.process(gate.owned_records(events), time.time())
                await dead_letter(out, settings.topic_dlq, rejections)
                for key, value in forwards:
                    await out.send(entity_events_name, key, value)
                for name, newest in runtime.clock.take_changed().items():
                    await out.send(
                        state_topics["stream-time"], name.encode(), repr(newest).encode(),
                        partition=int(name.rsplit("|", 1)[1]),
                    )
                # On the broker before Faust commits the batch's input offsets.
                await out.flush()

    @app.agent(reps_topic, name="reps-gate")
    async def reps_gate(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            await gate.ready.wait()
            _, rejections = runtime.reps_gate.process([e.message for e in events], time.time())
            await dead_letter(out, settings.topic_dlq, rejections)
            await out.flush()

    @app.agent(entity_events, name="entities")
    async def entities(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            async with gate.turn("entities"):
                await entity_batch(runtime.entities, gate.owned_records(events), out, step_topics)
                await alerting.heartbeats()  # after the cells: the rollup's watermark (alerts)

    @app.agent(cells, name="rollup")
    async def rollup(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            async with gate.turn("rollup"):
                await rollup_batch(runtime.rollup, gate.owned_records(events), out, step_topics)
                await alerting.after_batch()  # the batch's alert transitions, once its state is stored

    publisher = runtime.publisher = Publisher(runtime, settings.topic_kpi_values)

    @app.service
    class OutputService(mode.Service):
        """Starts the shared producer with the worker and drains it on the way out."""

        async def on_start(self) -> None:
            await out.start()

        async def on_stop(self) -> None:
            await out.flush()
            await out.stop()


    pacing = {"next": 0.0}

    @app.timer(settings.flush_interval_s, on_leader=False)
    async def flush() -> None:
        if not runtime.ready or time.monotonic() < pacing["next"]:
            return
        started = time.monotonic()
        if runtime.directory_changed:
            runtime.directory_changed = False
            async with gate.turn("entities"):
                await rebuild_cells(runtime.entities, out, step_topics)
        await publisher.flush()
        # Under load (a replay of history), flushing costs more: space flushes so they
        # take at most a third of the time, coalescing more changes into each.
        spent = time.monotonic() - started
        pacing["next"] = time.monotonic() + 2 * spent

    watched = {settings.topic_crm, settings.topic_billing, settings.topic_backfill, settings.topic_reps,
               entity_events_name, cells_name}

    @app.timer(1.0, on_leader=False)
    async def measure_lag() -> None:
        # Committed offsets, not read ones: lag 0 means processed, persisted and acked.
        consumer = app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        lags: dict[tuple[str, str], int] = {}
        owned: dict[str, int] = {}
        for tp in consumer.assignment():
            if tp.topic not in watched:
                continue
            owned[tp.topic] = owned.get(tp.topic, 0) + 1
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            done = committed.get(tp)
            lags[(tp.topic, str(tp.partition))] = max(0, highwater - (done + 1 if done is not None else 0))
        # Partitions handed to another worker leave this worker's page (no await in
        # between, so a scrape never sees the gauges half rebuilt).
        metrics = runtime.metrics
        metrics.lag.clear()
        for (topic, partition), lag in lags.items():
            metrics.lag.labels(topic, partition).set(lag)
        metrics.assigned_partitions.clear()
        for topic, count in owned.items():
            metrics.assigned_partitions.labels(topic).set(count)

    @app.task
    async def connect_sinks() -> None:
        if runtime.redis is not None:
            await runtime.redis.setup()

    reps_reader = RepsReader(
        settings, runtime.decoder, lambda rep: runtime.place_rep(rep.rep_id, rep.team_id, rep.region_id)
    )

    @app.task
    async def follow_reps() -> None:
        await reps_reader.run()

    attach_health(app, runtime, list(state_topics.values()))
    register_pages(app, runtime)
    return app, runtime
