"""`kpi-pipeline bench --only a,b` end to end on a small backlog: rates, counts and the ratio."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

EVENTS = 3000


def test_bench_a_b_measures_the_same_backlog_and_checks_the_counts(tmp_path):
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    env["KPI_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "agents.cli", "bench", "--only", "a,b", "--events", str(EVENTS),
         "--reps", "20", "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=150,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    a, b = report["a"], report["b"]
    assert a["events"] == EVENTS and a["rate"] > 0
    assert len(a["runs"]) == 3 and sorted(a["runs"])[1] == pytest.approx(a["rate"])  # the median run
    assert b["events"] == EVENTS and b["rate"] > 0
    counted = b["counted"]
    assert counted["events_in"] == EVENTS
    assert counted["applied"] + counted["rejected"] + counted["duplicates"] + counted["held"] == EVENTS
    assert counted["duplicates"] > 0  # the simulator re-sends a few events: dedup was exercised
    assert report["ratio_b_a"] == pytest.approx(b["rate"] / a["rate"])
    assert "(b)/(a)" in result.stdout and "events/s" in result.stdout
    assert "c" not in report and "f" not in report  # --only was obeyed
    # The embedded servers and the worker are gone: nothing of the run listens any more.
    from agents.embedded import port_open

    for url in (report["servers"]["broker"], report["servers"]["redis"]):
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert not port_open("127.0.0.1", port), url
