"""The broker becomes unreachable under a running worker (a TCP proxy of ours cuts the line;
the embedded broker keeps topics in memory, so it is never restarted): /ready says so and
why, errors are logged once per outage, nothing is lost or counted twice, SIGTERM is quick."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.error
import urllib.request

import pytest

from agents.embedded import embedded_broker, free_port
from tests.e2e.tcp_proxy import TcpProxy
from tests.integration.conftest import wait_for
from tests.integration.test_calls_slice import envelope, metric_value, produce

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAY = "2026-11-02T10:00:00Z"


def ready(worker) -> tuple[int, list[str]]:
    try:
        with urllib.request.urlopen(f"{worker.web}/ready", timeout=3) as response:
            return response.status, json.loads(response.read())["not_ready"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["not_ready"]


def calls(worker) -> float | None:
    rows = json.loads(worker.get("/kpis?scope=global&window=all&kpi=calls"))
    return rows[0]["value"] if rows else None


@pytest.fixture
def proxied_broker(tmp_path):
    real, front = free_port(), free_port()
    with embedded_broker(port=real, advertised_port=front, log_dir=tmp_path) as _broker:
        proxy = TcpProxy(front, real).start()
        try:
            yield proxy
        finally:
            proxy.close()


def test_broker_outage_is_reported_and_nothing_is_lost(pipeline_env, start_worker, proxied_broker):
    proxy = proxied_broker
    env = dict(pipeline_env, KPI_BROKER_URL=f"kafka://127.0.0.1:{proxy.port}")
    worker = start_worker(env)
    asyncio.run(produce(env, [(None, envelope("r-1", DAY)) for _ in range(30)]))
    wait_for(lambda: calls(worker) == 30, what="30 calls before the outage")
    asyncio.run(produce(env, [(None, envelope("r-2", DAY)) for _ in range(20)]))
    proxy.drop()
    lines_before = len(worker.log.read_text().splitlines())
    wait_for(lambda: ready(worker) == (503, ["broker_unreachable"]), timeout=20,
             what="/ready false because of the broker")
    metrics = worker.get("/metrics").decode()
    assert metric_value(metrics, "kpi_pipeline_not_ready", reason="broker_unreachable") == 1
    time.sleep(8)  # an outage of a few seconds more: retries go on meanwhile
    assert worker.process.poll() is None
    proxy.restore()
    wait_for(lambda: ready(worker)[0] == 200, timeout=60, what="/ready true once the broker is back")
    assert metric_value(worker.get("/metrics").decode(), "kpi_pipeline_not_ready",
                        reason="broker_unreachable") == 0
    asyncio.run(produce(env, [(None, envelope("r-3", DAY)) for _ in range(10)]))
    wait_for(lambda: calls(worker) == 60, timeout=60, what="every call counted once")
    status = json.loads(worker.get("/status"))
    wait_for(lambda: json.loads(worker.get("/status"))["unpublished"] == 0, what="all published")
    assert calls(worker) == 60, status  # and not more: nothing counted twice
    outage_log = worker.log.read_text().splitlines()[lines_before:]
    noisy = [line for line in outage_log if re.search(r"\[(WARNING|ERROR)\]", line)]
    assert len(noisy) < 40, "\n".join(noisy[:60])
    assert sum("broker unreachable" in line for line in outage_log) == 1

    # SIGTERM while the broker is away again: the worker still stops within 10 s.
    proxy.drop()
    wait_for(lambda: ready(worker)[0] == 503, timeout=20, what="second outage seen")
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    worker.process.wait(15)
    assert time.monotonic() - started < 10
