"""Bad input through the running worker on the real broker: each lands in the DLQ once, with its reason."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from tests.integration.conftest import wait_for
from tests.integration.test_calls_slice import consume_all, hosts, metric_value

pytestmark = pytest.mark.integration

# Fixed dates: lateness is judged against the partition's stream time (RECENT), and only
# the clock-skew check looks at the wall clock, which FUTURE stays ahead of.
RECENT = "2026-11-20T09:00:00Z"
LATER = "2026-11-20T10:00:00Z"
OLD = "2026-11-10T09:00:00Z"  # ten days behind RECENT: past the 7-day lateness
FUTURE = "2100-01-01T00:00:00Z"


def env_(type_: str, data: dict, *, event_id: str | None = None, occurred_at: str = RECENT, **extra) -> dict:
    return {"event_id": event_id or uuid.uuid4().hex, "type": type_, "occurred_at": occurred_at,
            "data": data, **extra}


def js(document) -> bytes:
    return json.dumps(document).encode()


CALL = {"rep_id": "r-1", "duration_s": 60}
INVOICE = {"invoice_id": "i-1", "customer_id": "c-1", "currency": "EUR",
           "lines": [{"sku": "a", "quantity": 2, "unit_price": "10.00", "unit_cost": "4"}]}

# (label, topic kind, key, value bytes, expected reason)
BAD: list[tuple[str, str, bytes | None, bytes | None, str]] = [
    ("not json", "crm", None, b"hello", "not_json"),
    ("truncated", "crm", None, js(env_("call.logged", CALL))[:-5], "not_json"),
    ("invalid utf-8", "crm", None, b'{"event_id": "\xff\xfe"}', "not_json"),
    ("NaN", "crm", None, js(env_("call.logged", CALL)).replace(b'"duration_s": 60', b'"duration_s": NaN'), "not_json"),
    ("duplicate keys", "crm", None, js(env_("call.logged", CALL)).replace(b'{"event_id"', b'{"type": "x", "event_id"', 1), "not_json"),
    ("deep nesting", "crm", None, b'{"a":' * 200 + b"1" + b"}" * 200, "not_json"),
    ("empty value", "crm", b"k", None, "not_json"),
    ("array", "crm", None, b"[1, 2, 3]", "not_object"),
    ("too large", "crm", None, js(env_("call.logged", {**CALL, "outcome": "x" * 70_000})), "too_large"),
    ("unknown type", "crm", None, js(env_("call.teleported", CALL)), "unknown_type"),
    ("billing type on crm", "crm", None, js(env_("invoice.issued", INVOICE)), "unknown_type"),
    ("missing event_id", "crm", None, js({k: v for k, v in env_("call.logged", CALL).items() if k != "event_id"}), "missing_field"),
    ("missing rep_id", "crm", None, js(env_("call.logged", {"duration_s": 5})), "missing_field"),
    ("wrong type", "crm", None, js(env_("call.logged", {"rep_id": "r-1", "duration_s": "long"})), "bad_type"),
    ("naive timestamp", "crm", None, js(env_("call.logged", CALL, occurred_at="2026-11-28T09:00:00")), "bad_value"),
    ("date only", "crm", None, js(env_("call.logged", CALL, occurred_at="2026-11-28")), "bad_value"),
    ("negative duration", "crm", None, js(env_("call.logged", {"rep_id": "r-1", "duration_s": -1})), "bad_value"),
    ("unknown currency", "crm", None, js(env_("opportunity.won", {"opportunity_id": "o-1", "rep_id": "r-1", "amount": 5, "currency": "XTS"})), "unknown_currency"),
    ("absurd amount", "billing", None, js(env_("payment.received", {"invoice_id": "i-1", "customer_id": "c-1", "amount": 1e15, "currency": "EUR"})), "bad_value"),
    ("negative payment", "billing", None, js(env_("payment.received", {"invoice_id": "i-1", "customer_id": "c-1", "amount": -3, "currency": "EUR"})), "bad_value"),
    ("unknown stage", "crm", None, js(env_("opportunity.created", {"opportunity_id": "o-9", "rep_id": "r-1", "stage": "daydreaming"})), "unknown_stage"),
    ("inconsistent total", "billing", None, js(env_("invoice.issued", {**INVOICE, "invoice_id": "i-2", "total": "21"})), "inconsistent_total"),
    ("future", "crm", None, js(env_("call.logged", CALL, occurred_at=FUTURE)), "future_timestamp"),
    ("key mismatch", "reps", b"r-2", js(env_("rep.upserted", {"rep_id": "r-3", "team_id": "t", "region_id": "g"})), "key_mismatch"),
]


def test_each_bad_record_is_dead_lettered_once_and_good_kpis_hold(pipeline_env, start_worker):
    env = pipeline_env
    worker = start_worker(env)
    topics = {"crm": env["KPI_TOPIC_CRM"], "billing": env["KPI_TOPIC_BILLING"], "reps": env["KPI_TOPIC_REPS"]}
    opp = {"opportunity_id": "o-1", "rep_id": "r-1"}
    won_id = uuid.uuid4().hex
    good = [
        ("crm", js(env_("call.logged", CALL))),
        ("crm", js(env_("call.logged", CALL))),
        ("crm", js(env_("opportunity.created", {**opp, "stage": "qualified", "amount": 100, "currency": "EUR"}))),
        ("crm", js(env_("opportunity.won", {**opp, "amount": "120", "currency": "EUR"}, event_id=won_id))),
        ("billing", js(env_("invoice.issued", INVOICE))),
    ]
    # Stateful bad input: needs the good events before it.
    stateful = [
        # Dated after the genuine win: in event-time order, the second close.
        ("won twice", "crm", js(env_("opportunity.won", {**opp, "amount": 1, "currency": "EUR"}, occurred_at=LATER)), "invalid_transition"),
        ("conflicting duplicate", "crm", js(env_("opportunity.won", {**opp, "amount": "999", "currency": "EUR"}, event_id=won_id)), "conflicting_duplicate"),
        ("too late", "crm", js(env_("call.logged", CALL, occurred_at=OLD)), "too_late"),
    ]
    true_duplicate = good[0]
    # Not dead-lettered now: held until its opportunity's created arrives, or orphaned once
    # it falls behind the lateness horizon (unit-tested in test_event_time_order.py).
    held = ("crm", js(env_("opportunity.stage_changed", {"opportunity_id": "o-404", "rep_id": "r-1", "to_stage": "demo"})))

    async def send():
        producer = AIOKafkaProducer(bootstrap_servers=hosts(env))
        await producer.start()
        try:
            # One partition for the input, so stream time and order are what this test says.
            for kind, value in good:
                await producer.send(topics[kind], value=value, partition=0)
            for _, kind, key, value, _ in BAD:
                await producer.send(topics[kind], key=key, value=value, partition=0)
            await producer.send(topics[true_duplicate[0]], value=true_duplicate[1], partition=0)
            for _, kind, value, _ in stateful:
                await producer.send(topics[kind], value=value, partition=0)
            await producer.send(topics[held[0]], value=held[1], partition=0)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(send())
    expected = sorted([reason for *_, reason in BAD] + [reason for *_, reason in stateful])
    dlq = wait_for(
        lambda: (found := asyncio.run(consume_all(env, env["KPI_TOPIC_DLQ"], len(expected), 5)))
        and len(found) >= len(expected) and found,
        timeout=60, what=f"{len(expected)} dead letters",
    )
    time.sleep(2)  # anything extra would have arrived by now
    dlq = asyncio.run(consume_all(env, env["KPI_TOPIC_DLQ"], len(expected) + 1, 5))
    reasons = sorted(dict(m.headers)["kpi.error.reason"].decode() for m in dlq)
    assert reasons == expected

    by_value = {m.value: m for m in dlq}
    for label, kind, key, value, reason in BAD:
        message = by_value[value]
        headers = dict(message.headers)
        assert headers["kpi.error.reason"] == reason.encode(), label
        assert message.key == key, label
        assert headers["kpi.source.topic"] == topics[kind].encode(), label
        detail = headers["kpi.error.detail"].decode()
        assert detail and len(detail) < 300, label
        assert "xxxxxxxx" not in detail and "daydreaming" not in detail, label  # no payload echo
    assert worker.process.poll() is None

    def kpis():
        rows = json.loads(worker.get("/kpis?scope=global&window=all"))
        values = {r["kpi"]: r["value"] for r in rows if not r["dims"]}
        return values.get("calls") == 2 and values.get("won_deals") == 1 and values
    values = wait_for(kpis, what="KPIs over the good events")
    assert values["bookings"] == 120.0
    assert values["orders"] == 1 and values["revenue"] == 20.0

    metrics = worker.get("/metrics").decode()
    assert metric_value(metrics, "kpi_pipeline_held_events") == 1
    assert metric_value(metrics, "kpi_pipeline_duplicates_total") == 1
    assert metric_value(metrics, "kpi_pipeline_events_rejected_total", reason="not_json") == 7
