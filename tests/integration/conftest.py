"""Named fixtures that start the real servers: the embedded Tansu broker, Redis, a worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.embedded import embedded_broker, embedded_redis, free_port, redis_reachable

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh embedded Kafka-compatible broker for the whole session."""
    logs = tmp_path_factory.mktemp("broker")
    with embedded_broker(log_dir=logs) as broker:
        yield f"kafka://{broker.url_host_port}"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis on 127.0.0.1:6379 when it answers, else the embedded valkey-server."""
    if redis_reachable(LOCAL_REDIS):
        yield LOCAL_REDIS
        return
    with embedded_redis(log_dir=tmp_path_factory.mktemp("redis")) as server:
        yield f"redis://{server.url_host_port}/0"


@dataclass
class Worker:
    process: subprocess.Popen
    web: str
    env: dict[str, str]
    log: Path

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.web}/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.web}{path}", timeout=5) as response:
            return response.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def pipeline_env(broker_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Settings for one test: its own topics, group and Redis prefix on the shared servers."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env.update(
        {
            "KPI_BROKER_URL": broker_url,
            "KPI_REDIS_URL": redis_url,
            "KPI_APP_ID": f"kpi-test-{tag}",
            "KPI_REDIS_PREFIX": f"kpi-test-{tag}",
            "KPI_TOPIC_CRM": f"crm.events.{tag}",
            "KPI_TOPIC_BILLING": f"billing.events.{tag}",
            "KPI_TOPIC_BACKFILL": f"events.backfill.{tag}",
            "KPI_TOPIC_REPS": f"sales.reps.{tag}",
            "KPI_TOPIC_KPI_VALUES": f"kpi.values.{tag}",
            "KPI_TOPIC_KPI_ALERTS": f"kpi.alerts.{tag}",
            "KPI_TOPIC_DLQ": f"events.dlq.{tag}",
            "KPI_TOPIC_PARTITIONS": "2",
            "KPI_DATA_DIR": str(tmp_path / "data"),
            "KPI_SESSION_TIMEOUT_S": "6",
            "KPI_HEARTBEAT_INTERVAL_S": "1",
            "KPI_FLUSH_INTERVAL_S": "0.3",
            # The tests' traffic often leaves the billing topic empty: its partitions hold
            # the watermark back this long after a worker starts.
            "KPI_INPUT_WAIT_S": "2",
        }
    )
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator:
    """Starts `kpi-pipeline worker` processes; all are stopped at the end of the test."""
    workers: list[Worker] = []

    def start(env: dict[str, str], timeout: float = 90) -> Worker:
        env = dict(env, KPI_WEB_PORT=str(free_port()))
        log = tmp_path / f"worker-{len(workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker"],
            env=env,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
        )
        worker = Worker(process, f"http://127.0.0.1:{env['KPI_WEB_PORT']}", env, log)
        workers.append(worker)
        deadline = time.monotonic() + timeout
        while not worker.ready():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"worker did not become ready:\n{worker.logs()}")
            time.sleep(0.3)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float = 30, interval: float = 0.3, what: str = "condition"):
    """Poll until `predicate()` is truthy; fail with `what` otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out waiting for {what} (last: {last!r})")


