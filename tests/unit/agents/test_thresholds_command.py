"""`kpi-pipeline thresholds check`: exit 1 with FILE:LINE: reason, exit 0 and "ok" on a good file."""

from __future__ import annotations

from typer.testing import CliRunner

from agents.cli import cli


def test_check_lists_problems_with_lines(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("version: 1\nkpis:\n  win_rate:\n    direction: up\n    red: 0.2\n")
    result = CliRunner().invoke(cli, ["thresholds", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4: kpis.win_rate.direction must be one of higher, lower" in result.output


def test_check_ok(tmp_path):
    good = tmp_path / "t.yaml"
    good.write_text("version: 1\nkpis:\n  win_rate:\n    direction: higher\n    red: 0.2\n")
    result = CliRunner().invoke(cli, ["thresholds", "check", str(good)])
    assert result.exit_code == 0 and "ok" in result.output


def test_missing_file_is_a_problem_not_a_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["thresholds", "check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1 and "cannot read the file" in result.output


def test_worker_refuses_a_bad_file(tmp_path, monkeypatch):
    bad = tmp_path / "t.yaml"
    bad.write_text("version: 1\nkpis:\n  nope: {}\n")
    monkeypatch.setenv("KPI_THRESHOLDS_FILE", str(bad))
    result = CliRunner().invoke(cli, ["worker", "--broker", "kafka://127.0.0.1:1"])
    assert result.exit_code == 2
    assert f"{bad}:3: unknown KPI 'nope'" in result.output
    assert "Traceback" not in result.output


def test_rules_writes_prometheus_rules(tmp_path):
    import yaml

    good = tmp_path / "t.yaml"
    good.write_text("version: 1\nkpis:\n  win_rate:\n    windows: [30d]\n    direction: higher\n    red: 0.2\n    pending: 2h\n")
    target = tmp_path / "rules.yml"
    result = CliRunner().invoke(cli, ["rules", str(good), "--output", str(target)])
    assert result.exit_code == 0, result.output
    [rule] = yaml.safe_load(target.read_text())["groups"][0]["rules"]
    assert rule["expr"] == 'sales_kpi_status{kpi="win_rate", window="30d"} == 2' and rule["for"] == "2h"


def test_rules_refuses_a_bad_file(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("version: 1\nkpis:\n  win_rate:\n    direction: sideways\n    red: 0.2\n")
    result = CliRunner().invoke(cli, ["rules", str(bad)])
    assert result.exit_code == 1 and f"{bad}:4:" in result.output
