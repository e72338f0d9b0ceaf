"""History into a running pipeline: `replay` sends to the backfill topic, nothing is too late, a re-import counts nothing twice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.conftest import crm_export_dir
from tests.integration.conftest import wait_for
from tests.integration.test_calls_slice import consume_all, envelope, produce

pytestmark = pytest.mark.integration

TODAY = "2026-11-20T09:00:00Z"  # the live topics' stream time: years after the export


def replay(env: dict[str, str]) -> subprocess.CompletedProcess:
    data = crm_export_dir()
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", "replay", str(data / "sales_pipeline.csv"),
         "--format", "opportunities-csv", "--reps", str(data / "sales_teams.csv"),
         "--products", str(data / "products.csv")],
        env=env, capture_output=True, text=True, timeout=300,
    )


def global_all(worker, kpi: str):
    try:
        rows = json.loads(worker.get(f"/kpis?scope=global&window=all&kpi={kpi}"))
    except OSError:  # busy publishing two years of history: ask again
        return None
    totals = [r for r in rows if not r["dims"]]
    return totals[0]["value"] if totals else None


def dead_letters(env: dict[str, str]) -> list:
    return asyncio.run(consume_all(env, env["KPI_TOPIC_DLQ"], 0, 3))


@pytest.mark.timeout(900)
def test_history_replayed_into_a_live_pipeline_counts_once_and_is_not_late(pipeline_env, start_worker):
    env = pipeline_env
    worker = start_worker(env)
    # Live traffic first: the live partitions' stream time is now years after the export.
    asyncio.run(produce(env, [(b"r-live", envelope("r-live", TODAY)) for _ in range(3)]))
    wait_for(lambda: global_all(worker, "calls") == 3, what="the live calls")

    first = replay(env)
    assert first.returncode == 0, first.stderr
    assert "warning" not in first.stderr  # the backfill topic takes history as it is
    wait_for(lambda: global_all(worker, "won_deals") == 4238, timeout=600, interval=2,
             what="the export's 4,238 won deals")
    late = [m for m in dead_letters(env) if dict(m.headers).get("kpi.error.reason") == b"too_late"]
    assert late == []

    # The same export again: every event is known, nothing is counted twice or dead-lettered.
    before = len(dead_letters(env))
    second = replay(env)
    assert second.returncode == 0, second.stderr
    def duplicates() -> float:
        try:
            return json.loads(worker.get("/status"))["duplicates"]
        except OSError:
            return 0

    wait_for(lambda: duplicates() >= 23_000, timeout=600, interval=2,
             what="the re-sent export recognised as duplicates")
    assert global_all(worker, "won_deals") == 4238
    assert global_all(worker, "calls") == 3
    assert len(dead_letters(env)) == before


def test_replay_to_the_live_topics_warns_that_history_would_be_too_late(pipeline_env):
    data = crm_export_dir()
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "replay", str(data / "sales_pipeline.csv"),
         "--format", "opportunities-csv", "--to", "live", "--dry-run"],
        env=pipeline_env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "too_late" in result.stderr and "backfill" in result.stderr
    assert "Traceback" not in result.stderr
