"""Redis unreachable at start and mid-run: the worker stays up, counts it, logs it once per
outage, and Redis catches up (even a Redis that came back empty) once it answers again."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
import redis

from agents.embedded import embedded_redis, free_port
from tests.integration.conftest import wait_for
from tests.integration.test_calls_slice import envelope, metric_value, produce

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAY = "2026-11-02T10:00:00Z"


def served(worker, query: str) -> tuple[str, list]:
    with urllib.request.urlopen(f"{worker.web}/kpis?{query}", timeout=5) as response:
        return response.headers["X-KPI-Source"], json.loads(response.read())


def test_worker_outlives_redis_and_redis_catches_up(pipeline_env, start_worker, tmp_path):
    port = free_port()
    env = dict(pipeline_env, KPI_REDIS_URL=f"redis://127.0.0.1:{port}/0")
    prefix = env["KPI_REDIS_PREFIX"]
    worker = start_worker(env)  # ready although nothing listens on the Redis port
    asyncio.run(produce(env, [(None, envelope("r-1", DAY)) for _ in range(40)]))

    def local_calls(n: int):
        source, rows = served(worker, "scope=rep:r-1&window=all&kpi=calls")
        return rows and rows[0]["value"] == n and source

    assert wait_for(lambda: local_calls(40), what="40 calls served by the worker itself") == "local"
    wait_for(lambda: (metric_value(worker.get("/metrics").decode(), "kpi_pipeline_sink_errors_total",
                                   sink="redis") or 0) >= 2, what="failed Redis writes counted")
    assert worker.process.poll() is None

    def in_redis(client: redis.Redis, scope: str, n: int) -> bool:
        raw = client.hget(f"{prefix}:current:{scope}:all", "calls")
        return raw is not None and json.loads(raw)["value"] == n

    with embedded_redis(port=port, log_dir=tmp_path) as _server:
        client = redis.Redis(port=port)
        wait_for(lambda: in_redis(client, "rep:r-1", 40), timeout=40, what="Redis caught up after start")
        assert in_redis(client, "global", 40)
        assert client.get(f"{prefix}:value:calls|rep:r-1|all|") is not None
        assert wait_for(lambda: local_calls(40), what="/kpis served from Redis") == "redis"
        source, rows = served(worker, "scope=rep:r-1&window=month&kpi=calls&start=2026-11-20")
        assert source == "redis" and [(r["window_start"], r["value"]) for r in rows] == [
            ("2026-11-01T00:00:00Z", 40)]
    # Redis stops mid-run (and will come back empty): the worker goes on.
    asyncio.run(produce(env, [(None, envelope("r-2", DAY)) for _ in range(7)]))
    assert wait_for(lambda: local_calls(40), what="fallback to the worker's own records") == "local"
    wait_for(lambda: served(worker, "scope=global&window=all&kpi=calls")[1][0]["value"] == 47,
             what="47 calls in all")
    with embedded_redis(port=port, log_dir=tmp_path) as _server:
        client = redis.Redis(port=port)
        # Everything current is rewritten, not only what changed during the outage.
        wait_for(lambda: in_redis(client, "global", 47), timeout=40, what="Redis caught up mid-run")
        assert in_redis(client, "rep:r-1", 40) and in_redis(client, "rep:r-2", 7)
    assert worker.process.poll() is None
    # The worker's output is buffered: wait for its lines rather than read them at once.
    wait_for(lambda: worker.log.read_text().count("redis back after") == 2, what="two recoveries logged")
    log = worker.log.read_text()
    assert log.count("redis unreachable") == 2, log[-3000:]  # once per outage, not per retry
    assert "Traceback" not in log and "crash" not in log.lower()
