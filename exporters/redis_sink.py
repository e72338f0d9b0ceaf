"""The Redis serving layer: latest KPI records, current-window hashes and a change channel."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from kpi_state.records import KpiValue, to_json

# Key layout (documented in README "Redis"):
#   {prefix}:value:{kpi}|{scope}|{window}|{window_start}[|dim=v]  -> JSON record (every period)
#   {prefix}:current:{scope}:{window}  hash  {kpi}[|dim=v] -> JSON record of the current period
#   {prefix}:changes  pub/sub channel, one JSON record per message


CHUNK = 1000


class RedisSink:
    """Batched writer; `setup()` connects and fails fast, `write()` takes one flush."""

    def __init__(self, url: str, prefix: str = "kpi") -> None:
        self.url = url
        self.prefix = prefix
        self.client: aioredis.Redis | None = None

    @property
    def channel(self) -> str:
        return f"{self.prefix}:changes"

    async def setup(self) -> None:
        self.client = aioredis.from_url(self.url, socket_connect_timeout=5)
        await self.client.ping()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def write(self, records: Sequence[KpiValue], current: Sequence[KpiValue]) -> None:
        """Store every changed record; `current` are those that are their window's current period.

        Sent in pipelines of CHUNK records: one huge pipeline would be encoded in a single
        step and hold up the worker's event loop.
        """
        if not records or self.client is None:
            return
        for start in range(0, len(records), CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for record in records[start : start + CHUNK]:
                body = to_json(record)
                pipe.set(f"{self.prefix}:value:{record.key}", body)
                pipe.publish(self.channel, body)
            await pipe.execute()
        for start in range(0, len(current), CHUNK):
            pipe = self.client.pipeline(transaction=False)
            for record in current[start : start + CHUNK]:
                field = record.kpi + "".join(f"|{k}={v}" for k, v in sorted(record.dims.items()))
                pipe.hset(f"{self.prefix}:current:{record.scope}:{record.window}", field, to_json(record))
            await pipe.execute()
