"""Consumer lag per owned partition, from committed offsets: lag 0 means processed, persisted and acked."""

from __future__ import annotations

from typing import Any

from exporters.pipeline_metrics import PipelineMetrics


def measure_lag(consumer: Any, watched: set[str], metrics: PipelineMetrics) -> None:
    """Set the lag and assigned-partitions gauges from `consumer` (Faust's)."""
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
        # The committed offset is the next one to read: everything before it is done.
        done = committed.get(tp)
        lags[(tp.topic, str(tp.partition))] = max(0, highwater - (done or 0))
    # Partitions handed to another worker leave this worker's page (no await in between,
    # so a scrape never sees the gauges half rebuilt).
    metrics.lag.clear()
    for (topic, partition), lag in lags.items():
        metrics.lag.labels(topic, partition).set(lag)
    metrics.assigned_partitions.clear()
    for topic, count in owned.items():
        metrics.assigned_partitions.labels(topic).set(count)
