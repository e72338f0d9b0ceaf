"""The thresholds file: every problem with its line and reason; status from bounds, overrides, min_sample."""

from __future__ import annotations

import textwrap

import pytest

from kpi_state.catalogue import CATALOGUE
from kpi_state.thresholds import ThresholdsError, default_thresholds, load_thresholds, parse_duration

GOOD = textwrap.dedent("""\
    version: 1
    kpis:
      win_rate:
        windows: [30d, quarter]
        direction: higher
        red: 0.20
        amber: 0.30
        clear_margin: 0.03
        min_sample: 10
        pending: 2h
        severity: critical
        overrides:
          - scope: "team:t-west"
            red: 0.15
            amber: 0.25
          - scope: "rep:r-1"
            min_sample: 3
        objectives:
          - scope: global
            window: quarter
            value: 0.35
      days_to_pay:
        direction: lower
        red: 45
        amber: 30
    notifiers:
      - name: ops
        type: webhook
        url: https://hooks.example.com/kpi
        allow_hosts: [127.0.0.1]
    inputs:
      silent_after: 15m
    """)


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ThresholdsError) as info:
        load_thresholds(textwrap.dedent(text), "f.yaml")
    return info.value.problems


def test_good_file_parses_every_field():
    t = load_thresholds(GOOD)
    rule = t.rule("win_rate")
    assert rule.windows == ("30d", "quarter")
    assert rule.bounds.pending_s == 7200 and rule.bounds.severity == "critical"
    assert t.rule("days_to_pay").windows == ("30d",)  # default window
    assert t.objectives("global", "quarter") == [("win_rate", 0.35)]
    assert t.objectives("global", "month") == []
    assert t.notifiers[0].allow_hosts == ("127.0.0.1",) and t.notifiers[0].line == 27
    assert t.silent_after_s == 900


@pytest.mark.parametrize("scope, value, sample, expected", [
    ("rep:r-9", 0.19, 10, "red"),
    ("rep:r-9", 0.20, 10, "amber"),     # red is strictly below the bound
    ("rep:r-9", 0.29, 10, "amber"),
    ("rep:r-9", 0.30, 10, "green"),
    ("rep:r-9", 0.05, 9, "unknown"),    # below min_sample
    ("rep:r-9", None, 0, "unknown"),
    ("team:t-west", 0.19, 10, "amber"),  # override: red below 0.15
    ("team:t-west", 0.14, 10, "red"),
    ("rep:r-1", 0.05, 3, "red"),         # override lowers min_sample
])
def test_status_higher_with_overrides(scope, value, sample, expected):
    assert load_thresholds(GOOD).status("win_rate", scope, "30d", value, sample) == expected


def test_status_lower_and_windows_not_judged():
    t = load_thresholds(GOOD)
    assert t.status("days_to_pay", "global", "30d", 46, 5) == "red"
    assert t.status("days_to_pay", "global", "30d", 31, 5) == "amber"
    assert t.status("days_to_pay", "global", "30d", 30, 5) == "green"
    assert t.status("days_to_pay", "global", "week", 90, 5) == "unknown"
    assert t.status("calls", "global", "30d", 1, None) == "unknown"  # no entry


def test_lineage_most_specific_wins():
    t = load_thresholds(GOOD)
    # A rep of team t-west falls back to the team's override when given its lineage.
    assert t.status("win_rate", "rep:r-7", "30d", 0.17, 10, ("rep:r-7", "team:t-west", "global")) == "amber"
    assert t.status("win_rate", "rep:r-7", "30d", 0.17, 10) == "red"


@pytest.mark.parametrize("text, line, reason", [
    ("version: 1\nkpis:\n  win_rat:\n    red: 1\n", 3, "unknown KPI 'win_rat'"),
    ("version: 1\nkpis:\n  calls:\n    windows: [30d, fortnight]\n    direction: higher\n    red: 1\n",
     4, "unknown window 'fortnight'"),
    ("version: 1\nkpis:\n  calls:\n    direction: up\n    red: 1\n", 4, "direction must be one of higher, lower"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: many\n", 5, "red must be a number"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    amber: 0.5\n", 6,
     "amber (0.5) must be at least red (1)"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    pending: 2 weeks\n", 6,
     "pending must be a duration"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    min_sample: -1\n", 6,
     "min_sample must be at least 0"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    colour: red\n", 6, "unknown field 'colour'"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    overrides:\n      - scope: team\n        red: 2\n",
     7, "scope must be rep:ID"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    objectives:\n      - scope: global\n        window: quarter\n        value: 0\n",
     9, "must not be 0"),
    ("version: 1\nkpis:\n  calls:\n    red: 1\n", 4, "direction is required"),
    ("version: 2\nkpis: {}\n", 1, "only version 1"),
    ("kpis: {}\n", 1, "version: 1 is required"),
    ("version: 1\nkpis:\n  calls: [1, 2\n", 4, "not valid YAML"),
    ("version: 1\nkpis: {}\nnotifiers:\n  - name: a\n    type: teams\n    url: https://x\n", 5, "type must be one of"),
    ("version: 1\nkpis: {}\nnotifiers:\n  - name: a\n    type: webhook\n    url: ftp://x\n", 6, "http:// or https://"),
    ("version: 1\nkpis:\n  calls:\n    direction: higher\n    red: 1\n    red: 2\n", 6, "given twice"),
])
def test_each_problem_has_its_line_and_reason(text, line, reason):
    found = problems(text)
    assert any(l == line and reason in r for l, r in found), found


def test_every_problem_is_reported_not_only_the_first():
    found = problems("version: 1\nkpis:\n  calls:\n    direction: up\n    red: x\n  nope: {}\n")
    assert [line for line, _ in found] == [4, 5, 6]


def test_error_lines_name_the_file():
    with pytest.raises(ThresholdsError) as info:
        load_thresholds("version: 3\nkpis: {}\n", "my.yaml")
    assert info.value.lines() == ["my.yaml:1: only version 1 is known"]


def test_default_file_is_valid_and_covers_the_catalogue():
    t = default_thresholds()
    assert set(t.kpis) == set(CATALOGUE)
    assert all(rule.runbook for rule in t.kpis.values() if rule.bounds is not None)


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400),
                                           (30, 30), ("1.5h", 5400), ("x", None), (-1, None), (True, None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
