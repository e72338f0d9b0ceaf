"""call.logged on the real broker → calls per rep on /metrics, kpi.values, Redis; bad input skipped."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def envelope(rep: str, occurred_at: str) -> bytes:
    return json.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "type": "call.logged",
            "occurred_at": occurred_at,
            "source": "test",
            "data": {"rep_id": rep, "duration_s": 120, "outcome": "connected"},
        }
    ).encode()


def hosts(env: dict[str, str]) -> str:
    return env["KPI_BROKER_URL"].removeprefix("kafka://")


async def produce(env: dict[str, str], records: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=hosts(env))
    await producer.start()
    try:
        for key, value in records:
            await producer.send(env["KPI_TOPIC_CRM"], key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(env: dict[str, str], topic: str, expect_at_least: int = 0, timeout: float = 20):
    """Every record of `topic` up to its current end (waiting for at least `expect_at_least`)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hosts(env), auto_offset_reset="earliest", enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records = []
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or {0})]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            end = await consumer.end_offsets(partitions)
            while any([await consumer.position(tp) < end[tp] for tp in partitions]):
                batch = await consumer.getmany(timeout_ms=500)
                for messages in batch.values():
                    records.extend(messages)
            if len(records) >= expect_at_least:
                break
            await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
    return records


def metric_value(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    _ = wanted
    return None


def test_calls_reach_metrics_kpi_values_and_redis(pipeline_env, start_worker):
    worker = start_worker(pipeline_env)
    today = "2026-11-20T09:00:00Z"
    calls = {"r-1": 5, "r-2": 3, "r-3": 1}
    records = [
        (rep.encode(), envelope(rep, today)) for rep, n in calls.items() for _ in range(n)
    ]
    bad = [(b"junk", b"{not json"), (None, b'{"event_id": "x", "type": "call.logged"}')]
    asyncio.run(produce(pipeline_env, records[:4] + bad + records[4:]))

    def global_calls():
        rows = json.loads(worker.get("/kpis?scope=global&kpi=calls&window=all"))
        return rows and rows[0]["value"] == sum(calls.values()) and rows

    rows = wait_for(global_calls, what="global calls in /kpis")
    assert rows[0]["unit"] == "count"

    metrics = worker.get("/metrics").decode()
    for rep, n in calls.items():
        assert metric_value(metrics, "sales_kpi_calls", scope_kind="rep", scope_id=rep, window="day") == n
    assert metric_value(metrics, "sales_kpi_calls", scope_kind="global", scope_id="global", window="all") == 9
    assert metric_value(metrics, "kpi_pipeline_events_rejected_total", reason="not_json") == 1
    assert metric_value(metrics, "kpi_pipeline_events_rejected_total", reason="missing_field") == 1

    # kpi.values: the latest record per compacted key agrees with the worker.
    def latest_values():
        found = asyncio.run(consume_all(pipeline_env, pipeline_env["KPI_TOPIC_KPI_VALUES"], 1, 5))
        latest = {m.key.decode(): json.loads(m.value) for m in found}
        key = "calls|rep:r-1|all|"
        return key in latest and latest[key]["value"] == 5 and latest

    latest = wait_for(latest_values, what="kpi.values record for rep r-1")
    assert latest["calls|global|all|"]["value"] == 9
    day_keys = [k for k in latest if k.startswith("calls|rep:r-2|day|")]
    assert len(day_keys) == 1 and latest[day_keys[0]]["value"] == 3

    # Redis holds the same latest records.
    client = redis.Redis.from_url(pipeline_env["KPI_REDIS_URL"])
    prefix = pipeline_env["KPI_REDIS_PREFIX"]

    def redis_record():
        raw = client.get(f"{prefix}:value:calls|rep:r-3|all|")
        return raw and json.loads(raw)["value"] == 1

    wait_for(redis_record, what="Redis record for rep r-3")
    def current_hash():
        raw = client.hget(f"{prefix}:current:global:all", "calls")
        return raw and json.loads(raw)["value"] == 9

    wait_for(current_hash, what="the current-window hash in Redis")

    # The bad records went to the DLQ unchanged, with their reason, and the worker is alive.
    dlq = asyncio.run(consume_all(pipeline_env, pipeline_env["KPI_TOPIC_DLQ"], 2))
    assert sorted(m.value for m in dlq) == sorted(value for _, value in bad)
    reasons = sorted(dict(m.headers)["kpi.error.reason"] for m in dlq)
    assert reasons == [b"missing_field", b"not_json"]
    assert worker.process.poll() is None


def rep_upserted(rep: str, team: str, region: str) -> bytes:
    return json.dumps(
        {
            "event_id": uuid.uuid4().hex,
            "type": "rep.upserted",
            "occurred_at": "2026-01-01T00:00:00Z",
            "data": {"rep_id": rep, "team_id": team, "region_id": region},
        }
    ).encode()


def test_reps_from_the_topic_and_a_file_drive_the_rollups(pipeline_env, start_worker, tmp_path):
    reps_file = tmp_path / "reps.csv"
    reps_file.write_text("rep_id,team_id,region_id\nr-1,t-north,emea\n")
    env = dict(pipeline_env, KPI_REPS_FILE=str(reps_file))

    async def publish_reps():
        producer = AIOKafkaProducer(bootstrap_servers=hosts(env))
        await producer.start()
        try:
            await producer.send(env["KPI_TOPIC_REPS"], key=b"r-2", value=rep_upserted("r-2", "t-south", "emea"))
            await producer.send(env["KPI_TOPIC_REPS"], key=b"bad", value=b"[1, 2]")
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(publish_reps())
    worker = start_worker(env)
    when = "2026-11-20T09:00:00Z"
    asyncio.run(produce(env, [(None, envelope("r-1", when)), (None, envelope("r-2", when)),
                              (None, envelope("r-2", when)), (None, envelope("r-9", when))]))

    def scopes():
        rows = json.loads(worker.get("/kpis?kpi=calls&window=all"))
        values = {r["scope"]: r["value"] for r in rows}
        return values.get("global") == 4 and values

    values = wait_for(scopes, what="calls rolled up by team")
    assert values["team:t-north"] == 1
    assert values["team:t-south"] == 2
    assert values["region:emea"] == 3
    assert values["team:unassigned"] == 1  # r-9 has no mapping

    dlq = asyncio.run(consume_all(env, env["KPI_TOPIC_DLQ"], 1))
    assert [dict(m.headers)["kpi.error.reason"] for m in dlq] == [b"not_object"]
    assert dlq[0].value == b"[1, 2]"
