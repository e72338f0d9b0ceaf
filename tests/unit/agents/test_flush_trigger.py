"""FlushTrigger: a catch-up's end is flushed at once when the backlog is known exactly, and never two flushes at once."""

from __future__ import annotations

import asyncio

from agents.flush_trigger import FlushTrigger
from agents.pacing import FlushPacing


class Consumer:
    """The consumer as the trigger sees it: a backlog, busy lanes, ownership, known ends."""

    def __init__(self) -> None:
        self.waiting = 0
        self.written: dict[tuple[str, int], int] = {}
        self.handling = False
        self.sole = True
        self.ends_known = True

    def backlog(self, topics, produced=None) -> int:
        # What the worker wrote itself counts, as in BatchConsumer.backlog.
        return self.waiting + sum((produced or {}).values())

    def busy(self) -> bool:
        return self.handling

    def owns_every_partition(self, topics) -> bool:
        return self.sole

    def knows_every_end(self, topics) -> bool:
        return self.ends_known


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def trigger_for(consumer: Consumer, clock: Clock, flushes: list[float], produced: dict | None = None,
                flush_s: float = 0.0) -> FlushTrigger:
    pacing = FlushPacing(clock, catch_up_s=30.0, backlog_limit=5000, idle_s=1.0)

    async def flush() -> None:
        flushes.append(clock.now)
        clock.now += flush_s
        await asyncio.sleep(0)

    return FlushTrigger(pacing, lambda: consumer, routed={"in"}, upstream=("in",),
                        produced=produced if produced is not None else {}, flush=flush, ready=lambda: True)


async def catch_up(trigger: FlushTrigger, consumer: Consumer, clock: Clock) -> None:
    """A first flush, then a backlog seen at a tick, then batches."""
    assert await trigger.tick()
    consumer.waiting = 200_000
    clock.now += 1.0
    trigger.batch_done()
    assert not await trigger.tick()  # catching up: held back
    for _ in range(8):
        clock.now += 0.25
        trigger.batch_done()


async def test_the_last_batch_of_a_backlog_known_exactly_is_flushed_at_once() -> None:
    consumer, clock, flushes = Consumer(), Clock(), []
    produced: dict[tuple[str, int], int] = {}
    trigger = trigger_for(consumer, clock, flushes, produced)
    watcher = asyncio.ensure_future(trigger.watch(lambda: False))
    try:
        await catch_up(trigger, consumer, clock)
        consumer.waiting = 0
        produced[("mid", 0)] = 12  # the edge's last bundles, acknowledged, not read yet
        trigger.batch_done()
        await asyncio.sleep(0.01)
        assert len(flushes) == 1  # still waiting for the steps: no flush
        produced.clear()  # the later steps took them (the fake counts what waits)
        trigger.batch_done()
        await asyncio.sleep(0.01)
        assert flushes == [100.0, clock.now]  # at once: no tick, no idle second
    finally:
        watcher.cancel()


async def test_without_exact_ends_the_drained_backlog_waits_for_an_idle_second() -> None:
    consumer, clock, flushes = Consumer(), Clock(), []
    consumer.sole = False  # another worker also writes to our internal partitions
    trigger = trigger_for(consumer, clock, flushes)
    await catch_up(trigger, consumer, clock)
    consumer.waiting = 0
    assert not await trigger.tick()  # the last batch was just now: more may be on its way
    clock.now += 1.0
    assert await trigger.tick()


async def test_a_tick_during_a_flush_does_not_start_another() -> None:
    consumer, clock, flushes = Consumer(), Clock(), []
    release = asyncio.Event()
    trigger = trigger_for(consumer, clock, flushes)

    async def slow_flush() -> None:
        flushes.append(clock.now)
        await release.wait()

    trigger.flush = slow_flush
    first = asyncio.ensure_future(trigger.tick())
    await asyncio.sleep(0)
    assert not await trigger.tick()
    release.set()
    assert await first
    assert len(flushes) == 1


async def test_batches_done_during_a_flush_do_not_start_another_one_after_it() -> None:
    consumer, clock, flushes = Consumer(), Clock(), []
    trigger = trigger_for(consumer, clock, flushes)
    await catch_up(trigger, consumer, clock)
    clock.now += 30.0  # the catch-up interval has passed: a paced flush is due

    async def flush_while_batches_finish() -> None:
        flushes.append(clock.now)
        for _ in range(3):
            trigger.batch_done()  # the steps go on during the flush (and wake the watcher)
            await asyncio.sleep(0)

    trigger.flush = flush_while_batches_finish
    watcher = asyncio.ensure_future(trigger.watch(lambda: False))
    try:
        trigger.batch_done()
        await asyncio.sleep(0.01)
        assert len(flushes) == 2  # the first at start, the paced one; the backlog still waits
        await asyncio.sleep(0.01)
        assert len(flushes) == 2
    finally:
        watcher.cancel()
