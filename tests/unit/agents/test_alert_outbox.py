"""The alert outbox across crashes: exactly one record per transition on kpi.alerts, never two, never none.

A crash is simulated by keeping only the state records written before it and building a
new rollup step from them, as a restarted worker does.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace as NS

import msgspec
import pytest
from prometheus_client import CollectorRegistry

import agents.alerting as alerting
from agents.alerting import AlertOutput
from agents.rollup_step import RollupStep
from exporters.pipeline_metrics import PipelineMetrics
from kpi_state.day_cells import CellUpdate
from kpi_state.kpi_view import ViewConfig
from kpi_state.thresholds import load_thresholds
from kpi_state.watermark import HEARTBEAT_SCOPE
from kpi_state.codec import CELLS, Cells
from streams.output_schemas import AlertRecord
from streams.settings import DEFAULT_STAGES

THRESHOLDS = load_thresholds(textwrap.dedent("""\
    version: 1
    kpis:
      win_rate:
        windows: [month]
        direction: higher
        red: 0.2
        min_sample: 5
    """))
ALERTS, STATE = "kpi.alerts", "rollup-state"


class FakeOut:
    """Records what was sent per topic; `flush` is the broker's acknowledgement."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, bytes | None, int | None]]] = {}

    async def send(self, topic, key, value, *, partition=None, headers=None):
        self.sent.setdefault(topic, []).append((key, value, partition))

    async def flush(self) -> None:
        pass


def runtime(out: FakeOut) -> NS:
    rollup = RollupStep(ViewConfig("UTC", DEFAULT_STAGES, thresholds=THRESHOLDS))
    rollup.recover([], {0})
    settings = NS(topic_kpi_alerts=ALERTS, redis_url=None, redis_prefix="kpi", topic_partitions=1)
    return NS(settings=settings, registry=CollectorRegistry(), thresholds=THRESHOLDS, rollup=rollup, out=out,
              entities=NS(engines={}), metrics=None)


def ts(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc).timestamp()


def cells(day: str, won: int, lost: int, beat: str, kpi_scope: str = "rep:a") -> list[NS]:
    update = CellUpdate({"won": Decimal(won), "lost": Decimal(lost)}, {})
    return [NS(key=kpi_scope.encode(), value=CELLS.encode(Cells.of(0, ts(day), {day: update})), partition=0,
               offset=0),
            NS(key=HEARTBEAT_SCOPE.encode(), value=CELLS.encode(Cells.of(0, ts(beat), {})), partition=0, offset=0)]


def latest(state_log: list[tuple[bytes, bytes, int]]) -> list[tuple[bytes, bytes]]:
    return list({key: value for key, value, _ in state_log}.items())


@pytest.fixture
def broker(monkeypatch):
    """kpi.alerts as the reconciliation reads it back (ids of the records already there)."""
    topic: list = []

    async def published_ids(settings, name, tail=10_000):
        return {json.loads(value)["id"] for _, value, _ in topic}

    monkeypatch.setattr(alerting, "published_ids", published_ids)
    return topic


def restarted(state_log, out: FakeOut) -> NS:
    rt = runtime(out)
    rt.rollup.recover(latest(state_log), {0})
    rt.output = AlertOutput(rt, STATE, "cells")
    return rt


async def test_crash_after_send_before_the_outbox_is_updated_sends_nothing_twice(broker):
    out = FakeOut()
    rt = runtime(out)
    rt.output = AlertOutput(rt, STATE, "cells")
    before = [(k, v, p) for p, k, v in rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))]
    # The batch's state (with the firing entry in the outbox) is persisted...
    await rt.output.publish()  # ...the record is sent and acknowledged...
    broker.extend(out.sent[ALERTS])
    assert len(out.sent[ALERTS]) == 1
    # ...and the worker dies before the outbox's new state ("published") is written.
    out2 = FakeOut()
    rt2 = restarted(before, out2)
    await rt2.output.recovered()
    await rt2.output.after_batch()
    assert ALERTS not in out2.sent  # found on kpi.alerts by its id: not sent again
    # The episode goes on from the recovered state: its resolution is sent exactly once.
    writes = [(k, v, p) for p, k, v in rt2.rollup.process(cells("2026-11-03", 9, 0, "2026-11-04"))]
    await rt2.output.after_batch()
    [(key, value, _)] = out2.sent[ALERTS]
    record = json.loads(value)
    assert key == b"win_rate|rep:a|month" and record["status"] == "resolved"
    assert record["episode"] == json.loads(broker[0][1])["episode"]
    assert writes  # the resolution was persisted with the batch


async def test_crash_before_send_sends_once_after_recovery(broker):
    out = FakeOut()
    rt = runtime(out)
    before = [(k, v, p) for p, k, v in rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))]
    # Dies right after persisting the batch: nothing reached kpi.alerts.
    out2 = FakeOut()
    rt2 = restarted(before, out2)
    await rt2.output.recovered()
    await rt2.output.after_batch()
    assert [json.loads(v)["status"] for _, v, _ in out2.sent[ALERTS]] == ["firing"]
    # A second restart after the outbox was emptied and persisted sends nothing more.
    state = before + [(k, v, p) for k, v, p in out2.sent[STATE]]
    broker.extend(out2.sent[ALERTS])
    out3 = FakeOut()
    rt3 = restarted(state, out3)
    await rt3.output.recovered()
    await rt3.output.after_batch()
    assert ALERTS not in out3.sent and rt3.rollup.alerts.outbox() == []


async def test_a_day_judged_before_the_crash_is_not_judged_again(broker):
    out = FakeOut()
    rt = runtime(out)
    before = [(k, v, p) for p, k, v in rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))]
    rt2 = restarted(before, FakeOut())
    assert rt2.rollup.judged is not None and rt2.rollup.judged.isoformat() == "2026-11-02"
    # The same cells again (re-read after the crash) change nothing.
    rt2.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))
    assert len(rt2.rollup.alerts.outbox()) == 1


class FakeRedisAlerts:
    """RedisAlerts' effect: the active hash and the channel; `down` makes a write fail."""

    def __init__(self) -> None:
        self.active: dict[str, bytes] = {}
        self.channel: list[str] = []
        self.down = False

    async def write(self, records, active=()) -> None:
        if self.down:
            raise ConnectionError("redis down")
        for key, body, record in records:
            if record["status"] == "firing":
                self.active[key] = body
            else:
                self.active.pop(key, None)
            self.channel.append(json.loads(body)["status"])
        self.active.update(active)


async def test_the_active_hash_follows_firing_and_resolved_records(broker):
    rt = runtime(FakeOut())
    rt.output = AlertOutput(rt, STATE, "cells")
    rt.output.redis = redis = FakeRedisAlerts()
    rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))
    await rt.output.after_batch()
    [(key, body)] = redis.active.items()
    assert key == "win_rate|rep:a|month" and json.loads(body)["status"] == "firing"
    # What the worker writes is what schemas/outputs/kpi.alerts.json describes.
    for _, value, _ in rt.out.sent[ALERTS]:
        assert msgspec.to_builtins(msgspec.convert(json.loads(value), AlertRecord)) == json.loads(value)
    assert redis.channel == ["firing"]
    rt.rollup.process(cells("2026-11-03", 9, 0, "2026-11-04"))
    await rt.output.after_batch()
    assert redis.active == {} and redis.channel == ["firing", "resolved"]


async def test_redis_back_empty_after_an_outage_gets_the_firing_alerts_again(broker):
    rt = runtime(FakeOut())
    rt.metrics = PipelineMetrics(CollectorRegistry())
    rt.output = AlertOutput(rt, STATE, "cells")
    rt.output.redis = redis = FakeRedisAlerts()
    rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))
    await rt.output.after_batch()
    firing = dict(redis.active)
    # Redis restarts empty while a transition is written: that write fails.
    redis.active.clear()
    redis.down = True
    rt.rollup.process(cells("2026-11-03", 0, 9, "2026-11-04", kpi_scope="rep:b"))
    await rt.output.after_batch()
    redis.down = False
    await rt.output.after_batch()
    assert set(redis.active) == set(firing) | {"win_rate|rep:b|month"}
    assert redis.active["win_rate|rep:a|month"] == firing["win_rate|rep:a|month"]
    assert redis.channel == ["firing", "firing"]  # rep:a's set again, not announced again
    assert rt.metrics.sink_errors.labels("redis")._value.get() == 1


async def test_redis_restarted_between_two_writes_is_refilled_within_the_refresh(broker):
    rt = runtime(FakeOut())
    rt.output = AlertOutput(rt, STATE, "cells")
    rt.output.redis = redis = FakeRedisAlerts()
    now = [1000.0]
    rt.output.clock = lambda: now[0]
    rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))
    await rt.output.after_batch()
    firing = dict(redis.active)
    redis.active.clear()  # restarted empty, no write failed
    now[0] += rt.output.redis_refresh_s - 1
    await rt.output.after_batch()
    assert redis.active == {}
    now[0] += 1
    await rt.output.after_batch()
    assert redis.active == firing and redis.channel == ["firing"]


async def test_a_restarted_worker_sets_its_recovered_firing_alerts(broker):
    out = FakeOut()
    rt = runtime(out)
    rt.output = AlertOutput(rt, STATE, "cells")
    rt.rollup.process(cells("2026-11-02", 0, 9, "2026-11-03"))
    await rt.output.after_batch()
    broker.extend(out.sent[ALERTS])
    state = [(k, v, p) for k, v, p in out.sent[STATE]]
    rt2 = restarted(state, FakeOut())
    rt2.output.redis = redis = FakeRedisAlerts()  # a Redis that never saw the first worker's write
    await rt2.output.recovered()
    await rt2.output.after_batch()
    assert list(redis.active) == ["win_rate|rep:a|month"] and redis.channel == []
