"""Active alerts on a real Redis: transitions set and delete hash fields and are announced; a refill is not."""

from __future__ import annotations

import json
import uuid

import pytest
import redis.asyncio as aioredis

from exporters.redis_alerts import RedisAlerts

pytestmark = pytest.mark.integration


def body(status: str, scope: str) -> tuple[str, bytes, dict[str, str]]:
    record = {"status": status, "labels": {"kpi": "win_rate", "scope": scope, "window": "month"}}
    return f"win_rate|{scope}|month", json.dumps(record).encode(), record


async def test_transitions_and_a_refill_on_a_real_server(redis_url: str) -> None:
    prefix = f"kpi-test-{uuid.uuid4().hex[:8]}"
    sink = RedisAlerts(redis_url, prefix)
    client = aioredis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{prefix}:alerts")
    await pubsub.get_message(timeout=1.0)  # the subscription's confirmation
    try:
        await sink.write([body("firing", "rep:a"), body("firing", "rep:b"), body("resolved", "rep:a")])
        assert await client.hkeys(sink.active_key) == [b"win_rate|rep:b|month"]
        # The refill sets what fires now, after the transitions, without announcing it.
        key, firing, _ = body("firing", "rep:c")
        await sink.write([body("resolved", "rep:b")], active=[(key, firing)])
        assert await client.hgetall(sink.active_key) == {key.encode(): firing}
        heard = []  # until a second passes with nothing more: a fifth message would be a re-announcement
        while (message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)) is not None:
            heard.append(json.loads(message["data"])["status"])
        assert heard == ["firing", "firing", "resolved", "resolved"]
    finally:
        await pubsub.aclose()
        await client.delete(sink.active_key)
        await client.aclose()
        await sink.close()
