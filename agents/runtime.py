"""What the steps, timers and pages of one worker share: settings, metrics, the steps' objects, sinks."""

from __future__ import annotations

from decimal import Decimal
from collections.abc import Callable
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from agents.edge import BILLING_TYPES, CRM_TYPES, Edge
from agents.entities import EntityStep
from agents.publish import Publisher
from agents.rebalance import StepGate
from agents.rollup_step import RollupStep
from agents.thresholds_command import read_thresholds
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
from streams.settings import Settings

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
        self.entities = EntityStep(
            decoder=self.decoder, directory=self.directory, metrics=self.metrics,
            tz=settings.timezone, stages=settings.stages, dedup_horizon_s=settings.dedup_horizon_s,
            lateness_s=settings.lateness_s, backfill_topic=settings.topic_backfill,
            input_patience_s=settings.input_wait_s,
        )
        self.rollup = RollupStep(
            ViewConfig(
                tz=settings.timezone, stages=settings.stages, currency=settings.reporting_currency,
                customer_lifetime_days=Decimal(str(settings.customer_lifetime_days)),
                thresholds=self.thresholds, lineage=lineage_in(self.directory),
            )
        )
        # /metrics writes the KPI families itself (KpiCollector.exposition); the registry
        # holds their names only, so that no other metric can take one.
        self.kpi_metrics = KpiCollector(
            self, settings.max_series_per_kpi,
            on_fold=lambda kpi, n: self.metrics.series_folded.labels(kpi).inc(n),
            currency=settings.reporting_currency,
            on_collected=self.metrics.scrape_duration.observe,
        )
        self.registry.register(self.kpi_metrics.reserved_names())
        self.registry.register(InputFreshness(lambda: self.clock.newest))
        self.out = KafkaOut(settings)
        self.redis = RedisSink.from_settings(settings) if settings.redis_url else None
        self.gate = StepGate(("edge", "entities", "rollup"))
        self.publisher: Publisher | None = None
        self.metrics.unpublished.set_function(self.unpublished)
        self.metrics.held.set_function(lambda: float(self.entities.held()))
        # Measures the lag gauges now (set by the app, whose consumer it reads).
        self.refresh_lag: Callable[[], None] = lambda: None

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
            # No orphan expiry and no alert day judged while these have sent nothing.
            "waiting_for_inputs": sorted({s for e in self.entities.engines.values() for s in e.awaited}),
            "input_partitions_known": len(self.entities.inputs_of()),
            "records_published": total(self.metrics.records_published),
        }

    def unpublished(self) -> float:
        cells = sum(engine.cells.changed() for engine in self.entities.engines.values())
        # Records Redis has not taken yet count too: a flush is done when every sink has it.
        publishing = self.publisher.in_flight + self.publisher.redis_waiting if self.publisher is not None else 0
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
