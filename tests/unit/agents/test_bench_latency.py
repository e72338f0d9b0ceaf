"""The latency probe's pieces: percentiles, matching markers and alerts, the probe's thresholds, (d)'s parsing."""

from __future__ import annotations

import json

import pytest

from agents.bench.latency import Observed, Sent, match_alerts, match_values, percentiles
from agents.bench.memory import measure_memory, parse_probe_output
from agents.bench.probe import PROBE_SCOPE, TICK_KEYS, calls_today, probe_thresholds, ticks
from kpi_state.thresholds import load_thresholds

DAY = 86400.0
D1 = 1788220800.0  # 2026-09-01T00:00Z


def test_percentiles_by_nearest_rank():
    samples = [float(i) for i in range(1, 101)]  # 1..100
    got = percentiles(samples)
    assert (got["p50_s"], got["p99_s"], got["max_s"], got["samples"]) == (50.0, 99.0, 100.0, 100)
    assert percentiles([3.0]) == {"samples": 1, "p50_s": 3.0, "p99_s": 3.0, "max_s": 3.0}
    assert percentiles([])["p50_s"] is None


def test_a_marker_is_seen_by_the_first_record_of_its_day_that_counts_it():
    sent = Sent(markers=[(10.0, D1, 1), (10.5, D1, 2), (20.0, D1 + DAY, 1)])
    observed = Observed(values=[
        (10.8, D1, 1.0),         # marker 1 only
        (11.9, D1 + DAY, 2.0),   # another day: counts for nothing of D1
        (12.0, D1, 2.0),         # marker 2
    ])
    latencies, missing = match_values(sent, observed)
    assert latencies == pytest.approx([0.8, 1.5]) and missing == 1  # the third never showed up


def test_a_record_older_than_the_marker_does_not_count_for_it():
    sent = Sent(markers=[(10.0, D1, 1)])
    observed = Observed(values=[(9.0, D1, 5.0)])
    assert match_values(sent, observed) == ([], 1)


def test_red_days_are_matched_to_firing_records_in_order():
    sent = Sent(completed=[(100.0, D1, True), (103.0, D1 + DAY, False), (106.0, D1 + 2 * DAY, True)])
    observed = Observed(alerts=[(101.0, "firing", "a"), (104.0, "resolved", "b"), (108.5, "firing", "c")])
    assert match_alerts(sent, observed) == ([1.0, 2.5], 0)
    observed.alerts.pop()
    assert match_alerts(sent, observed) == ([1.0], 1)


def test_the_probe_thresholds_turn_only_the_probe_red(tmp_path):
    rules = load_thresholds(probe_thresholds(tmp_path / "t.yaml").read_text())
    assert rules.status("calls", PROBE_SCOPE, "day", calls_today(0), calls_today(0)) == "red"
    assert rules.status("calls", PROBE_SCOPE, "day", calls_today(1), calls_today(1)) == "green"
    assert rules.status("calls", "rep:r-01", "day", 0, 0) == "green"
    assert rules.rule("win_rate") is not None  # the rest of the shipped file is kept


def test_ticks_close_the_day_on_every_input_partition():
    sent = ticks(D1 + DAY, 4, 4)
    assert len(sent) == 2 * 4 * TICK_KEYS
    assert {(kind, partition) for kind, partition, _, _ in sent} == {
        (kind, p) for kind in ("crm", "billing") for p in range(4)}
    dates = {json.loads(value)["occurred_at"] for _, _, _, value in sent}
    assert dates == {"2026-09-02T00:00:01Z"}
    assert len({json.loads(value)["event_id"] for _, _, _, value in sent}) == len(sent)


def test_memory_probe_output_is_the_last_json_line():
    assert parse_probe_output('loading…\n{"bytes_per_opportunity": 900, "bytes_per_rep": 4000}\n') == {
        "bytes_per_opportunity": 900, "bytes_per_rep": 4000}
    with pytest.raises(ValueError):
        parse_probe_output("no json here")


def test_a_missing_memory_probe_says_so(monkeypatch):
    import agents.bench.memory as memory

    monkeypatch.setattr(memory, "PROBE_MODULE", "agents.no_such_probe")
    lines: list[str] = []
    result = measure_memory(10, 2, lines.append)
    assert result["available"] is False and "memory probe unavailable" in result["note"]
    assert lines and "memory probe unavailable" in lines[0]


def test_the_probe_interleaves_calls_and_closings_in_event_time_order():
    from agents.bench.latency import _Probe

    probe = _Probe(partitions=2)
    due = []
    start = D1 + 3600 * 20  # the load starts in the evening of a day that is not the probe's
    for minute in range(0, 3 * 24 * 60 + 5 * 60, 7):  # a load event every 7 simulated minutes
        due += probe.before(start + minute * 60)
    closings = [d for d in due if d.number is None]
    calls = [d for d in due if d.number is not None]
    assert [c.red for c in closings] == [None, True, False, True]  # day 0 red, day 1 green, day 2 red
    assert [c.day_start for c in closings] == [D1, D1 + DAY, D1 + 2 * DAY, D1 + 3 * DAY]
    per_day = {}
    for call in calls:
        per_day.setdefault(call.day_start, []).append(call.number)
    assert per_day[D1 + DAY] == [1] and per_day[D1 + 2 * DAY] == list(range(1, 21))
    times = [json.loads(d.records[0][3])["occurred_at"] for d in due]
    assert times == sorted(times)  # ticks and calls never go back in event time


def test_plan_days_keeps_the_ticks_a_small_share_of_the_load():
    from agents.bench.latency import TICK_SHARE, plan_days

    wall, activity = plan_days(270.0, 41_000.0, 4)
    assert wall >= 3.0 and 2 * 4 * TICK_KEYS <= TICK_SHARE * 270.0 * wall + 1e-9
    assert 0 < activity < 1
    slow_wall, _ = plan_days(50.0, 41_000.0, 4)
    assert slow_wall > wall
