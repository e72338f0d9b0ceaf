"""Two workers scraped by one Prometheus: sums over workers count every record once, each series lives on one worker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.integration.prometheus_server import running_prometheus
from tests.integration.test_dashboards_live import traffic
from tests.integration.test_reference_equality import produce

pytestmark = pytest.mark.integration


def drained(workers, expected_in: int, timeout: float = 120) -> list[dict]:
    """Both workers: every record read between them, lag 0, nothing waiting, three polls in a row."""
    deadline = time.monotonic() + timeout
    quiet, previous = 0, None
    while quiet < 3:
        assert time.monotonic() < deadline, f"the pipeline did not drain in time: {previous}"
        time.sleep(1.0)
        statuses = [json.loads(worker.get("/status")) for worker in workers]
        published = [s["records_published"] for s in statuses]
        done = (
            sum(s["events_in"] for s in statuses) >= expected_in
            and all(s["lag"] and not any(s["lag"].values()) and not s["unpublished"] for s in statuses)
            and previous is not None and published == [s["records_published"] for s in previous]
        )
        quiet = quiet + 1 if done else 0
        previous = statuses
    return previous


def _maybe_scalar(prometheus, expr: str) -> float | None:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def scalar(prometheus, expr: str) -> float:
    value = _maybe_scalar(prometheus, expr)
    assert value is not None, f"no data for {expr}"
    return value


@pytest.mark.timeout(180)
def test_each_worker_reports_what_it_owns(pipeline_env, start_worker, tmp_path):
    reps, records, rep_ids = traffic(pipeline_env)
    records = records[: len(records) // 3]  # the first fortnight is enough here
    env = dict(pipeline_env, KPI_TOPIC_PARTITIONS="4")
    asyncio.run(produce(env, reps))
    workers = [start_worker(env), start_worker(env)]
    targets = [worker.web.removeprefix("http://") for worker in workers]
    with running_prometheus(targets, tmp_path / "prometheus") as prometheus:
        asyncio.run(produce(env, records))
        statuses = drained(workers, len(records) + len(reps))
        expected_in = sum(s["events_in"] for s in statuses)
        # Wait for a scrape of both drained workers (the sum stops moving at the total).
        deadline = time.monotonic() + 30
        # A fast drain may end before Prometheus's first scrape: no data yet is waited for too.
        while _maybe_scalar(prometheus, "sum(kpi_pipeline_events_in_total)") != expected_in:
            assert time.monotonic() < deadline, "Prometheus never saw the drained totals"
            time.sleep(0.5)

        assert expected_in == len(records) + len(reps)  # nothing read twice across the two workers
        # The leader and the other member alike know every crm and billing partition (the
        # entity step's watermark waits for those not heard from yet).
        assert [s["input_partitions_known"] for s in statuses] == [8, 8]
        assert scalar(prometheus, "count(up == 1)") == 2
        assert scalar(prometheus, "sum(kpi_pipeline_events_rejected_total)") == sum(
            s["events_rejected"] for s in statuses)
        # Both workers hold part of the input, and every input partition is reported by one.
        owned = prometheus.query('sum by (instance) (kpi_pipeline_assigned_partitions)')
        assert len(owned) == 2 and all(float(s["value"][1]) > 0 for s in owned)
        assert not prometheus.query("count by (topic, partition) (kpi_pipeline_consumer_lag_records) > 1")
        assert scalar(prometheus, f'count(kpi_pipeline_consumer_lag_records{{topic="{env["KPI_TOPIC_CRM"]}"}})') == 4
        # Every KPI series is exposed by exactly one worker, and the two together cover every rep.
        assert not prometheus.query('count by (__name__, scope_kind, scope_id, window, stage, from, to, kpi) '
                                    '({__name__=~"sales_kpi_.+"}) > 1')
        per_worker_scopes = prometheus.query('count by (instance) (sales_kpi_calls{window="all"})')
        assert len(per_worker_scopes) == 2
        reps_seen = {s["metric"]["scope_id"] for s in prometheus.query('sales_kpi_calls{scope_kind="rep", window="all"}')}
        assert reps_seen == set(rep_ids)
        # And the global count equals the sum of the reps' counts (no rep double counted).
        assert scalar(prometheus, 'max(sales_kpi_calls{scope_kind="global", window="all"})') == scalar(
            prometheus, 'sum(sales_kpi_calls{scope_kind="rep", window="all"})')
