"""Two workers split the partitions; with Redis configured, each answers /kpis for every key."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from tests.integration.conftest import wait_for
from tests.integration.test_calls_slice import envelope, produce

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CALLS = {f"r-{i}": i for i in range(1, 9)}


def calls_by_rep(web: str) -> tuple[str, dict[str, float]]:
    with urllib.request.urlopen(f"{web}/kpis?window=all&kpi=calls", timeout=5) as response:
        rows = json.loads(response.read())
        return response.headers["X-KPI-Source"], {
            r["scope"].removeprefix("rep:"): r["value"] for r in rows if r["scope"].startswith("rep:")}


def owned_locally(worker) -> set[str]:
    """The reps whose rollup this worker owns (its /metrics shows only those)."""
    text = worker.get("/metrics").decode()
    return {line.split('scope_id="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith("sales_kpi_calls{") and 'scope_kind="rep"' in line and 'window="all"' in line}


def test_every_worker_answers_for_every_key(pipeline_env, start_worker):
    env = dict(pipeline_env, KPI_TOPIC_PARTITIONS="4")
    first = start_worker(env)
    second = start_worker(env)
    wait_for(lambda: first.ready() and second.ready(), timeout=60, what="both workers ready after the rebalance")
    asyncio.run(produce(env, [(None, envelope(rep, "2026-11-02T10:00:00Z"))
                              for rep, n in CALLS.items() for _ in range(n)]))
    for worker in (first, second):
        wait_for(lambda: calls_by_rep(worker.web) == ("redis", CALLS), timeout=60,
                 what=f"every rep's calls on {worker.web}")
    # The work is really split: neither worker owns every rep, together they own all.
    mine, yours = owned_locally(first), owned_locally(second)
    assert mine and yours and mine | yours == set(CALLS) and not mine & yours
