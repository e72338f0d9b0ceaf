"""The in-process step timing (agents.bench.steps): what it feeds the steps, and that they take it all."""

from __future__ import annotations

from collections import Counter

from agents.bench.backlog import build_backlog
from agents.bench.steps import PHASES, arrival_order, main, measure


def test_arrival_order_hands_over_every_record_once_each_partition_in_its_order() -> None:
    backlog = build_backlog(3000, 50, 7)
    order = arrival_order(backlog)
    assert len(order) == backlog.count
    assert Counter(r.value for r in order) == Counter(v for rows in backlog.records.values() for _, v in rows)
    offsets: dict[tuple[str, int], list[int]] = {}
    for record in order:
        offsets.setdefault((record.topic, record.partition), []).append(record.offset)
    assert all(seen == list(range(len(seen))) for seen in offsets.values())
    assert {topic for topic, _ in offsets} == {"crm.events", "billing.events"}
    # Round robin: the partitions take turns, so the first records are one of each.
    assert len({(r.topic, r.partition) for r in order[: len(offsets)]}) == len(offsets)


def test_the_steps_take_the_whole_backlog_and_every_phase_is_timed() -> None:
    result = measure(events=3000, reps=50, seed=7, rounds=1, batch=500)
    assert result["rejected"] == 0  # no event judged from the future or too late
    assert result["records"] > 0 and result["state_bytes"] > 0
    assert set(result["seconds"]) == set(PHASES)
    assert all(seconds > 0 for seconds in result["seconds"].values())
    assert result["total_seconds"] == sum(result["seconds"].values())


def test_the_command_refuses_a_zero_size(capsys) -> None:
    import pytest

    with pytest.raises(SystemExit) as exited:
        main(["--events", "0"])
    assert exited.value.code == 2
    assert "at least 1" in capsys.readouterr().err
