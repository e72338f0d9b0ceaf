"""The pipeline's health metrics: freshness per input topic, names promtool accepts."""

import os
import shutil
import subprocess

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporters.pipeline_metrics import NEWEST_EVENT_METRIC, InputFreshness, PipelineMetrics
from tests.conftest import require


def freshness(registry):
    return {
        sample.labels["topic"]: sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples if sample.name == NEWEST_EVENT_METRIC
    }


def test_newest_event_time_is_the_max_over_the_partitions_owned_now():
    clock = {"crm.events|0": 1_790_000_000.0, "crm.events|1": 1_790_000_500.0, "billing.events|1": 1_789_000_000.0}
    registry = CollectorRegistry()
    registry.register(InputFreshness(lambda: clock))
    assert freshness(registry) == {"crm.events": 1_790_000_500.0, "billing.events": 1_789_000_000.0}
    # Partition 1 moved to another worker: only what this worker still owns is reported.
    del clock["crm.events|1"], clock["billing.events|1"]
    assert freshness(registry) == {"crm.events": 1_790_000_000.0}


def test_the_freshness_name_is_taken_at_registration():
    registry = CollectorRegistry()
    registry.register(InputFreshness(dict))
    try:
        registry.register(InputFreshness(dict))
    except ValueError:
        return
    raise AssertionError("a second freshness collector was accepted")


def test_promtool_accepts_every_pipeline_metric():
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian package prometheus) is not installed")
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    registry.register(InputFreshness(lambda: {"crm.events|0": 1_790_000_000.0}))
    metrics.events_in.labels("crm.events").inc()
    metrics.events_applied.labels("call.logged").inc()
    metrics.events_rejected.labels("not_json").inc()
    metrics.duplicates.inc()
    metrics.replayed.inc()
    metrics.late.inc()
    metrics.lag.labels("crm.events", "0").set(3)
    metrics.flush_duration.labels("kafka").observe(0.01)
    metrics.records_published.labels("kafka").inc()
    metrics.sink_errors.labels("redis").inc()
    metrics.unpublished.set(2)
    metrics.series_folded.labels("calls").inc()
    metrics.scrape_duration.observe(0.002)
    metrics.assigned_partitions.labels("crm.events").set(2)
    metrics.rebalances.inc()
    text = generate_latest(registry).decode()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                            env=dict(os.environ, LANG="C"))
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), result.stdout + result.stderr
