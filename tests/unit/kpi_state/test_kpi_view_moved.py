"""Recomputing only the KPIs whose components moved (kpi_state.kpi_view.kpis_reading) publishes
exactly what recomputing every KPI of every changed series publishes."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest

from agents.rollup_step import RollupStep, table_key
from kpi_state.codec import STORED_PARTS, StoredParts
from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig, kpis_reading
from kpi_state.rollup import Rollup
from kpi_state.thresholds import Thresholds, load_thresholds

STAGES = ("prospecting", "qualified", "meeting", "demo", "proposal", "negotiation")
SCOPES = ("rep:a", "rep:b", "team:t", "global")
START = date(2026, 1, 20)  # the days cross a month's and a quarter's end

COMPONENTS = [
    "calls", "emails", "meetings_booked", "demos", "prospects_contacted", "opportunities_created",
    "won", "lost", "created_won", "cycle_days_sum", "bookings", "invoiced", "credited", "orders",
    "units", "margin_with_cost", "gross_with_cost", "paid_days_sum", "paid_count", "new_customers",
    "spend", "stage_entered|stage=qualified", "stage_advanced|from=prospecting|to=qualified",
    "stage_days_sum|stage=demo", "stage_left|stage=demo",
]
SNAPSHOT = ["overdue", "open_opps|stage=demo", "open_value|stage=demo"]


class EverythingRollup(Rollup):
    """The reference: says nothing of what moved, so every changed series is recomputed whole."""

    def take_changed(self):  # type: ignore[override]
        changed = super().take_changed()
        self.components = {}
        return changed


def thresholds() -> Thresholds:
    # Objectives read other KPIs: attainment must follow them when only a group is recomputed.
    # Statuses are compared too: judged windows of counts, ratios and money.
    return load_thresholds(
        "version: 1\nkpis:\n"
        "  calls:\n    windows: [day, 7d]\n    direction: higher\n    red: 2\n    objectives:\n"
        "      - scope: \"rep:a\"\n        window: day\n        value: 5\n"
        "  revenue:\n    windows: [month, 30d]\n    direction: higher\n    red: 3\n    objectives:\n"
        "      - scope: global\n        window: month\n        value: 10\n"
        "  win_rate:\n    windows: [all, 90d]\n    direction: higher\n    red: 0.4\n"
    )


def views() -> tuple[KpiView, KpiView]:
    config = ViewConfig(tz="Europe/Paris", stages=STAGES, currency="EUR", thresholds=thresholds())
    return KpiView(Rollup(config.tz), config), KpiView(EverythingRollup(config.tz), config)


def published(records) -> dict[str, tuple]:
    return {r.key: (r.value, r.numerator, r.denominator, r.window_start, r.window_end, r.status, r.unit)
            for r in records}


def random_update(rng: random.Random, newest: date) -> tuple[str, str, CellUpdate]:
    scope = rng.choice(SCOPES)
    if rng.random() < 0.08:  # a snapshot cell: no day, held by `all` only
        values = {name: D(rng.randint(0, 3)) for name in rng.sample(SNAPSHOT, rng.randint(1, 2))}
        return scope, "", CellUpdate(values, {})
    # Mostly activity, as in real traffic; sometimes a late day, sometimes a value back to 0.
    day = newest - timedelta(days=rng.choice([0, 0, 0, 1, 3, 9, 40]))
    names = ["calls", "emails"] if rng.random() < 0.7 else rng.sample(COMPONENTS, rng.randint(1, 4))
    values = {name: D(rng.randint(0, 4)) for name in names}
    members = {"customers_invoiced": [f"c{n}" for n in range(rng.randint(0, 3))]} if "orders" in names else {}
    return scope, day.isoformat(), CellUpdate({k: v for k, v in values.items() if v}, members)


@pytest.mark.parametrize("seed", range(6))
def test_moved_components_publish_what_a_whole_recompute_publishes(seed: int) -> None:
    rng = random.Random(seed)
    moved, everything = views()
    computed = {id(moved): 0, id(everything): 0}
    for view in (moved, everything):
        view.results = counting(view, computed)  # type: ignore[method-assign]
    cells: dict[tuple[int, str, str], CellUpdate] = {}
    newest = START
    flushes = 0
    for step in range(900):
        if rng.random() < 0.03:
            newest += timedelta(days=1)  # a day move: rolling windows and current periods move
        partition = rng.randint(0, 1)
        scope, day, update = random_update(rng, newest)
        # Partials are absolute per (partition, scope, day): each update keeps some of the last.
        earlier = cells.get((partition, scope, day))
        if earlier is not None and rng.random() < 0.5:
            update = CellUpdate({**earlier.values, **update.values}, update.members or earlier.members)
        cells[(partition, scope, day)] = update
        ts = datetime(newest.year, newest.month, newest.day, 12).timestamp()
        for view in (moved, everything):
            view.rollup.update(partition, scope, day, update)
            view.rollup.see_time(ts)
        if step == 450:  # a recovery: everything is published again, whatever moved
            for view in (moved, everything):
                view.republish_all()
        if rng.random() < 0.1:
            flushes += 1
            stamp = ts + step
            assert published(moved.refresh(stamp)) == published(everything.refresh(stamp)), f"flush {flushes}"
    assert published(moved.refresh(0.0)) == published(everything.refresh(0.0))
    assert published(moved.latest.values()) == published(everything.latest.values())
    assert flushes > 50 and len(moved.latest) > 1000
    # Not a vacuous equality: most of the reference's work was left out.
    assert computed[id(moved)] < 0.75 * computed[id(everything)], computed


def counting(view: KpiView, computed: dict[int, int]):
    """The view's `results`, counting the KPI results it computes."""
    results = view.results

    def counted(series, kpis=None):
        out = list(results(series, kpis))
        computed[id(view)] += len(out)
        return out
    return counted


def test_only_the_groups_reading_what_moved_are_recomputed() -> None:
    calls = kpis_reading(frozenset({"calls"}), "day")
    assert calls is not None
    assert {"calls", "meeting_rate", "objective_attainment"} - calls == {"objective_attainment"}
    assert not {"revenue", "win_rate", "stage_conversion", "cac", "clv"} & calls
    assert {"revenue_growth", "price_effect", "volume_effect"} <= calls  # growth reads the previous period
    assert "revenue_growth" not in kpis_reading(frozenset({"calls"}), "7d")
    # `all` reads the newest day and the 90-day rates: its lifetime and snapshot KPIs always.
    assert {"clv", "pipeline_velocity", "pipeline_value"} <= kpis_reading(frozenset({"calls"}), "all")
    assert {"clv", "ltv_to_cac", "revenue"} <= kpis_reading(frozenset({"invoiced"}), "month")
    assert "clv" not in kpis_reading(frozenset({"invoiced"}), "week")  # clv: a month or longer
    assert kpis_reading(frozenset({"calls", "a_component_no_group_reads"}), "day") is None


# Found in review: ways a partial recompute published less than a whole one.
TODAY = "2026-03-02"


def ts(day: str) -> float:
    return datetime.fromisoformat(day + "T12:00:00+00:00").timestamp()


def missing(moved: KpiView, everything: KpiView, stamp: float) -> list[str]:
    got, want = published(moved.refresh(stamp)), published(everything.refresh(stamp))
    assert set(got) <= set(want)
    return sorted(set(want) - set(got))


def test_a_new_scope_whose_first_cell_is_a_snapshot_gets_its_rolling_windows_whole() -> None:
    # update() marks a new scope's rolling windows `_rolling_full`, but only a cell with a
    # day puts them in `_rolling_dirty`: the take consumes `_rolling_full` without taking
    # the windows, and the next take recomputes them partially although never published.
    moved, everything = views()
    for view in (moved, everything):
        view.rollup.update(0, "rep:a", TODAY, CellUpdate({"calls": D(1)}, {}))
        view.rollup.see_time(ts(TODAY))
    moved.refresh(1.0), everything.refresh(1.0)
    for view in (moved, everything):  # rep:s's first cell: an open opportunity (no day)
        view.rollup.update(0, "rep:s", "", CellUpdate({"open_opps|stage=demo": D(1)}, {}))
    assert not missing(moved, everything, 2.0)
    for view in (moved, everything):  # then its first call, the same day
        view.rollup.update(0, "rep:s", TODAY, CellUpdate({"calls": D(1)}, {}))
    lost = missing(moved, everything, 3.0)
    assert not lost, (len(lost), lost[:4])


def recovered(rollup_class) -> RollupStep:
    step = RollupStep(views()[0].config)
    items = [
        (table_key(0, "rep:a", TODAY), STORED_PARTS.encode(StoredParts(ts(TODAY), {0: ({"calls": "1"}, {})}))),
        # rep:x's only cell emptied before the crash: RollupStep.recover `remember`s it
        (table_key(0, "rep:x", "2026-02-20"), STORED_PARTS.encode(StoredParts(ts(TODAY), {}))),
    ]
    step.recover(items, {0})
    if rollup_class is EverythingRollup:  # the same state, in the reference rollup
        ref = EverythingRollup(step.config.tz)
        ref.__dict__.update(step.rollup.__dict__)
        step.rollup = ref
        step.view = KpiView(ref, step.config)
        step.view.republish_all()
    return step


def test_a_scope_first_recovered_from_an_emptied_cell_gets_its_current_periods_whole() -> None:
    # remember() puts rep:x in `scopes`, so its first live cell is not a new scope's: no
    # `_mark_current`, no `_full`; its current periods, never published, come out partial.
    moved, everything = recovered(None), recovered(EverythingRollup)
    assert not missing(moved.view, everything.view, 1.0)  # the republish round
    for step in (moved, everything):
        step.rollup.update(0, "rep:x", TODAY, CellUpdate({"calls": D(1)}, {}))
    lost = missing(moved.view, everything.view, 2.0)
    assert not lost, (len(lost), lost[:4])


def test_a_series_taken_whole_and_not_yet_recomputed_stays_whole() -> None:
    # take_changed's comment: "A series still waiting from an earlier take has moved in both
    # takes' components". A series waiting *whole* (absent from `_moved`: here the rolling
    # windows after a day move) that a later take sees partially is recomputed partially:
    # the KPIs of the other groups keep the old window's bounds and numbers.
    moved, everything = views()
    for view in (moved, everything):
        view.rollup.update(0, "rep:a", "2026-03-01", CellUpdate({"calls": D(1), "invoiced": D(5)}, {}))
        view.rollup.see_time(ts("2026-03-01"))
        view.refresh(1.0)
        view.rollup.see_time(ts(TODAY))  # the day moves: every rolling window moved
        view.take_changed()  # taken; the flush ends before computing them (a send raising)
        view.rollup.update(0, "rep:a", TODAY, CellUpdate({"calls": D(1)}, {}))
    stamp = "2026-03-02T12:00:00Z"
    got = published([r for s in moved.take_changed() for r in moved.changed_records(s, stamp)])
    want = published([r for s in everything.take_changed() for r in everything.changed_records(s, stamp)])
    lost = sorted(set(want) - set(got))
    assert not lost, (len(lost), lost[:4])
    assert "revenue|rep:a|7d|" in want
