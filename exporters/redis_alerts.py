"""Active alerts in Redis: one hash of firing records, removed when resolved, and a change channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

# Key layout (README "Redis"):
#   {prefix}:alerts:active  hash  {kpi}|{scope}|{window} -> JSON record of the firing alert
#   {prefix}:alerts         pub/sub channel, every alert record (firing and resolved)


class RedisAlerts:
    """Own small client: the KPI sink's batching and retries stay separate from alerts."""

    def __init__(self, url: str, prefix: str = "kpi") -> None:
        self.url = url
        self.prefix = prefix
        self.client: aioredis.Redis | None = None

    @property
    def active_key(self) -> str:
        return f"{self.prefix}:alerts:active"

    async def write(self, records: Sequence[tuple[str, bytes, dict[str, Any]]],
                    active: Sequence[tuple[str, bytes]] = ()) -> None:
        """Transitions, then the firing alerts as they are now.

        `records`, (kpi.alerts key, JSON body, record) in order: firing sets the field,
        resolved deletes it, and each is announced on the channel. `active`, (key, body):
        set only, never announced (a subscriber hears of each transition once).
        """
        if not records and not active:
            return
        if self.client is None:
            self.client = aioredis.from_url(self.url, socket_connect_timeout=5)
        pipe = self.client.pipeline(transaction=False)
        for key, body, record in records:
            if record["status"] == "firing":
                pipe.hset(self.active_key, key, body)
            else:
                pipe.hdel(self.active_key, key)
            pipe.publish(f"{self.prefix}:alerts", body)
        if active:
            pipe.hset(self.active_key, mapping=dict(active))
        await pipe.execute()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None
