"""The memory probe's counts and arithmetic, on a small load (its target size is measured, not tested)."""

from __future__ import annotations

import json
from collections import Counter

import msgspec
import pytest

from agents import memory_probe


def test_the_generated_history_is_in_event_time_order_with_one_creation_per_opportunity() -> None:
    events = [msgspec.json.decode(value) for _, value in memory_probe.opportunity_events(3, 200, 7, 30)]
    times = [event["occurred_at"] for event in events]
    assert times == sorted(times)
    kinds = Counter((event["data"]["opportunity_id"], event["type"]) for event in events)
    ids = {opp for opp, _ in kinds}
    assert len(ids) == 200
    assert all(kinds[(opp, "opportunity.created")] == 1 for opp in ids)
    assert all(kinds[(opp, "opportunity.won")] + kinds[(opp, "opportunity.lost")] <= 1 for opp in ids)
    closed = sum(kinds[(opp, "opportunity.won")] + kinds[(opp, "opportunity.lost")] for opp in ids)
    assert 120 <= closed <= 200  # about 85 % close
    assert len({event["event_id"] for event in events}) == len(events)
    assert {event["data"]["rep_id"] for event in events} <= {f"r-{i:05d}" for i in range(7)}


def test_bytes_per_entity_are_the_resident_growth_of_each_phase_over_what_it_loaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = iter([10_000_000, 10_000_000 + 40 * 700, 10_000_000 + 40 * 700 + 3 * 5_000])
    monkeypatch.setattr(memory_probe, "resident_bytes", lambda: next(readings))
    result = memory_probe.probe(opportunities=40, reps=3, days=12, activity_per_day=2, partitions=2)
    assert (result["opportunities"], result["reps"]) == (40, 3)
    assert result["activity_events"] == 3 * 12 * 2
    assert result["rejected"] == 0 and result["held"] == 0
    assert result["bytes_per_opportunity"] == 700.0
    assert result["bytes_per_rep"] == 5_000.0
    assert result["rss_bytes"] == 10_000_000 + 40 * 700 + 3 * 5_000


def test_the_command_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert memory_probe.main(["--opportunities", "30", "--reps", "2", "--days", "5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"opportunities", "reps", "bytes_per_opportunity", "bytes_per_rep", "rss_bytes"} <= set(result)
    assert result["opportunities"] == 30 and result["reps"] == 2
