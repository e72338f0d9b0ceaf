"""The command line as a user meets it: the demo end to end, and mistakes that say what to do."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from agents.embedded import port_open

pytestmark = pytest.mark.e2e


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "agents.cli", *args],
        env=clean, capture_output=True, text=True, timeout=timeout,
    )


def test_demo_shows_kpis_and_leaves_nothing_behind(tmp_path):
    result = run("demo", "--duration", "20", env={"COLUMNS": "200"}, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # The director's view: the company, teams and reps with their headline KPIs.
    assert "Sales director · 30d" in out and "win rate" in out, out[-3000:]
    assert re.search(r"^rep:r-\d+\s+\d", out, re.M), out[-3000:]
    assert re.search(r"^global\s+\d", out, re.M) and "team:t-" in out
    assert "kpi-pipeline top --url" in out and "--role rep|executive|quality" in out
    # The embedded servers it announced are gone.
    ports = re.findall(r"on 127\.0\.0\.1:(\d+)", out)
    assert len(ports) == 2, out[:2000]
    for port in ports:
        assert not port_open("127.0.0.1", int(port)), f"port {port} still open after the demo"


def test_bad_setting_is_named_with_advice():
    result = run("worker", env={"KPI_WEB_PORT": "not-a-port"})
    assert result.returncode == 2
    assert "KPI_WEB_PORT" in result.stderr


def test_unreachable_broker_says_what_to_do():
    result = run("worker", "--broker", "kafka://127.0.0.1:1")
    assert result.returncode == 1
    assert "cannot reach the broker" in result.stderr
    assert "KPI_BROKER_URL" in result.stderr


def test_unknown_scenario_lists_the_valid_ones():
    result = run("simulate", "--scenario", "boom")
    assert result.returncode == 2
    assert "steady" in result.stderr and "slump" in result.stderr


def test_kpis_without_a_worker_says_how_to_start_one():
    result = run("kpis", "--url", "http://127.0.0.1:1")
    assert result.returncode == 1
    assert "kpi-pipeline worker" in result.stderr


def test_unknown_command_prints_usage():
    result = run("frobnicate")
    assert result.returncode != 0
    assert "Usage" in result.stderr or "Usage" in result.stdout


def test_replay_dry_run_reports_the_real_export(tmp_path):
    from tests.conftest import crm_export_dir

    data = crm_export_dir()
    report = tmp_path / "skipped.csv"
    result = run(
        "replay", str(data / "sales_pipeline.csv"), "--format", "opportunities-csv",
        "--reps", str(data / "sales_teams.csv"), "--products", str(data / "products.csv"),
        "--dry-run", "--skipped-report", str(report), env={"COLUMNS": "120"},
    )
    assert result.returncode == 0, result.stderr
    counts = dict(re.findall(r"│ ([a-z_: ]+?)\s+│\s+([\d,]+) │", result.stdout))
    assert counts["won"] == "4,238" and counts["lost"] == "2,473"
    assert counts["skipped: no_date"] == "500"
    # Every skipped row is listed, none invented.
    assert len(report.read_text().splitlines()) == 1 + 500


def test_replay_refuses_a_bad_column_mapping(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("id,agent,stage\n1,Ann,Won\n")
    result = run("replay", str(export), "--format", "opportunities-csv", "--col", "colour=id", "--dry-run")
    assert result.returncode == 2
    assert "unknown field" in result.stderr and "opportunity_id" in result.stderr
    result = run("replay", str(export), "--format", "opportunities-csv", "--dry-run")
    assert result.returncode == 2
    assert str(export) in result.stderr
