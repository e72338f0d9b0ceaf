"""`replay` sends history to the backfill topic by default and says what would be refused."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from streams.replay_run import ReplayPlan, rejection_warnings, to_backfill
from streams.settings import Settings

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()


def record(topic: str, occurred_at: str) -> tuple[str, bytes | None, bytes]:
    return (topic, None, json.dumps({"type": "call.logged", "occurred_at": occurred_at}).encode())


def test_crm_and_billing_events_go_to_the_backfill_topic_and_reps_stay() -> None:
    settings = Settings()
    plan = ReplayPlan([record("crm.events", "2017-01-01T00:00:00Z"), record("billing.events", "2017-01-02T00:00:00Z"),
                       record("sales.reps", "2017-01-01T00:00:00Z")])
    to_backfill(plan, settings)
    assert [topic for topic, _, _ in plan.records] == ["events.backfill", "events.backfill", "sales.reps"]


def test_history_sent_to_the_live_topics_is_announced_as_too_late() -> None:
    plan = ReplayPlan([record("crm.events", "2017-01-01T00:00:00Z"), record("crm.events", "2017-06-01T00:00:00Z")])
    warnings = rejection_warnings(plan, Settings(), live=True, now=NOW)
    assert len(warnings) == 1 and "too_late" in warnings[0] and "3621 days" in warnings[0]
    assert rejection_warnings(plan, Settings(), live=False, now=NOW) == []


def test_events_dated_past_the_clock_skew_are_announced() -> None:
    plan = ReplayPlan([record("crm.events", "2026-12-01T01:00:00Z")])
    warnings = rejection_warnings(plan, Settings(), live=False, now=NOW)
    assert len(warnings) == 1 and "future_timestamp" in warnings[0]


def test_recent_events_to_the_live_topics_raise_no_warning() -> None:
    plan = ReplayPlan([record("crm.events", "2026-11-30T12:00:00Z")])
    assert rejection_warnings(plan, Settings(), live=True, now=NOW) == []
