"""The Redis serving layer: latest KPI records, current-window hashes, a change channel, and reads.

Key layout (README "Redis"; `prefix` is KPI_REDIS_PREFIX, default `kpi`):
  {prefix}:value:{kpi}|{scope}|{window}|{window_start}[|dim=v…]  string  JSON record (every period)
  {prefix}:current:{scope}:{window}  hash  field {kpi}[|dim=v…] → JSON record of the current period
  {prefix}:changes                   pub/sub channel, one JSON record per message
  {prefix}:scopes                    set of every scope with a current hash (for reads)
  {prefix}:period:{window}:{window_start}  set of the value keys of one calendar period
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis

from kpi_state.calendar import CALENDAR_WINDOWS
from kpi_state.records import KpiValue, dims_suffix, encoded

log = logging.getLogger(__name__)

# Records per pipeline: one flush is one pipeline (one round trip) up to this size; a
# backlog after an outage is split so encoding never holds the event loop for long.
CHUNK = 5000
# Publishes every body given on the channel KEYS[1]: a PUBLISH per record costs the worker a
# command and a reply each, most of a flush's time when history is replayed.
PUBLISH_ALL = "for i = 1, #ARGV do redis.call('PUBLISH', KEYS[1], ARGV[i]) end return #ARGV"
# One chunk in one command: ARGV[1] is a JSON array of five entries per record (value key,
# body length in bytes, current hash or "", hash field, period set or ""), ARGV[2] every
# body end to end, ARGV[3] the change channel, ARGV[4] the scopes set, ARGV[5] a JSON array
# of scopes. Redis runs the commands itself, so the worker packs five arguments per chunk
# instead of several per record (packing and replies were most of a flush's Redis time).
WRITE_CHUNK = """
local meta = cjson.decode(ARGV[1])
local bodies = ARGV[2]
local at = 1
for i = 1, #meta, 5 do
  local body = string.sub(bodies, at, at + meta[i + 1] - 1)
  at = at + meta[i + 1]
  redis.call('SET', meta[i], body)
  if meta[i + 2] ~= '' then redis.call('HSET', meta[i + 2], meta[i + 3], body) end
  if meta[i + 4] ~= '' then redis.call('SADD', meta[i + 4], meta[i]) end
  redis.call('PUBLISH', ARGV[3], body)
end
local scopes = cjson.decode(ARGV[5])
for i = 1, #scopes do redis.call('SADD', ARGV[4], scopes[i]) end
return #meta / 5
"""
_meta = msgspec.json.Encoder()
RETRY_MAX_S = 10.0


class RedisUnavailable(ConnectionError):
    """Redis did not take a write (down, refusing, or still waiting for the next retry)."""


class RedisSink:
    """Batched writer and reader; never fails the worker: an outage is logged once and counted.

    `setup()` tries to connect (and says so when it cannot); `write()` takes one flush and
    raises RedisUnavailable when the records were not stored, so the caller keeps them.
    """

    def __init__(
        self, url: str, prefix: str = "kpi", *, username: str | None = None,
        password: str | None = None, ssl_cafile: Path | None = None,
        ssl_certfile: Path | None = None, ssl_keyfile: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.clock = clock
        self._options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 5}
        if username:
            self._options["username"] = username
        if password:
            self._options["password"] = password
        if url.startswith("rediss://"):
            for name, path in (("ssl_ca_certs", ssl_cafile), ("ssl_certfile", ssl_certfile),
                               ("ssl_keyfile", ssl_keyfile)):
                if path is not None:
                    self._options[name] = str(path)
        self.client: aioredis.Redis | None = None
        self.down_since: float | None = None
        self.failures = 0
        # True until a write succeeds after start or after an outage (see Publisher).
        self.resync_wanted = True
        self._next_try = 0.0
        self.scripts = True  # until the server refuses EVAL (an ACL user without scripting)

    @classmethod
    def from_settings(cls, settings: Any) -> RedisSink:
        password = settings.redis_password.get_secret_value() if settings.redis_password else None
        return cls(
            settings.redis_url, settings.redis_prefix, username=settings.redis_username,
            password=password, ssl_cafile=settings.redis_ssl_cafile,
            ssl_certfile=settings.redis_ssl_certfile, ssl_keyfile=settings.redis_ssl_keyfile,
        )

    @property
    def channel(self) -> str:
        return f"{self.prefix}:changes"

    def _client(self) -> aioredis.Redis:
        if self.client is None:
            self.client = aioredis.from_url(self.url, **self._options)
        return self.client

    async def setup(self) -> bool:
        """Connect and PING; False (logged, retried on later writes) when Redis does not answer."""
        try:
            await self._client().ping()
        except Exception as exc:  # noqa: BLE001 - any failure is an outage, not a crash
            self._failed(exc)
            return False
        self._recovered()
        return True

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        # Back off (1, 2, 4 … 10 s) so a dead Redis costs a flush nothing between attempts.
        self._next_try = self.clock() + min(RETRY_MAX_S, 2.0 ** min(self.failures - 1, 4))
        self.resync_wanted = True
        if self.down_since is None:
            self.down_since = self.clock()
            if isinstance(exc, aioredis.AuthenticationError | aioredis.ResponseError):
                # Reachable but refusing us: say what to check rather than "unreachable".
                log.error("redis at %s refused the worker (%s: %s); check KPI_REDIS_USERNAME, "
                          "KPI_REDIS_PASSWORD and the user's ACL; records are kept meanwhile",
                          _safe_url(self.url), type(exc).__name__, str(exc)[:80])
            else:
                log.error("redis unreachable at %s (%s); records are kept and written once it is back",
                          _safe_url(self.url), type(exc).__name__)

    def _recovered(self) -> None:
        if self.down_since is not None:
            log.warning("redis back after %.1f s (%d failed attempts)",
                        self.clock() - self.down_since, self.failures)
        self.down_since, self.failures, self._next_try = None, 0, 0.0

    async def write(self, records: Sequence[KpiValue], current: Sequence[KpiValue]) -> None:
        """Store the changed records; `current` are those that are their window's current period."""
        if not records:
            self.resync_wanted = False
            return
        if self.down_since is not None and self.clock() < self._next_try:
            raise RedisUnavailable("waiting before the next attempt")
        current_keys = {record.key for record in current}
        in_flight: asyncio.Future | None = None
        try:
            client = self._client()
            for start in range(0, len(records), CHUNK):
                chunk = records[start : start + CHUNK]
                if not self.scripts:
                    if in_flight is not None:
                        await in_flight
                        in_flight = None
                    await self._write_commands(client, chunk, current_keys)
                    continue
                # Packed while the server still runs the previous chunk's script: packing
                # and running cost about the same, and one waited for the other.
                args = self._script_args(chunk, current_keys)
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(self._run_chunk(client, chunk, args, current_keys))
            if in_flight is not None:
                await in_flight
        except Exception as exc:  # noqa: BLE001 - counted by the caller, logged once here
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()
            self._failed(exc)
            raise RedisUnavailable(type(exc).__name__) from exc
        self._recovered()
        self.resync_wanted = False

    async def _run_chunk(self, client: aioredis.Redis, records: Sequence[KpiValue], args: tuple[bytes, ...],
                         current_keys: set[str]) -> None:
        """One chunk in one script call; grouped plain commands once the server refuses scripts."""
        try:
            await client.eval(WRITE_CHUNK, 0, *args)
            return
        except aioredis.ResponseError as exc:
            if not _scripting_refused(exc):
                raise
            # An ACL user without scripting: plain commands from now on.
            log.warning("redis user may not run EVAL (%s); writing with plain commands", str(exc)[:80])
            self.scripts = False
        await self._write_commands(client, records, current_keys)

    def _layout(self, records: Sequence[KpiValue], current_keys: set[str]) -> Iterator[tuple[KpiValue, bytes, str, str, str, str]]:
        """Per record: (record, body, value key, current hash or "", its field, period set or "")."""
        for record in records:
            key = f"{self.prefix}:value:{record.key}"
            period = (self.period_key(record.window, record.window_start)
                      if record.window in CALENDAR_WINDOWS and record.window_start else "")
            if record.key in current_keys:
                current, field = self.current_key(record.scope, record.window), _field(record)
            else:
                current = field = ""
            yield record, encoded(record), key, current, field, period

    def _script_args(self, records: Sequence[KpiValue], current_keys: set[str]) -> tuple[bytes, ...]:
        meta: list[Any] = []
        bodies: list[bytes] = []
        scopes: set[str] = set()
        for record, body, key, current, field, period in self._layout(records, current_keys):
            meta += (key, len(body), current, field, period)
            if current:
                scopes.add(record.scope)
            bodies.append(body)
        return (_meta.encode(meta), b"".join(bodies), self.channel.encode(), self.scopes_key.encode(),
                _meta.encode(sorted(scopes)))

    async def _write_commands(self, client: aioredis.Redis, records: Sequence[KpiValue], current_keys: set[str]) -> None:
        """One pipeline: every value in one MSET, set members and hash fields grouped by key,
        one PUBLISH per record."""
        values: dict[str, bytes] = {}
        members: dict[str, list[str]] = {}
        fields: dict[str, dict[str, bytes]] = {}
        bodies: list[bytes] = []
        scopes: set[str] = set()
        for record, body, key, current, field, period in self._layout(records, current_keys):
            values[key] = body
            if period:
                members.setdefault(period, []).append(key)
            if current:
                fields.setdefault(current, {})[field] = body
                scopes.add(record.scope)
            bodies.append(body)
        pipe = client.pipeline(transaction=False)
        pipe.mset(values)
        for period, keys in members.items():
            pipe.sadd(period, *keys)
        for current, mapping in fields.items():
            pipe.hset(current, mapping=mapping)
        if scopes:
            pipe.sadd(self.scopes_key, *sorted(scopes))
        for body in bodies:
            pipe.publish(self.channel, body)
        await pipe.execute()

    def current_key(self, scope: str, window: str) -> str:
        return f"{self.prefix}:current:{scope}:{window}"

    @property
    def scopes_key(self) -> str:
        return f"{self.prefix}:scopes"

    def period_key(self, window: str, window_start: str) -> str:
        return f"{self.prefix}:period:{window}:{window_start}"

    async def read_current(self, scopes: Sequence[str] | None, windows: Sequence[str]) -> list[dict[str, Any]]:
        """Current-period records of `scopes` (all when None) × `windows`, from every worker's writes."""
        client = self._client()
        if scopes is None:
            scopes = sorted(member.decode() for member in await client.smembers(self.scopes_key))
        keys = [self.current_key(scope, window) for scope in scopes for window in windows]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hvals(key)
        records: list[dict[str, Any]] = []
        for values in await pipe.execute():
            found = [json.loads(v) for v in values]
            # A hash can still hold fields of the previous period for KPIs that have not
            # changed since the period turned: only the newest period is current.
            newest = max((r.get("window_start") or "" for r in found), default="")
            records += [r for r in found if (r.get("window_start") or "") == newest]
        return records

    async def read_period(self, scope: str | None, window: str, window_start: str) -> list[dict[str, Any]]:
        """Every record of one calendar period (`window_start` as in the records' keys)."""
        client = self._client()
        keys = [key.decode() for key in await client.smembers(self.period_key(window, window_start))]
        if scope is not None:
            keys = [key for key in keys if key.split("|")[1] == scope]
        values = await client.mget(keys) if keys else []
        return [json.loads(v) for v in values if v is not None]


def _scripting_refused(exc: aioredis.ResponseError) -> bool:
    text = str(exc).lower()
    return "eval" in text or "script" in text or "noperm" in text


def _field(record: KpiValue) -> str:
    return record.kpi + dims_suffix(tuple(record.dims.items()))


def _safe_url(url: str) -> str:
    """The URL without a password, for logs."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return parts._replace(netloc=user + netloc).geturl()
