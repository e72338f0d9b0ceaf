"""Drives the simulator against a broker: a backfill of recent days, then live, at a set rate."""

from __future__ import annotations

import asyncio
import json
import time

from streams.producer import EventProducer
from streams.settings import Settings
from streams.simulator import Simulator

TICK_S = 0.1


async def run_simulation(
    settings: Settings,
    *,
    rate: float,
    duration: float | None = None,
    seed: int = 7,
    scenario: str = "steady",
    bad_ratio: float = 0.0,
    count: int | None = None,
    backfill_days: float = 35.0,  # over 30 days: the demo's 30-day windows are judged
    live_activity: float = 1.0,
) -> int:
    """Produce until `duration` seconds or `count` events; return how many were sent.

    Simulated time starts `backfill_days` ago and never passes the wall clock, so the
    stream catches up at `rate` events/s and then follows real time. Real time is slow
    for a sales team (a few events a minute per rep): `live_activity` above 1 adds that
    many times the organisation's own activity once caught up, from a second simulator
    of the same reps, so a demo board keeps moving.
    """
    simulator = Simulator(
        seed,
        start=time.time() - backfill_days * 86400,
        scenario=scenario,
        bad_ratio=bad_ratio,
        stages=settings.stages,
    )
    extra: Simulator | None = None
    topics = {"crm": settings.topic_crm, "billing": settings.topic_billing}
    per_tick = max(1, round(rate * TICK_S))
    started = time.monotonic()
    sent = 0
    async with EventProducer(settings) as producer:
        await producer.send_many(
            (settings.topic_reps, env["data"]["rep_id"].encode(), json.dumps(env).encode())
            for env in simulator.rep_upserts()
        )
        while (duration is None or time.monotonic() - started < duration) and (
            count is None or sent < count
        ):
            tick_started = time.monotonic()
            want = per_tick if count is None else min(per_tick, count - sent)
            now = time.time()
            batch = simulator.next_batch(want, until=now)
            if len(batch) < want and live_activity > 1:
                if extra is None:
                    # Another seed gives other event ids; the same organisation, the same reps.
                    extra = Simulator(
                        seed + 1, start=now, org=simulator.org, scenario=scenario,
                        bad_ratio=bad_ratio, stages=settings.stages,
                        activity=live_activity - 1, initial_deals=0,
                    )
                batch += extra.next_batch(want - len(batch), until=now)
            sent += await producer.send_many((topics[kind], key, value) for kind, key, value in batch)
            await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - tick_started)))
        await producer.flush()
    return sent
