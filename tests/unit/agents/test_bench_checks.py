"""The benchmark's own logic: the count check that fails a lossy run, org sizes, --only."""

from __future__ import annotations

import pytest

from agents.bench.backlog import build_backlog, org_shape
from agents.bench.checks import Accounting, BenchFailure, accounting, check, problems
from agents.bench.pipeline import caught_up
from agents.bench.report import ratio_sentence
from agents.bench.runner import parse_only


def test_a_run_that_accounts_for_every_event_passes():
    check(Accounting(events_in=100, applied=90, rejected=5, duplicates=3, held=2), 100, 3)


@pytest.mark.parametrize(
    ("counted", "needle"),
    [
        (Accounting(events_in=99, applied=96, rejected=0, duplicates=3, held=0), "events_in is 99"),
        (Accounting(events_in=100, applied=96, rejected=0, duplicates=3, held=0), "= 99, not 100"),
        (Accounting(events_in=100, applied=98, rejected=0, duplicates=3, held=0), "= 101, not 100"),
        (Accounting(events_in=100, applied=99, rejected=0, duplicates=1, held=0), "1 duplicates dropped"),
    ],
)
def test_a_lost_or_double_counted_event_fails_loudly(counted, needle):
    with pytest.raises(BenchFailure, match="the pipeline run is wrong"):
        check(counted, 100, 3)
    assert any(needle in p for p in problems(counted, 100, 3)), problems(counted, 100, 3)


def test_accounting_reads_the_status_page_fields():
    status = {"events_in": 10.0, "events_applied": 7.0, "events_rejected": 1.0, "duplicates": 1.0}
    assert accounting(status, held=1.0) == Accounting(10, 7, 1, 1, 1)


def test_caught_up_needs_every_event_read_no_lag_and_nothing_unpublished():
    done = {"ready": True, "events_in": 50, "lag": {"crm[0]": 0, "cells[0]": 0}, "unpublished": 0}
    assert caught_up([done], 50)
    assert not caught_up([dict(done, events_in=49)], 50)
    assert not caught_up([dict(done, lag={"crm[0]": 0, "cells[0]": 1})], 50)
    assert not caught_up([dict(done, lag={})], 50)  # lag not measured yet
    assert not caught_up([dict(done, unpublished=3)], 50)
    # Two workers: the events add up, and both must be idle.
    assert caught_up([dict(done, events_in=20), dict(done, events_in=30)], 50)
    assert not caught_up([dict(done, events_in=20), dict(done, events_in=30, unpublished=1)], 50)


@pytest.mark.parametrize("reps", [1, 7, 20, 500, 5000, 97])
def test_org_shape_gives_exactly_the_reps_asked_for(reps):
    regions, teams, per_team = org_shape(reps)
    assert regions * teams * per_team == reps and per_team <= 10


def test_the_backlog_is_exactly_n_events_and_the_same_for_the_same_seed():
    one, two = build_backlog(500, 20, 3), build_backlog(500, 20, 3)
    assert one.count == 500 and one.records == two.records
    assert len(one.organisation.reps) == 20
    assert sum(one.type_counts.values()) + one.duplicates == 500
    assert build_backlog(500, 20, 4).records != one.records


def test_only_accepts_known_letters():
    assert parse_only("b, a,b") == ("b", "a")
    assert parse_only(None) == ("a", "b", "c", "d", "e", "f")
    with pytest.raises(ValueError, match="a,b,c,d,e,f"):
        parse_only("a,x")


def test_ratio_sentence_states_b_over_a():
    assert "(b)/(a) = 0.0050" in ratio_sentence(100_000.0, 500.0)
    assert ratio_sentence(None, 500.0) is None


def test_every_measurement_of_the_loaded_backlog_runs_before_the_latency_load():
    # (c) produces its steady load onto the backlog's own topics: (f) after it read the
    # backlog plus that load and counted 368,210 events for 200,000.
    import asyncio
    from types import SimpleNamespace

    from agents.bench.runner import _run

    calls: list[str] = []

    class Recording:
        options = SimpleNamespace(only=("a", "b", "c", "f"), reps=5, seed=1)

        async def load(self, reps):
            calls.append("load")
            return "backlog"

        async def baseline(self, loaded):
            calls.append("a")
            return {"rate": 10.0}

        async def pipeline(self, loaded, label, workers=1):
            calls.append(label)
            return {"rate": 2.0}, None

        async def latency(self, loaded, rate):
            calls.append("c")
            return {}

    results: dict = {}
    asyncio.run(_run(Recording(), results))  # type: ignore[arg-type]
    assert calls == ["load", "a", "b", "f", "c"]
    assert results["f"]["ratio"] == 1.0


def test_the_baseline_reported_is_the_median_run() -> None:
    from agents.bench.baseline import BaselineResult, median_run

    runs = [BaselineResult(1000, seconds, seconds) for seconds in (0.010, 0.002, 0.004)]
    assert median_run(runs).seconds == 0.004  # 250,000/s, between 100,000 and 500,000
    assert median_run(runs[:2]).seconds == 0.010  # of two, the slower: never the luckiest run
    with pytest.raises(ValueError):
        median_run([])


def test_the_table_gives_the_baseline_runs_spread() -> None:
    from agents.bench.report import rows

    [(name, value, _, note)] = rows({"a": {"events": 1000, "seconds": 0.004, "rate": 250_000.0,
                                           "runs": [100_000.0, 500_000.0, 250_000.0]}})
    assert value == "250,000" and note.endswith("median of 3 runs (100,000–500,000/s)")
