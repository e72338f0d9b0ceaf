"""The Faust app factory: topics, the partials table, the thin agent, the flush timer, web pages."""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from agents.ingest import Ingestor
from agents.publish import Publisher
from agents.web import register_pages
from exporters.pipeline_metrics import PipelineMetrics
from exporters.prometheus import KpiCollector
from exporters.redis_sink import RedisSink
from kpi_state.count_book import CountBook, split_partial_key
from kpi_state.counts import decode_counts, encode_counts
from kpi_state.directory import RepDirectory
from streams.currency import Rates
from streams.decode import Decoder
from streams.kafka_security import ssl_context
from streams.reps import RepsReader, read_reps_file
from streams.settings import Settings

log = logging.getLogger(__name__)

PARTIALS_TABLE = "kpi-partials"


class PartialsTable(faust.Table):
    """The persisted rep partials; tells the runtime when recovery has finished."""

    on_recovered: Any = None

    async def on_recovery_completed(self, active_tps: set, standby_tps: set) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        if self.on_recovered is not None:
            self.on_recovered({tp.partition for tp in active_tps})


class Runtime:
    """What the agents, timers and pages of one worker share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics(self.registry)
        self.directory = RepDirectory()
        self.book = CountBook(settings.timezone, self.directory)
        # Set when a rep moved: totals are rebuilt once, at the next flush.
        self.directory_changed = False
        self.decoder = Decoder(
            stages=settings.stages,
            rates=Rates(settings.reporting_currency),
            max_event_bytes=settings.max_event_bytes,
        )
        self.ingestor = Ingestor(self.book, self.decoder, self.metrics)
        self.registry.register(
            KpiCollector(
                self,
                settings.max_series_per_kpi,
                on_fold=lambda kpi, n: self.metrics.series_folded.labels(kpi).inc(n),
            )
        )
        self.redis = RedisSink(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        self.ready = False
        self.started_at = time.time()

    def place_rep(self, rep_id: str, team_id: str, region_id: str) -> None:
        if self.directory.place(rep_id, team_id, region_id):
            self.directory_changed = True

    def current_records(self):
        return self.book.current_records(time.time())

    def load_partials(self, table: faust.Table, partitions: set[int]) -> None:
        """Rebuild the in-memory book from the recovered table, active partitions only."""
        book = self.book
        book.partials.clear()
        book.dirty_partials.clear()
        for key, raw in table.data.items():
            partition, _ = split_partial_key(key)
            if partition in partitions:
                book.partials[key] = decode_counts(raw)
        book.rebuild()
        self.ready = True
        log.info("state recovered: %d partials on partitions %s", len(book.partials), sorted(partitions))


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
        topic_partitions=input_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        table_standby_replicas=0,
        producer_acks=-1,
        logging_config=None,
    )
    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
        )

    crm = raw_topic(settings.topic_crm)
    dlq = raw_topic(settings.topic_dlq)
    kpi_values = raw_topic(settings.topic_kpi_values)
    # Billing KPIs come with the KPI engine; until then billing and reps records are
    # validated so bad ones reach the DLQ, and good reps feed the directory (below).
    validate_only = app.topic(settings.topic_billing, settings.topic_reps, key_type=bytes,
                              value_type=bytes, key_serializer="raw", value_serializer="raw")

    table = app.tables.add(
        PartialsTable(
            app,
            name=PARTIALS_TABLE,
            schema=faust.Schema(
                key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
            ),
            partitions=input_partitions,
            beacon=app.tables.beacon,
        )
    )
    table.on_recovered = lambda partitions: runtime.load_partials(table, partitions)
    publisher = Publisher(runtime, kpi_values)

    @app.agent(crm, name="crm-ingest")
    async def crm_ingest(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            await apply_batch([event.message for event in events])

    @app.agent(validate_only, name="validate")
    async def validate(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, settings.batch_within_s):
            await dead_letter(runtime.ingestor.ingest([event.message for event in events]))

    async def dead_letter(rejections: list) -> None:
        # Queued on the producer, which Faust flushes before committing the offsets.
        for rejection in rejections:
            await dlq.send(key=rejection.key, value=rejection.value, headers=rejection.headers)

    async def apply_batch(messages: list) -> None:
        await dead_letter(runtime.ingestor.ingest(messages))
        # One changelog record per touched partial, not per event; Faust flushes the
        # producer before it commits the batch's offsets, so state lands first.
        for key, partial in runtime.book.take_dirty_partials().items():
            raw = encode_counts(partial)
            table.data[key] = raw
            table.send_changelog(split_partial_key(key)[0], key, raw)

    @app.timer(settings.flush_interval_s, on_leader=False)
    async def flush() -> None:
        if runtime.directory_changed:
            runtime.directory_changed = False
            runtime.book.rebuild()
        if runtime.ready:
            await publisher.flush()

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

    register_pages(app, runtime)
    return app, runtime
