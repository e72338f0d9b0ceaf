"""Alerts on the real broker: one rep's win rate collapses then recovers → exactly one firing and one
resolved record for that rep (also across a SIGKILL), none for healthy reps, and a webhook gets them."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streams.simulator import Organisation, Simulator
from tests.integration.conftest import wait_for
from tests.integration.reference_check import wait_until_drained
from tests.integration.test_calls_slice import consume_all
from tests.integration.test_crash_recovery import produce_in_background
from tests.integration.test_reference_equality import produce

pytestmark = pytest.mark.integration

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
SEED = 6  # with this seed r-01 falls to about 2 % and comes back above 30 %; the others stay above 11 %
THRESHOLDS = """\
version: 1
kpis:
  win_rate:
    windows: [30d]
    direction: higher
    red: 0.08
    clear_margin: 0.14
    min_sample: 5
    pending: 1d
    severity: critical
    summary: "Win rate is low"
    runbook: "Analyse: lost reasons. Act: pair with a closer. Follow up: next month."
notifiers:
  - name: test-hook
    type: webhook
    url: http://127.0.0.1:{port}/hook/S3CRET
    allow_hosts: [127.0.0.1]
"""


class Receiver:
    """A real HTTP server on loopback that answers 503 to its first `failures` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[str, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((self.headers["Idempotency-Key"], body))
                self.send_response(503 if len(receiver.requests) <= receiver.failures else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> dict[str, dict]:
        """Accepted notifications by idempotency key (what a receiver that drops repeats keeps)."""
        return {key: body for i, (key, body) in enumerate(self.requests) if i >= self.failures}


def collapse_traffic(env):
    org = Organisation.generate(SEED, regions=1, teams_per_region=1, reps_per_team=4)
    sim = Simulator(SEED, start=START, org=org, scenario="collapse", slump_rep="r-01",
                    slump_start=START + timedelta(days=30), slump_days=21, activity=2.5, bad_ratio=0.0)
    topics = {"crm": env["KPI_TOPIC_CRM"], "billing": env["KPI_TOPIC_BILLING"]}
    reps = [(env["KPI_TOPIC_REPS"], e["data"]["rep_id"].encode(), json.dumps(e).encode()) for e in sim.rep_upserts()]
    records = [(topics[kind], key, value)
               for kind, key, value in sim.next_batch(10**6, until=(START + timedelta(days=92)).timestamp())]
    return reps, records


def alert_records(env) -> list[dict]:
    return [json.loads(m.value) for m in asyncio.run(consume_all(env, env["KPI_TOPIC_KPI_ALERTS"], 0, 5))]


def run_scenario(env, start_worker, tmp_path, *, kill: bool, failures: int):
    receiver = Receiver(failures)
    thresholds = tmp_path / "thresholds.yaml"
    thresholds.write_text(THRESHOLDS.format(port=receiver.port))
    env = dict(env, KPI_THRESHOLDS_FILE=str(thresholds))
    reps, records = collapse_traffic(env)
    asyncio.run(produce(env, reps))
    worker = start_worker(env)
    producer = produce_in_background(env, records)
    if kill:
        # SIGKILL once the firing record is out (the episode is open), then restart.
        wait_for(lambda: any(r["status"] == "firing" for r in alert_records(env)), timeout=180, what="a firing alert")
        worker.process.kill()
        worker.process.wait()
        worker = start_worker(env, timeout=120)
    producer.join()
    wait_until_drained(worker, 0, timeout=300)
    wait_for(lambda: len(receiver.delivered()) >= 2, timeout=60, what="two notifications")
    time.sleep(2)  # anything extra would show up now
    return worker, receiver, alert_records(env)


def check(worker, receiver, records):
    keys = [(r["labels"]["kpi"], r["labels"]["scope"], r["labels"]["window"], r["status"]) for r in records]
    assert keys == [("win_rate", "rep:r-01", "30d", "firing"), ("win_rate", "rep:r-01", "30d", "resolved")], keys
    firing, resolved = records
    assert firing["episode"] == resolved["episode"] and firing["startsAt"] == resolved["startsAt"]
    assert firing["endsAt"] is None and resolved["endsAt"] > firing["startsAt"]
    assert firing["value"] < 0.08 and resolved["value"] >= 0.22 and firing["threshold"] == 0.08
    # Judged on whole event-time days: the same instants as an in-process run of the same
    # events with one partition (how fast or in which order partitions go does not matter).
    assert (firing["startsAt"], resolved["endsAt"]) == ("2026-07-14T00:00:00Z", "2026-08-16T00:00:00Z")
    assert firing["context"]["reading"].startswith("work better")
    delivered = receiver.delivered()
    assert set(delivered) == {firing["id"], resolved["id"]}
    assert [delivered[firing["id"]]["status"], delivered[resolved["id"]]["status"]] == ["firing", "resolved"]
    listed = json.loads(worker.get("/alerts?status=resolved"))
    assert [r["episode"] for r in listed] == [firing["episode"]]
    assert json.loads(worker.get("/alerts?status=firing")) == []
    assert "S3CRET" not in worker.get("/metrics").decode() and "S3CRET" not in worker.logs()


@pytest.mark.timeout(600)
def test_collapse_and_recovery_give_one_episode_and_its_notifications(pipeline_env, start_worker, tmp_path):
    worker, receiver, records = run_scenario(pipeline_env, start_worker, tmp_path, kill=False, failures=3)
    check(worker, receiver, records)
    assert len(receiver.requests) == 3 + 2  # three refused attempts, then each notification once


@pytest.mark.timeout(600)
def test_one_episode_also_across_sigkill(pipeline_env, start_worker, tmp_path):
    worker, receiver, records = run_scenario(pipeline_env, start_worker, tmp_path, kill=True, failures=0)
    check(worker, receiver, records)
