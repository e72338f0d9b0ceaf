"""The broker and Redis the benchmark runs against: configured ones, else embedded ones."""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from agents.embedded import embedded_broker, embedded_redis


@dataclass(frozen=True)
class Servers:
    broker_url: str
    redis_url: str
    embedded: tuple[str, ...]  # which ones this run started (said in the report)


def start_servers(stack: ExitStack, run_dir: Path) -> Servers:
    """KPI_BROKER_URL / KPI_REDIS_URL when set; otherwise Tansu and valkey, stopped with `stack`."""
    started: list[str] = []
    broker_url = os.environ.get("KPI_BROKER_URL")
    if not broker_url:
        broker = stack.enter_context(embedded_broker(log_dir=run_dir))
        broker_url = f"kafka://{broker.url_host_port}"
        started.append("broker")
    redis_url = os.environ.get("KPI_REDIS_URL")
    if not redis_url:
        redis = stack.enter_context(embedded_redis(log_dir=run_dir))
        redis_url = f"redis://{redis.url_host_port}/0"
        started.append("redis")
    return Servers(broker_url, redis_url, tuple(started))


def delete_redis_keys(redis_url: str, prefix: str) -> int:
    """Remove what one measurement wrote (a shared Redis must not keep benchmark keys)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        removed = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += client.unlink(*batch)
                batch.clear()
        if batch:
            removed += client.unlink(*batch)
        return removed
    finally:
        client.close()
