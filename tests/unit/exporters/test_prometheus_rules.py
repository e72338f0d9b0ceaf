"""`kpi-pipeline rules`: promtool checks the generated rules and runs unit tests on them."""

from __future__ import annotations

from pathlib import Path

import os
import shutil
import subprocess
import textwrap

import pytest
import yaml

from exporters.prometheus_rules import duration, rules_yaml
from kpi_state.thresholds import default_thresholds, load_thresholds

FILE = textwrap.dedent("""\
    version: 1
    kpis:
      win_rate:
        windows: [30d]
        direction: higher
        red: 0.2
        clear_margin: 0.03
        min_sample: 10
        pending: 10m
        severity: critical
        summary: "Win rate is low"
        runbook: "Analyse, act, follow up."
        overrides:
          - scope: "team:t-new"
            pending: 1h
            severity: warning
    inputs:
      silent_after: 30m
    """)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (Debian package prometheus; .ci/run installs it)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return found


def test_durations():
    assert [duration(s) for s in (0, 45, 600, 5400, 7200, 86400, 90)] == ["0s", "45s", "10m", "90m", "2h", "1d", "90s"]


def test_rules_follow_the_file():
    doc = yaml.safe_load(rules_yaml(load_thresholds(FILE)))
    kpi_rules, input_rules = doc["groups"][0]["rules"], doc["groups"][1]["rules"]
    general, team = kpi_rules
    assert general["for"] == "10m" and general["labels"]["severity"] == "critical"
    assert 'kpi="win_rate"' in general["expr"] and "unless on (scope_kind, scope_id)" in general["expr"]
    assert team["for"] == "1h" and 'scope_id="t-new"' in team["expr"] and team["labels"]["severity"] == "warning"
    assert general["keep_firing_for"] == "10m"
    assert "1800" in input_rules[0]["expr"] and "kpi_pipeline_input_newest_event_timestamp_seconds" in input_rules[0]["expr"]


def test_promtool_checks_the_default_rules(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(rules_yaml(default_thresholds()))
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


PROMTOOL_TESTS = textwrap.dedent("""\
    rule_files: [rules.yml]
    evaluation_interval: 1m
    tests:
      - interval: 1m
        input_series:
          # red from 5m, then oscillating around the bound (red, green, red, green) from 20m, green from 26m
          - series: 'sales_kpi_status{kpi="win_rate", scope_kind="rep", scope_id="r-1", window="30d"}'
            values: '0x4 2x15 0 2 0 2 0 2 0x40'
          # a healthy rep
          - series: 'sales_kpi_status{kpi="win_rate", scope_kind="rep", scope_id="r-2", window="30d"}'
            values: '0x60'
          # team t-new waits one hour before firing
          - series: 'sales_kpi_status{kpi="win_rate", scope_kind="team", scope_id="t-new", window="30d"}'
            values: '2x60'
        alert_rule_test:
          - eval_time: 12m
            alertname: KpiRed
            exp_alerts: []
          - eval_time: 16m
            alertname: KpiRed
            exp_alerts:
              - exp_labels: {alertname: KpiRed, kpi: win_rate, scope_kind: rep, scope_id: r-1, window: 30d,
                             severity: critical, source: thresholds}
                exp_annotations:
                  summary: "Win rate is low (rep:r-1, 30d)"
                  description: "Won / (won + lost) over opportunities closed: status red for rep:r-1 over 30d."
                  runbook: "Analyse, act, follow up."
          - eval_time: 24m
            alertname: KpiRed
            exp_alerts:
              - exp_labels: {alertname: KpiRed, kpi: win_rate, scope_kind: rep, scope_id: r-1, window: 30d,
                             severity: critical, source: thresholds}
                exp_annotations:
                  summary: "Win rate is low (rep:r-1, 30d)"
                  description: "Won / (won + lost) over opportunities closed: status red for rep:r-1 over 30d."
                  runbook: "Analyse, act, follow up."
          - eval_time: 40m
            alertname: KpiRed
            exp_alerts: []
      - interval: 1m
        input_series:
          # event time follows the clock for 20 minutes, then the connector dies
          - series: 'kpi_pipeline_input_newest_event_timestamp_seconds{topic="crm.events"}'
            values: '0+60x20 1200x60'
        alert_rule_test:
          - eval_time: 45m
            alertname: KpiInputSilent
            exp_alerts: []
          - eval_time: 55m
            alertname: KpiInputSilent
            exp_alerts:
              - exp_labels: {alertname: KpiInputSilent, topic: crm.events, severity: critical, source: thresholds}
                exp_annotations:
                  summary: "No new event on crm.events for 30m"
                  description: "The board may look fine while its data is stale: check the connector feeding crm.events."
                  runbook: "Analyse: is the CRM or billing connector running and can it reach Kafka? Act: restart or fix the connector. Follow up: the topic's newest event time catches up."
    """)


def test_promtool_unit_tests_oscillation_gives_one_alert(tmp_path):
    (tmp_path / "rules.yml").write_text(rules_yaml(load_thresholds(FILE)))
    (tmp_path / "tests.yml").write_text(PROMTOOL_TESTS)
    result = subprocess.run([promtool(), "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_prometheus_loads_in_the_stack_are_what_the_thresholds_file_generates():
    # docker-compose.yml mounts deploy/prometheus/rules: `make dashboards` regenerates it.
    from exporters.prometheus_rules import rules_yaml
    from kpi_state.thresholds import default_thresholds

    committed = (Path(__file__).resolve().parents[3] / "deploy/prometheus/rules/kpi-rules.yml").read_text()
    assert committed == rules_yaml(default_thresholds())
