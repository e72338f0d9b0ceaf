"""Alerts evaluated from rollup totals: records in Alertmanager's shape, related KPIs, reading, outbox."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timezone
from decimal import Decimal

from kpi_state.alert_book import AlertBook, decode_scope, encode_scope
from kpi_state.alert_records import fingerprint, reading
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
DAY = "2026-11-02"
T = datetime(2026, 11, 2, 9, tzinfo=timezone.utc).timestamp()


def setup():
    thresholds = load_thresholds(FILE)
    rollup = Rollup("UTC")
    view = KpiView(rollup, ViewConfig("UTC", DEFAULT_STAGES, thresholds=thresholds))
    return rollup, view, AlertBook(thresholds, lineage_of)


def put(rollup, scope, ts, **values):
    rollup.update(0, scope, DAY, CellUpdate({k: Decimal(v) for k, v in values.items()}, {}))
    rollup.see_time(ts)


def test_one_episode_gives_one_firing_then_one_resolved_record():
    rollup, view, book = setup()
    put(rollup, "rep:a", T, won=1, lost=9, calls=40)
    assert book.evaluate(view, ["rep:a"], T) == 0  # pending
    put(rollup, "rep:a", T + 1800, won=1, lost=10, calls=41)
    assert book.evaluate(view, ["rep:a"], T + 1800) == 0
    put(rollup, "rep:a", T + 3600, won=1, lost=11, calls=42)
    assert book.evaluate(view, ["rep:a"], T + 3600) == 1
    [firing] = book.outbox()
    record = json.loads(firing.record)
    assert firing.key == "win_rate|rep:a|month"
    assert record["status"] == "firing" and record["endsAt"] is None
    assert record["startsAt"] == "2026-11-02T09:00:00Z"
    assert record["labels"] == {"alertname": "KpiRed", "kpi": "win_rate", "scope": "rep:a",
                                "window": "month", "severity": "critical"}
    assert record["fingerprint"] == fingerprint(record["labels"])
    assert record["threshold"] == 0.2 and abs(record["value"] - 1 / 12) < 1e-9
    assert record["annotations"]["runbook"].startswith("Analyse:")
    assert record["context"]["related"] == [{"kpi": "calls", "window": "month", "value": 42.0, "status": "red"}]
    assert record["context"]["reading"].startswith("work more and work better")
    book.sent({firing.id})
    assert book.outbox() == []
    assert len(book.active()) == 1
    # Back above the bound but inside the margin: still firing. Past it: resolved, once.
    put(rollup, "rep:a", T + 7200, won=4, lost=11, calls=200)  # 4/15 = 0.267, past 0.2 + 0.05
    assert book.evaluate(view, ["rep:a"], T + 7200) == 1
    [resolved] = book.outbox()
    body = json.loads(resolved.record)
    assert body["status"] == "resolved" and body["endsAt"] == "2026-11-02T11:00:00Z"
    assert body["startsAt"] == record["startsAt"] and body["episode"] == record["episode"]
    assert body["id"] != record["id"]
    book.sent({resolved.id})
    assert book.evaluate(view, ["rep:a"], T + 7300) == 0 and book.active() == []


def test_healthy_scope_stores_nothing():
    rollup, view, book = setup()
    put(rollup, "rep:b", T, won=5, lost=5, calls=300)
    book.evaluate(view, ["rep:b"], T)
    assert book.outbox() == [] and "rep:b" not in book.scopes


def test_pending_alert_fires_on_a_tick_when_other_scopes_move_time():
    rollup, view, book = setup()
    put(rollup, "rep:a", T, won=0, lost=9, calls=300)
    book.evaluate(view, ["rep:a"], T)
    put(rollup, "rep:b", T + 3600, won=5, lost=5, calls=300)
    assert book.evaluate(view, ["rep:b"], T + 3600) == 1
    assert json.loads(book.outbox()[0].record)["context"]["reading"] == "work better: efficiency is red"


def test_state_survives_encoding_and_the_same_events_give_the_same_ids():
    rollup, view, book = setup()
    put(rollup, "rep:a", T, won=0, lost=9, calls=300)
    book.evaluate(view, ["rep:a"], T)
    [(scope, raw)] = book.take_dirty()
    again = AlertBook(load_thresholds(FILE), lineage_of)
    again.restore(scope, raw)
    assert again.scopes == book.scopes and decode_scope(encode_scope(book.scopes[scope])) == book.scopes[scope]
    put(rollup, "rep:a", T + 3600, won=0, lost=10, calls=300)
    book.evaluate(view, ["rep:a"], T + 3600)
    again.evaluate(view, ["rep:a"], T + 3600)
    assert [e.id for e in book.outbox()] == [e.id for e in again.outbox()] and book.outbox()


def test_reading_when_nothing_beneath_is_red():
    related = [{"kpi": "calls", "value": 300, "status": "green"}, {"kpi": "win_rate", "value": 0.3, "status": "green"}]
    assert reading("revenue", related) == "look outside the team: market, pricing, product"
    assert reading("calls", []) == "work more: activity is red"


def test_fingerprint_matches_prometheus_common_vectors():
    # Expected values from prometheus/common model/signature_test.go (LabelsToSignature).
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    assert fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == f"{5799056148416392346:016x}"
