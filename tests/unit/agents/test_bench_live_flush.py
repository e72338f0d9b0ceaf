"""The live flush timing (agents.bench.live_flush): each flush publishes what the second moved, and only that."""

from __future__ import annotations

import json

from agents.bench.live_flush import main, measure


def test_each_flush_publishes_the_moved_activity_kpis_of_every_series() -> None:
    # One rep: its scope, its team and the company; every kind of event moves each second.
    result = measure(reps=1, events=300, flushes=4)
    # calls, emails, meetings_booked and meeting_rate, in day, week, month, quarter, year,
    # 7d, 30d, 90d and all: nothing else reads those components.
    assert result["records_per_flush"] == 3 * 9 * 4
    assert result["ms_per_flush"] > 0


def test_the_command_prints_json(capsys) -> None:
    assert main(["--reps", "3", "--events", "50", "--flushes", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flushes"] == 2 and out["records_per_flush"] > 0
