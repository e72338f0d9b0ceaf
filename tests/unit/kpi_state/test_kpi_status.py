"""KPI value records carry the status the thresholds give, and objective_attainment where objectives are set."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from decimal import Decimal

from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig
from kpi_state.rollup import Rollup
from kpi_state.thresholds import load_thresholds
from streams.settings import DEFAULT_STAGES

FILE = textwrap.dedent("""\
    version: 1
    kpis:
      win_rate:
        windows: [7d, month]
        direction: higher
        red: 0.2
        amber: 0.3
        min_sample: 5
        overrides:
          - scope: "rep:star"
            red: 0.5
            amber: 0.6
        objectives:
          - scope: "rep:a"
            window: month
            value: 0.4
      calls:
        windows: [month, 7d]
        direction: higher
        red: 10
        objectives:
          - scope: "rep:a"
            window: month
            value: 100
    """)

T0 = datetime(2026, 11, 2, 12, tzinfo=timezone.utc).timestamp()


def view_with(cells: dict[tuple[str, str], dict[str, int]], newest: float) -> KpiView:
    rollup = Rollup("UTC")
    for (scope, day), values in cells.items():
        rollup.update(0, scope, day, CellUpdate({k: Decimal(v) for k, v in values.items()}, {}))
    rollup.see_time(newest)
    return KpiView(rollup, ViewConfig("UTC", DEFAULT_STAGES, thresholds=load_thresholds(FILE)))


def by_key(view: KpiView) -> dict[tuple, object]:
    return {(r.kpi, r.scope, r.window, tuple(sorted(r.dims.items()))): r for r in view.refresh(0)}


def test_status_per_scope_and_window():
    cells = {("rep:a", "2026-11-02"): {"won": 1, "lost": 9, "calls": 50},
             ("rep:b", "2026-11-02"): {"won": 1, "lost": 2},
             ("rep:star", "2026-11-02"): {"won": 4, "lost": 6}}
    recs = by_key(view_with(cells, T0))
    assert recs[("win_rate", "rep:a", "month", ())].status == "red"        # 0.1 < 0.2
    assert recs[("win_rate", "rep:b", "month", ())].status == "unknown"    # 3 closed < min_sample 5
    assert recs[("win_rate", "rep:star", "month", ())].status == "red"     # 0.4 < override 0.5
    assert recs[("win_rate", "rep:a", "quarter", ())].status == "unknown"  # window not judged
    assert recs[("calls", "rep:a", "month", ())].status == "green"


def test_rolling_window_of_a_count_waits_until_the_data_covers_it():
    early = {("rep:a", "2026-11-01"): {"won": 1, "lost": 9, "calls": 5}}
    recs = by_key(view_with(early, T0))
    assert recs[("calls", "rep:a", "7d", ())].status == "unknown"  # two days of data: not judged
    assert recs[("win_rate", "rep:a", "7d", ())].status == "red"  # a ratio does not ramp up
    covered = {("rep:a", "2026-10-27"): {"calls": 1}, ("rep:a", "2026-11-01"): {"won": 1, "lost": 9, "calls": 5}}
    assert by_key(view_with(covered, T0))[("calls", "rep:a", "7d", ())].status == "red"


def test_objective_attainment_for_configured_scope_and_window_only():
    cells = {("rep:a", "2026-11-02"): {"won": 3, "lost": 7, "calls": 80},
             ("rep:b", "2026-11-02"): {"won": 3, "lost": 7}}
    recs = by_key(view_with(cells, T0))
    win = recs[("objective_attainment", "rep:a", "month", (("kpi", "win_rate"),))]
    assert win.value == 0.75 and win.numerator == 0.3 and win.denominator == 0.4
    assert recs[("objective_attainment", "rep:a", "month", (("kpi", "calls"),))].value == 0.8
    assert not [k for k in recs if k[0] == "objective_attainment" and (k[1] != "rep:a" or k[2] != "month")]
