"""The alert state machine, table-driven: each case is a series of observations and the transitions expected."""

from __future__ import annotations

import msgspec
import pytest

from kpi_state.alerts import AlertState, Observation, step, tick
from kpi_state.thresholds import Bounds, load_thresholds

H = 3600.0
WIN = Bounds("higher", red=0.2, amber=0.3, clear_margin=0.03, min_sample=10, pending_s=0, severity="critical")
NO_MARGIN = Bounds("higher", 0.2, 0.3, 0.0, 10, 0, "critical")
PENDING = Bounds("higher", 0.2, 0.3, 0.03, 10, 2 * H, "critical")
LOWER = Bounds("lower", red=45, amber=30, clear_margin=5, min_sample=1, pending_s=0, severity="warning")


def run(bounds: Bounds, steps: list[tuple]) -> list[tuple]:
    """steps: (ts, value, sample[, period]) or ("tick", ts); returns (status, starts_at, ends_at)."""
    state, out = AlertState(), []
    for item in steps:
        if item[0] == "tick":
            state, t = tick(state, item[1], bounds)
        else:
            ts, value, sample, *period = item
            state, t = step(state, Observation(period[0] if period else "", value, sample, ts), bounds)
        if t is not None:
            out.append((t.status, t.starts_at, t.ends_at))
    return out


CASES = {
    "oscillation around the bound is one episode thanks to the margin": (
        WIN, [(1, 0.19, 20), (2, 0.21, 20), (3, 0.19, 20), (4, 0.22, 20), (5, 0.18, 20), (6, 0.24, 20)],
        [("firing", 1, None), ("resolved", 1, 6)]),
    "without a margin the same oscillation is three episodes": (
        NO_MARGIN, [(1, 0.19, 20), (2, 0.21, 20), (3, 0.19, 20), (4, 0.22, 20), (5, 0.18, 20), (6, 0.24, 20)],
        [("firing", 1, None), ("resolved", 1, 2), ("firing", 3, None), ("resolved", 3, 4),
         ("firing", 5, None), ("resolved", 5, 6)]),
    "sparse data below the minimum sample never fires": (
        WIN, [(1, 0.0, 3), (2, 0.0, 5), (3, 0.1, 9)], []),
    "sparse data below the minimum sample does not resolve a firing alert": (
        WIN, [(1, 0.1, 20), (2, 0.9, 4), (3, 0.9, 9), (4, 0.25, 12)],
        [("firing", 1, None), ("resolved", 1, 4)]),
    "no value (zero denominator) neither fires nor resolves": (
        WIN, [(1, None, 0), (2, 0.1, 20), (3, None, 0)], [("firing", 2, None)]),
    "a late event changing a past period is ignored": (
        WIN, [(10, 0.5, 20, "2026-11-01"), (11, 0.0, 50, "2026-10-01"), (12, 0.5, 20, "2026-11-01")], []),
    "a late event in the past period does not resolve the current one": (
        WIN, [(10, 0.1, 20, "2026-11-01"), (11, 0.9, 50, "2026-10-01")], [("firing", 10, None)]),
    "pending time not yet elapsed: nothing": (
        PENDING, [(0, 0.1, 20), (1 * H, 0.1, 20), (2 * H - 1, 0.1, 20)], []),
    "pending time elapsed in event time: fires, starting when red began": (
        PENDING, [(0, 0.1, 20), (1 * H, 0.1, 20), (2 * H, 0.1, 20)], [("firing", 0, None)]),
    "leaving red before the pending time calls it off": (
        PENDING, [(0, 0.1, 20), (1 * H, 0.21, 20), (2 * H, 0.1, 20), (3 * H, 0.1, 20)], []),
    "a tick fires a pending alert once event time has moved on": (
        PENDING, [(0, 0.1, 20), ("tick", 1 * H), ("tick", 2 * H), ("tick", 3 * H)], [("firing", 0, None)]),
    "unknown while pending neither fires nor calls it off": (
        PENDING, [(0, 0.1, 20), (3 * H, 0.0, 2), (4 * H, 0.1, 20)], [("firing", 0, None)]),
    "lower is better: red above, clear below red minus margin": (
        LOWER, [(1, 50, 3), (2, 42, 3), (3, 39, 3)], [("firing", 1, None), ("resolved", 1, 3)]),
}


@pytest.mark.parametrize("bounds, steps, expected", CASES.values(), ids=list(CASES))
def test_state_machine(bounds, steps, expected):
    assert run(bounds, steps) == expected


def test_per_scope_overrides_change_the_outcome():
    t = load_thresholds("""
version: 1
kpis:
  win_rate:
    windows: [30d]
    direction: higher
    red: 0.2
    clear_margin: 0.02
    min_sample: 10
    overrides:
      - scope: "team:t-new"
        red: 0.1
      - scope: "rep:r-trainee"
        min_sample: 30
""")
    rule = t.rule("win_rate")
    series = [(1, 0.15, 20), (2, 0.15, 20)]
    assert run(rule.bounds_for(("rep:r-1", "global")), series) == [("firing", 1, None)]
    assert run(rule.bounds_for(("team:t-new", "global")), series) == []
    assert run(rule.bounds_for(("rep:r-trainee", "global")), series) == []


def test_state_round_trips_through_msgpack():
    state, _ = step(AlertState(), Observation("2026-11-01", 0.1, 20.0, 5.0), PENDING)
    raw = msgspec.msgpack.encode(state)
    assert msgspec.msgpack.decode(raw, type=AlertState) == state
    assert state.phase == "pending" and state.since == 5.0
