"""The Redis sink on a real server: the one-script chunk and the plain-command fallback store the same keys."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import redis.asyncio as aioredis

from exporters.redis_sink import RedisSink
from kpi_state.records import KpiValue

pytestmark = pytest.mark.integration

DAY = "2026-01-05T00:00:00Z"


def records() -> list[KpiValue]:
    """Calendar and rolling records, dims with a non-ASCII value, current and past periods."""
    out = []
    for i in range(7):
        dims = {"stage": "Négociation"} if i % 2 else {}
        for window, start in (("day", DAY), ("day", "2026-01-04T00:00:00Z"), ("7d", None)):
            out.append(KpiValue("pipeline_value" if dims else "calls", f"rep:r-{i}", window, start, None,
                                float(i), float(i), None, "count", "green", dims, "2026-01-05T10:00:00Z"))
    return out


def current(batch: list[KpiValue]) -> list[KpiValue]:
    return [r for r in batch if r.window == "7d" or r.window_start == DAY]


async def keyspace(client: aioredis.Redis, prefix: str) -> dict[str, object]:
    """Every key of the prefix with its content, the prefix itself replaced by `P`."""
    out: dict[str, object] = {}
    for raw in sorted(await client.keys(f"{prefix}:*")):
        key = raw.decode().replace(prefix, "P", 1)
        kind = (await client.type(raw)).decode()
        if kind == "string":
            out[key] = json.loads(await client.get(raw))
        elif kind == "hash":
            out[key] = {f.decode(): json.loads(v) for f, v in (await client.hgetall(raw)).items()}
        else:
            out[key] = sorted(m.decode().replace(prefix, "P", 1) for m in await client.smembers(raw))
    return out


async def written(url: str, scripts: bool) -> tuple[dict[str, object], list[dict]]:
    """What one write leaves in Redis, and what it published on the change channel."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    sink = RedisSink(url, prefix)
    sink.scripts = scripts
    client = aioredis.from_url(url)
    listener = client.pubsub()
    await listener.subscribe(sink.channel)
    await listener.get_message(timeout=1.0)  # the subscription's confirmation
    batch = records()
    await sink.write(batch, current(batch))
    published = []
    while len(published) < len(batch):
        message = await listener.get_message(ignore_subscribe_messages=True, timeout=5.0)
        assert message is not None, f"{len(published)} of {len(batch)} changes published"
        published.append(json.loads(message["data"]))
    stored = await keyspace(client, prefix)
    await listener.aclose()
    await client.delete(*await client.keys(f"{prefix}:*"))
    await client.aclose()
    await sink.close()
    return stored, published


def test_the_script_and_the_commands_store_and_publish_the_same(redis_url: str) -> None:
    by_script, published_by_script = asyncio.run(written(redis_url, scripts=True))
    by_commands, published_by_commands = asyncio.run(written(redis_url, scripts=False))
    assert by_script == by_commands
    assert published_by_script == published_by_commands
    # What the layout promises, read back: every record by key, current ones in their hash,
    # the calendar periods' sets, the scopes.
    assert len([k for k in by_script if k.startswith("P:value:")]) == 21
    assert by_script["P:current:rep:r-1:7d"]["pipeline_value|stage=Négociation"]["value"] == 1.0
    assert set(by_script["P:current:rep:r-1:day"]) == {"pipeline_value|stage=Négociation"}
    assert by_script["P:current:rep:r-1:day"]["pipeline_value|stage=Négociation"]["window_start"] == DAY
    assert len(by_script[f"P:period:day:{DAY}"]) == 7
    assert by_script["P:scopes"] == [f"rep:r-{i}" for i in range(7)]


def test_a_user_without_scripting_gets_plain_commands(redis_url: str) -> None:
    async def run() -> tuple[bool, dict[str, object]]:
        admin = aioredis.from_url(redis_url)
        user, secret, prefix = f"kpi-{uuid.uuid4().hex[:6]}", "pw-" + uuid.uuid4().hex, f"test-{uuid.uuid4().hex[:8]}"
        await admin.execute_command("ACL", "SETUSER", user, "on", f">{secret}", f"~{prefix}:*", f"&{prefix}:*",
                                    "+@all", "-@scripting")
        try:
            sink = RedisSink(redis_url, prefix, username=user, password=secret)
            batch = records()
            await sink.write(batch, current(batch))
            await sink.close()
            return sink.scripts, await keyspace(admin, prefix)
        finally:
            await admin.execute_command("ACL", "DELUSER", user)
            keys = await admin.keys(f"{prefix}:*")
            if keys:
                await admin.delete(*keys)
            await admin.aclose()

    scripts, stored = asyncio.run(run())
    assert scripts is False  # refused once, then plain commands
    assert len([k for k in stored if k.startswith("P:value:")]) == 21
