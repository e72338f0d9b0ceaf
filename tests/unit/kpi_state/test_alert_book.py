"""Alerts judged day by day from rollup totals: Alertmanager-shaped records, related KPIs, reading, outbox."""

from __future__ import annotations

import json
import textwrap
from datetime import date, datetime, timezone
from decimal import Decimal

from kpi_state.alert_book import AlertBook
from kpi_state.alert_records import fingerprint, reading
from kpi_state.calendar import period_bounds
from kpi_state.codec import SCOPE_ALERTS
from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import KpiView, ViewConfig
from kpi_state.rollup import Rollup
from kpi_state.thresholds import lineage_of, load_thresholds
from streams.settings import DEFAULT_STAGES

FILE = textwrap.dedent("""\
    version: 1
    kpis:
      calls:
        windows: [month]
        direction: higher
        red: 100
        pending: 10d
      win_rate:
        windows: [month]
        direction: higher
        red: 0.2
        clear_margin: 0.05
        min_sample: 5
        pending: 1h
        severity: critical
        summary: "Win rate is low"
        runbook: "Analyse: lost reasons. Act: pricing review. Follow up: next month."
    """)


def setup():
    thresholds = load_thresholds(FILE)
    rollup = Rollup("UTC")
    view = KpiView(rollup, ViewConfig("UTC", DEFAULT_STAGES, thresholds=thresholds))
    return rollup, view, AlertBook(thresholds, lineage_of)


def put(rollup, view, scope, day, partition=0, **values):
    rollup.update(partition, scope, day, CellUpdate({k: Decimal(v) for k, v in values.items()}, {}))
    rollup.see_time(datetime.fromisoformat(day).replace(hour=12, tzinfo=timezone.utc).timestamp())
    view.note_day(date.fromisoformat(day))


def judge(book, view, scopes, day):
    d = date.fromisoformat(day)
    return book.evaluate_day(view, scopes, d, period_bounds(d, "day", "UTC")[1])


def test_one_episode_gives_one_firing_then_one_resolved_record():
    rollup, view, book = setup()
    put(rollup, view, "rep:a", "2026-11-02", won=1, lost=9, calls=40)
    assert judge(book, view, ["rep:a"], "2026-11-02") == 0  # red: pending from the end of the day
    put(rollup, view, "rep:a", "2026-11-03", lost=2, calls=2)
    assert judge(book, view, ["rep:a"], "2026-11-03") == 1
    [firing] = book.outbox()
    record = json.loads(firing.record)
    assert firing.key == "win_rate|rep:a|month"
    assert record["status"] == "firing" and record["endsAt"] is None
    assert record["startsAt"] == "2026-11-03T00:00:00Z"  # red since the end of Nov 2
    assert record["labels"] == {"alertname": "KpiRed", "kpi": "win_rate", "scope": "rep:a",
                                "window": "month", "severity": "critical"}
    assert record["fingerprint"] == fingerprint(record["labels"])
    assert record["threshold"] == 0.2 and abs(record["value"] - 1 / 12) < 1e-9
    assert record["annotations"]["runbook"].startswith("Analyse:")
    assert record["context"]["related"] == [{"kpi": "calls", "window": "month", "value": 42.0, "status": "red"}]
    assert record["context"]["reading"].startswith("work more and work better")
    book.mark_published({firing.id})
    book.delivered({firing.id})
    assert book.outbox() == [] and len(book.active()) == 1
    # Above the bound but inside the margin: still firing. Past it: resolved, once.
    put(rollup, view, "rep:a", "2026-11-04", won=2, lost=0, calls=10)  # 3/14 = 0.21
    assert judge(book, view, ["rep:a"], "2026-11-04") == 0
    put(rollup, view, "rep:a", "2026-11-05", won=1, lost=0, calls=100)  # 4/15 = 0.27
    assert judge(book, view, ["rep:a"], "2026-11-05") == 1
    [resolved] = book.outbox()
    body = json.loads(resolved.record)
    assert body["status"] == "resolved" and body["endsAt"] == "2026-11-06T00:00:00Z"
    assert body["startsAt"] == record["startsAt"] and body["episode"] == record["episode"]
    assert body["id"] != record["id"]
    book.mark_published({resolved.id})
    book.delivered({resolved.id})
    assert judge(book, view, ["rep:a"], "2026-11-06") == 0 and book.active() == []


def test_a_day_is_judged_without_the_days_after_it():
    """A fast partition already sent later days: they must not change the earlier day's verdict."""
    rollup, view, book = setup()
    put(rollup, view, "rep:a", "2026-11-02", won=0, lost=9, calls=300)
    put(rollup, view, "rep:a", "2026-11-09", partition=1, won=9, lost=0)
    judge(book, view, ["rep:a"], "2026-11-02")
    assert book.scopes["rep:a"].states["win_rate|month"].phase == "pending"
    assert book.scopes["rep:a"].states["win_rate|month"].value == 0.0


def test_a_day_already_judged_is_not_judged_again():
    rollup, view, book = setup()
    put(rollup, view, "rep:a", "2026-11-02", won=0, lost=9, calls=300)
    judge(book, view, ["rep:a"], "2026-11-02")
    put(rollup, view, "rep:a", "2026-11-03", lost=1, calls=1)
    assert judge(book, view, ["rep:a"], "2026-11-03") == 1
    assert judge(book, view, ["rep:a"], "2026-11-03") == 0
    assert judge(book, view, ["rep:a"], "2026-11-02") == 0
    assert len(book.outbox()) == 1


def test_healthy_scope_stores_nothing():
    rollup, view, book = setup()
    put(rollup, view, "rep:b", "2026-11-02", won=5, lost=5, calls=300)
    judge(book, view, ["rep:b"], "2026-11-02")
    assert book.outbox() == [] and "rep:b" not in book.scopes


def test_state_survives_encoding_and_the_same_events_give_the_same_ids():
    rollup, view, book = setup()
    put(rollup, view, "rep:a", "2026-11-02", won=0, lost=9, calls=300)
    judge(book, view, ["rep:a"], "2026-11-02")
    [(scope, raw)] = book.take_dirty()
    again = AlertBook(load_thresholds(FILE), lineage_of)
    again.restore(scope, raw)
    assert again.scopes == book.scopes and SCOPE_ALERTS.decode(SCOPE_ALERTS.encode(book.scopes[scope])) == book.scopes[scope]
    put(rollup, view, "rep:a", "2026-11-03", lost=1, calls=1)
    judge(book, view, ["rep:a"], "2026-11-03")
    judge(again, view, ["rep:a"], "2026-11-03")
    assert [e.record for e in book.outbox()] == [e.record for e in again.outbox()] and book.outbox()
    assert json.loads(book.outbox()[0].record)["context"]["reading"] == "work better: efficiency is red"


def test_reading_when_nothing_beneath_is_red():
    related = [{"kpi": "calls", "value": 300, "status": "green"}, {"kpi": "win_rate", "value": 0.3, "status": "green"}]
    assert reading("revenue", related) == "look outside the team: market, pricing, product"
    assert reading("calls", []) == "work more: activity is red"


def test_fingerprint_matches_prometheus_common_vectors():
    # Expected values from prometheus/common model/signature_test.go (LabelsToSignature).
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    assert fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == f"{5799056148416392346:016x}"


def test_unassigned_buckets_raise_no_alerts():
    rollup, view, book = setup()
    for scope in ("team:unassigned", "region:unassigned"):
        put(rollup, view, scope, "2026-11-02", won=0, lost=9)
        put(rollup, view, scope, "2026-11-03", won=0, lost=9)
    judge(book, view, ["team:unassigned", "region:unassigned"], "2026-11-02")
    assert judge(book, view, ["team:unassigned", "region:unassigned"], "2026-11-03") == 0
