"""Worker processes for one measurement: fresh app id and topics, logs in the run dir, /status."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.embedded import die_with_parent, free_port
from agents.bench.checks import BenchFailure


@dataclass(frozen=True)
class Topics:
    """The topics of one measurement: inputs shared with the baseline, outputs its own."""

    crm: str
    billing: str
    tag: str

    def env(self) -> dict[str, str]:
        tag = self.tag
        return {
            "KPI_TOPIC_CRM": self.crm, "KPI_TOPIC_BILLING": self.billing,
            "KPI_TOPIC_BACKFILL": f"events.backfill.{tag}", "KPI_TOPIC_REPS": f"sales.reps.{tag}",
            "KPI_TOPIC_KPI_VALUES": f"kpi.values.{tag}", "KPI_TOPIC_KPI_ALERTS": f"kpi.alerts.{tag}",
            "KPI_TOPIC_DLQ": f"events.dlq.{tag}",
        }


def new_tag() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    web: str
    log: Path
    started: float  # time.monotonic() at Popen

    def alive(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str, timeout: float = 10.0) -> bytes:
        with urllib.request.urlopen(f"{self.web}{path}", timeout=timeout) as response:
            return response.read()

    async def status(self) -> dict[str, Any] | None:
        """/status, or None while the worker cannot answer (starting, or busy past the timeout)."""
        try:
            return json.loads(await asyncio.to_thread(self.get, "/status"))
        except (OSError, ValueError):
            return None

    async def held(self) -> float:
        """The held-events gauge from /metrics (events waiting for the event that validates them)."""
        try:
            text = (await asyncio.to_thread(self.get, "/metrics", 60.0)).decode()
        except (OSError, ValueError):
            return 0.0
        for line in text.splitlines():
            if line.startswith("kpi_pipeline_held_events "):
                return float(line.split()[1])
        return 0.0

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


@dataclass
class WorkerGroup:
    """The env every worker of one measurement shares, and the processes started with it."""

    env: dict[str, str]
    run_dir: Path
    label: str
    processes: list[WorkerProcess] = field(default_factory=list)

    @property
    def app_id(self) -> str:
        return self.env["KPI_APP_ID"]

    def start(self) -> WorkerProcess:
        port = free_port()
        log = self.run_dir / f"{self.label}-worker-{len(self.processes)}.log"
        env = dict(self.env, KPI_WEB_PORT=str(port))
        process = subprocess.Popen(
            [sys.executable, "-m", "agents.cli", "worker"], env=env, stdout=open(log, "wb"),
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
        worker = WorkerProcess(process, f"http://127.0.0.1:{port}", log, time.monotonic())
        self.processes.append(worker)
        return worker

    def check_alive(self) -> None:
        for worker in self.processes:
            if not worker.alive():
                raise BenchFailure(
                    f"a worker exited with code {worker.process.returncode}; last lines of "
                    f"{worker.log}:\n{worker.tail()}"
                )

    def stop(self) -> None:
        for worker in self.processes:
            worker.stop()


def worker_env(
    *, broker_url: str, redis_url: str, topics: Topics, run_dir: Path, reps_file: Path,
    partitions: int,
) -> dict[str, str]:
    """Production settings, with a fresh app id, Redis prefix and outputs for one measurement."""
    env = dict(os.environ)
    env.update(topics.env())
    env.update({
        "KPI_BROKER_URL": broker_url, "KPI_REDIS_URL": redis_url,
        "KPI_APP_ID": f"kpi-bench-{topics.tag}", "KPI_REDIS_PREFIX": f"kpi-bench-{topics.tag}",
        "KPI_DATA_DIR": str(run_dir / f"data-{topics.tag}"), "KPI_REPS_FILE": str(reps_file),
        "KPI_TOPIC_PARTITIONS": str(partitions),
    })
    # Short group timeouts, as the tests use: a second worker joins quickly, and the embedded
    # broker answers a new group's first join after about half the session timeout (5 s at
    # 10 s, 3 s at 6 s, measured), which (b) counts from the worker's start.
    env.setdefault("KPI_SESSION_TIMEOUT_S", "6")
    env.setdefault("KPI_HEARTBEAT_INTERVAL_S", "1")
    return env
