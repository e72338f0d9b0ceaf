"""The pipeline's own health metrics, created against an injected registry."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

NEWEST_EVENT_METRIC = "kpi_pipeline_input_newest_event_timestamp_seconds"


class PipelineMetrics:
    """Counters and gauges the agents update; one instance per app, never global.

    Each worker counts only what passes through the partitions it owns, so a sum over
    workers counts every record once; gauges of partitions it lost are removed.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_in = Counter(
            "kpi_pipeline_events_in",
            "Records read from the input topics",
            ["topic"],
            registry=registry,
        )
        self.events_applied = Counter(
            "kpi_pipeline_events_applied",
            "Valid events applied to KPI state",
            ["type"],
            registry=registry,
        )
        self.events_rejected = Counter(
            "kpi_pipeline_events_rejected",
            "Records sent to the dead-letter topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "kpi_pipeline_duplicates",
            "Events dropped because the same event_id and payload was already applied",
            registry=registry,
        )
        self.replayed = Counter(
            "kpi_pipeline_replayed_skipped",
            "Records at or below an offset already applied (re-read after a restart)",
            registry=registry,
        )
        self.events_held = Counter(
            "kpi_pipeline_events_held",
            "Events held on their entity until the event that makes them valid arrives",
            ["type"],
            registry=registry,
        )
        self.held = Gauge(
            "kpi_pipeline_held_events",
            "Events waiting now for the event that makes them valid (a win before its created)",
            registry=registry,
        )
        self.late = Counter(
            "kpi_pipeline_late_events",
            "Events rejected as too late for their partition's stream time",
            registry=registry,
        )
        self.lag = Gauge(
            "kpi_pipeline_consumer_lag_records",
            "Records behind the end of each assigned input partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.flush_duration = Histogram(
            "kpi_pipeline_flush_duration_seconds",
            "Time to publish one flush of changed KPIs",
            ["sink"],
            registry=registry,
        )
        self.records_published = Counter(
            "kpi_pipeline_kpi_records_published",
            "KPI value records written, by sink",
            ["sink"],
            registry=registry,
        )
        self.sink_errors = Counter(
            "kpi_pipeline_sink_errors",
            "Failed writes to an output, by sink",
            ["sink"],
            registry=registry,
        )
        self.unpublished = Gauge(
            "kpi_pipeline_unpublished_changes",
            "Changed cells, KPI series and records Redis has not taken yet (0 when all is published)",
            registry=registry,
        )
        self.series_folded = Counter(
            "kpi_pipeline_series_folded",
            "KPI series exposed under scope id `other` because a KPI passed its series limit",
            ["kpi"],
            registry=registry,
        )
        self.scrape_duration = Histogram(
            "kpi_pipeline_scrape_duration_seconds",
            "Time to collect and format the KPI families of one /metrics scrape",
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "kpi_pipeline_assigned_partitions",
            "Partitions of each topic this worker consumes now",
            ["topic"],
            registry=registry,
        )
        self.rebalances = Counter(
            "kpi_pipeline_rebalances",
            "Partition assignments this worker received (each one reloads the steps' state)",
            registry=registry,
        )


class InputFreshness(Collector):
    """Newest event time (occurred_at) per input topic over the partitions this worker owns.

    Read at scrape time from the stream clock (keys `topic|partition`), so partitions
    handed to another worker stop counting here at once; `max by (topic)` over workers
    gives the topic's freshness, `time() - …` how long it has been silent.
    """

    def __init__(self, newest: Callable[[], Mapping[str, float]]) -> None:
        self.newest = newest

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        by_topic: dict[str, float] = {}
        for name, ts in self.newest().items():
            topic = name.rsplit("|", 1)[0]
            by_topic[topic] = max(ts, by_topic.get(topic, ts))
        family = self._family()
        for topic, ts in sorted(by_topic.items()):
            family.add_metric([topic], ts)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            NEWEST_EVENT_METRIC,
            "Newest event time (occurred_at) seen on each input topic, Unix seconds",
            labels=["topic"],
        )
